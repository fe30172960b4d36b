"""Rule-based models as per-touch weights: every converting journey's weights sum to 1. Pure.

Each function takes the prepared ``Journeys`` and returns one weight per slot (float64, S), so
channel credit is one ``np.bincount`` and touch-level exports reuse the same numbers.

- ``first_touch`` / ``last_touch``: 1 to the first / last touch in the window (direct included).
- ``last_non_direct``: 1 to the last touch whose level value is not direct; an all-direct
  journey credits its last (direct) touch, as GA4 does.
- ``linear``: 1/n per touch, so a channel touched k times gets k/n (ChannelAttribution's split).
- ``time_decay``: 2^(−Δt/half_life) with Δt measured back from the *conversion* time,
  normalised per journey.
- ``position_based``: ``first`` and ``last`` (0.4 each) to the ends and the rest evenly over the
  middle; n=1 gives 1 and n=2 gives first + rest/2 and last + rest/2 (0.5/0.5, as DP6 does).
- ``w_shaped``: ``first``, ``lead`` and ``opportunity`` (0.3 each) to the first touch, the
  lead-creation touch and the opportunity touch; coinciding milestones add up; the rest (0.1)
  goes evenly to the other touches, or evenly to the distinct milestone touches when there is no
  other touch.
- ``lead_creation``: 1 to the lead-creation touch (what call trackers report).

Milestone touches (decisions):

- lead creation: the touch whose ``touch_id`` is the conversion's ``lead_touch_id`` when it is in
  the journey; else the last touch at or before ``lead_ts`` (``lead_ts`` defaults to the
  conversion time, making it the last touch);
- opportunity: the last touch at or before ``opportunity_ts``. Without an ``opportunity_ts`` the
  conversion time stands in (the latest moment the opportunity can have existed), so its share
  goes to the last touch, the same default as ``lead_ts``;
- a milestone earlier than every touch in the window falls on the first touch.
"""

from __future__ import annotations

import numpy as np

from calltrack.attribution.journeys import MISSING, NS_PER_DAY, AttributionError, Journeys


def _per_journey_sum(j: Journeys, w: np.ndarray) -> np.ndarray:
    return np.bincount(j.slot_journey, weights=w, minlength=j.n_journeys)


def first_touch(j: Journeys) -> np.ndarray:
    return (j.slot_pos == 0).astype(np.float64)


def last_touch(j: Journeys) -> np.ndarray:
    return (j.slot_pos == j.lengths[j.slot_journey] - 1).astype(np.float64)


def last_non_direct(j: Journeys, direct: tuple[str, ...]) -> np.ndarray:
    direct_codes = [i for i, label in enumerate(j.labels) if label in direct]
    non_direct = ~np.isin(j.codes, direct_codes)
    if j.n_journeys == 0:
        return np.zeros(0)
    # Per journey, the last non-direct position (−1 when there is none: all direct → last touch).
    best = np.maximum.reduceat(np.where(non_direct, j.slot_pos, -1), j.offsets[:-1])
    best = np.where(best < 0, j.lengths - 1, best)
    return (j.slot_pos == best[j.slot_journey]).astype(np.float64)


def linear(j: Journeys) -> np.ndarray:
    return 1.0 / j.lengths[j.slot_journey]


def time_decay(j: Journeys, half_life_days: float) -> np.ndarray:
    _need_times(j, "time_decay")
    age_days = (j.conv_ts[j.slot_journey] - j.slot_ts) / NS_PER_DAY
    # Relative to each journey's most recent touch, so nothing underflows to 0/0; the
    # normalisation removes the common factor.
    newest = age_days[j.offsets[1:] - 1] if j.n_journeys else np.zeros(0)
    w = np.exp2(-(age_days - newest[j.slot_journey]) / half_life_days)
    return w / _per_journey_sum(j, w)[j.slot_journey]


def position_based(j: Journeys, first: float, last: float) -> np.ndarray:
    n = j.lengths[j.slot_journey]
    pos = j.slot_pos
    middle = 1.0 - first - last
    w = np.where(pos == 0, first, 0.0) + np.where(pos == n - 1, last, 0.0)
    w = np.where((pos > 0) & (pos < n - 1), middle / np.maximum(n - 2, 1), w)
    w = np.where(n == 2, w + middle / 2, w)
    return np.where(n == 1, 1.0, w)


def _last_at_or_before(j: Journeys, when: np.ndarray) -> np.ndarray:
    """Per journey, the position of the last touch at or before ``when`` (first touch if none)."""
    count = np.bincount(j.slot_journey, weights=(j.slot_ts <= when[j.slot_journey]), minlength=j.n_journeys)
    return np.maximum(count.astype(np.int64) - 1, 0)


def lead_position(j: Journeys) -> np.ndarray:
    """Per journey, the position of the lead-creation touch."""
    _need_times(j, "lead-creation milestones")
    pos = _last_at_or_before(j, j.lead_ts)
    if j.slot_touch_id is not None and j.n_journeys:
        wanted = j.lead_touch_id[j.slot_journey]
        match = (j.slot_touch_id == wanted) & (wanted != MISSING)
        by_id = np.maximum.reduceat(np.where(match, j.slot_pos, -1), j.offsets[:-1])
        pos = np.where(by_id >= 0, by_id, pos)
    return pos


def opportunity_position(j: Journeys) -> np.ndarray:
    _need_times(j, "opportunity milestones")
    when = np.where(j.opportunity_ts == MISSING, j.conv_ts, j.opportunity_ts)
    return _last_at_or_before(j, when)


def w_shaped(j: Journeys, first: float, lead: float, opportunity: float) -> np.ndarray:
    pos = j.slot_pos
    at_first = pos == 0
    at_lead = pos == lead_position(j)[j.slot_journey]
    at_opp = pos == opportunity_position(j)[j.slot_journey]
    w = first * at_first + lead * at_lead + opportunity * at_opp
    rest = 1.0 - first - lead - opportunity
    milestone = at_first | at_lead | at_opp
    others = np.bincount(j.slot_journey, weights=~milestone, minlength=j.n_journeys)[j.slot_journey]
    distinct = np.bincount(j.slot_journey, weights=milestone, minlength=j.n_journeys)[j.slot_journey]
    spread = np.where(others > 0, np.where(milestone, 0.0, 1.0) / np.maximum(others, 1), np.where(milestone, 1.0, 0.0) / distinct)
    return w + rest * spread


def lead_creation(j: Journeys) -> np.ndarray:
    return (j.slot_pos == lead_position(j)[j.slot_journey]).astype(np.float64)


def _need_times(j: Journeys, what: str) -> None:
    if not j.has_times:
        raise AttributionError(f"{what} need touch and conversion times; aggregated paths have none")
