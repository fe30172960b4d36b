"""Journey building: windows, ties, time types, levels, unattributed conversions, bad input."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from calltrack.attribution import MODELS, AttributionError, attribute, from_paths, prepare, touch_credits
from calltrack.attribution.journeys import touch_order

from .helpers import DAY, T0, frames

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def test_lookback_window_is_inclusive_and_later_touches_are_excluded() -> None:
    conv = T0 + 40 * DAY
    t = pd.DataFrame(
        {
            "person_id": 1,
            "ts": [conv - 30 * DAY - 1, conv - 30 * DAY, conv - DAY, conv, conv + 1],
            "channel": ["too_old", "edge", "mid", "same_instant", "after"],
        }
    )
    c = pd.DataFrame({"person_id": [1], "ts": [conv], "value": [4.0]})
    out = attribute(t, c, "linear")
    assert out["conversions"].to_dict() == {"after": 0.0, "edge": 1 / 3, "mid": 1 / 3, "same_instant": 1 / 3, "too_old": 0.0}
    assert attribute(t, c, "linear", lookback_days=1)["conversions"].to_dict()["edge"] == 0.0
    assert attribute(t, c, "first_touch", lookback_days=None)["conversions"]["too_old"] == 1.0


def test_each_conversion_has_its_own_window() -> None:
    # Two conversions of one person: the first sees A, the second A and B (windows overlap).
    t = pd.DataFrame({"person_id": 1, "ts": [T0, T0 + 2 * DAY], "channel": ["A", "B"]})
    c = pd.DataFrame({"person_id": [1, 1], "ts": [T0 + DAY, T0 + 3 * DAY], "value": [10.0, 20.0]})
    out = attribute(t, c, "linear")
    assert out["conversions"].to_dict() == {"A": 1.5, "B": 0.5}
    assert out["value"].to_dict() == {"A": 20.0, "B": 10.0}
    rows = touch_credits(t, c, "linear")
    assert rows[["conversion_id", "channel", "credit"]].values.tolist() == [[0, "A", 1.0], [1, "A", 0.5], [1, "B", 0.5]]


def test_conversions_without_touches_are_counted_apart() -> None:
    t, c = frames([(["A"], True, 5.0)])
    extra = pd.DataFrame({"person_id": [999, 1], "ts": [T0, T0 - 100 * DAY], "value": [7.0, np.nan]})
    out = attribute(t, pd.concat([c, extra], ignore_index=True), "last_touch")
    assert out["conversions"].sum() == 1 and out["value"].sum() == 5
    assert (out.attrs["unattributed"], out.attrs["unattributed_value"]) == (2, 7.0)
    assert (out.attrs["conversions"], out.attrs["value"]) == (1.0, 5.0)


def test_non_converting_journeys_use_the_lookback_before_their_last_touch() -> None:
    t = pd.DataFrame({"person_id": [1, 2, 2], "ts": [T0, T0, T0 + 40 * DAY], "channel": ["A", "old", "B"]})
    c = pd.DataFrame({"person_id": [1], "ts": [T0 + 1], "value": [1.0]})
    j = prepare(t, c)
    assert [j.labels[k] for k in j.null_codes] == ["B"]
    assert j.null_offsets.tolist() == [0, 1]
    # A converting person's touches after the conversion make no null path.
    t2 = pd.concat([t, pd.DataFrame({"person_id": [1], "ts": [T0 + 5 * DAY], "channel": ["C"]})], ignore_index=True)
    assert prepare(t2, c).n_null == 1


def test_ties_are_broken_by_touch_id_then_level_then_row() -> None:
    t = pd.DataFrame({"touch_id": [2, 1], "person_id": 1, "ts": [T0, T0], "channel": ["A", "B"]})
    c = pd.DataFrame({"person_id": [1], "ts": [T0], "value": [1.0]})
    assert attribute(t, c, "first_touch")["conversions"]["B"] == 1.0
    no_ids = t.drop(columns="touch_id")
    assert attribute(no_ids, c, "first_touch")["conversions"]["A"] == 1.0
    assert attribute(no_ids.iloc[::-1], c, "first_touch")["conversions"]["A"] == 1.0


@SETTINGS
@given(
    st.lists(st.tuples(st.integers(0, 4), st.integers(0, 3), st.integers(0, 2), st.integers(0, 3)), min_size=0, max_size=40),
    st.booleans(),
    st.sampled_from([1, 2**58]),
)
def test_touch_order_is_a_lexicographic_sort(rows, with_ids, scale) -> None:
    person = np.array([r[0] for r in rows], dtype=np.int64)
    # A huge scale spreads times so widely that the packed sort's time buckets get coarse and
    # the exact order within a bucket has to be restored afterwards.
    ts = np.array([r[1] for r in rows], dtype=np.int64) * scale + np.array([r[3] for r in rows], dtype=np.int64)
    code = np.array([r[2] for r in rows], dtype=np.int32)
    tid = np.array([r[3] for r in rows], dtype=np.int64) if with_ids else None
    keys = [np.arange(len(rows)), code] + ([tid] if with_ids else []) + [ts, person]
    assert touch_order(person, ts, tid, code).tolist() == np.lexsort(keys).tolist()
    # rows already in time order take the packed-sort path: same answer
    by_time = np.argsort(ts, kind="stable")
    p2, t2, c2 = person[by_time], ts[by_time], code[by_time]
    i2 = tid[by_time] if with_ids else None
    keys2 = [np.arange(len(rows)), c2] + ([i2] if with_ids else []) + [t2, p2]
    assert touch_order(p2, t2, i2, c2).tolist() == np.lexsort(keys2).tolist()


def test_time_types_give_the_same_answer() -> None:
    t, c = frames([(["A", "B", "C"], True, 3.0), (["B"], True, 1.0), (["C", "A"], False, 0.0)], gap=DAY)
    expected = attribute(t, c, "time_decay").to_csv()
    as_dt = lambda s: pd.to_datetime(s, unit="s", utc=True)  # noqa: E731
    for tt, cc in [
        (t.assign(ts=as_dt(t["ts"])), c.assign(ts=as_dt(c["ts"]))),
        (t.assign(ts=as_dt(t["ts"]).dt.tz_convert("America/New_York")), c.assign(ts=as_dt(c["ts"]))),
        (t.assign(ts=as_dt(t["ts"]).dt.tz_localize(None).astype("datetime64[s]")), c.assign(ts=as_dt(c["ts"]))),
        (t.assign(ts=as_dt(t["ts"]).dt.strftime("%Y-%m-%dT%H:%M:%SZ")), c),
        (t.assign(ts=t["ts"].astype("int64")), c),
    ]:
        assert attribute(tt, cc, "time_decay").to_csv() == expected


def test_any_level_column_and_missing_values() -> None:
    t = pd.DataFrame({"person_id": [1, 1, 2], "ts": [T0, T0 + 1, T0], "campaign": ["spring", None, np.nan], "channel": "x"})
    c = pd.DataFrame({"person_id": [1, 2], "ts": [T0 + 2, T0 + 1], "value": [1.0, 1.0]})
    out = attribute(t, c, "linear", level="campaign")
    assert out.index.name == "campaign"
    assert out["conversions"].to_dict() == {"(none)": 1.5, "spring": 0.5}
    cat = t.assign(campaign=pd.Categorical(t["campaign"], categories=["unused", "spring"]))
    out2 = attribute(cat, c, "linear", level="campaign")
    assert out2["conversions"].to_dict() == {"(none)": 1.5, "spring": 0.5, "unused": 0.0}
    nums = t.assign(campaign=[10, 2, 10])
    assert list(attribute(nums, c, "linear", level="campaign").index) == ["10", "2"]


def test_string_person_ids() -> None:
    t, c = frames([(["A", "B"], True, 1.0), (["B"], False, 0.0)])
    ids = {1: "zed", 2: "amy"}
    t2 = t.assign(person_id=t["person_id"].map(ids))
    c2 = c.assign(person_id=c["person_id"].map(ids))
    for m in MODELS:
        assert attribute(t2, c2, m).to_csv() == attribute(t, c, m).to_csv()


def test_touch_credits_frame() -> None:
    t, c = frames([(["A", "B"], True, 10.0), (["C"], True, 2.0)])
    c = c.assign(conversion_id=["x2", "x1"])
    rows = touch_credits(t, c, "position_based")
    assert list(rows.columns) == ["conversion_id", "person_id", "touch_id", "ts", "channel", "position", "credit", "value"]
    assert rows["conversion_id"].tolist() == ["x1", "x2", "x2"]
    assert rows["touch_id"].tolist() == [3, 1, 2]
    assert rows["credit"].tolist() == [1.0, 0.5, 0.5]
    assert rows["value"].tolist() == [2.0, 5.0, 5.0]
    assert str(rows["ts"].dt.tz) == "UTC"
    assert rows["ts"].iloc[0] == pd.Timestamp(t["ts"].iloc[2], unit="s", tz="UTC")


@pytest.mark.parametrize(
    ("model", "options", "fault"),
    [("markov", {}, "channels, not touches"), ("shapley", {}, "variant='ordered'")],
)
def test_touch_credits_refuses_channel_level_models(model, options, fault) -> None:
    t, c = frames([(["A"], True, 1.0)])
    with pytest.raises(ValueError, match=fault):
        touch_credits(t, c, model, **options)


def _bad(**changes):
    t, c = frames([(["A", "B"], True, 1.0)])
    return t, c


@pytest.mark.parametrize(
    ("make", "model", "kwargs", "fault"),
    [
        (lambda t, c: (t.drop(columns="channel"), c), "linear", {}, "touches lacks column(s) 'channel'"),
        (lambda t, c: (t, c.drop(columns="value")), "linear", {}, "conversions lacks column(s) 'value'"),
        (lambda t, c: (t, c), "linear", {"level": "keyword"}, "'keyword'"),
        (lambda t, c: (t, c), "u_shaped", {}, "unknown model 'u_shaped'"),
        (lambda t, c: (t, c), "time_decay", {"half_life_days": 0}, "half_life_days must be > 0"),
        (lambda t, c: (t, c), "time_decay", {"half_life_days": "soon"}, "half_life_days must be a number"),
        (lambda t, c: (t, c), "time_decay", {"halflife": 3}, "no option 'halflife'"),
        (lambda t, c: (t, c), "linear", {"first": 0.3}, "linear has no option 'first' (takes no options)"),
        (lambda t, c: (t, c), "position_based", {"first": 0.7, "last": 0.5}, "must not exceed 1"),
        (lambda t, c: (t, c), "position_based", {"first": -0.1}, "between 0 and 1"),
        (lambda t, c: (t, c), "w_shaped", {"lead": 2}, "between 0 and 1"),
        (lambda t, c: (t, c), "markov", {"order": 0}, "order must be an integer"),
        (lambda t, c: (t, c), "markov", {"order": 1.5}, "order must be an integer"),
        (lambda t, c: (t, c), "shapley", {"variant": "fancy"}, "variant must be one of"),
        (lambda t, c: (t, c), "last_non_direct", {"direct": []}, "direct must be"),
        (lambda t, c: (t, c), "linear", {"lookback_days": -1}, "lookback_days"),
        (lambda t, c: (t, c), "linear", {"lookback_days": "30"}, "lookback_days"),
        (lambda t, c: (t.assign(ts=np.nan), c), "linear", {}, "touches.ts has missing values"),
        (lambda t, c: (t.assign(ts="yesterday"), c), "linear", {}, "touches.ts must hold"),
        (lambda t, c: (t.assign(ts=t["ts"] * 1e3), c), "linear", {}, "out of range"),
        (lambda t, c: (t.assign(person_id=[1, None]), c), "linear", {}, "touches.person_id has missing values"),
        (lambda t, c: (t, c.assign(person_id="x")), "linear", {}, "comparable"),
        (lambda t, c: (t, c.assign(value="lots")), "linear", {}, "value must hold numbers"),
        (lambda t, c: (t, c.assign(value=np.inf)), "linear", {}, "value must be finite"),
        (lambda t, c: (t.assign(touch_id=[1.5, 2]), c), "linear", {}, "touch_id must hold integers"),
        (lambda t, c: (t.drop(columns="touch_id"), c.assign(lead_touch_id=[1])), "w_shaped", {}, "needs a touch_id column"),
        (lambda t, c: (t, pd.concat([c, c]).assign(conversion_id=[1, 1])), "linear", {}, "conversion_id must be unique"),
        (lambda t, c: ([1, 2], c), "linear", {}, "touches must be a pandas DataFrame"),
    ],
)
def test_bad_input_names_the_fault(make, model, kwargs, fault) -> None:
    t, c = make(*frames([(["A", "B"], True, 1.0)]))
    with pytest.raises(AttributionError, match=fault.replace("(", r"\(").replace(")", r"\)")):
        attribute(t, c, model, **kwargs)
    assert issubclass(AttributionError, ValueError)


def test_numeric_options_may_arrive_as_text() -> None:
    t, c = frames([(["A", "B"], True, 1.0)], gap=DAY)
    assert attribute(t, c, "time_decay", half_life_days="7").to_csv() == attribute(t, c, "time_decay").to_csv()
    assert attribute(t, c, "markov", order="2").attrs["options"] == {"order": 2}


def test_aggregated_paths_input() -> None:
    paths = pd.DataFrame({"path": ["C1 > C2 > C3", "C1", "C2>C3"], "conversions": [1, 0, 0], "nulls": [0, 1, 1], "value": [30.0, 0, 0]})
    out = attribute_paths(paths, "markov")
    assert out["conversions"].tolist() == pytest.approx([0.2, 0.4, 0.4])
    as_lists = paths.assign(path=[["C1", "C2", "C3"], ["C1"], ["C2", "C3"]])
    assert attribute_paths(as_lists, "markov").to_csv() == out.to_csv()
    with pytest.raises(AttributionError, match="need touch and conversion times"):
        attribute_paths(paths, "time_decay")
    with pytest.raises(AttributionError, match="empty step"):
        from_paths(paths.assign(path=["A > > B", "A", "B"]))
    with pytest.raises(AttributionError, match="counts"):
        from_paths(paths.assign(nulls=[-1, 0, 0]))


def attribute_paths(paths: pd.DataFrame, model: str) -> pd.DataFrame:
    from calltrack.attribution import attribute_journeys

    return attribute_journeys(from_paths(paths), model)


@settings(SETTINGS, max_examples=30)
@given(
    st.lists(st.tuples(st.integers(1, 3), st.integers(-50, 10), st.sampled_from("ABC")), min_size=1, max_size=25),
    st.lists(st.tuples(st.integers(1, 3), st.integers(0, 40)), min_size=1, max_size=4),
    st.sampled_from([1, 7, 30, None]),
)
def test_windows_hold_exactly_the_touches_they_should(touch_rows, conv_rows, lookback) -> None:
    # Touches at whole days (some after the conversions), several conversions per person.
    t = pd.DataFrame(
        {"touch_id": range(len(touch_rows)), "person_id": [p for p, _, _ in touch_rows], "ts": [T0 + d * DAY for _, d, _ in touch_rows], "channel": [ch for _, _, ch in touch_rows]}
    )
    c = pd.DataFrame({"conversion_id": range(len(conv_rows)), "person_id": [p for p, _ in conv_rows], "ts": [T0 + d * DAY for _, d in conv_rows], "value": 1.0})
    got = touch_credits(t, c, "linear", lookback_days=lookback)
    want = sorted(
        (k, i)
        for k, (cp, cd) in enumerate(conv_rows)
        for i, (tp, td, _) in enumerate(touch_rows)
        if tp == cp and td <= cd and (lookback is None or td >= cd - lookback)
    )
    assert sorted(zip(got["conversion_id"], got["touch_id"], strict=True)) == want
    out = attribute(t, c, "linear", lookback_days=lookback)
    attributed = len({k for k, _ in want})
    assert out["conversions"].sum() == pytest.approx(attributed)
    assert out.attrs["unattributed"] == len(conv_rows) - attributed
    # non-converting journeys: persons without conversions, lookback before their last touch
    j = prepare(t, c, lookback_days=lookback)
    converting = {p for p, _ in conv_rows}
    expected_null = 0
    for p in sorted({p for p, _, _ in touch_rows} - converting):
        days = [d for tp, d, _ in touch_rows if tp == p]
        expected_null += sum(1 for d in days if lookback is None or d >= max(days) - lookback)
    assert len(j.null_codes) == expected_null


def test_empty_inputs() -> None:
    t, c = frames([(["A"], True, 1.0)])
    none = attribute(t.iloc[:0], c, "markov")
    assert len(none) == 0 and none.attrs["unattributed"] == 1
    out = attribute(t, c.iloc[:0], "shapley")
    assert out["conversions"].tolist() == [0.0]
    assert attribute(t, c.iloc[:0], "markov")["conversions"].tolist() == [0.0]
