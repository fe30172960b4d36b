"""The demo account `scripts/run` creates on an empty database: a site, two pools and a few
static numbers, so a new user can ask for numbers and watch leases at once, and a month of
ad spend for the simulator's campaigns, so the first report has costs to set against leads.

All numbers are in the 555-01XX range the North American Numbering Plan keeps for fiction.
"""

from __future__ import annotations

import random
import time
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from calltrack.accounts.store import list_accounts_txn, list_sites_txn
from calltrack.numbers.inputs import new_number_from_json
from calltrack.numbers.rules import parse_rules
from calltrack.reports.cost_store import replace_costs_txn
from calltrack.reports.costs import CostRow

DEMO_ACCOUNT = "Demo Plumbing Co"


# The simulator's paid campaigns (calltrack/simulate.py) with what a click costs on each.
DEMO_SPEND = (
    ("google", "cpc", ("brand", "boiler-service-spring", "emergency-plumber", "water-heaters"), 3.4),
    ("bing", "cpc", ("bing-drains", "bing-emergency"), 2.1),
    ("facebook", "paid_social", ("fb-retargeting", "fb-spring-offer"), 0.9),
)


def demo_costs(today: date, *, days: int = 30, seed: int = 7) -> list[CostRow]:
    """A month of made-up daily spend for the demo's paid campaigns, so that the first report
    shows cost per lead and per qualified lead (the same every time: seeded)."""
    rng = random.Random(seed)
    rows = []
    for back in range(days):
        day = (today - timedelta(days=back)).isoformat()
        for source, medium, campaigns, cpc in DEMO_SPEND:
            for campaign in campaigns:
                clicks = rng.randint(3, 30)
                rows.append(CostRow(day, source, medium, campaign, "", clicks, clicks * rng.randint(15, 40),
                                    round(clicks * cpc * rng.uniform(0.8, 1.2), 2), "USD"))
    return rows


def seed_demo(app: Any, *, base_url: str) -> dict[str, Any]:
    """Create the demo data when the database has no account; otherwise issue a fresh API key
    for the demo account (keys are stored hashed, so the first one cannot be shown again)."""
    from calltrack.cli import run_now

    accounts = app.db.run_sync("list_accounts", list_accounts_txn)
    demo = next((a for a in accounts if a.name == DEMO_ACCOUNT), None)
    if demo is None and accounts:
        return {"created": False, "text": "the database already has accounts; no demo data added"}
    if demo is None:
        demo, key = run_now(app.accounts.create_account(DEMO_ACCOUNT, timezone="America/New_York", currency="USD"))
        site = run_now(
            app.accounts.add_site(
                demo,
                name="demo landing page",
                allowed_domains=["127.0.0.1", "localhost"],
                own_number="(415) 555-0100",
                forward_to="(415) 555-0199",
            )
        )
        paid = run_now(
            app.numbers.create_pool(demo.id, site, name="Google Ads", rules=parse_rules({"channel": "paid_search"}))
        )
        everyone = run_now(app.numbers.create_pool(demo.id, site, name="All visitors", rules=parse_rules({"all": True})))
        numbers = [{"number": f"(415) 555-01{n:02d}", "pool_id": paid.id} for n in range(10, 14)]
        numbers += [{"number": f"(415) 555-01{n:02d}", "pool_id": everyone.id} for n in range(20, 28)]
        numbers += [
            {"number": "(415) 555-0150", "source": "billboard", "medium": "offline", "placement": "Highway 101 billboard"},
            {"number": "(415) 555-0151", "source": "yellowpages", "medium": "print", "placement": "Yellow Pages 2027"},
        ]
        pools = {paid.id: paid, everyone.id: everyone}
        new = [new_number_from_json(n, region="US", pools_by_id=pools, default_forward=site.forward_to) for n in numbers]
        run_now(app.numbers.add_numbers(demo.id, new))
        now = time.time()
        today = datetime.fromtimestamp(now, ZoneInfo(demo.timezone)).date()
        app.db.run_sync("demo_costs", replace_costs_txn, demo.id, demo_costs(today), now)
        created = True
    else:
        key = run_now(app.accounts.add_api_key(demo.id, "scripts/run"))
        site = app.db.run_sync("list_sites", list_sites_txn, demo.id)[0]
        created = False
    text = "\n".join(
        [
            f"demo account {demo.id} ({'created' if created else 'already there'}): {DEMO_ACCOUNT}",
            f"  demo page: {base_url}/demo   (ct.js swaps its number; try the ad-click link on it in a private window)",
            f"  API key:  {key}",
            f"  site key: {site.site_key}",
            f"  ask for a number:  curl '{base_url}/v1/number?site={site.site_key}&utm_source=google&utm_medium=cpc'",
            f"  watch leases:      curl -H 'Authorization: Bearer {key}' {base_url}/v1/leases",
            "  pool health:       .venv/bin/calltrack pools status",
        ]
    )
    return {"created": created, "account_id": demo.id, "api_key": key, "site_key": site.site_key, "text": text}
