"""Planning: what a budget should bring, and the budget a target needs. Pure.

From the account's own paid history by default (domain reference): clicks = budget ÷ CPC;
leads = clicks × lead rate; qualified = leads × qualified rate; customers = leads × customer
rate — and turned around, the budget for a number of customers. Any rate can be given instead
(a new account has no history). A figure that cannot be known (no history and none given) is
null, with the reason in ``missing``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

RATES = ("cpc", "lead_rate", "qualified_rate", "customer_rate")


def history_rates(h: Mapping[str, float]) -> dict[str, float | None]:
    """CPC, lead rate (leads ÷ clicks), qualified and customer rates (÷ leads) of the paid history."""
    div = lambda a, b: a / b if b else None  # noqa: E731
    return {
        "cpc": div(h["cost"], h["clicks"]), "lead_rate": div(h["leads"], h["clicks"]),
        "qualified_rate": div(h["qualified"], h["leads"]), "customer_rate": div(h["customers"], h["leads"]),
    }


def plan(rates: Mapping[str, float | None], *, budget: float | None = None, target_customers: float | None = None) -> dict[str, Any]:
    missing = [k for k in RATES if rates.get(k) is None]
    out: dict[str, Any] = {"rates": {k: rates.get(k) for k in RATES}, "missing": missing}
    cpc, lead_rate, q_rate, c_rate = (rates.get(k) for k in RATES)
    if budget is not None:
        clicks = budget / cpc if cpc else None
        leads = clicks * lead_rate if clicks is not None and lead_rate is not None else None
        out["budget"] = {
            "budget": budget, "clicks": _r(clicks), "leads": _r(leads),
            "qualified": _r(leads * q_rate) if leads is not None and q_rate is not None else None,
            "customers": _r(leads * c_rate) if leads is not None and c_rate is not None else None,
            "cpl": _r(budget / leads) if leads else None,
        }
    if target_customers is not None:
        per_click = lead_rate * c_rate if lead_rate and c_rate else None
        clicks = target_customers / per_click if per_click else None
        out["target"] = {
            "customers": target_customers, "clicks": _r(clicks),
            "leads": _r(target_customers / c_rate) if c_rate else None,
            "budget": _r(clicks * cpc) if clicks is not None and cpc is not None else None,
        }
    return out


def _r(v: float | None) -> float | None:
    return None if v is None or not math.isfinite(v) else round(v, 2)
