"""calltrack/phones.py: anything people type -> E.164, and back to the national format."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from calltrack.phones import InvalidPhoneNumber, format_national, to_e164


@pytest.mark.parametrize(
    "text",
    [
        "(415) 555-0142",
        "415.555.0142",
        "415-555-0142",
        "415 555 0142",
        "4155550142",
        "  4155550142  ",
        "1-415-555-0142",
        "1 (415) 555-0142",
        "+1 415 555 0142",
        "+1 (415) 555-0142",
        "+14155550142",
        " +1.415.555.0142 ",
    ],
)
def test_us_national_and_international_forms(text: str) -> None:
    assert to_e164(text) == "+14155550142"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("+44 20 7946 0958", "+442079460958"),
        ("+44 (0)20 7946 0958", "+442079460958"),
        ("+442079460958", "+442079460958"),
        ("+49 30 901820", "+4930901820"),
        ("+33 1 42 68 53 00", "+33142685300"),
        ("+61 2 9374 4000", "+61293744000"),
    ],
)
def test_international_numbers_ignore_the_region(text: str, expected: str) -> None:
    assert to_e164(text) == expected
    assert to_e164(text, region="DE") == expected


def test_national_format_of_another_region() -> None:
    assert to_e164("020 7946 0958", region="GB") == "+442079460958"
    assert to_e164("030 901820", region="DE") == "+4930901820"


def test_a_uk_national_number_is_not_a_us_number() -> None:
    with pytest.raises(InvalidPhoneNumber):
        to_e164("020 7946 0958")  # region defaults to US


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "abc",
        "123",
        "555-0142",  # no area code
        "415-555-014",  # too short
        "415-555-01422",  # too long
        "(000) 000-0000",
        "+1 555",
        "+44 20 7946",
        "+999 1234567",  # no such country code
    ],
)
def test_invalid_numbers_raise(text: str) -> None:
    with pytest.raises(InvalidPhoneNumber) as ei:
        to_e164(text)
    assert repr(text) in str(ei.value)


def test_invalid_phone_number_is_a_value_error() -> None:
    # Callers that catch ValueError (input validation) also catch this.
    assert issubclass(InvalidPhoneNumber, ValueError)


@pytest.mark.parametrize(
    ("e164", "national"),
    [
        ("+14155550142", "(415) 555-0142"),
        ("+12125551234", "(212) 555-1234"),
        ("+442079460958", "020 7946 0958"),
    ],
)
def test_format_national(e164: str, national: str) -> None:
    assert format_national(e164) == national


@settings(max_examples=50, deadline=None)
@given(
    area=st.sampled_from(["212", "415", "312", "617", "206", "303"]),
    exchange=st.integers(min_value=200, max_value=999),
    line=st.integers(min_value=0, max_value=9999),
    style=st.sampled_from(["({a}) {e}-{l}", "{a}.{e}.{l}", "{a}-{e}-{l}", "{a} {e} {l}", "+1 {a} {e} {l}", "1{a}{e}{l}"]),
)
def test_round_trip_us_numbers(area: str, exchange: int, line: int, style: str) -> None:
    text = style.format(a=area, e=f"{exchange:03d}", l=f"{line:04d}")
    try:
        e164 = to_e164(text)
    except InvalidPhoneNumber:
        return  # some exchanges are not assigned; what parses must round-trip
    assert e164 == f"+1{area}{exchange:03d}{line:04d}"
    national = format_national(e164)
    assert national == f"({area}) {exchange:03d}-{line:04d}"
    assert to_e164(national) == e164
