"""Qualification rules: parsing names the fault; scoring is deterministic and monotone."""

from __future__ import annotations

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from calltrack.scoring.rules import DEFAULT_RULES, FACT_COLUMNS, InvalidRules, needed_facts, parse_rules, score

MONDAY_10AM_NY = 1767571200.0 + 15 * 3600  # 2026-01-05 15:00Z = 10:00 on a Monday in New York


def facts(**overrides) -> pd.DataFrame:
    row = {
        "answered": False, "duration": 0, "first_time_caller": False, "created_at": MONDAY_10AM_NY, "pricing_page": False,
        "pages_viewed": 0, "touchpoints": 0, "kind": "call", "channel": "direct", "source": None, "medium": None,
        "campaign": None, "tracking_number": None, "form_type": None,
        "has_phone": False, "has_email": False, "has_name": False, "has_company": False, "has_message": False,
    }
    row.update(overrides)
    return pd.DataFrame([row], index=[1])


def one(rules, **overrides):
    return score(facts(**overrides), parse_rules(rules), timezone="America/New_York").iloc[0]


def test_default_rules_score_a_long_first_call_in_hours_as_an_mql() -> None:
    r = one(DEFAULT_RULES, answered=True, duration=95, first_time_caller=True, touchpoints=3)
    assert (r.score, r.temperature, bool(r.mql)) == (60 + 20 + 10 + 3, "hot", False)
    r = one(DEFAULT_RULES, answered=True, duration=95, first_time_caller=True, touchpoints=3, pricing_page=True)
    assert (r.score, bool(r.mql)) == (113, True)
    assert one(DEFAULT_RULES, answered=True, duration=30, created_at=MONDAY_10AM_NY + 10 * 3600).temperature == "cold"


def test_forms_fields_and_flags() -> None:
    rules = {
        "rules": [
            {"name": "estimate with phone", "when": {"form_type": ["Estimate"], "fields_present": ["phone"]}, "points": 50},
            {"name": "enterprise", "when": {"campaign": "enterprise"}, "flag": "enterprise"},
            {"name": "weekend", "when": {"business_hours": False}, "flag": "after-hours"},
        ]
    }
    r = one(rules, kind="form", form_type="estimate", has_phone=True, has_email=True, campaign="Enterprise")
    assert (r["score"], r["flags"]) == (50, "enterprise")
    r = one(rules, kind="form", form_type="estimate", has_email=True, created_at=MONDAY_10AM_NY - 2 * 86400)
    assert (r["score"], r["flags"]) == (0, "after-hours")


@pytest.mark.parametrize(
    ("doc", "fault"),
    [
        ([], "JSON object"), ({"rules": []}, "1-200"), ({"rules": [{"when": {"colour": 1}, "points": 1}]}, "not a condition"),
        ({"rules": [{"when": {"answered": "yes"}, "points": 1}]}, "true or false"), ({"rules": [{"when": {}}]}, "neither points"),
        ({"rules": [{"points": 1}], "thresholds": {"warm": 90, "hot": 80}}, "warm"),
        ({"rules": [{"points": 1}], "business_hours": {"start": "18:00", "end": "09:00"}}, "before end"),
        ({"rules": [{"points": 1, "per": "page"}]}, "touchpoint"), ({"rules": [{"points": 1}], "extra": 1}, "unknown key"),
        ({"rules": [{"when": {"fields_present": ["fax"]}, "points": 1}]}, "fields_present takes"),
    ],
)
def test_bad_rules_name_their_fault(doc, fault) -> None:
    with pytest.raises(InvalidRules, match=fault):
        parse_rules(doc)


fact_rows = st.fixed_dictionaries({
    "answered": st.booleans(), "duration": st.integers(0, 3600), "first_time_caller": st.booleans(),
    "created_at": st.floats(1.7e9, 1.9e9), "pricing_page": st.booleans(), "pages_viewed": st.integers(0, 50),
    "touchpoints": st.integers(0, 50), "kind": st.sampled_from(["call", "form", "callback"]),
    "channel": st.sampled_from(["direct", "paid_search", "email"]), "source": st.none(), "medium": st.none(),
    "campaign": st.sampled_from([None, "enterprise"]), "tracking_number": st.none(), "form_type": st.sampled_from([None, "estimate"]),
    "has_phone": st.booleans(), "has_email": st.booleans(), "has_name": st.booleans(), "has_company": st.booleans(),
    "has_message": st.booleans(),
})


@settings(max_examples=100, deadline=None)
@given(st.lists(fact_rows, min_size=1, max_size=30), st.integers(-50, 150), st.integers(0, 100))
def test_scoring_is_deterministic_and_thresholds_monotone(rows, warm, spread) -> None:
    frame = pd.DataFrame(rows, index=range(1, len(rows) + 1))
    doc = dict(DEFAULT_RULES, thresholds={"warm": warm, "hot": warm + spread, "mql": warm + spread})
    first = score(frame, parse_rules(doc), timezone="Europe/Berlin")
    assert first.equals(score(frame.copy(), parse_rules(doc), timezone="Europe/Berlin"))
    order = {"cold": 0, "warm": 1, "hot": 2}
    ranked = first.sort_values("score")
    temps = [order[t] for t in ranked["temperature"]]
    assert temps == sorted(temps)  # a higher score is never a colder lead
    assert (first["mql"] == (first["score"] >= warm + spread)).all()


conditions = st.fixed_dictionaries({}, optional={
    "answered": st.booleans(), "first_time_caller": st.booleans(), "business_hours": st.booleans(), "pricing_page": st.booleans(),
    "min_duration": st.integers(0, 400), "min_pages": st.integers(0, 5), "min_touchpoints": st.integers(0, 5),
    "kind": st.sampled_from(["call", "form"]), "channel": st.just(["direct", "email"]), "campaign": st.just("enterprise"),
    "form_type": st.just("estimate"), "source": st.just("google"), "medium": st.just("cpc"), "tracking_number": st.just("+14155550100"),
    "fields_present": st.lists(st.sampled_from(["phone", "email", "name", "company", "message"]), min_size=1, max_size=3),
})
rule_items = st.fixed_dictionaries(
    {"when": conditions, "points": st.integers(1, 50)}, optional={"per": st.just("touchpoint"), "flag": st.sampled_from(["a", "b"])}
)


@settings(max_examples=100, deadline=None)
@given(st.lists(fact_rows, min_size=1, max_size=20), st.lists(rule_items, min_size=1, max_size=6))
def test_the_facts_rules_need_are_all_they_read(rows, items) -> None:
    frame = pd.DataFrame(rows, index=range(1, len(rows) + 1))
    rules = parse_rules({"rules": items})
    needed = needed_facts(rules)
    assert needed <= set(FACT_COLUMNS)
    only_needed = score(frame[sorted(needed)], rules, timezone="Europe/Berlin")  # a fact not named would raise KeyError
    assert only_needed.equals(score(frame, rules, timezone="Europe/Berlin"))


def test_the_default_rules_need_eight_facts() -> None:
    assert needed_facts(parse_rules(DEFAULT_RULES)) == {
        "answered", "duration", "first_time_caller", "kind", "created_at", "pricing_page", "has_phone", "touchpoints"}
