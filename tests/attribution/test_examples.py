"""Every worked example of shared/reference/attribution.md, to the number."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from calltrack.attribution import MODELS, attribute, touch_credits

from .helpers import DAY, T0, brute_shapley, frames, set_game


def credit(touches: pd.DataFrame, conversions: pd.DataFrame, model: str, **options) -> dict[str, float]:
    return attribute(touches, conversions, model, **options)["conversions"].to_dict()


def test_markov_three_journeys_exactly() -> None:
    # C1>C2>C3→conv, C1→null, C2>C3→null: P(conv)=1/3, removing C1 leaves 1/6.
    t, c = frames([(["C1", "C2", "C3"], True, 30.0), (["C1"], False, 0), (["C2", "C3"], False, 0)])
    out = attribute(t, c, "markov")
    np.testing.assert_allclose(out["conversions"].to_numpy(), [0.2, 0.4, 0.4], rtol=0, atol=1e-15)
    np.testing.assert_allclose(out["value"].to_numpy(), [6.0, 12.0, 12.0], rtol=0, atol=1e-13)
    re = out.attrs["removal_effects"]
    assert re == pytest.approx({"C1": 0.5, "C2": 1.0, "C3": 1.0}, abs=1e-15)
    assert sum(re.values()) == pytest.approx(2.5)  # raw removal effects do not sum to 1
    assert out.attrs["conversion_probability"] == pytest.approx(1 / 3, abs=1e-15)


# A>B>C>B with touches 21, 14, 7 and 0 days before the conversion.
@pytest.fixture
def abcb() -> tuple[pd.DataFrame, pd.DataFrame]:
    conv_ts = T0 + 30 * DAY
    touches = pd.DataFrame(
        {"person_id": 1, "ts": [conv_ts - 21 * DAY, conv_ts - 14 * DAY, conv_ts - 7 * DAY, conv_ts], "channel": list("ABCB")}
    )
    return touches, pd.DataFrame({"person_id": [1], "ts": [conv_ts], "value": [200.0]})


@pytest.mark.parametrize(
    ("model", "options", "expected"),
    [
        ("first_touch", {}, {"A": 1.0, "B": 0.0, "C": 0.0}),
        ("last_touch", {}, {"A": 0.0, "B": 1.0, "C": 0.0}),
        ("linear", {}, {"A": 0.25, "B": 0.5, "C": 0.25}),
        ("position_based", {}, {"A": 0.4, "B": 0.5, "C": 0.1}),
        ("position_based", {"first": 0.4, "last": 0.4}, {"A": 0.4, "B": 0.5, "C": 0.1}),
        # weights 1/8, 1/4, 1/2, 1 → A 1/15, B (1/4 + 1)/(15/8) = 2/3, C 4/15
        ("time_decay", {"half_life_days": 7}, {"A": 1 / 15, "B": 2 / 3, "C": 4 / 15}),
    ],
)
def test_heuristics_on_abcb(abcb, model: str, options: dict, expected: dict[str, float]) -> None:
    got = credit(*abcb, model, **options)
    assert got == pytest.approx(expected, abs=1e-12)
    assert round(got["A"], 4) == round(expected["A"], 4)


def test_time_decay_figures_as_printed(abcb) -> None:
    got = credit(*abcb, "time_decay")
    assert {k: round(v, 4) for k, v in got.items()} == {"A": 0.0667, "B": 0.6667, "C": 0.2667}


def test_time_decay_is_relative_to_the_conversion_not_the_last_touch() -> None:
    # Both touches a week apart; the conversion 30 days after the last touch. Measured from the
    # conversion the ratio is still 1:2; what matters is that ages are not shifted per touch.
    t = pd.DataFrame({"person_id": 1, "ts": [T0, T0 + 7 * DAY], "channel": ["A", "B"]})
    c = pd.DataFrame({"person_id": [1], "ts": [T0 + 20 * DAY], "value": [1.0]})
    assert credit(t, c, "time_decay") == pytest.approx({"A": 1 / 3, "B": 2 / 3})
    # A half-life of 1 day: A is 20 days old and B 13 → 2^-7 : 1.
    assert credit(t, c, "time_decay", half_life_days=1)["A"] == pytest.approx(2**-7 / (1 + 2**-7))


@pytest.mark.parametrize(
    ("path", "winner"),
    [(["google_cpc", "direct"], "google_cpc"), (["direct", "direct"], "direct"), (["email", "direct", "google_cpc", "direct"], "google_cpc")],
)
def test_last_non_direct(path: list[str], winner: str) -> None:
    t, c = frames([(path, True, 1.0)])
    got = credit(t, c, "last_non_direct")
    assert got[winner] == 1.0 and sum(got.values()) == 1.0
    # and plain last touch gives it to direct when direct is last
    assert credit(t, c, "last_touch")[path[-1]] == 1.0


def test_last_non_direct_with_another_direct_value() -> None:
    t, c = frames([(["email", "(direct) / (none)"], True, 1.0)])
    assert credit(t, c, "last_non_direct", direct="(direct) / (none)")["email"] == 1.0
    assert credit(t, c, "last_non_direct", direct=["(direct) / (none)", "email"])["(direct) / (none)"] == 1.0


def test_position_based_short_journeys() -> None:
    t, c = frames([(["A"], True, 1.0), (["B", "C"], True, 1.0)])
    assert credit(t, c, "position_based") == pytest.approx({"A": 1.0, "B": 0.5, "C": 0.5})
    assert credit(t, c, "position_based", first=0.6, last=0.2) == pytest.approx({"A": 1.0, "B": 0.7, "C": 0.3})


def test_shapley_counts_example_closed_form_and_brute_force() -> None:
    # R({A}) = 1, R({B}) = 2, R({A,B}) = 5 → φ = (3.5, 4.5), Σ = v({A,B}) = 8.
    journeys = [(["A"], True, 1.0)] + [(["B"], True, 1.0)] * 2 + [(["A", "B"], True, 1.0)] * 3 + [(["B", "A"], True, 1.0)] * 2
    v = set_game(journeys)
    brute = brute_shapley(["A", "B"], v)
    assert brute == pytest.approx({"A": 3.5, "B": 4.5})
    assert sum(brute.values()) == pytest.approx(v(frozenset("AB"))) == 8
    t, c = frames(journeys)
    assert credit(t, c, "shapley") == pytest.approx({"A": 3.5, "B": 4.5}, abs=1e-12)
    assert credit(t, c, "shapley", variant="ordered") == pytest.approx({"A": 3.5, "B": 4.5}, abs=1e-12)


def test_shapley_conversion_rate_game_by_brute_force() -> None:
    # DP6's default v: conversion rate per channel set. v(A)=.1, v(B)=.2, v(AB)=.5 → φ = (0.2, 0.3).
    rates = {frozenset(): 0.0, frozenset("A"): 0.1, frozenset("B"): 0.2, frozenset("AB"): 0.5}
    assert brute_shapley(["A", "B"], rates.__getitem__) == pytest.approx({"A": 0.2, "B": 0.3})


def test_ordered_shapley_splits_a_channel_across_its_occurrences() -> None:
    # A>B>A: the set {A, B} gives each 1/2; A's half is split over its two touches.
    t, c = frames([(["A", "B", "A"], True, 8.0)])
    rows = touch_credits(t, c, "shapley", variant="ordered")
    assert rows["credit"].tolist() == [0.25, 0.5, 0.25]
    assert rows["value"].tolist() == [2.0, 4.0, 2.0]


def test_w_shaped_milestones() -> None:
    # Five touches A B C D E; the lead from touch C (by id), the opportunity after D.
    base = T0
    t = pd.DataFrame({"touch_id": [11, 12, 13, 14, 15], "person_id": 7, "ts": [base + k * DAY for k in range(5)], "channel": list("ABCDE")})
    c = pd.DataFrame(
        {"person_id": [7], "ts": [base + 5 * DAY], "value": [100.0], "lead_touch_id": [13], "opportunity_ts": [base + 3.5 * DAY]}
    )
    # 30 % A, 30 % C, 30 % D, 10 % over B and E.
    assert credit(t, c, "w_shaped") == pytest.approx({"A": 0.3, "B": 0.05, "C": 0.3, "D": 0.3, "E": 0.05})
    assert credit(t, c, "lead_creation") == {"A": 0.0, "B": 0.0, "C": 1.0, "D": 0.0, "E": 0.0}
    # Without lead_touch_id, lead_ts decides: the last touch at or before it.
    c2 = c.drop(columns="lead_touch_id").assign(lead_ts=[base + 1.5 * DAY])
    assert credit(t, c2, "lead_creation")["B"] == 1.0
    # A lead_touch_id outside the journey falls back to lead_ts.
    c3 = c2.assign(lead_touch_id=[999])
    assert credit(t, c3, "lead_creation")["B"] == 1.0
    # No opportunity time: the conversion stands in, so its 30 % goes to the last touch.
    c4 = c.drop(columns="opportunity_ts")
    assert credit(t, c4, "w_shaped") == pytest.approx({"A": 0.3, "B": 0.05, "C": 0.3, "D": 0.05, "E": 0.3})
    # Nothing known about the lead either: lead and opportunity both on the last touch.
    c5 = c.drop(columns=["opportunity_ts", "lead_touch_id"])
    assert credit(t, c5, "w_shaped") == pytest.approx({"A": 0.3, "B": 0.1 / 3, "C": 0.1 / 3, "D": 0.1 / 3, "E": 0.6})
    assert credit(t, c5, "lead_creation")["E"] == 1.0


def test_w_shaped_without_other_touches_spreads_the_rest_over_the_milestones() -> None:
    t, c = frames([(["A", "B"], True, 1.0), (["C"], True, 1.0)])
    # A first, B lead and opportunity: 0.3 + 0.05 and 0.6 + 0.05; C alone gets everything.
    assert credit(t, c, "w_shaped") == pytest.approx({"A": 0.35, "B": 0.65, "C": 1.0})


def test_a_milestone_before_the_window_falls_on_the_first_touch() -> None:
    t, c = frames([(["A", "B", "C"], True, 1.0)])
    c = c.assign(lead_ts=c["ts"] - 100 * DAY)
    assert credit(t, c, "lead_creation")["A"] == 1.0


@pytest.mark.parametrize("model", MODELS)
def test_single_touch_journey_is_the_same_under_every_model(model: str) -> None:
    t, c = frames([(["A"], True, 5.0), (["B"], True, 1.0), (["B"], False, 0), (["C"], False, 0)])
    out = attribute(t, c, model)
    assert out["conversions"].to_dict() == pytest.approx({"A": 1.0, "B": 1.0, "C": 0.0}, abs=1e-12)
    # Markov hands out the total value by removal-effect share (as CA and DP6 do); the others
    # credit each conversion's own value.
    value = {"A": 3.0, "B": 3.0, "C": 0.0} if model == "markov" else {"A": 5.0, "B": 1.0, "C": 0.0}
    assert out["value"].to_dict() == pytest.approx(value, abs=1e-12)
