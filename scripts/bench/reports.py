#!/usr/bin/env python3
"""Benchmark: the campaign report's frames over 1,000,000 leads and 5,000,000 touches.

    .venv/bin/python scripts/bench/reports.py [--leads 1000000] [--touches 5000000] [--seed 1]

Generates (seeded) rows shaped as the report's queries return them — visits with utm tags and
referrers, calls, forms, leads with their source snapshot and stages, a year of daily costs for
40 campaigns — and times, in one process:

1. naming the levels the report needs on every row (``attribution.levels.add_levels``: the
   campaign of each visit, call, form, lead and cost row; for the leads also the channel and
   the lower-cased source and medium the pricing models match on);
2. the campaign report at the campaign level (``reports.campaigns.campaign_report``) and its
   totals, with bought-lead pricing;
3. the daily series per channel and the stall/drop alerts.

Prints wall time per step and in all, and peak memory (the process's maximum resident set,
``resource.getrusage``, which includes the generated input). Target on this machine: under 3 s
and 2 GiB. Reading the rows from the database and the attribution models are measured by
scripts/bench/attribution.py and not repeated here.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from calltrack.attribution.levels import add_levels  # noqa: E402
from calltrack.reports.campaigns import campaign_report, totals  # noqa: E402
from calltrack.reports.costs import PricingModel  # noqa: E402
from calltrack.reports.series import alerts, daily_series  # noqa: E402

TARGET_SECONDS = 3.0
TARGET_BYTES = 2 * 1024**3
START = 1_767_225_600.0  # 2026-01-01
SOURCES = (("google", "cpc", "paid_search"), ("bing", "cpc", "paid_search"), ("facebook", "paid_social", "paid_social"),
           (None, None, "organic_search"), ("newsletter", "email", "email"), (None, None, "direct"), ("leadvendor", "cpl", "other"))


def generate(n_leads: int, n_touches: int, seed: int) -> dict[str, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    campaigns = np.array([f"campaign-{i:02d}" for i in range(40)], dtype=object)

    def sourced(n: int) -> dict[str, np.ndarray]:
        pick = rng.integers(0, len(SOURCES), n)
        src = np.array([s[0] for s in SOURCES], dtype=object)[pick]
        med = np.array([s[1] for s in SOURCES], dtype=object)[pick]
        chan = np.array([s[2] for s in SOURCES], dtype=object)[pick]
        camp = np.where(pd.isna(src), None, campaigns[rng.integers(0, len(campaigns), n)])
        return {"channel": chan, "source": src, "medium": med, "campaign": camp, "keyword": np.where(pick == 0, "plumber near me", None)}

    year = 365 * 86400.0
    touches = pd.DataFrame({
        "ts": START + rng.random(n_touches) * year, **sourced(n_touches),
        "url": np.array(["https://acme.example/", "https://acme.example/pricing?utm_source=x", "https://acme.example/contact#form"], dtype=object)[rng.integers(0, 3, n_touches)],
        "referrer": np.array([None, "https://www.google.com/", "https://news.example/a"], dtype=object)[rng.integers(0, 3, n_touches)],
    })
    n_calls = n_leads // 2
    calls = pd.DataFrame({
        "ts": START + rng.random(n_calls) * year, "caller": np.array([f"+1415555{i % 400_000:06d}" for i in range(n_calls)], dtype=object),
        "answered": rng.random(n_calls) < 0.7, **sourced(n_calls), "tracking_number": None, "url": None, "referrer": None,
    })
    calls["first_time"] = rng.random(n_calls) < 0.8
    forms = pd.DataFrame({"ts": START + rng.random(n_leads // 3) * year, **sourced(n_leads // 3), "url": None, "referrer": None})
    q = rng.random(n_leads)
    leads = pd.DataFrame({
        "lead_id": np.arange(n_leads), "ts": START + rng.random(n_leads) * year, "stage": "new", "value": np.where(q < 0.03, 1200.0, np.nan),
        **sourced(n_leads), "tracking_number": None, "url": None, "referrer": None,
    })
    leads["qualified"] = (q < 0.2).astype(int)
    leads["sql"] = (q < 0.08).astype(int)
    leads["customers"] = (q < 0.03).astype(int)
    days = pd.date_range("2026-01-01", periods=365, freq="D").strftime("%Y-%m-%d")
    grid = pd.MultiIndex.from_product([days, range(3), campaigns], names=["day", "s", "campaign"]).to_frame(index=False)
    grid["source"] = grid["s"].map({0: "google", 1: "bing", 2: "facebook"})
    grid["medium"] = grid["s"].map({0: "cpc", 1: "cpc", 2: "paid_social"})
    grid["channel"] = grid["s"].map({0: "paid_search", 1: "paid_search", 2: "paid_social"})
    grid["keyword"] = None
    grid["clicks"] = rng.integers(0, 50, len(grid))
    grid["impressions"] = grid["clicks"] * 30
    grid["cost"] = (grid["clicks"] * 2.5).round(2)
    return {"touches": touches, "calls": calls, "forms": forms, "leads": leads, "costs": grid.drop(columns="s")}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--leads", type=int, default=1_000_000)
    p.add_argument("--touches", type=int, default=5_000_000)
    p.add_argument("--seed", type=int, default=1)
    a = p.parse_args(argv)
    t0 = time.perf_counter()
    data = generate(a.leads, a.touches, a.seed)
    print(f"generated {a.leads:,} leads, {a.touches:,} touches, {len(data['calls']):,} calls, {len(data['forms']):,} forms, "
          f"{len(data['costs']):,} cost rows in {time.perf_counter() - t0:.1f} s (not timed below)")
    steps: list[tuple[str, float]] = []
    t = time.perf_counter()
    # As the service does: each frame gets the levels the report needs (the campaign; for the
    # leads also the channel of the daily series and what the pricing models match on).
    needs = {"touches": {"campaign"}, "calls": {"campaign"}, "forms": {"campaign"}, "leads": {"campaign", "channel", "source", "medium"}, "costs": {"campaign"}}
    named = {k: add_levels(v, referrer="referrer" if k != "costs" else None, url="url" if k != "costs" else None, levels=needs[k]) for k, v in data.items()}
    steps.append(("name the levels the report needs", time.perf_counter() - t))
    t = time.perf_counter()
    pricing = [PricingModel("leadvendor", "", "", "per_lead", 40.0), PricingModel("leadvendor", "cpl", "campaign-01", "per_action", 90.0, "sql")]
    report = campaign_report("campaign", touches=named["touches"], calls=named["calls"], forms=named["forms"], leads=named["leads"],
                             costs=named["costs"], pricing=pricing)
    total = totals(report, named["costs"], level="campaign")
    steps.append(("campaign report and totals", time.perf_counter() - t))
    t = time.perf_counter()
    series = daily_series(named["leads"], "America/New_York")
    found = alerts(named["leads"], level="campaign", as_of=START + 365 * 86400.0, timezone="America/New_York")
    steps.append(("daily series and alerts", time.perf_counter() - t))
    elapsed = sum(s for _, s in steps)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    for name, seconds in steps:
        print(f"  {name:<34}{seconds:>7.2f} s")
    print(f"  {'all':<34}{elapsed:>7.2f} s   ({len(report)} campaigns, {int(total['leads']):,} leads, {len(series):,} series points, {len(found)} alerts)")
    print(f"peak memory (max RSS, input included): {peak / 1024**3:.2f} GiB")
    ok = elapsed < TARGET_SECONDS and peak < TARGET_BYTES
    print(f"target: under {TARGET_SECONDS:.0f} s and 2 GiB → {'met' if ok else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
