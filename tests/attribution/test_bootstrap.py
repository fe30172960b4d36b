"""Bootstrap intervals: seeded and deterministic, sane, and a replicate equals the model re-run on
the resampled journeys."""

from __future__ import annotations

import numpy as np
import pytest

from calltrack.attribution import AttributionError, attribute, bootstrap, prepare
from calltrack.attribution import resampling as bootstrap_module
from calltrack.attribution import markov
from calltrack.attribution.engine import channel_credit, check_options

from .helpers import frames

RNG = np.random.default_rng(21)
JOURNEYS = [
    (list(RNG.choice(["A", "B", "C", "direct"], RNG.integers(1, 5))), bool(RNG.random() < 0.35), float(RNG.integers(1, 50)))
    for _ in range(150)
]


@pytest.mark.parametrize("model", ["markov", "shapley", "linear", "w_shaped"])
def test_seeded_deterministic_and_sane(model: str) -> None:
    t, c = frames(JOURNEYS)
    a = bootstrap(t, c, model, n=60, seed=3)
    assert a.to_csv() == bootstrap(t, c, model, n=60, seed=3).to_csv()
    assert a.to_csv() != bootstrap(t, c, model, n=60, seed=4).to_csv()
    assert list(a.columns) == ["conversions", "low", "high"]
    pd_point = attribute(t, c, model)["conversions"]
    assert a["conversions"].to_list() == pytest.approx(pd_point.to_list())
    assert (a["low"] <= a["high"]).all()
    # a 95 % interval of a few dozen conversions is neither empty nor absurd
    assert ((a["low"] <= a["conversions"] + 1e-9) & (a["conversions"] <= a["high"] + 1e-9)).mean() >= 0.75
    assert (a["high"] - a["low"]).max() > 0
    narrow = bootstrap(t, c, model, n=60, seed=3, ci=0.5)
    assert ((narrow["high"] - narrow["low"]) <= (a["high"] - a["low"]) + 1e-12).all()


def test_a_markov_replicate_is_the_model_on_the_resampled_journeys() -> None:
    j = prepare(*frames(JOURNEYS))
    ch = markov.chain(j)
    transitions = bootstrap_module.path_transitions(j, ch)
    rng = np.random.default_rng(0)
    for _ in range(5):
        counts = rng.multinomial(j.n_journeys + j.n_null, np.full(j.n_journeys + j.n_null, 1 / (j.n_journeys + j.n_null))).astype(float)
        cell_counts = transitions.counts(counts)
        used = cell_counts > 0
        fast = markov._removal_effects(ch, transitions.frm[used], transitions.to[used], cell_counts[used])
        resampled = j.with_counts(counts[: j.n_journeys], j.value, counts[j.n_journeys :])
        slow = markov.removal_effects(resampled)
        np.testing.assert_allclose(fast.removal_effects, slow.removal_effects, atol=1e-12)


def test_a_rule_replicate_is_the_model_on_the_resampled_journeys() -> None:
    j = prepare(*frames(JOURNEYS))
    opts = check_options("position_based")
    matrix = bootstrap_module._journey_credit_matrix(j, "position_based", opts)
    counts = np.random.default_rng(1).integers(0, 3, j.n_journeys).astype(float)
    slow, _, _ = channel_credit(j.with_counts(counts, j.value, None), "position_based", opts)
    np.testing.assert_allclose(matrix.T @ counts, slow, atol=1e-12)


@pytest.mark.parametrize(("kwargs", "fault"), [({"n": 1}, "n must be"), ({"ci": 1.5}, "ci must be"), ({"seed": -1}, "seed must be"), ({"seed": 1.5}, "seed must be")])
def test_bad_bootstrap_arguments(kwargs, fault) -> None:
    t, c = frames(JOURNEYS[:5])
    with pytest.raises(AttributionError, match=fault):
        bootstrap(t, c, "markov", **kwargs)


def test_aggregated_paths_resample_like_the_journeys_they_stand_for() -> None:
    # Same distribution, different draws: compare wide intervals loosely.
    import pandas as pd

    from calltrack.attribution import bootstrap_journeys, from_paths

    rows: dict[str, list[float]] = {}
    for path, conv, value in JOURNEYS:
        r = rows.setdefault(" > ".join(path), [0, 0, 0.0])
        r[0 if conv else 1] += 1
        r[2] += value if conv else 0.0
    agg = from_paths(pd.DataFrame([(p, *r) for p, r in rows.items()], columns=["path", "conversions", "nulls", "value"]))
    raw = bootstrap(*frames(JOURNEYS), "markov", n=300, seed=1)
    paths = bootstrap_journeys(agg, "markov", n=300, seed=1)
    np.testing.assert_allclose(paths["conversions"], raw["conversions"], atol=1e-9)
    np.testing.assert_allclose(paths["high"] - paths["low"], raw["high"] - raw["low"], rtol=0.35)


def test_no_conversions() -> None:
    t, c = frames([(["A"], False, 0.0)])
    out = bootstrap(t, c, "markov", n=10)
    assert out.to_numpy().tolist() == [[0.0, 0.0, 0.0]]
