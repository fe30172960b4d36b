"""ReportsService: the campaign report of an account for a period — the rows read from the
database, the frames built and the attribution models run on the compute pool.

The period is whole days in the account's time zone (``first`` to ``last`` inclusive).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd

from calltrack.accounts.store import Account
from calltrack.attribution import store as attribution_store
from calltrack.attribution.levels import add_levels
from calltrack.attribution.service import AttributionService, Query
from calltrack.compute import ComputePool
from calltrack.db.pool import DBPool
from calltrack.numbers.channels import derive_channel
from calltrack.reports import cost_store, link_store, operations, planning, report_store
from calltrack.reports.campaigns import COST_LEVELS, COUNTS, as_records, campaign_report, funnel, totals
from calltrack.reports.costs import PricingModel
from calltrack.reports.series import alerts, daily_series, weekly_series

DAY = 86400.0
MAX_DAYS = 731
HISTORY_DAYS = 56  # what the alerts compare a campaign's recent lead flow with


@dataclass(frozen=True)
class ReportQuery:
    first: date
    last: date
    level: str = "campaign"
    models: tuple[str, ...] = ("last_touch", "linear", "markov")
    stage: str = "mql"  # what the attribution models credit
    lookback_days: int = 30
    margin: float = 1.0


@dataclass(frozen=True)
class CampaignReport:
    account: Account
    query: ReportQuery
    since: float
    until: float
    rows: pd.DataFrame
    total: pd.Series
    series: pd.DataFrame  # day × channel: leads and qualified
    alerts: list[dict[str, Any]] = field(default_factory=list)
    attribution_conversions: int = 0

    def to_json(self) -> dict[str, Any]:
        q = self.query
        total = as_records(pd.DataFrame([self.total]).rename(index={0: "total"}).rename_axis(q.level))[0]
        total.pop(q.level, None)
        for key in COUNTS:  # a sum across rows comes back as a float
            total[key] = int(total[key] or 0)
        return {
            "account": {"id": self.account.id, "name": self.account.name, "timezone": self.account.timezone, "currency": self.account.currency},
            "from": q.first.isoformat(), "to": q.last.isoformat(), "level": q.level, "models": list(q.models), "attribution_stage": q.stage,
            "lookback_days": q.lookback_days, "margin": q.margin, "ranked_by": ["qualified", "customers", "leads"],
            "totals": total, "funnel": [{"stage": s, "count": n} for s, n in funnel(self.total)],
            "rows": as_records(self.rows),
            "series": [
                {"date": d, "channel": ch, "leads": int(r["leads"]), "qualified": int(r["qualified"])}
                for (d, ch), r in self.series.iterrows()
            ],
            "weekly": [
                {"week": w, "channel": ch, "leads": int(r["leads"]), "qualified": int(r["qualified"])}
                for (w, ch), r in weekly_series(self.series).iterrows()
            ],
            "alerts": self.alerts,
        }


def account_today(account: Account, now: float) -> date:
    """The account's calendar day at ``now``: report periods are whole days in its time zone."""
    return datetime.fromtimestamp(now, ZoneInfo(account.timezone)).date()


def day_bounds(first: date, last: date, timezone: str) -> tuple[float, float]:
    """[local midnight of first, local midnight after last) as unix seconds."""
    tz = ZoneInfo(timezone)
    since = datetime.combine(first, time(0), tz).timestamp()
    until = datetime.combine(last + timedelta(days=1), time(0), tz).timestamp()
    return since, until


def _levels(rows: list[tuple[Any, ...]], columns: tuple[str, ...], levels: set[str]) -> pd.DataFrame:
    return add_levels(pd.DataFrame(list(rows), columns=list(columns)), levels=levels)


PRICED_BY = {"source", "medium", "campaign"}  # what a pricing model matches on


def build(
    account: Account, q: ReportQuery, since: float, until: float, data: dict[str, Any], attribution: dict[str, pd.Series], attributed_n: int
) -> CampaignReport:
    """Pure: the rows read → the report."""
    level = q.level
    pricing: list[PricingModel] = [p for _, p in data["pricing"]]
    # Name only the levels this report needs: a year of visits is millions of rows.
    per_click = PRICED_BY if any(p.model == "per_click" for p in pricing) else set()
    per_lead = PRICED_BY if any(p.model != "per_click" for p in pricing) else set()
    touches = _levels(data["touches"], report_store.TOUCH_COLUMNS, {level} | per_click)
    calls = _levels(data["calls"], report_store.CALL_COLUMNS, {level})
    firsts = data["first_calls"]
    calls["first_time"] = [bool(c) and firsts.get(c) == ts for c, ts in zip(calls["caller"], calls["ts"], strict=True)]
    calls["answered"] = calls["answered"].astype(bool)
    forms = _levels(data["forms"], report_store.FORM_COLUMNS, {level})
    leads = _levels(data["leads"], report_store.LEAD_COLUMNS, {level, "channel"} | per_lead)
    reached: dict[int, set[str]] = {}
    for lead_id, stage, _ in data["stage_times"]:
        reached.setdefault(int(lead_id), set()).add(stage)
    for lead_id, stage in zip(leads["lead_id"], leads["stage"], strict=True):
        reached.setdefault(int(lead_id), set()).add(stage)
    got = [reached.get(int(i), set()) for i in leads["lead_id"]]
    leads["qualified"] = [int(bool(s & {"mql", "sql", "customer"})) for s in got]
    leads["sql"] = [int(bool(s & {"sql", "customer"})) for s in got]
    leads["customers"] = [int("customer" in s) for s in got]
    leads["value"] = leads["value"].astype("float64")
    costs = pd.DataFrame(list(data["costs"]), columns=["day", "source", "medium", "campaign", "keyword", "clicks", "impressions", "cost"])
    costs["channel"] = [derive_channel(utm_source=s, utm_medium=m) for s, m in zip(costs["source"], costs["medium"], strict=True)]
    costs = add_levels(costs, referrer=None, url=None, levels={level} if level in COST_LEVELS else set())
    rows = campaign_report(level, touches=touches, calls=calls, forms=forms, leads=leads, costs=costs, pricing=pricing,
                           attributed=attribution, margin=q.margin)
    total = totals(rows, costs, level=level, margin=q.margin)
    history = _levels(data["history"], report_store.LEAD_COLUMNS, {level})
    return CampaignReport(
        account, q, since, until, rows, total, daily_series(leads, account.timezone),
        alerts(history, level=level, as_of=min(until, data["now"]), timezone=account.timezone), attributed_n,
    )


def operations_json(
    account: Account, first: date, last: date, leads_rows: list[tuple[Any, ...]], missed_rows: list[tuple[Any, ...]],
    pools: list[dict[str, Any]], *, target: float, limit: float, now: float,
) -> dict[str, Any]:
    """Pure: the operations report (reports/operations.py) as JSON."""
    leads = pd.DataFrame(list(leads_rows), columns=list(report_store.OPS_LEAD_COLUMNS))
    for col in ("created_at", "first_response_at"):
        leads[col] = leads[col].astype("float64")
    missed = pd.DataFrame(list(missed_rows), columns=list(report_store.MISSED_COLUMNS))
    return {
        "from": first.isoformat(), "to": last.isoformat(), "target_seconds": target, "limit_seconds": limit,
        "speed_to_lead": {
            "by_owner": operations.speed(leads, "owner", target=target, limit=limit, now=now),
            "by_channel": operations.speed(leads, "channel", target=target, limit=limit, now=now),
        },
        "missed_calls": operations.missed_not_called_back(missed, now=now),
        "loss_reasons": operations.ranked_reasons(leads[leads["stage"] == "lost"], "loss_reason"),
        "spam_reasons": operations.ranked_reasons(leads[leads["stage"] == "spam"], "spam_reason"),
        "source_quality": operations.source_quality(leads, account.timezone),
        "pools": pools,
    }


class ReportsService:
    def __init__(
        self, db: DBPool, compute: ComputePool, attribution: AttributionService, clock: Any, *, numbers: Any = None, leads_config: Any = None
    ) -> None:
        self._db = db
        self._compute = compute
        self._attribution = attribution
        self._clock = clock
        self._numbers = numbers
        self._leads_config = leads_config

    async def operations(self, account: Account, first: date, last: date) -> dict[str, Any]:
        since, until = day_bounds(first, last, account.timezone)
        now = self._clock.seconds()
        leads_rows = await self._db.run("ops_leads", report_store.ops_leads_txn, account.id, since, until)
        missed = await self._db.run("ops_missed_calls", report_store.missed_calls_txn, account.id, since, until)
        pools = []
        if self._numbers is not None:
            for pool in await self._numbers.list_pools(account.id):
                if pool.retired:
                    continue
                _, health = await self._numbers.pool_health(account.id, pool.id, since=since, until=min(until, now) if now > since else until)
                pools.append({
                    "pool_id": pool.id, "name": pool.name, "size": health.size, "peak_concurrent": health.peak_concurrent,
                    "utilisation": round(health.peak_concurrent / health.size, 4) if health.size else None,
                    "exhausted": health.exhausted, "leases": health.leases, "recommended_size": health.recommended_size,
                })
        cfg = self._leads_config
        target = float(cfg.response_target_seconds) if cfg else 300.0
        limit = float(cfg.response_limit_seconds) if cfg else 7200.0
        return await self._compute.run(operations_json, account, first, last, leads_rows, missed, pools, target=target, limit=limit, now=now)

    async def plan(self, account: Account, first: date, last: date, *, budget: float | None, target_customers: float | None,
                   overrides: dict[str, float]) -> dict[str, Any]:
        since, until = day_bounds(first, last, account.timezone)
        history = await self._db.run("plan_history", report_store.paid_history_txn, account.id, first.isoformat(), last.isoformat(), since, until)
        rates = planning.history_rates(history) | overrides
        return {"from": first.isoformat(), "to": last.isoformat(), "currency": account.currency, "history": history,
                **planning.plan(rates, budget=budget, target_customers=target_customers)}

    async def account_of_link(self, token: str) -> int | None:
        return await self._db.run("report_link", link_store.account_of_link_txn, token, self._clock.seconds())

    def add_link_sync(self, account_id: int, *, label: str, now: float, days: int | None) -> str:
        token = link_store.new_token()
        self._db.run_sync("add_report_link", link_store.add_link_txn, account_id, token, label=label, now=now,
                          expires_at=now + days * DAY if days else None)
        return token

    def _reads(self, account_id: int, q: ReportQuery, since: float, until: float) -> list[tuple[str, Any, tuple[Any, ...]]]:
        return [
            ("touches", report_store.touches_txn, (account_id, since, until)),
            ("calls", report_store.calls_txn, (account_id, since, until)),
            ("first_calls", report_store.first_calls_txn, (account_id, until)),
            ("forms", report_store.forms_txn, (account_id, since, until)),
            ("leads", report_store.leads_txn, (account_id, since, until)),
            ("history", report_store.leads_txn, (account_id, min(since, until - HISTORY_DAYS * DAY), until)),
            ("stage_times", attribution_store.stage_times_txn, (account_id, until)),
            ("costs", cost_store.costs_txn, (account_id, q.first.isoformat(), q.last.isoformat())),
            ("pricing", cost_store.pricing_txn, (account_id,)),
        ]

    def _attribution_query(self, q: ReportQuery, since: float, until: float) -> Query:
        return Query(models=q.models, stage=q.stage, since=since, until=until, level=q.level, lookback_days=q.lookback_days)

    async def campaigns(self, account: Account, q: ReportQuery) -> CampaignReport:
        since, until = day_bounds(q.first, q.last, account.timezone)
        data: dict[str, Any] = {"now": self._clock.seconds()}
        for name, fn, args in self._reads(account.id, q, since, until):
            data[name] = await self._db.run(f"report_{name}", fn, *args)
        attributed = await self._attribution.attribute(account.id, self._attribution_query(q, since, until)) if q.models else None
        credits = {r.model: r.frame["conversions"] for r in attributed.results} if attributed else {}
        return await self._compute.run(build, account, q, since, until, data, credits, attributed.attributed if attributed else 0)

    async def campaigns_rendered(self, account: Account, q: ReportQuery, fmt: str) -> bytes:
        """The report as bytes (json, csv or html), built and rendered off the reactor thread."""
        from calltrack.reports.render import render

        report = await self.campaigns(account, q)
        return await self._compute.run(render, report, fmt)

    def campaigns_sync(self, account: Account, q: ReportQuery, *, now: float) -> CampaignReport:
        since, until = day_bounds(q.first, q.last, account.timezone)
        data: dict[str, Any] = {"now": now}
        for name, fn, args in self._reads(account.id, q, since, until):
            data[name] = self._db.run_sync(f"report_{name}", fn, *args)
        attributed = self._attribution.attribute_sync(account.id, self._attribution_query(q, since, until)) if q.models else None
        credits = {r.model: r.frame["conversions"] for r in attributed.results} if attributed else {}
        return build(account, q, since, until, data, credits, attributed.attributed if attributed else 0)


__all__ = ["CampaignReport", "ReportQuery", "ReportsService", "build", "day_bounds"]
