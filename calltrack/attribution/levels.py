"""The levels touches, calls, leads and costs are grouped at, named the same everywhere. Pure.

Attribution and the reports group by ``channel``, ``source_medium``, ``source``, ``medium``,
``campaign``, ``keyword``, ``landing_page`` or ``tracking_number``. Rows come from touchpoints
(utm tags, a referrer), calls and leads (the source snapshot of their match) and cost files;
``add_levels`` gives each the same columns, so that "google / cpc" in the cost file and in the
leads is one row of a report: source and medium lower-cased, a visit without tags named by its
referrer's host (or ``(direct)``), its medium by its channel, a landing page without its
query string, and anything unknown ``(none)``.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import numpy as np
import pandas as pd

LEVELS = ("channel", "source_medium", "source", "medium", "campaign", "keyword", "landing_page", "tracking_number")
NONE = "(none)"
DIRECT = "(direct)"


_HOST = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://([^/?#:]+)")


def _host(referrer: object) -> str | None:
    m = _HOST.match(referrer) if isinstance(referrer, str) else None
    host = m.group(1).lower() if m else ""
    host = host.removeprefix("www.")
    return host or None


def _clean(value: object, lower: bool) -> str | None:
    if not isinstance(value, str):
        return None
    text = value.strip()
    return (text.lower() if lower else text) or None


def _page(url: object) -> str | None:
    if not isinstance(url, str) or not url.strip():
        return None
    return url.strip().split("#", 1)[0].split("?", 1)[0]


def _mapped(values: pd.Series | None, n: int, fn: Callable[[object], str | None]) -> tuple[np.ndarray, list[str | None]]:
    """(codes, names): ``fn`` runs once per distinct value, not once per row (a year of touches
    is millions of rows over a few hundred sources and campaigns). Code -1 is missing."""
    if values is None:
        return np.full(n, -1, dtype=np.int64), []
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    names = [fn(u) for u in uniques]
    if not names:
        return np.full(n, -1, dtype=np.int64), []
    lookup = np.array([-1 if v is None else i for i, v in enumerate(names)], dtype=np.int64)
    return np.where(codes >= 0, lookup[np.maximum(codes, 0)], -1), names


def _categorical(codes: np.ndarray, names: list[str | None]) -> pd.Categorical:
    """Codes into ``names`` (-1: unknown) as a categorical of the distinct names in use (sorted),
    ``(none)`` for the unknown. Linear in rows: only the short list of names is sorted."""
    labels = [NONE if v is None else v for v in names] + [NONE]
    idx = np.where(codes >= 0, codes, len(names)) if len(names) else np.zeros(len(codes), dtype=np.int64)
    used = np.bincount(idx, minlength=len(labels)) > 0 if len(idx) else np.zeros(len(labels), dtype=bool)
    categories = sorted({labels[i] for i in np.flatnonzero(used)})
    position = {name: i for i, name in enumerate(categories)}
    remap = np.array([position.get(name, -1) for name in labels], dtype=np.int64)
    return pd.Categorical.from_codes(remap[idx], categories=pd.Index(categories, dtype=object))


# What each level is made from (add_levels computes only what the asked levels need).
NEEDS = {
    "channel": {"channel"}, "source": {"source", "channel"}, "medium": {"medium", "channel"},
    "source_medium": {"source", "medium", "channel"}, "campaign": {"campaign"}, "keyword": {"keyword"},
    "landing_page": {"landing_page"}, "tracking_number": {"tracking_number"},
}


def add_levels(
    frame: pd.DataFrame, *, referrer: str | None = "referrer", url: str | None = "url", lower: bool = True,
    levels: tuple[str, ...] | frozenset[str] | set[str] = LEVELS,
) -> pd.DataFrame:
    """Adds (or normalises) the ``levels`` columns of ``frame`` (every level by default), which
    has ``channel``, ``source``, ``medium``, ``campaign``, ``keyword`` (missing ones count as
    unknown) and optionally the ``referrer``, ``url`` and ``tracking_number`` columns named. The
    level columns come back as categoricals (grouping them is then a matter of integer codes);
    a level's parts are computed only when some asked level needs them."""
    out = frame.copy(deep=False)  # new columns only: the caller's frame is left as it was
    n = len(out)
    want = set().union(*(NEEDS[level] for level in levels)) if levels else set()
    col = lambda name: out[name] if name and name in out.columns else None  # noqa: E731
    ch_codes, ch_names = _mapped(col("channel"), n, lambda v: _clean(v, False)) if want & {"channel"} else (None, [])
    if "source" in want:
        src_codes, names = _mapped(col("source"), n, lambda v: _clean(v, lower))
        names = list(names)
        # Untagged visits: the referrer's host names the source, else (direct) when the
        # channel is direct or unknown. Only the untagged rows' referrers are read.
        if referrer and referrer in out.columns:
            untagged_rows = np.flatnonzero(src_codes < 0)
            ref_codes, ref_names = _mapped(out[referrer].iloc[untagged_rows], len(untagged_rows), _host)
            src_codes[untagged_rows] = np.where(ref_codes >= 0, ref_codes + len(names), -1)
            names += ref_names
        direct_channel = np.array([v == "direct" for v in ch_names] + [True], dtype=bool)
        untagged = (src_codes < 0) & direct_channel[np.where(ch_codes >= 0, ch_codes, len(ch_names))]
        src_codes = np.where(untagged, len(names), src_codes)
        names.append(DIRECT)
        out["source"] = _categorical(src_codes, names)
    if "medium" in want:
        med_codes, med_names = _mapped(col("medium"), n, lambda v: _clean(v, lower))
        med_codes = np.where((med_codes < 0) & (ch_codes >= 0), ch_codes + len(med_names), med_codes)
        out["medium"] = _categorical(med_codes, list(med_names) + list(ch_names))
    if "channel" in want:
        out["channel"] = _categorical(ch_codes, ch_names)
    for name, fn in (("campaign", lambda v: _clean(v, False)), ("keyword", lambda v: _clean(v, False)), ("tracking_number", lambda v: _clean(v, False))):
        if name in want:
            out[name] = _categorical(*_mapped(col(name), n, fn))
    if "landing_page" in want:
        out["landing_page"] = _categorical(*_mapped(col(url) if url else None, n, _page))
    if "source_medium" in levels:
        # Only the distinct (source, medium) pairs are formatted.
        source, medium = out["source"].cat, out["medium"].cat
        width = len(medium.categories) + 1
        pair_codes, pair_uniques = pd.factorize(source.codes.astype(np.int64) * width + medium.codes.astype(np.int64))
        labels = [f"{source.categories[u // width]} / {medium.categories[u % width]}" for u in pair_uniques]
        out["source_medium"] = _categorical(pair_codes.astype(np.int64), labels)
    return out


def check_level(level: str) -> str:
    if level not in LEVELS:
        raise ValueError(f"level must be one of {', '.join(LEVELS)}")
    return level

