"""Markov removal effects: exact, checked against dictionary chains, other solvers and a simulation."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings

from calltrack.attribution import attribute, prepare
from calltrack.attribution import markov

from .helpers import dict_removal_effects, frames, journey_lists, simulate_removal_effects

SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def effects(journeys, order: int = 1, **kw) -> dict[str, float]:
    j = prepare(*frames(journeys))
    re = markov.removal_effects(j, order, **kw).removal_effects
    return dict(zip(j.labels, re, strict=True))


@SETTINGS
@given(journey_lists())
def test_removal_effects_match_a_dictionary_chain_and_lie_in_0_1(journeys) -> None:
    got = effects(journeys)
    assert got == pytest.approx(dict_removal_effects(journeys), abs=1e-9)
    assert all(-1e-12 <= x <= 1 + 1e-12 for x in got.values())


@SETTINGS
@given(journey_lists(max_len=5))
def test_higher_orders_match_a_dictionary_chain(journeys) -> None:
    for order in (2, 3):
        assert effects(journeys, order) == pytest.approx(dict_removal_effects(journeys, order), abs=1e-9)


@SETTINGS
@given(journey_lists())
def test_one_solve_formula_equals_a_reduced_solve_per_channel(journeys) -> None:
    assert effects(journeys) == pytest.approx(effects(journeys, method="reduced"), abs=1e-12)


def test_large_chain_paths_agree_with_dense_ones(monkeypatch) -> None:
    rng = np.random.default_rng(3)
    channels = [f"c{i}" for i in range(9)]
    journeys = [
        (list(rng.choice(channels, rng.integers(1, 6))), bool(rng.random() < 0.3), 1.0) for _ in range(400)
    ]
    dense1, dense2, dense3 = effects(journeys), effects(journeys, 2), effects(journeys, 3)
    monkeypatch.setattr(markov, "DENSE_LIMIT", 0)  # order 1 by sparse LU
    monkeypatch.setattr(markov, "REDUCED_DENSE_LIMIT", 0)  # higher orders by iteration
    assert effects(journeys) == pytest.approx(dense1, abs=1e-12)
    assert effects(journeys, 2) == pytest.approx(dense2, abs=1e-12)
    assert effects(journeys, 3) == pytest.approx(dense3, abs=1e-12)
    monkeypatch.setattr(markov, "MAX_ITERATIONS", 1)  # no convergence: the direct sparse solve
    assert effects(journeys, 2) == pytest.approx(dense2, abs=1e-12)


@SETTINGS
@given(journey_lists(channels=("A", "B", "C")))
def test_a_channel_every_conversion_ends_on_has_effect_one(journeys) -> None:
    ended = [([*p, "K"] if conv else p, conv, v) for p, conv, v in journeys]
    assert effects(ended)["K"] == pytest.approx(1.0, abs=1e-12)


@SETTINGS
@given(journey_lists(channels=("A", "B", "C")))
def test_a_channel_every_journey_starts_with_has_effect_one(journeys) -> None:
    started = [(["K", *p], conv, v) for p, conv, v in journeys]
    assert effects(started)["K"] == pytest.approx(1.0, abs=1e-12)


def test_every_converting_path_through_k_is_not_enough_in_a_chain() -> None:
    # A>K>B→conv and A>B→null: the chain can walk start→A→B→conv without K, so RE(K) < 1. The
    # reference's "RE_k = 1 if every converting path passes through k" holds for paths, not chains.
    got = effects([(["A", "K", "B"], True, 1.0), (["A", "B"], False, 0.0)])
    assert got["K"] == pytest.approx(0.5)
    assert got["A"] == pytest.approx(1.0) and got["B"] == pytest.approx(1.0)


@SETTINGS
@given(journey_lists())
def test_self_loops_do_not_change_removal_effects(journeys) -> None:
    doubled = [([x for ch in p for x in (ch, ch)], conv, v) for p, conv, v in journeys]
    assert effects(doubled) == pytest.approx(effects(journeys), abs=1e-12)


@SETTINGS
@given(journey_lists(channels=("A", "B", "C")))
def test_a_channel_only_at_the_end_of_null_paths_gets_nothing(journeys) -> None:
    # From Z the chain can only reach (null), so removing Z changes nothing.
    with_z = journeys + [(["A", "Z"], False, 0.0), (["B", "Z", "Z"], False, 0.0), (["Z"], False, 0.0)]
    out = attribute(*frames(with_z), "markov")
    assert out.loc["Z", "conversions"] == 0
    assert out.attrs["removal_effects"]["Z"] == 0


def test_a_channel_on_null_paths_only_can_still_earn_in_a_chain() -> None:
    # Z never converts, but Z→A and A converts: the fitted chain walks start→Z→A→conv. The
    # reference's "a channel seen only in null paths gets RE = 0" holds for Z unable to reach
    # a conversion, as above, not in general.
    out = attribute(*frames([(["A"], True, 1.0), (["Z", "A"], False, 0.0)]), "markov")
    assert out.attrs["removal_effects"]["Z"] == pytest.approx(0.5)  # P(conv) 1/2, without Z 1/4
    assert out.loc["Z", "conversions"] > 0


def test_exact_solution_agrees_with_a_simulation() -> None:
    rng = np.random.default_rng(11)
    channels = ["A", "B", "C", "D"]
    journeys = [(list(rng.choice(channels, rng.integers(1, 5))), bool(rng.random() < 0.4), 1.0) for _ in range(60)]
    exact = effects(journeys)
    simulated = simulate_removal_effects(journeys, walkers=40_000, seed=5)
    assert exact == pytest.approx(simulated, abs=0.03)


def test_no_conversions_no_credit() -> None:
    t, c = frames([(["A", "B"], False, 0.0)])
    out = attribute(t, c, "markov")
    assert out["conversions"].tolist() == [0.0, 0.0]
    assert out.attrs["removal_effects"] == {"A": 0.0, "B": 0.0}
