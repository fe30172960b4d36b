"""Phone numbers: parse anything people type into E.164 with `phonenumbers`, and format back."""

from __future__ import annotations

from functools import lru_cache

import phonenumbers
from phonenumbers import PhoneNumberFormat


class InvalidPhoneNumber(ValueError):
    """The text is not a valid phone number for the region."""


def to_e164(text: str, region: str = "US") -> str:
    """Parse ``text`` (national or international, any punctuation) into E.164.

    Raises:
        InvalidPhoneNumber: when it does not parse or is not a valid number.
    """
    try:
        parsed = phonenumbers.parse(text.strip(), None if text.strip().startswith("+") else region)
    except phonenumbers.NumberParseException as e:
        raise InvalidPhoneNumber(f"{text!r} is not a phone number: {e}") from None
    if not phonenumbers.is_valid_number(parsed):
        raise InvalidPhoneNumber(f"{text!r} is not a valid phone number for region {region}")
    return phonenumbers.format_number(parsed, PhoneNumberFormat.E164)


@lru_cache(maxsize=65536)
def format_national(e164: str) -> str:
    """The number as people in its own country write it, e.g. ``(415) 555-0142``."""
    return phonenumbers.format_number(phonenumbers.parse(e164, None), PhoneNumberFormat.NATIONAL)
