"""Journeys: touch rows and conversions turned into ordered channel paths, once, for every model. Pure.

Input frames (column names as in DESIGN.md):

- ``touches``: ``person_id``, ``ts`` and the *level* column (``channel`` by default, or any other
  column such as ``source_medium``, ``campaign``, ``keyword``, ``tracking_number``); optional
  ``touch_id`` (int). Missing level values become ``"(none)"``; level values are reported as
  strings.
- ``conversions``: ``person_id``, ``ts``, ``value`` (NaN → 0); optional ``conversion_id`` (default:
  row position), ``lead_ts`` (default: ``ts``), ``lead_touch_id``, ``opportunity_ts`` (may be
  missing).

Times are UTC: tz-aware or naive (taken as UTC) datetime64 of any unit, or unix seconds (int or
float). Internally every time is int64 nanoseconds, so comparisons are exact.

The journey of a conversion is its person's touches with ``ts − lookback ≤ touch.ts ≤ ts`` in
time order; touches after the conversion are excluded. A person with several conversions has one
journey per conversion, and windows may overlap (every conversion is attributed on its own, as
Google Ads and GA4 do). Touches at the same instant are ordered by ``touch_id``, then by level
value, then by input row: everything but exact duplicates is ordered independently of row order.

A conversion with no touch in its window is *unattributed*: it is left out of every model's
totals and counted in ``Journeys.unattributed`` / ``unattributed_value``.

A non-converting (null) journey is a person with no conversion at all: their touches within the
lookback before their last touch. Markov uses them; the rule-based models and Shapley do not.

Everything is vectorised with numpy: one sort of the touch rows (cheaper paths when the rows
already come in time order or grouped by person), vectorised binary searches for the windows and
no Python loop per journey or per touch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import cached_property

import numpy as np
import pandas as pd

NONE_LABEL = "(none)"
NS_PER_DAY = 86_400 * 10**9
# int64 nanoseconds standing for "no time" (a missing opportunity_ts, a missing lead_touch_id).
MISSING = np.iinfo(np.int64).min
# Unix seconds beyond this are not representable as int64 nanoseconds (year 2262).
_MAX_SECONDS = 9.2e9


class AttributionError(ValueError):
    """Input the attribution engine cannot use; the message names the fault (HTTP answers 400)."""


@dataclass(frozen=True, eq=False)
class Journeys:
    """Converting journeys (one per attributed conversion, or per aggregated converting path) and
    non-converting paths, as flat arrays. Every model works from this; it is built once.

    Converting journeys, in a canonical order (person, time, value, ids), are ``J`` slices of the
    slot arrays: journey ``j`` is slots ``offsets[j]:offsets[j+1]``, in time order. ``count[j]``
    is how many conversions the journey stands for (1 from raw rows; more for aggregated paths or
    bootstrap resamples) and ``value[j]`` their total value. Fields that need raw rows (times,
    touch rows, milestones) are ``None`` for journeys built from aggregated paths.
    """

    level: str
    labels: tuple[str, ...]  # level values, sorted; codes index into it
    lookback_days: float | None
    offsets: np.ndarray  # int64, J + 1
    codes: np.ndarray  # int32, S: the level code of each slot
    count: np.ndarray  # float64, J
    value: np.ndarray  # float64, J
    null_offsets: np.ndarray  # int64, K + 1
    null_codes: np.ndarray  # int32, the non-converting paths' slots
    null_count: np.ndarray | None  # float64, K; None = one person each
    unattributed: int = 0
    unattributed_value: float = 0.0
    # Raw-row details (None for aggregated paths).
    slot_ts: np.ndarray | None = None  # int64 ns, S
    slot_row: np.ndarray | None = None  # int64, S: row position in ``touches``
    slot_touch_id: np.ndarray | None = None  # int64, S (when touches have touch_id)
    conv_row: np.ndarray | None = None  # int64, J: row position in ``conversions``
    conv_ts: np.ndarray | None = None  # int64 ns, J
    lead_ts: np.ndarray | None = None  # int64 ns, J
    opportunity_ts: np.ndarray | None = None  # int64 ns, J (MISSING when unknown)
    lead_touch_id: np.ndarray | None = None  # int64, J (MISSING when unknown)

    @property
    def n_channels(self) -> int:
        return len(self.labels)

    @property
    def n_journeys(self) -> int:
        return len(self.offsets) - 1

    @property
    def n_null(self) -> int:
        return len(self.null_offsets) - 1

    @property
    def has_times(self) -> bool:
        return self.slot_ts is not None

    @cached_property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    @cached_property
    def slot_journey(self) -> np.ndarray:
        """The journey of each slot (int64, S)."""
        return np.repeat(np.arange(self.n_journeys, dtype=np.int64), self.lengths)

    @cached_property
    def slot_pos(self) -> np.ndarray:
        """Each slot's position in its journey, 0-based (int64, S)."""
        return np.arange(len(self.codes), dtype=np.int64) - np.repeat(self.offsets[:-1], self.lengths)

    @property
    def conversions(self) -> float:
        return float(self.count.sum())

    @property
    def total_value(self) -> float:
        return float(self.value.sum())

    def with_counts(self, count: np.ndarray, value: np.ndarray, null_count: np.ndarray | None) -> Journeys:
        """The same paths standing for other numbers of conversions and persons (bootstrap)."""
        return replace(self, count=count, value=value, null_count=null_count)


# --- column handling ---------------------------------------------------------------------------------


def _require(frame: object, name: str, columns: Sequence[str]) -> pd.DataFrame:
    if not isinstance(frame, pd.DataFrame):
        raise AttributionError(f"{name} must be a pandas DataFrame, not {type(frame).__name__}")
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise AttributionError(f"{name} lacks column(s) {', '.join(map(repr, missing))}")
    return frame


def to_ns(col: pd.Series, what: str, *, allow_missing: bool = False) -> np.ndarray:
    """UTC int64 nanoseconds from datetimes (tz-aware, or naive taken as UTC) or unix seconds;
    missing values become MISSING when allowed."""
    dtype = col.dtype
    if isinstance(dtype, pd.DatetimeTZDtype):
        col = col.dt.tz_convert(None)
        dtype = col.dtype
    if dtype.kind == "M":
        try:
            arr = col.to_numpy(dtype="datetime64[ns]")
        except (ValueError, OverflowError) as exc:
            raise AttributionError(f"{what}: {exc}") from None
        missing = np.isnat(arr)
        out = arr.view(np.int64).copy()
    elif dtype.kind in "iuf" and dtype.kind != "b":
        f = col.to_numpy(dtype=np.float64, na_value=np.nan)
        missing = np.isnan(f)
        if np.any(np.abs(f[~missing]) > _MAX_SECONDS):
            raise AttributionError(f"{what} holds unix seconds out of range (or times in another unit)")
        out = np.full(len(f), MISSING, dtype=np.int64)
        # Round to the nanosecond: the same float always maps to the same int.
        out[~missing] = np.rint(f[~missing] * 1e9).astype(np.int64)
    elif dtype == object or isinstance(dtype, pd.StringDtype):
        try:
            parsed = pd.to_datetime(col, utc=True, format="ISO8601")
        except (ValueError, TypeError) as exc:
            raise AttributionError(f"{what} must hold UTC timestamps or unix seconds ({exc})") from None
        return to_ns(parsed, what, allow_missing=allow_missing)
    else:
        raise AttributionError(f"{what} must hold UTC timestamps or unix seconds, not {dtype}")
    if missing.any():
        if not allow_missing:
            raise AttributionError(f"{what} has missing values")
        out[missing] = MISSING
    return out


def _int_column(col: pd.Series, what: str, *, allow_missing: bool = False) -> np.ndarray:
    """Integer ids as int64; missing ones become MISSING when allowed."""
    missing = col.isna().to_numpy()
    if missing.any() and not allow_missing:
        raise AttributionError(f"{what} has missing values")
    if col.dtype.kind in "iu" and not missing.any():
        return col.to_numpy(dtype=np.int64)  # exact, beyond 2**53 too
    f = pd.to_numeric(col, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    bad = np.isnan(f) & ~missing
    ok = f[~missing]
    if bad.any() or np.any(ok != np.round(ok)) or np.any(np.abs(ok) >= 2**53):
        raise AttributionError(f"{what} must hold integers")
    out = np.full(len(f), MISSING, dtype=np.int64)
    out[~missing] = ok.astype(np.int64)
    return out


def _id_kind(s: pd.Series, what: str) -> str:
    if s.dtype.kind in "iuf":
        return "number"
    kind = pd.api.types.infer_dtype(s, skipna=True)
    if kind in ("integer", "floating", "mixed-integer-float", "decimal"):
        return "number"
    if kind == "string":
        return "string"
    raise AttributionError(f"{what} values must be comparable (all numbers or all strings)")


def person_codes(tp: pd.Series, cp: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Dense-ish int64 codes for person ids, shared by touches and conversions and ordered like the
    ids themselves (so that results never depend on which rows came first)."""
    kinds = set()
    for s, what in ((tp, "touches.person_id"), (cp, "conversions.person_id")):
        if s.isna().any():
            raise AttributionError(f"{what} has missing values")
        if len(s):
            kinds.add(_id_kind(s, what))
    if len(kinds) > 1:
        # "123" never equals 123: a silent mismatch would leave every conversion unattributed.
        raise AttributionError("person_id values must be comparable: numbers in both frames or strings in both")
    if tp.dtype.kind in "iu" and cp.dtype.kind in "iu":
        a = tp.to_numpy(dtype=np.int64)
        b = cp.to_numpy(dtype=np.int64)
        both = [x for x in (a, b) if len(x)]
        if not both:
            return a, b
        lo = min(int(x.min()) for x in both)
        hi = max(int(x.max()) for x in both)
        if hi - lo < 2**62:  # ids themselves, shifted to start at 0: no hashing, no sort
            return a - lo, b - lo
    joined = pd.concat([tp.reset_index(drop=True), cp.reset_index(drop=True)], ignore_index=True)
    try:
        codes, _ = pd.factorize(joined, sort=True)
    except TypeError:
        raise AttributionError("person_id values must be comparable (all numbers or all strings)") from None
    codes = codes.astype(np.int64, copy=False)
    return codes[: len(tp)], codes[len(tp) :]


def level_codes(col: pd.Series) -> tuple[np.ndarray, tuple[str, ...]]:
    """int32 codes into the sorted level labels; missing values are "(none)"."""
    if isinstance(col.dtype, pd.CategoricalDtype):
        raw = col.cat.codes.to_numpy().astype(np.int64)
        uniques = col.cat.categories
    else:
        raw, uniques = pd.factorize(col, use_na_sentinel=True)
    names = [str(u) for u in uniques]  # one per distinct value, not per row
    if (raw < 0).any():
        names.append(NONE_LABEL)
        raw = np.where(raw < 0, len(names) - 1, raw)
    labels, inverse = np.unique(np.array(names, dtype=object), return_inverse=True)
    codes = inverse.astype(np.int32)[raw] if len(raw) else np.zeros(0, dtype=np.int32)
    return codes, tuple(str(x) for x in labels)


# --- ordering --------------------------------------------------------------------------------------


def sort_touches(
    person: np.ndarray, ts: np.ndarray, touch_id: np.ndarray | None, code: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Row order by (person, ts, touch_id, level code, row), with person and ts in that order.

    Rows already by person and time cost one check. Otherwise (person, time bucket, row) is packed
    into one int64 and sorted by value (np.sort is SIMD and ~4x faster than an argsort; a lexsort
    of 5M shuffled rows took 3 s); the buckets are as fine as the spare bits allow (seconds for a
    season of data), and the few runs of one person within one bucket are then ordered exactly by
    (ts, touch_id, level, row).
    """
    n = len(person)
    if n == 0:
        return np.zeros(0, dtype=np.int64), person, ts
    dp = np.diff(person)
    if np.all((dp > 0) | ((dp == 0) & (ts[1:] >= ts[:-1]))):
        order, sp, st = np.arange(n, dtype=np.int64), person, ts
        run_key = st
    else:
        row_bits = max(1, int(n - 1).bit_length())
        person_bits = max(1, int(person.max()).bit_length())
        spare = 62 - row_bits - person_bits
        if person.min() < 0 or spare < 8:
            order = np.lexsort((ts, person))
            sp, st = person[order], ts[order]
            run_key = st
        else:
            lo = int(ts.min())
            width = int(ts.max()) - lo + 1
            quantum = max(1, -(-width // (1 << spare)))
            bucket = (ts - lo) // quantum
            key = (person << (spare + row_bits)) | (bucket << row_bits) | np.arange(n, dtype=np.int64)
            del bucket
            key.sort()
            order = key & ((1 << row_bits) - 1)
            key >>= row_bits
            sp = key >> spare
            run_key = key  # (person, bucket): rows sharing it still need ordering by ts
            st = ts[order]
    # Runs of one person sharing a time (or a time bucket): order them by ts, touch_id, level, row.
    # That leaves person as it is and puts ts in order.
    same = (sp[1:] == sp[:-1]) & (run_key[1:] == run_key[:-1])
    if same.any():
        tied = np.zeros(n, dtype=bool)
        tied[1:] |= same
        tied[:-1] |= same
        idx = np.flatnonzero(tied)
        run = np.cumsum(~np.concatenate(([False], same)))[idx]
        rows = order[idx]
        keys = [rows, code[rows]]
        if touch_id is not None:
            keys.append(touch_id[rows])
        keys += [ts[rows], run]
        order[idx] = rows[np.lexsort(keys)]
        if st is ts:
            st = st.copy()
        st[idx] = ts[order[idx]]
    return order, sp, st


def touch_order(person: np.ndarray, ts: np.ndarray, touch_id: np.ndarray | None, code: np.ndarray) -> np.ndarray:
    """Row order by (person, ts, touch_id, level code, row)."""
    return sort_touches(person, ts, touch_id, code)[0]


def _search(values: np.ndarray, lo: np.ndarray, hi: np.ndarray, x: np.ndarray, *, right: bool) -> np.ndarray:
    """Vectorised binary search in the sorted slices values[lo:hi]: the first index whose value is
    ≥ x (or > x when ``right``). One numpy pass per halving, over all slices at once."""
    lo = lo.copy()
    hi = hi.copy()
    active = np.flatnonzero(lo < hi)
    while len(active):
        mid = (lo[active] + hi[active]) // 2
        v = values[mid]
        up = (v <= x[active]) if right else (v < x[active])
        lo[active] = np.where(up, mid + 1, lo[active])
        hi[active] = np.where(up, hi[active], mid)
        active = active[lo[active] < hi[active]]
    return lo


def check_lookback(lookback_days: object) -> float | None:
    if lookback_days is None:
        return None
    if isinstance(lookback_days, bool) or not isinstance(lookback_days, (int, float, np.integer, np.floating)):
        raise AttributionError("lookback_days must be a number of days (or None for no limit)")
    lb = float(lookback_days)
    if not np.isfinite(lb) or lb < 0 or lb > 36_500:
        raise AttributionError("lookback_days must be between 0 and 36500")
    return lb


# --- building --------------------------------------------------------------------------------------


def prepare(
    touches: pd.DataFrame,
    conversions: pd.DataFrame,
    *,
    lookback_days: float | None = 30,
    level: str = "channel",
) -> Journeys:
    """Build the journeys every model works from (see the module docstring for the rules)."""
    if not isinstance(level, str) or not level:
        raise AttributionError("level must be a column name")
    _require(touches, "touches", ("person_id", "ts", level))
    _require(conversions, "conversions", ("person_id", "ts", "value"))
    lookback = check_lookback(lookback_days)

    t_person, c_person = person_codes(touches["person_id"], conversions["person_id"])
    t_ts = to_ns(touches["ts"], "touches.ts")
    t_code, labels = level_codes(touches[level])
    t_id = _int_column(touches["touch_id"], "touches.touch_id") if "touch_id" in touches.columns else None

    c_ts = to_ns(conversions["ts"], "conversions.ts")
    raw_value = conversions["value"]
    numeric = pd.to_numeric(raw_value, errors="coerce")
    if (numeric.isna() & raw_value.notna()).any():
        raise AttributionError("conversions.value must hold numbers")
    value = numeric.to_numpy(dtype=np.float64, na_value=np.nan)
    value = np.where(np.isnan(value), 0.0, value)
    if not np.all(np.isfinite(value)):
        raise AttributionError("conversions.value must be finite")
    lead_ts = to_ns(conversions["lead_ts"], "conversions.lead_ts", allow_missing=True) if "lead_ts" in conversions else c_ts.copy()
    lead_ts = np.where(lead_ts == MISSING, c_ts, lead_ts)
    opp_ts = (
        to_ns(conversions["opportunity_ts"], "conversions.opportunity_ts", allow_missing=True)
        if "opportunity_ts" in conversions
        else np.full(len(conversions), MISSING, dtype=np.int64)
    )
    if "lead_touch_id" in conversions:
        lead_tid = _int_column(conversions["lead_touch_id"], "conversions.lead_touch_id", allow_missing=True)
        if t_id is None and np.any(lead_tid != MISSING):
            raise AttributionError("conversions.lead_touch_id needs a touch_id column in touches")
    else:
        lead_tid = np.full(len(conversions), MISSING, dtype=np.int64)
    if "conversion_id" in conversions:
        cid = conversions["conversion_id"]
        if cid.isna().any():
            raise AttributionError("conversions.conversion_id has missing values")
        try:
            cid_rank, cid_uniques = pd.factorize(cid, sort=True)
        except TypeError:
            raise AttributionError("conversion_id values must be comparable") from None
        if len(cid_uniques) != len(cid):
            raise AttributionError("conversions.conversion_id must be unique")
    else:
        cid_rank = np.arange(len(conversions), dtype=np.int64)

    # Touches in (person, time) order.
    order, sp, st = sort_touches(t_person, t_ts, t_id, t_code)
    sc = t_code[order]
    n = len(sp)
    if n:
        seg_start = np.concatenate(([0], np.flatnonzero(sp[1:] != sp[:-1]) + 1)).astype(np.int64)
    else:
        seg_start = np.zeros(0, dtype=np.int64)
    seg_end = np.append(seg_start[1:], n).astype(np.int64)
    seg_person = sp[seg_start]

    # Conversions in a canonical order, so that floating sums never depend on row order.
    c_order = np.lexsort((cid_rank, lead_tid, opp_ts, lead_ts, value, c_ts, c_person))
    cp = c_person[c_order]
    t_conv = c_ts[c_order]
    if len(seg_person):
        seg = np.searchsorted(seg_person, cp)
        seg_c = np.minimum(seg, len(seg_person) - 1)
        found = seg_person[seg_c] == cp
        lo = np.where(found, seg_start[seg_c], 0).astype(np.int64)
        hi = np.where(found, seg_end[seg_c], 0).astype(np.int64)
    else:
        seg_c = np.zeros(len(cp), dtype=np.int64)
        found = np.zeros(len(cp), dtype=bool)
        lo = np.zeros(len(cp), dtype=np.int64)
        hi = np.zeros(len(cp), dtype=np.int64)
    span = 0 if lookback is None else int(round(lookback * NS_PER_DAY))
    if lookback is not None:
        lo = _search(st, lo, hi, t_conv - span, right=False)
    hi = _search(st, lo, hi, t_conv, right=True)
    lengths = hi - lo
    attributed = lengths > 0

    keep = c_order[attributed]
    lo_k, len_k = lo[attributed], lengths[attributed]
    offsets = np.concatenate(([0], np.cumsum(len_k))).astype(np.int64)
    slot_sorted = np.repeat(lo_k - offsets[:-1], len_k) + np.arange(offsets[-1], dtype=np.int64)

    # Non-converting paths: persons with no conversion, their touches within the lookback before
    # their last touch (a suffix of each person's rows).
    has_conv = np.zeros(len(seg_start), dtype=bool)
    has_conv[seg_c[found]] = True
    seg_len = seg_end - seg_start
    seg_of = np.repeat(np.arange(len(seg_start), dtype=np.int64), seg_len)
    null_mask = ~has_conv[seg_of]
    if lookback is not None and n:
        null_mask &= st >= (st[seg_end - 1] - span)[seg_of]
    null_codes = sc[null_mask]
    null_len = np.bincount(seg_of[null_mask], minlength=len(seg_start))[~has_conv]
    null_offsets = np.concatenate(([0], np.cumsum(null_len))).astype(np.int64)

    return Journeys(
        level=level,
        labels=labels,
        lookback_days=lookback,
        offsets=offsets,
        codes=sc[slot_sorted],
        count=np.ones(len(keep), dtype=np.float64),
        value=value[keep],
        null_offsets=null_offsets,
        null_codes=null_codes,
        null_count=None,
        unattributed=int((~attributed).sum()),
        unattributed_value=float(value[c_order[~attributed]].sum()),
        slot_ts=st[slot_sorted],
        slot_row=order[slot_sorted],
        slot_touch_id=None if t_id is None else t_id[order[slot_sorted]],
        conv_row=keep.astype(np.int64),
        conv_ts=c_ts[keep],
        lead_ts=lead_ts[keep],
        opportunity_ts=opp_ts[keep],
        lead_touch_id=lead_tid[keep],
    )


def _gather(codes: np.ndarray, starts: np.ndarray, length: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The slices ``codes[starts[r]:starts[r]+length[r]]`` for ``rows``, concatenated, with offsets."""
    lens = length[rows]
    offs = np.concatenate(([0], np.cumsum(lens))).astype(np.int64)
    idx = np.repeat(starts[rows] - offs[:-1], lens) + np.arange(offs[-1], dtype=np.int64)
    return offs, codes[idx]


def from_paths(
    paths: pd.DataFrame,
    *,
    path: str = "path",
    conversions: str = "conversions",
    nulls: str = "nulls",
    value: str = "value",
    sep: str = ">",
    level: str = "channel",
) -> Journeys:
    """Journeys from aggregated paths, the ChannelAttribution input shape: one row per path
    (``"A > B > C"`` or a list of level values), how many journeys on it converted, how many did
    not, and the converted journeys' total value (optional). Models that need times or
    milestones (time_decay, w_shaped, lead_creation) cannot run on these."""
    _require(paths, "paths", (path, conversions))
    conv = pd.to_numeric(paths[conversions], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    nul = (
        pd.to_numeric(paths[nulls], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
        if nulls in paths
        else np.zeros(len(paths))
    )
    val = (
        pd.to_numeric(paths[value], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
        if value in paths
        else np.zeros(len(paths))
    )
    for arr, what in ((conv, conversions), (nul, nulls)):
        if np.any(~np.isfinite(arr)) or np.any(arr < 0):
            raise AttributionError(f"paths.{what} must hold counts ≥ 0")
    val = np.where(np.isnan(val), 0.0, val)
    if not np.all(np.isfinite(val)):
        raise AttributionError(f"paths.{value} must be finite")
    raw = paths[path].reset_index(drop=True)
    # "A > B > C" strings are split; lists (or tuples) of level values are taken as they are.
    steps = raw.str.split(sep, regex=False) if pd.api.types.infer_dtype(raw, skipna=False) == "string" else raw
    flat = steps.explode()
    if flat.isna().any():
        raise AttributionError("every path needs at least one step")
    flat = flat.astype(str).str.strip()
    if (flat == "").any():
        raise AttributionError("paths have an empty step")
    row = flat.index.to_numpy(dtype=np.int64)
    codes, labels = level_codes(flat.reset_index(drop=True))
    length = np.bincount(row, minlength=len(raw)).astype(np.int64)
    starts = np.concatenate(([0], np.cumsum(length)[:-1])).astype(np.int64)
    # Canonical row order: by the path itself (then the counts), so that sums never depend on
    # row order. LSD radix over step positions: one stable sort per position, not per path.
    row_order = np.lexsort((val, nul, conv))
    for i in range(int(length.max()) - 1 if len(raw) else -1, -1, -1):
        has = length[row_order] > i
        step = np.full(len(row_order), -1, dtype=np.int64)
        step[has] = codes[starts[row_order[has]] + i]
        row_order = row_order[np.argsort(step, kind="stable")]
    conv_rows = row_order[conv[row_order] > 0]
    null_rows = row_order[nul[row_order] > 0]
    offsets, cc = _gather(codes, starts, length, conv_rows)
    null_offsets, nc = _gather(codes, starts, length, null_rows)
    return Journeys(
        level=level,
        labels=labels,
        lookback_days=None,
        offsets=offsets,
        codes=cc,
        count=conv[conv_rows],
        value=val[conv_rows],
        null_offsets=null_offsets,
        null_codes=nc,
        null_count=nul[null_rows],
    )
