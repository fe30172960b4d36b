"""Form submissions: validating what a page posts and finding the contact in it. Pure."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from calltrack.phones import InvalidPhoneNumber, to_e164

MAX_FIELDS = 50
MAX_FIELD_NAME = 100
MAX_FIELD_VALUE = 2000
# Never kept, whatever the page sends: secrets and payment data.
_SECRET_NAME = re.compile(
    r"pass|card|cc[-_ ]?(?:num|exp|csc|cvc|name|type)|cvv|cvc|csc|security[-_ ]?code|\bpin\b|otp|ssn|iban|secret|token",
    re.IGNORECASE,
)
_DIGITS = re.compile(r"\D")
_EMAIL = re.compile(r"^[^@\s<>\"']{1,64}@[A-Za-z0-9](?:[A-Za-z0-9\-]{0,62}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9\-]{0,62}[A-Za-z0-9])?)+$")
_EMAIL_NAME = re.compile(r"e-?mail", re.IGNORECASE)
_PHONE_NAME = re.compile(r"phone|tel|mobile|cell", re.IGNORECASE)
_COMPANY_NAME = re.compile(r"company|organi[sz]ation|business|firm", re.IGNORECASE)
_MESSAGE_NAME = re.compile(r"message|comment|question|enquiry|inquiry|details|notes?$", re.IGNORECASE)
_NAME_NAME = re.compile(r"^(?:full[-_ ]?)?name$|^your[-_ ]?name$|^first[-_ ]?name$", re.IGNORECASE)


class InvalidForm(ValueError):
    """The submission is refused; the message names the field."""


@dataclass(frozen=True)
class FormContact:
    fields: dict[str, str]
    email: str | None
    phone: str | None
    name: str | None
    company: str | None = None
    message: str | None = None


def read_form(raw: Any, *, region: str) -> FormContact:
    """Check a ``fields`` object (names to strings) and pick out email, phone and name.

    A submission must carry a way to reach the person (an email or a phone number that
    parses); one without is refused, since it can never become a lead.
    """
    if not isinstance(raw, dict) or not raw:
        raise InvalidForm("'fields' must be a non-empty object of field names to values")
    if len(raw) > MAX_FIELDS:
        raise InvalidForm(f"at most {MAX_FIELDS} fields")
    fields: dict[str, str] = {}
    for name, value in raw.items():
        if not isinstance(name, str) or not name.strip() or len(name) > MAX_FIELD_NAME:
            raise InvalidForm(f"field names must be 1-{MAX_FIELD_NAME} characters")
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise InvalidForm(f"field {name[:40]!r} must be a string")
        if _SECRET_NAME.search(name):
            continue
        text = "".join(ch for ch in str(value) if ch >= " " or ch in "\n\t").strip()
        if _looks_like_card(text):
            continue  # a card number under an innocent name is still a card number
        fields[name.strip()] = text[:MAX_FIELD_VALUE]
    email = phone = person = company = message = None
    for name, value in fields.items():
        if email is None and (_EMAIL_NAME.search(name) or "@" in value) and _EMAIL.match(value):
            email = value.lower()
        elif phone is None and _PHONE_NAME.search(name) and value:
            try:
                phone = to_e164(value, region)
            except InvalidPhoneNumber:
                pass
        elif person is None and _NAME_NAME.search(name) and value:
            person = value[:200]
        elif company is None and _COMPANY_NAME.search(name) and value:
            company = value[:200]
        elif message is None and _MESSAGE_NAME.search(name) and value:
            message = value
    if email is None and phone is None:
        raise InvalidForm("the form has neither a valid email address nor a valid phone number")
    return FormContact(fields, email, phone, person, company, message)


def _looks_like_card(text: str) -> bool:
    """13-19 digits (spaces and dashes allowed) that pass the Luhn check."""
    if not text or any(ch not in "0123456789 -" for ch in text):
        return False
    digits = _DIGITS.sub("", text)
    if not 13 <= len(digits) <= 19:
        return False
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0
