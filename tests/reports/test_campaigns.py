"""The campaign report frame, with hand-computed expectations and the domain reference's
worked examples."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from calltrack.reports.campaigns import campaign_report, totals
from calltrack.reports.costs import PricingModel


def _frame(rows, columns):
    """Rows given with the level first; a level that is also a source column is one column."""
    data = pd.DataFrame([dict(zip(columns, r)) for r in rows], columns=list(dict.fromkeys(columns)))
    return data


def frames(level="source", *, touches=(), calls=(), forms=(), leads=(), costs=()):
    return dict(
        touches=_frame(touches, [level, "source", "medium", "campaign"]) if level != "source" else _frame([r[1:] for r in touches], ["source", "medium", "campaign"]),
        calls=_frame(calls, [level, "caller", "first_time", "answered"]),
        forms=_frame(forms, [level]),
        leads=_frame(leads, [level, "source", "medium", "campaign", "qualified", "sql", "customers", "value"]) if level != "source"
        else _frame([r[1:] for r in leads], ["source", "medium", "campaign", "qualified", "sql", "customers", "value"]),
        costs=_frame(costs, [level, "clicks", "impressions", "cost"]),
    )


def lead(src, q=0, s=0, c=0, value=None):
    return (src, src, "cpc", "x", q, s, c, value)


def test_the_worked_examples() -> None:
    # 200 clicks × 100 = 20,000 spent, 10 leads → CPL 2,000, conversion 5 %.
    # 110 clicks × 200 = 22,000, 60 leads → CPL 366.67, conversion 54.5 %.
    report = campaign_report(
        "source", **frames(leads=[lead("a")] * 10 + [lead("b")] * 60, costs=[("a", 200, 0, 20_000.0), ("b", 110, 0, 22_000.0)])
    )
    assert report.loc["a", "cpl"] == 2000 and report.loc["a", "lead_rate"] == 0.05
    assert round(report.loc["b", "cpl"], 2) == 366.67 and round(report.loc["b", "lead_rate"], 3) == 0.545
    # 50,000 visitors → 5,000 leads (10 %) → 500 customers (10 %): visits are the base without clicks.
    report = campaign_report(
        "source", **frames(touches=[("c", "c", "organic", "")] * 50_000, leads=[lead("c", 1, 1, 1, 100.0)] * 500 + [lead("c")] * 4500)
    )
    row = report.loc["c"]
    assert (row["visits"], row["leads"], row["customers"]) == (50_000, 5_000, 500)
    assert row["lead_rate"] == 0.1 and row["lead_customer_rate"] == 0.1 and row["revenue"] == 50_000.0
    assert math.isnan(row["cpl"]) and math.isnan(row["roi"])  # no cost: no cost per lead, not 0


def test_counts_rates_ranking_and_totals() -> None:
    report = campaign_report(
        "source",
        **frames(
            touches=[("google", "google", "cpc", "s")] * 40 + [("facebook", "facebook", "social", "r")] * 100,
            calls=[("google", "+1", True, True), ("google", "+1", False, False), ("google", None, True, True), ("facebook", "+2", True, False)],
            forms=[("facebook",)] * 3,
            leads=[lead("google", 1, 1, 1, 900.0), lead("google", 1), lead("facebook"), lead("facebook"), lead("facebook")],
            costs=[("google", 20, 500, 300.0), ("facebook", 0, 9000, 100.0)],
        ),
        margin=0.5,
    )
    assert list(report.index) == ["google", "facebook"]  # ranked by qualified leads, not traffic
    g = report.loc["google"]
    assert (g["calls"], g["unique_callers"], g["first_time_callers"], g["answered"], g["missed"]) == (3, 1, 2, 2, 1)
    assert (g["leads"], g["qualified"], g["sql"], g["customers"]) == (2, 2, 1, 1)
    assert (g["cpl"], g["cost_per_qualified"], g["cpa"]) == (150.0, 150.0, 300.0)
    assert g["roi"] == (900 * 0.5 - 300) / 300 and g["lead_rate"] == 2 / 20
    f = report.loc["facebook"]
    assert f["lead_rate"] == 3 / 100 and math.isnan(f["qualified_rate"]) is False and f["qualified_rate"] == 0
    assert math.isnan(f["cost_per_qualified"])
    total = totals(report, frames()["costs"], level="source", margin=0.5)
    assert (total["leads"], total["cost"], total["qualified"]) == (5, 400.0, 2)
    assert total["cpl"] == 80.0


def test_bought_leads_are_priced_by_the_most_specific_model() -> None:
    leads = [("vendor", "vendor", "cpl", "a", 1, 0, 0, None), ("vendor", "vendor", "cpl", "b", 0, 0, 0, None), ("vendor", "vendor", "cpl", "b", 1, 1, 0, None)]
    pricing = [
        PricingModel("vendor", "", "", "per_lead", 40.0),
        PricingModel("vendor", "cpl", "b", "per_action", 100.0, "sql"),
        PricingModel("clicks", "", "", "per_click", 0.5),
    ]
    report = campaign_report(
        "source", **frames(leads=leads, touches=[("clicks", "clicks", "cpc", "z")] * 10), pricing=pricing
    )
    # a: 40 per lead; b: only the lead that reached SQL is paid, 100 (the campaign's price wins).
    assert report.loc["vendor", "cost"] == 140.0 and report.loc["clicks", "cost"] == 5.0


def test_landing_pages_carry_no_split_spend_but_the_totals_do() -> None:
    report = campaign_report(
        "landing_page", **frames("landing_page", touches=[("/a", "g", "cpc", "s")] * 4, leads=[("/a", "g", "cpc", "s", 1, 0, 0, None)],
                                 costs=[("/a", 10, 100, 50.0)])
    )
    assert report.loc["/a", "cost"] == 0 and math.isnan(report.loc["/a", "cpl"])
    costs = pd.DataFrame([{"clicks": 10, "impressions": 100, "cost": 50.0}])
    total = totals(report, costs, level="landing_page")
    assert (total["cost"], total["clicks"], total["cpl"]) == (50.0, 10, 50.0)


@pytest.mark.parametrize("level", ["source", "campaign"])
def test_an_empty_period_is_an_empty_report(level) -> None:
    report = campaign_report(level, **frames(level))
    assert report.empty and "cpl" in report.columns
