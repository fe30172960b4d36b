"""Who is calling: caller IDs normalised to E.164, withheld ones recognised. Pure.

Carriers spell a withheld caller ID as a word ("anonymous") or as that word typed on a
keypad (+266696687 is A-N-O-N-Y-M-O-U-S), which parses as a possible number in Lesotho. Those
must be caught before parsing, or every hidden caller would become one "person" in Lesotho.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

import phonenumbers

WITHHELD_WORDS = frozenset({"anonymous", "restricted", "unknown", "private", "unavailable", "blocked", "withheld", "unknown caller"})
# Keypad spellings seen across public Twilio handlers, with and without the "+".
WITHHELD_DIGITS = frozenset({"266696687", "7378742833", "2562533", "8656696", "86282452253"})
_NANP_E164 = re.compile(r"\+1[2-9][0-9]{9}")


@dataclass(frozen=True)
class Caller:
    """A caller ID read: ``e164`` when it is a real number, ``withheld`` when it was hidden.

    A value that is neither (``client:alice``, a SIP URI, garbage) leaves both unset: the call
    is kept, but no person can be made of it.
    """

    e164: str | None
    withheld: bool = False
    extension: str | None = None


@lru_cache(maxsize=65536)
def read_caller(raw: str | None, region: str) -> Caller:
    """Normalise a caller ID sent by a provider, with the account's region for national ones.

    Cached: parsing with phonenumbers costs tens of microseconds, and the same tracking
    numbers and callers come back call after call."""
    if raw is None:
        return Caller(None, withheld=True)
    text = raw.strip()
    if not text or text.lower() in WITHHELD_WORDS or text.lstrip("+") in WITHHELD_DIGITS:
        return Caller(None, withheld=True)
    if len(text) > 40 or ":" in text or "@" in text:
        return Caller(None)
    if _NANP_E164.fullmatch(text):
        # Most calls come from North America in E.164 already: parse() would find country code 1
        # and a ten-digit national number starting 2-9 (no national prefix or leading zero to
        # strip), so it is built directly; only validity needs the metadata. An invalid one
        # goes the long way, to be answered exactly as before.
        number = phonenumbers.PhoneNumber(country_code=1, national_number=int(text[2:]))
        if phonenumbers.is_valid_number(number):
            return Caller(text)
    digits_only = text.lstrip("+")
    # PBXs and Plivo send bare international digits ("14155550100"); try them as such when
    # they do not read as a national number.
    candidates = [text] if text.startswith("+") else [text, "+" + digits_only] if digits_only.isdigit() else [text]
    for candidate in candidates:
        try:
            parsed = phonenumbers.parse(candidate, None if candidate.startswith("+") else region)
        except phonenumbers.NumberParseException:
            continue
        if phonenumbers.is_valid_number(parsed):
            return Caller(
                phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164),
                extension=parsed.extension or None,
            )
    return Caller(None)


def normalise_email(raw: str | None) -> str | None:
    if not raw:
        return None
    text = raw.strip().lower()
    return text if "@" in text and len(text) <= 254 else None
