"""Lead flow over time, and alerts when a campaign's flow stalls or drops. Pure pandas.

- ``daily_series``: leads and qualified leads per day (the account's time zone) and channel;
  ``weekly_series`` the same per week.
- ``alerts``: for each level value with enough history (at least MIN_LEADS leads in the
  window), two checks against its *own* past, so a small campaign is not judged by a big one:

  * **stalled** — no lead for longer than STALL_FACTOR × its usual gap (the median time
    between its leads) and at least a day;
  * **drop** — its last 7 days brought less than half its weekly average of the weeks before
    (when that average is at least MIN_WEEKLY).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

MIN_LEADS = 5
STALL_FACTOR = 3.0
MIN_WEEKLY = 3.0
DAY = 86400.0


def daily_series(leads: pd.DataFrame, timezone: str) -> pd.DataFrame:
    """(date, channel) → leads, qualified; dates as YYYY-MM-DD."""
    if leads.empty:
        return pd.DataFrame(columns=["leads", "qualified"], index=pd.MultiIndex.from_tuples([], names=["date", "channel"]))
    # Local midnight per lead, grouped as datetimes; only the distinct days are formatted.
    days = pd.to_datetime(leads["ts"].astype("float64"), unit="s", utc=True).dt.tz_convert(timezone).dt.tz_localize(None).dt.floor("D")
    frame = pd.DataFrame({"date": days.to_numpy(), "channel": leads["channel"].to_numpy(), "leads": 1, "qualified": leads["qualified"].to_numpy(dtype=int)})
    out = frame.groupby(["date", "channel"], observed=True)[["leads", "qualified"]].sum()
    out.index = pd.MultiIndex.from_arrays(
        [out.index.get_level_values(0).strftime("%Y-%m-%d"), out.index.get_level_values(1).astype(str)], names=["date", "channel"]
    )
    return out.sort_index()


def weekly_series(daily: pd.DataFrame) -> pd.DataFrame:
    """The daily series summed by ISO week (weeks start on Monday; labelled by that Monday)."""
    if daily.empty:
        return daily
    days = pd.to_datetime(daily.index.get_level_values("date"))
    monday = (days - pd.to_timedelta(days.day_of_week, unit="D")).strftime("%Y-%m-%d")
    frame = daily.reset_index(drop=True).assign(week=list(monday), channel=list(daily.index.get_level_values("channel")))
    return frame.groupby(["week", "channel"])[["leads", "qualified"]].sum().sort_index()


def alerts(history: pd.DataFrame, *, level: str, as_of: float, timezone: str) -> list[dict[str, Any]]:
    """Alerts for the level values of ``history`` (leads with ``ts`` and the level column),
    judged at ``as_of``; most overdue first."""
    out: list[dict[str, Any]] = []
    if history.empty:
        return out
    frame = history[[level, "ts"]]  # two columns, not every column of every lead, are filtered
    frame = frame[frame["ts"] < as_of]
    window_start = float(frame["ts"].min()) if len(frame) else as_of
    for value, group in frame.groupby(level, sort=True, observed=True):
        times = np.sort(group["ts"].astype("float64").to_numpy())
        if len(times) < MIN_LEADS:
            continue
        usual = float(np.median(np.diff(times)))
        since_last = as_of - times[-1]
        if since_last > max(STALL_FACTOR * usual, DAY):
            out.append({
                "kind": "stalled", "level": level, "value": str(value), "last_lead_at": float(times[-1]),
                "hours_since_last_lead": round(since_last / 3600, 1), "usual_gap_hours": round(usual / 3600, 1),
                "message": f"no lead from {value} for {since_last / DAY:.1f} days; it usually brings one every {usual / 3600:.1f} h",
                "severity": since_last / max(usual, 1.0),
            })
            continue
        weeks_before = (as_of - 7 * DAY - max(window_start, times[0])) / (7 * DAY)
        if weeks_before < 2:
            continue
        recent = int((times >= as_of - 7 * DAY).sum())
        baseline = float((times < as_of - 7 * DAY).sum()) / weeks_before
        if baseline >= MIN_WEEKLY and recent < 0.5 * baseline:
            out.append({
                "kind": "drop", "level": level, "value": str(value), "last_7_days": recent, "weekly_baseline": round(baseline, 1),
                "change": round(recent / baseline - 1, 3),
                "message": f"{value}: {recent} leads in the last 7 days against {baseline:.1f} a week before",
                "severity": baseline / max(recent, 0.5),
            })
    out.sort(key=lambda a: (-a["severity"], a["value"]))
    for a in out:
        a["severity"] = round(a["severity"], 2)
    return out
