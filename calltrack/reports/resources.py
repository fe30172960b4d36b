"""The campaign report over HTTP.

- ``GET /v1/reports/campaigns[.json|.csv|.html]`` with the account API key; the extension (or
  ``format=``) picks the rendering, JSON by default;
- ``GET /r/{token}``: the HTML report through a read-only link (``calltrack report link``),
  for a browser, which cannot send the key's header.

Parameters: ``from``/``to`` (days, YYYY-MM-DD, in the account's time zone; default the last
30 days), ``level`` (default campaign), ``models`` (comma-separated attribution models to show
side by side; default last_touch,linear,markov; ``none`` for none), ``stage`` (what they
credit; default mql), ``lookback_days``, ``margin`` (gross margin share for ROI, default 1).
"""

from __future__ import annotations

from datetime import date
from typing import Any

from twisted.web.server import Request

from calltrack import attribution
from calltrack.accounts.service import AccountsService
from calltrack.accounts.store import Account
from calltrack.attribution.levels import LEVELS
from calltrack.attribution.store import STAGES
from calltrack.clock import Clock
from calltrack.reports.service import MAX_DAYS, ReportQuery, ReportsService, account_today
from calltrack.web import params
from calltrack.web.auth import require_account_record
from calltrack.web.errors import ApiError
from calltrack.web.resource import Response, Router, query_params

FORMATS = {"json": "application/json", "csv": "text/csv; charset=utf-8", "html": "text/html; charset=utf-8"}


def read_report_query(q: dict[str, Any], *, today: date) -> ReportQuery:
    """The parameters as a ReportQuery, or ApiError(400) naming the first fault."""
    first, last = params.day_range(q, today=today, default_days=30, max_days=MAX_DAYS)
    level = q.get("level") or "campaign"
    if level not in LEVELS:
        raise ApiError(400, "invalid_parameter", f"'level' must be one of {', '.join(LEVELS)}")
    raw_models = q.get("models") if q.get("models") is not None else "last_touch,linear,markov"
    models = () if raw_models in ("none", "") else tuple(dict.fromkeys(m.strip() for m in raw_models.split(",") if m.strip()))
    unknown = [m for m in models if m not in attribution.MODELS]
    if unknown:
        raise ApiError(400, "invalid_parameter", f"unknown model {unknown[0][:40]!r} (known: {', '.join(attribution.MODELS)})")
    if len(models) > 6:
        raise ApiError(400, "invalid_parameter", "at most 6 models side by side")
    stage = q.get("stage") or "mql"
    if stage not in STAGES:
        raise ApiError(400, "invalid_parameter", f"'stage' must be one of {', '.join(STAGES)}")
    try:
        margin = float(q.get("margin") or 1.0)
    except ValueError:
        raise ApiError(400, "invalid_parameter", "'margin' must be a number between 0 and 1") from None
    if not 0 <= margin <= 1:
        raise ApiError(400, "invalid_parameter", "'margin' must be a number between 0 and 1")
    return ReportQuery(
        first=first, last=last, level=level, models=models, stage=stage, margin=margin,
        lookback_days=params.integer(q.get("lookback_days"), "lookback_days", default=30, minimum=1, maximum=365),
    )


class ReportResources:
    def __init__(self, reports: ReportsService, accounts: AccountsService, clock: Clock) -> None:
        self._reports = reports
        self._accounts = accounts
        self._clock = clock

    def register(self, router: Router) -> None:
        router.add("GET", r"/v1/reports/campaigns(?P<ext>\.json|\.csv|\.html)?", self.campaigns, name="/v1/reports/campaigns")
        router.add("GET", r"/r/(?P<token>rpt_[A-Za-z0-9_\-]{20,64})", self.shared, name="/r/{token}")
        router.add("GET", r"/v1/reports/operations", self.operations, name="/v1/reports/operations")
        router.add("GET", r"/v1/reports/plan", self.plan, name="/v1/reports/plan")

    async def _account_and_days(self, request: Request, default_days: int) -> tuple[Account, date, date]:
        account = await require_account_record(request, self._accounts)
        today = account_today(account, self._clock.seconds())
        first, last = params.day_range(query_params(request), today=today, default_days=default_days, max_days=MAX_DAYS)
        return account, first, last

    async def operations(self, request: Request) -> Response:
        """Speed to lead per owner and channel, missed calls not called back, loss and spam
        reasons ranked, source quality by month, pool health (``from``/``to`` days)."""
        account, first, last = await self._account_and_days(request, 30)
        return Response(200, await self._reports.operations(account, first, last))

    async def plan(self, request: Request) -> Response:
        """``budget`` and/or ``target_customers``; rates from the paid history of ``from``/``to``
        (default 90 days) unless given: ``cpc``, ``lead_rate``, ``qualified_rate``, ``customer_rate``."""
        account, first, last = await self._account_and_days(request, 90)
        q = query_params(request)
        values: dict[str, float] = {}
        for key, high in (("budget", 1e12), ("target_customers", 1e9), ("cpc", 1e6), ("lead_rate", 1.0), ("qualified_rate", 1.0), ("customer_rate", 1.0)):
            if q.get(key) not in (None, ""):
                try:
                    value = float(q[key])
                except ValueError:
                    raise ApiError(400, "invalid_parameter", f"'{key}' must be a number") from None
                if not (0 < value <= high) or value != value:
                    raise ApiError(400, "invalid_parameter", f"'{key}' must be above 0 and at most {high:g}")
                values[key] = value
        if "budget" not in values and "target_customers" not in values:
            raise ApiError(400, "missing_parameter", "give 'budget' (what it brings) and/or 'target_customers' (what it takes)")
        overrides = {k: v for k, v in values.items() if k in ("cpc", "lead_rate", "qualified_rate", "customer_rate")}
        return Response(200, await self._reports.plan(account, first, last, budget=values.get("budget"),
                                                      target_customers=values.get("target_customers"), overrides=overrides))

    async def _render(self, account: Account, q: dict[str, Any], fmt: str) -> Response:
        query = read_report_query(q, today=account_today(account, self._clock.seconds()))
        body = await self._reports.campaigns_rendered(account, query, fmt)
        headers = {"Cache-Control": "private, no-store"}
        if fmt == "csv":
            headers["Content-Disposition"] = f'attachment; filename="campaigns-{query.first}-{query.last}.csv"'
        elif fmt == "html":
            # The page needs nothing from anywhere: say so, and no injected markup can fetch or run.
            headers["Content-Security-Policy"] = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'"
        return Response(200, body, content_type=FORMATS[fmt], headers=headers)

    async def campaigns(self, request: Request, ext: str | None = None) -> Response:
        account = await require_account_record(request, self._accounts)
        q = query_params(request)
        fmt = (ext or "").lstrip(".") or q.get("format") or "json"
        if fmt not in FORMATS:
            raise ApiError(400, "invalid_parameter", "'format' must be json, csv or html")
        return await self._render(account, q, fmt)

    async def shared(self, request: Request, token: str) -> Response:
        account_id = await self._reports.account_of_link(token)
        if account_id is None:
            raise ApiError(404, "not_found", "no such report link (it may have expired or been revoked)")
        account = await self._accounts.get_account(account_id)
        assert account is not None
        return await self._render(account, query_params(request), "html")
