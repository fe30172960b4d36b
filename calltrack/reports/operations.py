"""The operations report: how fast leads are answered (per owner and per channel), missed
calls nobody called back, why leads were lost or marked spam, and how each source's leads
turn out month by month (the quality of bought leads). Pure pandas.

Speed to lead counts the leads that are not spam: ``answered_on_time`` within the account's
target, ``past_limit`` still unanswered (or answered later than the limit) once the limit has
passed. Times are seconds.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

QUALIFIED = ("mql", "sql", "customer")


def _seconds(v: float) -> float | None:
    return None if v is None or not np.isfinite(v) else round(float(v), 1)


def speed(leads: pd.DataFrame, by: str, *, target: float, limit: float, now: float) -> list[dict[str, Any]]:
    """Per value of ``by`` (owner, channel): leads, answered, median and 90th percentile seconds
    to the first response, answered on time, past the limit."""
    frame = leads[leads["stage"] != "spam"].copy()
    if frame.empty:
        return []
    frame[by] = frame[by].astype(object).where(frame[by].notna(), "(none)")
    wait = frame["first_response_at"] - frame["created_at"]
    frame["wait"] = wait.clip(lower=0)
    frame["on_time"] = frame["wait"] <= target
    unanswered_too_long = frame["first_response_at"].isna() & (now - frame["created_at"] > limit) & ~frame["stage"].isin(["lost"])
    frame["past_limit"] = (frame["wait"] > limit) | unanswered_too_long
    out = []
    for value, g in frame.groupby(by, sort=True):
        answered = g["wait"].dropna()
        out.append({
            by: str(value), "leads": len(g), "answered": int(len(answered)),
            "median_seconds": _seconds(answered.median()) if len(answered) else None,
            "p90_seconds": _seconds(answered.quantile(0.9)) if len(answered) else None,
            "answered_on_time": int(g["on_time"].sum()), "past_limit": int(g["past_limit"].sum()),
            "on_time_share": round(float(g["on_time"].sum()) / len(g), 4),
        })
    return sorted(out, key=lambda r: (-r["past_limit"], -r["leads"], r[by]))


def ranked_reasons(leads: pd.DataFrame, column: str) -> list[dict[str, Any]]:
    reasons = leads[column].dropna()
    reasons = reasons[reasons.astype(str).str.strip() != ""]
    counts = reasons.astype(str).value_counts()
    total = int(counts.sum())
    return [{"reason": r, "leads": int(n), "share": round(n / total, 4)} for r, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))]


def source_quality(leads: pd.DataFrame, timezone: str) -> list[dict[str, Any]]:
    """Per source and month: leads, and the shares that qualified, became customers, were spam."""
    if leads.empty:
        return []
    frame = leads.copy()
    frame["source"] = frame["source"].astype(object).where(frame["source"].notna(), "(none)").astype(str).str.lower()
    frame["month"] = pd.to_datetime(frame["created_at"], unit="s", utc=True).dt.tz_convert(timezone).dt.strftime("%Y-%m")
    frame["qualified"] = frame["stage"].isin(QUALIFIED)
    frame["customer"] = frame["stage"] == "customer"
    frame["spam"] = frame["stage"] == "spam"
    g = frame.groupby(["source", "month"]).agg(leads=("stage", "size"), qualified=("qualified", "sum"), customers=("customer", "sum"), spam=("spam", "sum"))
    return [
        {"source": s, "month": m, "leads": int(r["leads"]), "qualified_share": round(r["qualified"] / r["leads"], 4),
         "customer_share": round(r["customers"] / r["leads"], 4), "spam_share": round(r["spam"] / r["leads"], 4)}
        for (s, m), r in g.iterrows()
    ]


def missed_not_called_back(missed: pd.DataFrame, *, now: float, limit: int = 100) -> dict[str, Any]:
    waiting = missed[missed["called_back"] == 0].sort_values("ts")
    return {
        "missed": int(len(missed)), "not_called_back": int(len(waiting)),
        "calls": [
            {"call_id": int(r.call_id), "at": float(r.ts), "caller": r.caller, "channel": r.channel, "source": r.source,
             "lead_id": None if pd.isna(r.lead_id) else int(r.lead_id), "hours_waiting": round((now - r.ts) / 3600, 1)}
            for r in waiting.head(limit).itertuples()
        ],
    }
