"""``GET /v1/attribution``: credit per channel (or source/medium, campaign, keyword, landing page,
tracking number) for the conversions of a period, under one model or several side by side.

Parameters: ``model`` (one, or several comma-separated), ``stage`` (lead, mql, sql, customer;
default mql), ``from``/``to`` (unix seconds or ISO 8601; default the last 30 days),
``level`` (default channel), ``lookback_days`` (default 30), model options
``half_life_days``, ``first``, ``last``, ``order``, ``variant``, and for the data-driven models
``ci=true`` (bootstrap intervals; ``samples``, ``seed``). ``format=csv`` (or ``Accept:
text/csv``) answers CSV.
"""

from __future__ import annotations

from typing import Any

from twisted.web.server import Request

from calltrack import attribution
from calltrack.accounts.service import AccountsService
from calltrack.attribution import shapley
from calltrack.attribution.service import LEVELS, AttributionService, Query
from calltrack.attribution.store import STAGES
from calltrack.clock import Clock
from calltrack.web import params
from calltrack.web.auth import require_account
from calltrack.web.errors import ApiError
from calltrack.web.resource import Response, Router, query_params

DAY = 86400.0
MAX_DAYS = 731  # two years in one request
MAX_MODELS = 10
_FLOAT_OPTIONS = {"half_life_days": (0.01, 3650.0), "first": (0.0, 1.0), "last": (0.0, 1.0)}


def read_query(q: dict[str, Any], now: float) -> Query:
    """The request's parameters as a Query, or ApiError(400) naming the first fault."""
    # A model named twice is computed once, and counts once against the limit.
    names = list(dict.fromkeys(m.strip() for m in (q.get("model") or "").split(",") if m.strip()))
    if not names:
        raise ApiError(400, "missing_parameter", f"'model' is required: one or more of {', '.join(attribution.MODELS)}")
    unknown = [m for m in names if m not in attribution.MODELS]
    if unknown:
        raise ApiError(400, "invalid_parameter", f"unknown model {unknown[0][:40]!r} (known: {', '.join(attribution.MODELS)})")
    if len(names) > MAX_MODELS:
        raise ApiError(400, "invalid_parameter", f"at most {MAX_MODELS} models at once")
    stage = q.get("stage") or "mql"
    if stage not in STAGES:
        raise ApiError(400, "invalid_parameter", f"'stage' must be one of {', '.join(STAGES)}")
    level = q.get("level") or "channel"
    if level not in LEVELS:
        raise ApiError(400, "invalid_parameter", f"'level' must be one of {', '.join(LEVELS)}")
    until = params.timestamp(q.get("to"), "to", default=now)
    since = params.timestamp(q.get("from"), "from", default=until - 30 * DAY)
    if since >= until:
        raise ApiError(400, "invalid_parameter", "'from' must be before 'to'")
    if until - since > MAX_DAYS * DAY:
        raise ApiError(400, "invalid_parameter", f"a period of at most {MAX_DAYS} days")
    options: dict[str, Any] = {}
    for key, (low, high) in _FLOAT_OPTIONS.items():
        if q.get(key) not in (None, ""):
            try:
                value = float(q[key])
            except ValueError:
                raise ApiError(400, "invalid_parameter", f"'{key}' must be a number") from None
            if not low <= value <= high:
                raise ApiError(400, "invalid_parameter", f"'{key}' must be between {low:g} and {high:g}")
            options[key] = value
    if "first" in options or "last" in options:
        if options.get("first", 0.4) + options.get("last", 0.4) > 1:
            raise ApiError(400, "invalid_parameter", "'first' + 'last' must be at most 1")
    if q.get("order"):
        options["order"] = params.integer(q.get("order"), "order", minimum=1, maximum=4)
    if q.get("variant"):
        if q["variant"] not in shapley.VARIANTS:
            raise ApiError(400, "invalid_parameter", f"'variant' must be one of {', '.join(shapley.VARIANTS)}")
        options["variant"] = q["variant"]
    ci = (q.get("ci") or "false").lower()
    if ci not in ("true", "false", "1", "0"):
        raise ApiError(400, "invalid_parameter", "'ci' must be true or false")
    return Query(
        models=tuple(names), stage=stage, since=since, until=until, level=level,
        lookback_days=params.integer(q.get("lookback_days"), "lookback_days", default=30, minimum=1, maximum=365),
        options=options, ci=ci in ("true", "1"),
        samples=params.integer(q.get("samples"), "samples", default=200, minimum=10, maximum=2000),
        seed=params.integer(q.get("seed"), "seed", default=0, minimum=0, maximum=2**31 - 1),
    )


class AttributionResources:
    def __init__(self, service: AttributionService, accounts: AccountsService, clock: Clock) -> None:
        self._service = service
        self._accounts = accounts
        self._clock = clock

    def register(self, router: Router) -> None:
        router.add("GET", r"/v1/attribution", self.get, name="/v1/attribution")

    async def get(self, request: Request) -> Response:
        account_id = await require_account(request, self._accounts)
        q = query_params(request)
        fmt = q.get("format") or ("csv" if "text/csv" in (request.getHeader("accept") or "") else "json")
        if fmt not in ("json", "csv"):
            raise ApiError(400, "invalid_parameter", "'format' must be json or csv")
        query = read_query(q, self._clock.seconds())
        try:
            body = await self._service.attribute_rendered(account_id, query, fmt)
        except ValueError as e:  # the models refuse what they cannot do (e.g. options)
            raise ApiError(400, "invalid_parameter", str(e)) from None
        if fmt == "csv":
            return Response(
                200, body, content_type="text/csv; charset=utf-8",
                headers={"Content-Disposition": f'attachment; filename="attribution-{query.stage}-{query.level}.csv"'},
            )
        return Response(200, body)
