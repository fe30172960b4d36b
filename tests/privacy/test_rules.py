"""The pure part of privacy: retention settings read and checked, URLs cut, personal strings
found in free text (emails by letters, phone numbers by digits), event payloads scrubbed."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from calltrack.privacy.rules import (
    ERASED, InvalidRetention, Needles, Retention, needles, read_days_argument, read_retention, scrub, scrub_event, strip_url, url_origin,
)
from tests.test_layering import _parse, clock_and_random_calls, heavy_imports


def test_the_module_is_pure() -> None:
    tree = _parse("calltrack/privacy/rules.py")
    assert heavy_imports(tree) == [] and clock_and_random_calls(tree) == []
    store = _parse("calltrack/privacy/store.py")
    assert not [m for m in heavy_imports(store) if m.startswith("twisted")]


def test_settings_are_read_and_checked() -> None:
    now = Retention(recordings_days=90)
    assert read_retention({"forms_days": 30}, now) == Retention(90, None, 30)
    assert read_retention({"recordings_days": None}, now) == Retention()
    assert not Retention().active and Retention(callers_days=1).active
    assert Retention(callers_days=2).cutoff("callers", 1_000_000.0) == 1_000_000.0 - 2 * 86400
    assert Retention().cutoff("forms", 5.0) is None
    for bad in ({}, [], None, {"recordings_days": 0}, {"recordings_days": -3}, {"recordings_days": 1.5}, {"recordings_days": True},
                {"recordings_days": "30"}, {"recordings_days": 36501}, {"calls_days": 3}):
        with pytest.raises(InvalidRetention):
            read_retention(bad, now)
    assert read_days_argument("keep", "forms_days") is None and read_days_argument(" 30 ", "forms_days") == 30
    with pytest.raises(InvalidRetention, match="--forms-days"):
        read_days_argument("soon", "forms_days")
    with pytest.raises(InvalidRetention, match="1 to 36500"):
        read_days_argument("0", "forms_days")


def test_urls_lose_what_names_the_visitor() -> None:
    assert strip_url("https://acme.example/quote?email=ann%40example.com&gclid=x#form") == "https://acme.example/quote"
    assert strip_url(None) is None and strip_url("") == ""
    assert url_origin("https://user:pw@www.Search.example:8443/q?name=ann") == "https://www.Search.example:8443"
    assert url_origin("not a url") is None and url_origin(None) is None


def test_people_are_found_in_free_text_by_email_and_by_digits() -> None:
    found = needles(["+14155550100", None, "~pseudonym"], ["Ann@Example.com"])
    for text in ("(415) 555-0100", "tel:+1-415-555-0100", "sip:14155550100@pbx", "mail ANN@example.COM please"):
        assert found.found_in(text), text
    for text in ("+14155550101", "415 555", "ann@example.org", ""):
        assert not found.found_in(text), text
    doc = {"a": ["call (415) 555-0100", {"b": "kept", "c": 3}], "vid": "v-old", "d": None}
    assert scrub(doc, found, {"v-old": "anon_1"}) == {"a": [ERASED, {"b": "kept", "c": 3}], "vid": "anon_1", "d": None}
    event = {"caller_raw": "+14155550100", "called_raw": "+14155550199", "caller_name": "ANN", "recording_url": "https://r", "extra": {"from": "sip:4155550100@x"}}
    assert scrub_event(event, drop=("caller_raw", "caller_name", "recording_url"), found=found) == {"called_raw": "+14155550199", "extra": {"from": ERASED}}


@given(st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=20), lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=5), kids, max_size=4)))
def test_scrubbing_keeps_the_shape_and_is_idempotent(doc: object) -> None:
    found = needles(["+14155550100"], ["ann@example.com"])
    once = scrub(doc, found)
    assert scrub(once, found) == once
    assert scrub(doc, Needles()) == doc
