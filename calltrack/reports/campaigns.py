"""The campaign report: per channel, source/medium, campaign, keyword, landing page or tracking
number, what the traffic became and what it cost. Pure pandas.

Rows are the level's values; the leads counted are the ones *created* in the period (a cohort:
"of the leads this campaign brought in March, how many qualified", counted with what has
happened to them since). Calls and forms are those of the period. Formulas (domain reference):

- lead rate = leads ÷ clicks when the cost file gives clicks, else leads ÷ visits;
- CPL = cost ÷ leads; cost per qualified lead = cost ÷ qualified; CPA = cost ÷ customers;
- ROI = (revenue × margin − cost) ÷ cost, revenue being the value of the customers won;
- stage rates: qualified ÷ leads, SQL ÷ qualified, customers ÷ SQL, and customers ÷ leads.

A rate or a cost per something with nothing to divide by is empty (NaN → null), never 0 or ∞.
Rows rank by qualified leads, then customers, then leads — not by traffic.

Cost is imported spend plus what bought leads cost under their pricing model (per click: each
visit of the source; per lead; per action: each lead that reached the model's stage). Spend is
known per source/medium/campaign/keyword: at the landing page and tracking number levels it
cannot be split, so it shows only in the totals.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from calltrack.reports.costs import PricingModel

COST_LEVELS = ("channel", "source_medium", "source", "medium", "campaign", "keyword")
COUNTS = (
    "visits", "clicks", "impressions", "calls", "unique_callers", "first_time_callers", "answered", "missed", "forms",
    "leads", "qualified", "sql", "customers",
)
MONEY = ("cost", "revenue")
RATES = ("lead_rate", "qualified_rate", "sql_rate", "customer_rate", "lead_customer_rate", "cpl", "cost_per_qualified", "cpa", "roi")


def _ratio(num: pd.Series | float, den: pd.Series | float) -> pd.Series | float:
    if isinstance(den, pd.Series):
        return (num / den.where(den > 0)).astype("float64")
    return float(num) / den if den else float("nan")


def with_rates(frame: pd.DataFrame, *, margin: float = 1.0) -> pd.DataFrame:
    """The rates and costs per outcome, from the counts and money columns."""
    f = frame.copy()
    base = f["clicks"].where(f["clicks"] > 0, f["visits"])
    f["lead_rate"] = _ratio(f["leads"], base)
    f["qualified_rate"] = _ratio(f["qualified"], f["leads"])
    f["sql_rate"] = _ratio(f["sql"], f["qualified"])
    f["customer_rate"] = _ratio(f["customers"], f["sql"])
    f["lead_customer_rate"] = _ratio(f["customers"], f["leads"])
    cost = f["cost"].where(f["cost"] > 0)
    f["cpl"] = _ratio(cost, f["leads"])
    f["cost_per_qualified"] = _ratio(cost, f["qualified"])
    f["cpa"] = _ratio(cost, f["customers"])
    f["roi"] = ((f["revenue"] * margin - f["cost"]) / cost).astype("float64")
    return f


def _pricing_for(rows: pd.DataFrame, pricing: Sequence[PricingModel], models: tuple[str, ...]) -> list[tuple[PricingModel, pd.Series]]:
    """(model, mask of rows it prices): the most specific price (campaign, then medium, then the
    source alone) wins for a row."""
    out = []
    taken = pd.Series(False, index=rows.index)
    ordered = sorted((p for p in pricing if p.model in models), key=lambda p: (not p.campaign, not p.medium, p.source, p.medium, p.campaign))
    for p in ordered:
        mask = (rows["source"] == p.source) & ~taken
        if p.medium:
            mask &= rows["medium"] == p.medium
        if p.campaign:
            mask &= rows["campaign"] == p.campaign
        taken |= mask
        out.append((p, mask))
    return out


def bought_cost(touches: pd.DataFrame, leads: pd.DataFrame, pricing: Sequence[PricingModel]) -> tuple[pd.Series, pd.Series]:
    """What bought traffic cost, per touch (per click) and per lead (per lead, per action)."""
    per_touch = pd.Series(0.0, index=touches.index)
    per_lead = pd.Series(0.0, index=leads.index)
    for p, mask in _pricing_for(touches, pricing, ("per_click",)):
        per_touch[mask] += p.price
    stage_column = {"mql": "qualified", "sql": "sql", "customer": "customers"}
    for p, mask in _pricing_for(leads, pricing, ("per_lead", "per_action")):
        if p.model == "per_action" and p.stage is not None:
            mask = mask & leads[stage_column[p.stage]].astype(bool)
        per_lead[mask] += p.price
    return per_touch, per_lead


def campaign_report(
    level: str,
    *,
    touches: pd.DataFrame,
    calls: pd.DataFrame,
    forms: pd.DataFrame,
    leads: pd.DataFrame,
    costs: pd.DataFrame,
    pricing: Sequence[PricingModel] = (),
    attributed: Mapping[str, pd.Series] | None = None,
    margin: float = 1.0,
) -> pd.DataFrame:
    """One row per value of ``level``. Inputs carry the level's column (attribution.levels):

    - ``touches``: one row per visit;
    - ``calls``: ``caller`` (None when withheld), ``first_time``, ``answered`` (spam left out);
    - ``forms``: one row per submission;
    - ``leads``: created in the period, not spam: ``qualified``, ``sql``, ``customers`` (0/1:
      reached MQL or beyond, SQL or beyond, customer), ``value``;
    - ``costs``: ``clicks``, ``impressions``, ``cost`` (only used at the cost levels);
    - ``attributed``: per model, the attributed conversions by level value.
    """
    parts: list[pd.Series | pd.DataFrame] = []
    per_touch, per_lead = bought_cost(touches, leads, pricing)
    by = lambda f: f.groupby(level, observed=True, sort=False)  # noqa: E731 - categorical levels: codes, not strings
    parts.append(by(touches).size().rename("visits"))
    parts.append(by(calls).agg(
        calls=("answered", "size"), unique_callers=("caller", "nunique"), first_time_callers=("first_time", "sum"), answered=("answered", "sum"),
    ))
    parts.append(by(forms).size().rename("forms"))
    parts.append(by(leads).agg(
        leads=("qualified", "size"), qualified=("qualified", "sum"), sql=("sql", "sum"), customers=("customers", "sum"),
    ))
    revenue = leads["value"].fillna(0.0).where(leads["customers"].astype(bool), 0.0)
    parts.append(revenue.groupby(leads[level], observed=True).sum().rename("revenue"))
    bought = pd.concat([per_touch.groupby(touches[level], observed=True).sum(), per_lead.groupby(leads[level], observed=True).sum()])
    bought.index = bought.index.astype(object)
    parts.append(bought.groupby(level=0).sum().rename("bought"))
    if level in COST_LEVELS:
        parts.append(by(costs)[["clicks", "impressions", "cost"]].sum())
    for part in parts:
        part.index = part.index.astype(object)  # categoricals of different frames: plain labels to align
    frame = pd.concat(parts, axis=1)
    for col in (*COUNTS, *MONEY, "bought"):
        if col not in frame.columns:
            frame[col] = 0
    frame = frame.fillna({c: 0 for c in (*COUNTS, *MONEY, "bought")})
    frame["missed"] = frame["calls"] - frame["answered"]
    frame["cost"] = (frame["cost"].astype("float64") + frame.pop("bought").astype("float64")).round(2)
    for col in COUNTS:
        frame[col] = frame[col].astype("int64")
    frame["revenue"] = frame["revenue"].astype("float64")
    frame = with_rates(frame, margin=margin)
    for model, credit in (attributed or {}).items():
        frame[f"attributed_{model}"] = credit.reindex(frame.index).fillna(0.0).astype("float64")
    frame.index.name = level
    frame = frame.reset_index().sort_values(["qualified", "customers", "leads", level], ascending=[False, False, False, True])
    return frame.set_index(level)[[*COUNTS, *MONEY, *RATES, *(c for c in frame.columns if c.startswith("attributed_"))]]


def totals(frame: pd.DataFrame, costs: pd.DataFrame, *, level: str, margin: float = 1.0) -> pd.Series:
    """The report's bottom line: sums of the counts, the whole period's spend (at every level,
    split or not) and the rates recomputed from the sums."""
    sums = frame[[*COUNTS, *MONEY, *(c for c in frame.columns if c.startswith("attributed_"))]].sum()
    if level not in COST_LEVELS:
        sums["clicks"] = int(costs["clicks"].sum()) if len(costs) else 0
        sums["impressions"] = int(costs["impressions"].sum()) if len(costs) else 0
        sums["cost"] = round(float(costs["cost"].sum()) if len(costs) else 0.0, 2) + float(frame["cost"].sum())
    row = with_rates(pd.DataFrame([sums]), margin=margin).iloc[0]
    return row


def funnel(total: pd.Series) -> list[tuple[str, int]]:
    """Visits → leads → qualified → SQL → customers, for the chart."""
    return [("visits", int(total["visits"])), ("leads", int(total["leads"])), ("qualified", int(total["qualified"])),
            ("SQL", int(total["sql"])), ("customers", int(total["customers"]))]


def as_records(frame: pd.DataFrame) -> list[dict[str, object]]:
    """JSON-able rows: NaN → None, numpy numbers → Python numbers (counts stay integers),
    rates to 4 decimals and money to 2."""
    out = []
    name = str(frame.index.name)
    for idx, rec in zip(frame.index, frame.to_dict(orient="records"), strict=True):
        row: dict[str, object] = {name: str(idx)}
        for k, v in rec.items():
            if isinstance(v, (float, np.floating)):
                row[str(k)] = None if not np.isfinite(v) else round(float(v), 4 if k in RATES else 2)
            elif isinstance(v, np.integer):
                row[str(k)] = int(v)
            else:
                row[str(k)] = v
        out.append(row)
    return out
