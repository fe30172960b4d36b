"""Invariants of every model over random journeys (hypothesis): conservation, Shapley's axioms,
order and duplication independence, aggregation equivalence, determinism."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from calltrack.attribution import (
    MODELS,
    TOUCH_LEVEL_MODELS,
    attribute,
    attribute_journeys,
    attribute_many,
    check_options,
    from_paths,
    prepare,
    touch_credits,
)
from calltrack.attribution.engine import slot_weights

from .helpers import brute_shapley, frames, journey_lists, set_game

SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
OPTIONS = {"shapley": {"variant": "ordered"}}


@SETTINGS
@given(journey_lists())
def test_conservation_for_every_model(journeys) -> None:
    t, c = frames(journeys)
    n_conv = sum(1 for _, conv, _ in journeys if conv)
    value = sum(v for _, conv, v in journeys if conv)
    for model, out in attribute_many(t, c, MODELS).items():
        assert out["conversions"].sum() == pytest.approx(n_conv, abs=1e-9), model
        assert out["value"].sum() == pytest.approx(value, abs=1e-9), model
        assert (out["conversions"] >= -1e-12).all(), model
        assert out.attrs["unattributed"] == 0
        assert list(out.index) == sorted({ch for p, _, _ in journeys for ch in p}), model


@SETTINGS
@given(journey_lists())
def test_each_journeys_touch_weights_sum_to_one(journeys) -> None:
    t, c = frames(journeys)
    j = prepare(t, c)
    for model in TOUCH_LEVEL_MODELS:
        w = slot_weights(j, model, check_options(model, OPTIONS.get(model, {})))
        sums = np.bincount(j.slot_journey, weights=w, minlength=j.n_journeys)
        np.testing.assert_allclose(sums, 1.0, atol=1e-12, err_msg=model)
        assert (w >= 0).all(), model
    rows = touch_credits(t, c, "w_shaped")
    np.testing.assert_allclose(rows.groupby("conversion_id")["credit"].sum().to_numpy(), 1.0, atol=1e-12)


@SETTINGS
@given(journey_lists(channels=("A", "B", "C", "D")))
def test_shapley_closed_form_equals_brute_force_and_keeps_the_axioms(journeys) -> None:
    t, c = frames(journeys)
    players = sorted({ch for p, _, _ in journeys for ch in p})
    for by_value, column in ((False, "conversions"), (True, "value")):
        v = set_game(journeys, by_value=by_value)
        brute = brute_shapley(players, v)
        got = attribute(t, c, "shapley")[column].to_dict()
        assert got == pytest.approx(brute, abs=1e-9)
        # efficiency
        assert sum(got.values()) == pytest.approx(v(frozenset(players)), abs=1e-9)
    # dummy: a channel seen only on non-converting journeys earns nothing
    seen_converting = {ch for p, conv, _ in journeys if conv for ch in p}
    for ch in set(players) - seen_converting:
        assert got[ch] == 0


@SETTINGS
@given(journey_lists(channels=("A", "B", "C")))
def test_shapley_symmetry(journeys) -> None:
    # X and Y always together: equal credit.
    twinned = [([*p, "X", "Y"] if i % 2 else ["Y", *p, "X"], conv, v) for i, (p, conv, v) in enumerate(journeys)]
    got = attribute(*frames(twinned), "shapley")["conversions"]
    assert got["X"] == pytest.approx(got["Y"], abs=1e-12)


@settings(SETTINGS, max_examples=15)
@given(journey_lists(), st.randoms(use_true_random=False))
def test_row_order_does_not_matter_byte_for_byte(journeys, rnd) -> None:
    t, c = frames(journeys)
    c = c.assign(conversion_id=np.arange(100, 100 + len(c)))
    perm_t = list(range(len(t)))
    perm_c = list(range(len(c)))
    rnd.shuffle(perm_t)
    rnd.shuffle(perm_c)
    t2 = t.iloc[perm_t].reset_index(drop=True)
    c2 = c.iloc[perm_c].reset_index(drop=True)
    a = attribute_many(t, c, MODELS, options=OPTIONS)
    b = attribute_many(t2, c2, MODELS, options=OPTIONS)
    for model in MODELS:
        assert a[model].to_csv() == b[model].to_csv(), model
    for model in ("time_decay", "w_shaped", "shapley"):
        x = touch_credits(t, c, model, **OPTIONS.get(model, {}))
        y = touch_credits(t2, c2, model, **OPTIONS.get(model, {}))
        assert x.to_csv() == y.to_csv(), model


@SETTINGS
@given(journey_lists())
def test_duplicated_journeys_scale_the_credit(journeys) -> None:
    t, c = frames(journeys)
    once = attribute_many(t, c, MODELS)
    twice = attribute_many(*frames(journeys + journeys), MODELS)
    for model in MODELS:
        np.testing.assert_allclose(twice[model].to_numpy(), 2 * once[model].to_numpy(), atol=1e-9, err_msg=model)
    # Markov's chain is the same, so are the removal effects.
    assert twice["markov"].attrs["removal_effects"] == pytest.approx(once["markov"].attrs["removal_effects"], abs=1e-12)


def _aggregate(journeys) -> pd.DataFrame:
    rows: dict[str, list[float]] = {}
    for path, conv, value in journeys:
        r = rows.setdefault(" > ".join(path), [0, 0, 0.0])
        r[0 if conv else 1] += 1
        r[2] += value if conv else 0.0
    return pd.DataFrame([(p, *r) for p, r in rows.items()], columns=["path", "conversions", "nulls", "value"])


@settings(SETTINGS, max_examples=15)
@given(journey_lists())
def test_aggregated_paths_give_the_raw_rows_answer(journeys) -> None:
    t, c = frames(journeys)
    agg = from_paths(_aggregate(journeys))
    for model in ("first_touch", "last_touch", "last_non_direct", "linear", "position_based", "markov", "shapley"):
        raw = attribute(t, c, model)
        paths = attribute_journeys(agg, model)
        np.testing.assert_allclose(paths.to_numpy(), raw.to_numpy(), atol=1e-9, err_msg=model)
        assert list(paths.index) == list(raw.index)


@SETTINGS
@given(journey_lists())
def test_same_input_same_bytes(journeys) -> None:
    t, c = frames(journeys)
    a = attribute_many(t, c, MODELS, options=OPTIONS)
    b = attribute_many(t.copy(), c.copy(), MODELS, options=OPTIONS)
    for model in MODELS:
        assert a[model].to_csv() == b[model].to_csv()
        assert a[model].attrs == b[model].attrs


@SETTINGS
@given(journey_lists(), st.sampled_from(MODELS))
def test_single_touch_everything_agrees(journeys, model) -> None:
    single = [([p[0]], conv, v) for p, conv, v in journeys]
    t, c = frames(single)
    expected = attribute(t, c, "first_touch")["conversions"]
    pd.testing.assert_series_equal(attribute(t, c, model)["conversions"], expected, atol=1e-12, check_exact=False)
