"""The matching decision, as a pure function: every method and its confidence."""

from __future__ import annotations

from calltrack.numbers.matching import EXPIRED_CONFIDENCE_MAX, EXPIRED_CONFIDENCE_MIN, LeaseSpan, PriorMatch, match_call


def span(i: int, vid: str, start: float, until: float, *, open_: bool = False) -> LeaseSpan:
    return LeaseSpan(i, vid, 100 + i, start, until, open_)


def test_static_numbers_carry_their_source() -> None:
    m = match_call(call_at=10, number_kind="static", static_source={"placement": "radio"})
    assert (m.method, m.confidence, m.source) == ("static", 1.0, {"placement": "radio"})


def test_the_holding_lease_wins_and_others_are_listed() -> None:
    spans = [span(1, "a", 0, 900), span(2, "b", 1000, 5000, open_=True)]
    m = match_call(call_at=1200, number_kind="pool", pool_cooldown=60, spans=spans)
    assert (m.method, m.vid, m.lease_id, m.touchpoint_id) == ("lease", "b", 2, 102)
    assert [o["vid"] for o in m.explain["others"]] == ["a"]


def test_expired_lease_confidence_falls_over_the_cooldown() -> None:
    spans = [span(1, "a", 0, 1000)]
    near = match_call(call_at=1001, number_kind="pool", pool_cooldown=600, spans=spans)
    far = match_call(call_at=1599, number_kind="pool", pool_cooldown=600, spans=spans)
    after = match_call(call_at=1601, number_kind="pool", pool_cooldown=600, spans=spans)
    assert near.method == far.method == "expired_lease"
    assert EXPIRED_CONFIDENCE_MAX >= near.confidence > far.confidence >= EXPIRED_CONFIDENCE_MIN
    assert after.method == "unmatched" and after.explain["others"][0]["vid"] == "a"


def test_repeat_caller_beats_the_current_holder() -> None:
    prior = PriorMatch(7, 0, "lease", 0.95, 1, "a", 101)
    m = match_call(call_at=90000, number_kind="pool", pool_cooldown=60, spans=[span(2, "b", 89000, 91000)], prior=prior)
    assert (m.method, m.vid, m.confidence, m.explain["prior_call_id"]) == ("repeat_caller", "a", 0.95, 7)
    assert [o["vid"] for o in m.explain["others"]] == ["b"]


def test_overflow_and_unknown_numbers() -> None:
    m = match_call(call_at=1, number_kind="overflow", overflow_channel="paid_search", overflow_pool_id=3)
    assert (m.method, m.source, m.vid) == ("overflow", {"channel": "paid_search"}, None)
    assert match_call(call_at=1, number_kind=None).method == "unmatched"
    assert match_call(call_at=1, number_kind="pool", spans=[]).method == "unmatched"
