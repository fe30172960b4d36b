"""Retention settings and the scrubbing of personal data out of stored values. Pure: no
database, no clock (``now`` comes in), no randomness (pseudonyms are made by the store).

Scrubbing never deletes a row and never changes what reports count: it blanks or replaces the
personal values inside a row (a caller's number, a form's fields, a recording's address, the
query string of a URL) and leaves times, sources, stages, values and durations alone.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import phonenumbers

KINDS = ("recordings", "callers", "forms")
FIELDS = tuple(f"{kind}_days" for kind in KINDS)
MAX_DAYS = 36_500  # a hundred years: longer is "keep", which is null
DAY = 86_400.0

# What replaces a scrubbed string inside a JSON document (an event's payload, an explain record).
ERASED = "[erased]"
# Keys of a stored call event (telephony/events.py CallEvent.to_json, and its ``extra``) that
# describe the caller, and the one that locates the recording.
CALLER_KEYS = ("caller_raw", "caller_name", "caller_city", "caller_region", "forwarded_from")
RECORDING_KEYS = ("recording_url",)
# Ad click ids on a touchpoint: not a name or a number, but identifiers of one person's click
# that ad platforms can tie back to their user. Erasure removes them; retention keeps them.
CLICK_ID_COLUMNS = ("gclid", "gbraid", "wbraid", "msclkid", "yclid", "fbclid")


class InvalidRetention(ValueError):
    """A retention setting that is not a number of days (or null); the message names it."""


@dataclass(frozen=True)
class Retention:
    """Days to keep each kind of personal data; None keeps it for good."""

    recordings_days: int | None = None
    callers_days: int | None = None
    forms_days: int | None = None

    def to_json(self) -> dict[str, int | None]:
        return {f: getattr(self, f) for f in FIELDS}

    @property
    def active(self) -> bool:
        return any(getattr(self, f) is not None for f in FIELDS)

    def cutoff(self, kind: str, now: float) -> float | None:
        """Rows of ``kind`` from before this moment are due for the purge (None: keep)."""
        days = getattr(self, f"{kind}_days")
        return None if days is None else now - days * DAY


def check_days(value: Any, name: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_DAYS:
        raise InvalidRetention(f"'{name}' must be a whole number of days from 1 to {MAX_DAYS}, or null to keep for good")
    return value


def read_retention(body: Any, current: Retention) -> Retention:
    """The settings after a PATCH: the fields given replace the current ones."""
    if not isinstance(body, Mapping) or not body:
        raise InvalidRetention(f"give one or more of {', '.join(FIELDS)} (days, or null to keep)")
    unknown = sorted(set(body) - set(FIELDS))
    if unknown:
        raise InvalidRetention(f"unknown field {unknown[0]!r} (known: {', '.join(FIELDS)})")
    values = current.to_json() | {name: check_days(body[name], name) for name in body}
    return Retention(**values)


def read_days_argument(text: str, name: str) -> int | None:
    """A command-line value: a number of days, or 'keep'."""
    if text.strip().lower() in ("keep", "none", "null", "off"):
        return None
    try:
        days = int(text)
    except ValueError:
        raise InvalidRetention(f"--{name.replace('_', '-')} takes a number of days or 'keep'") from None
    return check_days(days, name)


# -- scrubbing -----------------------------------------------------------------------------------


def strip_url(url: str | None) -> str | None:
    """A URL without its query string and fragment (where forms and ad tools put emails, names
    and ids); the page itself, which reports group landing pages by, stays."""
    if not url:
        return url
    return url.split("#", 1)[0].split("?", 1)[0]


def url_origin(url: str | None) -> str | None:
    """Scheme and host of a referrer: reports read only its host; the path and query of the
    page someone came from can say who they are."""
    if not url:
        return url
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return None
    if not parts.scheme or not parts.netloc:
        return None
    host = parts.netloc.rsplit("@", 1)[-1]  # never credentials in a userinfo part
    return urlunsplit((parts.scheme, host, "", "", ""))


@dataclass(frozen=True)
class Needles:
    """What identifies one person inside free text: email addresses (matched case-insensitively)
    and phone numbers (matched on digits, so '(415) 555-0100' and '+1 415 555 0100' both are)."""

    emails: tuple[str, ...] = ()
    digits: tuple[str, ...] = ()

    def found_in(self, text: str) -> bool:
        lowered = text.lower()
        if any(e in lowered for e in self.emails):
            return True
        if self.digits:
            only = re.sub(r"\D", "", text)
            return any(d in only for d in self.digits)
        return False


def needles(phones: Iterable[str | None] = (), emails: Iterable[str | None] = ()) -> Needles:
    digits: set[str] = set()
    for e164 in phones:
        if not e164 or not e164.startswith("+"):
            continue
        digits.add(e164[1:])
        try:
            national = str(phonenumbers.parse(e164, None).national_number)
        except phonenumbers.NumberParseException:
            continue
        if len(national) >= 6:  # shorter would match too much unrelated text
            digits.add(national)
    return Needles(tuple(sorted(e.lower() for e in emails if e)), tuple(sorted(digits)))


def scrub(value: Any, found: Needles, replace: Mapping[str, str] | None = None) -> Any:
    """A JSON value with every string that contains one of the person's identifiers replaced by
    :data:`ERASED`, and every string equal to a key of ``replace`` replaced by its value (visitor
    ids re-keyed with the rest of the person's rows)."""
    if isinstance(value, str):
        if replace and value in replace:
            return replace[value]
        return ERASED if found.found_in(value) else value
    if isinstance(value, list):
        return [scrub(v, found, replace) for v in value]
    if isinstance(value, dict):
        return {k: scrub(v, found, replace) for k, v in value.items()}
    return value


def scrub_event(payload: Mapping[str, Any], *, drop: Iterable[str], found: Needles = Needles(), replace: Mapping[str, str] | None = None) -> dict[str, Any]:
    """A stored call event without the keys in ``drop`` (also inside its ``extra``); in what
    remains strings naming the person are erased."""
    gone = set(drop)
    kept = {k: v for k, v in payload.items() if k not in gone}
    if isinstance(kept.get("extra"), dict):
        kept["extra"] = {k: v for k, v in kept["extra"].items() if k not in gone}
    return scrub(kept, found, replace)
