"""HTTP resources for numbers: the public number endpoint and the account API.

Public (site key, called from visitors' browsers): ``GET|POST|OPTIONS /v1/number``,
``POST|OPTIONS /v1/ping``. Account API (``Authorization: Bearer``): ``/v1/numbers``,
``/v1/numbers/import``, ``/v1/numbers/{id}/retire``, ``/v1/pools``, ``/v1/pools/{id}``,
``/v1/pools/{id}/health``, ``/v1/pools/{id}/simulate``, ``/v1/leases``,
``/v1/leases/{id}/events``.
"""

from __future__ import annotations

from typing import Any

from twisted.web.server import Request

from calltrack.accounts.service import AccountsService
from calltrack.clock import Clock
from calltrack.config import HttpConfig, RateLimitConfig
from calltrack.numbers.bots import is_bot
from calltrack.numbers.inputs import InvalidInput, new_number_from_json, parse_number_csv, pool_settings
from calltrack.numbers.service import NumbersService, SiteContext, clean_visit
from calltrack.numbers.store import Conflict, NotFound
from calltrack.phones import format_national
from calltrack.web import params
from calltrack.web.auth import require_account, require_account_record
from calltrack.web.cors import PREFLIGHT_HEADERS, cors_headers, host_allowed, host_of
from calltrack.web.errors import ApiError
from calltrack.web.ratelimit import RateLimiter
from calltrack.web.resource import Response, Router, body_bytes, json_body, query_params, request_params, client_address

_NO_STORE = {"Cache-Control": "no-store"}


class PublicSiteGate:
    """What every browser-facing endpoint checks before its work: the site key names a site
    (404), the page is on one of the site's domains (403), and neither the client address nor
    the site is over its rate (429)."""

    def __init__(self, numbers: NumbersService, clock: Clock, http: HttpConfig, limits: RateLimitConfig) -> None:
        self._numbers = numbers
        self._clock = clock
        self._http = http
        self._per_ip = RateLimiter(limits.per_ip_per_minute)
        self._per_site = RateLimiter(limits.per_site_per_minute)
        self._new_leases = RateLimiter(limits.new_leases_per_ip_per_minute)

    def may_lease(self, request: Request) -> bool:
        """Whether this client address may take another new lease now."""
        return self._new_leases.available(self._address(request), self._clock.seconds())

    def leased(self, request: Request) -> None:
        self._new_leases.allow(self._address(request), self._clock.seconds())

    def _address(self, request: Request) -> str:
        return client_address(request, trust_forwarded_for=self._http.trust_forwarded_for)

    def _limit(self, request: Request, site_key: str) -> None:
        now = self._clock.seconds()
        ip = client_address(request, trust_forwarded_for=self._http.trust_forwarded_for)
        for limiter, key, what in ((self._per_ip, ip, "address"), (self._per_site, site_key, "site")):
            wait = limiter.allow(key, now)
            if wait:
                raise ApiError(
                    429,
                    "rate_limited",
                    f"too many requests from this {what}; retry later",
                    details={"retry_after": int(wait) + 1},
                    headers={"Retry-After": str(int(wait) + 1)},
                )

    async def open(self, request: Request, site_key: Any, page_url: Any = None) -> tuple[SiteContext, dict[str, str]]:
        """The site, and the CORS headers to answer with."""
        key = params.string(site_key, "site", max_length=100)
        assert key is not None
        self._limit(request, key)
        ctx = await self._numbers.site_context(key)
        if ctx is None:
            raise ApiError(404, "unknown_site", "no site has this site key")
        origin = request.getHeader("origin")
        page_origin = origin
        if origin is not None and (host_of(origin) or "").endswith(".cdn.ampproject.org"):
            # An AMP page served from Google's AMP cache: the page's own origin is the one
            # AMP names; it must be allowed, and the cache's Origin is echoed for CORS.
            page_origin = query_params(request).get("__amp_source_origin") or origin
        host = host_of(page_origin) or host_of(page_url if isinstance(page_url, str) else None) or host_of(request.getHeader("referer"))
        if host is not None and not host_allowed(host, ctx.site.allowed_domains):
            raise ApiError(403, "domain_not_allowed", f"{host} is not one of this site's allowed domains")
        headers = dict(_NO_STORE)
        if origin and origin != "null":
            headers.update(cors_headers(origin))
        return ctx, headers

    async def preflight(self, request: Request) -> Response:
        site_key = query_params(request).get("site")
        origin = request.getHeader("origin")
        if not site_key or not origin:
            raise ApiError(400, "bad_preflight", "a preflight needs ?site=<site key> and an Origin header")
        _, headers = await self.open(request, site_key)
        headers.update(PREFLIGHT_HEADERS)
        return Response(204, None, headers=headers)


class NumberResources:
    def __init__(self, numbers: NumbersService, accounts: AccountsService, gate: PublicSiteGate, clock: Clock) -> None:
        self._numbers = numbers
        self._accounts = accounts
        self._gate = gate
        self._clock = clock

    def register(self, router: Router) -> None:
        router.add("GET", r"/v1/number", self.number, name="/v1/number")
        router.add("POST", r"/v1/number", self.number, name="/v1/number")
        router.add("OPTIONS", r"/v1/number", self.preflight, name="/v1/number")
        router.add("POST", r"/v1/ping", self.ping, name="/v1/ping")
        router.add("OPTIONS", r"/v1/ping", self.preflight, name="/v1/ping")
        router.add("GET", r"/v1/numbers", self.list_numbers)
        router.add("POST", r"/v1/numbers", self.add_numbers)
        router.add("POST", r"/v1/numbers/import", self.import_numbers)
        router.add("POST", r"/v1/numbers/(?P<number_id>\d+)/retire", self.retire_number, name="/v1/numbers/{id}/retire")
        router.add("GET", r"/v1/pools", self.list_pools)
        router.add("POST", r"/v1/pools", self.create_pool)
        router.add("GET", r"/v1/pools/(?P<pool_id>\d+)", self.get_pool, name="/v1/pools/{id}")
        router.add("PATCH", r"/v1/pools/(?P<pool_id>\d+)", self.update_pool, name="/v1/pools/{id}")
        router.add("GET", r"/v1/pools/(?P<pool_id>\d+)/health", self.pool_health, name="/v1/pools/{id}/health")
        router.add("GET", r"/v1/pools/(?P<pool_id>\d+)/simulate", self.simulate_pool, name="/v1/pools/{id}/simulate")
        router.add("GET", r"/v1/leases", self.list_leases)
        router.add("GET", r"/v1/leases/(?P<lease_id>\d+)/events", self.lease_events, name="/v1/leases/{id}/events")

    # -- public ------------------------------------------------------------------------------

    async def preflight(self, request: Request) -> Response:
        return await self._gate.preflight(request)

    async def number(self, request: Request) -> Response:
        p = request_params(request)
        ctx, headers = await self._gate.open(request, p.get("site"), p.get("url"))
        vid = params.visitor_id(p.get("vid"), "vid")
        sid = params.visitor_id(p.get("sid"), "sid")
        visit = clean_visit(dict(p, vid=vid, sid=sid))
        bot = is_bot(request.getHeader("user-agent"))
        if str(p.get("consent", "")).lower() in ("0", "false", "no"):
            answer = self._numbers.anonymous_number(ctx, visit, bot=bot)
        else:
            answer = await self._numbers.number_for_visit(ctx, visit, bot=bot, may_lease=lambda: self._gate.may_lease(request))
            if answer.outcome == "leased":
                self._gate.leased(request)
        # AMP's amp-call-tracking asks with __amp_source_origin and wants it echoed back.
        amp_origin = p.get("__amp_source_origin")
        if isinstance(amp_origin, str) and host_of(amp_origin):
            host = host_of(amp_origin)
            assert host is not None
            if not host_allowed(host, ctx.site.allowed_domains):
                raise ApiError(403, "domain_not_allowed", f"{host} is not one of this site's allowed domains")
            headers["AMP-Access-Control-Allow-Source-Origin"] = amp_origin
            headers["Access-Control-Expose-Headers"] = "AMP-Access-Control-Allow-Source-Origin"
        return Response(200, _with_site_number(answer.to_json(), ctx), headers=headers)

    async def ping(self, request: Request) -> Response:
        p = request_params(request)
        ctx, headers = await self._gate.open(request, p.get("site"), p.get("url"))
        vid = params.visitor_id(p.get("vid"), "vid")
        if vid is None:
            raise ApiError(400, "missing_parameter", "'vid' is required")
        sid = params.visitor_id(p.get("sid"), "sid")
        if is_bot(request.getHeader("user-agent")):
            return Response(200, {"lease": False}, headers=headers)
        answer = await self._numbers.ping(ctx, vid, sid)
        return Response(200, _with_site_number(answer.to_json(), ctx), headers=headers)

    # -- numbers -----------------------------------------------------------------------------

    async def _account(self, request: Request) -> Any:
        return await require_account_record(request, self._accounts)

    async def list_numbers(self, request: Request) -> Response:
        account_id = await require_account(request, self._accounts)
        q = query_params(request)
        pool_id = params.integer(q.get("pool_id"), "pool_id", default=0, minimum=0) or None
        include_retired = q.get("include_retired", "false").lower() in ("1", "true", "yes")
        numbers = await self._numbers.list_numbers(account_id, pool_id=pool_id, include_retired=include_retired)
        return Response(200, {"numbers": [n.to_json() for n in numbers]})

    async def _forwarding_context(self, account: Any, site_id: Any) -> tuple[dict[str, Any], dict[int, Any], str | None]:
        pools = await self._numbers.list_pools(account.id)
        default_forward = None
        if site_id is not None:
            sid = params.integer(site_id, "site_id", minimum=1)
            site = await self._accounts.get_site(account.id, sid)
            if site is None:
                raise ApiError(404, "not_found", f"site {sid} not found")
            default_forward = site.forward_to
        return {p.name: p for p in pools}, {p.id: p for p in pools}, default_forward

    async def add_numbers(self, request: Request) -> Response:
        account = await self._account(request)
        body = json_body(request)
        items = body.get("numbers") if "numbers" in body else [body]
        if not isinstance(items, list) or not items or not all(isinstance(i, dict) for i in items):
            raise ApiError(400, "invalid_body", "send one number object, or {\"numbers\": [objects]}")
        if len(items) > 1000:
            raise ApiError(400, "too_many", "at most 1000 numbers per request; use /v1/numbers/import for more")
        _, by_id, default_forward = await self._forwarding_context(account, body.get("site_id"))
        site_forwards = {s.id: s.forward_to for s in await self._accounts.list_sites(account.id)}
        new = []
        for i, item in enumerate(items):
            forward = default_forward
            if isinstance(item.get("pool_id"), int) and item["pool_id"] in by_id:
                forward = forward or site_forwards.get(by_id[item["pool_id"]].site_id)
            try:
                new.append(new_number_from_json(item, region=account.default_region, pools_by_id=by_id, default_forward=forward))
            except InvalidInput as e:
                raise ApiError(400, "invalid_number", f"numbers[{i}]: {e}" if len(items) > 1 else str(e)) from None
        try:
            added = await self._numbers.add_numbers(account.id, new)
        except Conflict as e:
            raise ApiError(409, "conflict", str(e)) from None
        return Response(201, {"numbers": [n.to_json() for n in added]})

    async def import_numbers(self, request: Request) -> Response:
        """A CSV body (header: number, forward_to, pool, source, medium, campaign, keyword,
        placement); ``?site_id=`` gives the forwarding number for rows without one."""
        account = await self._account(request)
        raw = body_bytes(request)
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise ApiError(400, "malformed_body", "the CSV is not UTF-8") from None
        by_name, _, default_forward = await self._forwarding_context(account, query_params(request).get("site_id"))
        try:
            new = parse_number_csv(text, region=account.default_region, pools_by_name=by_name, default_forward=default_forward)
        except InvalidInput as e:
            raise ApiError(400, "invalid_csv", str(e)) from None
        try:
            added = await self._numbers.add_numbers(account.id, new)
        except Conflict as e:
            raise ApiError(409, "conflict", str(e)) from None
        return Response(201, {"imported": len(added), "numbers": [n.to_json() for n in added]})

    async def retire_number(self, request: Request, number_id: str) -> Response:
        account_id = await require_account(request, self._accounts)
        try:
            number = await self._numbers.retire_number(account_id, params.path_id(number_id, "number"))
        except NotFound:
            raise ApiError(404, "not_found", f"number {number_id} not found") from None
        return Response(200, number.to_json())

    # -- pools -------------------------------------------------------------------------------

    async def list_pools(self, request: Request) -> Response:
        account_id = await require_account(request, self._accounts)
        site_id = params.integer(query_params(request).get("site_id"), "site_id", default=0, minimum=0) or None
        pools = await self._numbers.list_pools(account_id, site_id)
        return Response(200, {"pools": [p.to_json() for p in pools]})

    async def create_pool(self, request: Request) -> Response:
        account = await self._account(request)
        try:
            settings = pool_settings(json_body(request), region=account.default_region, creating=True)
        except InvalidInput as e:
            raise ApiError(400, "invalid_pool", str(e)) from None
        site = await self._accounts.get_site(account.id, settings.pop("site_id"))
        if site is None:
            raise ApiError(404, "not_found", "site not found")
        try:
            pool = await self._numbers.create_pool(account.id, site, **settings)
        except Conflict as e:
            raise ApiError(409, "conflict", str(e)) from None
        return Response(201, pool.to_json())

    async def get_pool(self, request: Request, pool_id: str) -> Response:
        account_id = await require_account(request, self._accounts)
        try:
            pool = await self._numbers.get_pool(account_id, params.path_id(pool_id, "pool"))
        except NotFound:
            raise ApiError(404, "not_found", f"pool {pool_id} not found") from None
        return Response(200, pool.to_json())

    async def update_pool(self, request: Request, pool_id: str) -> Response:
        account = await self._account(request)
        try:
            changes = pool_settings(json_body(request), region=account.default_region, creating=False)
        except InvalidInput as e:
            raise ApiError(400, "invalid_pool", str(e)) from None
        try:
            pool = await self._numbers.update_pool(account.id, params.path_id(pool_id, "pool"), changes)
        except NotFound:
            raise ApiError(404, "not_found", f"pool {pool_id} not found") from None
        except Conflict as e:
            raise ApiError(409, "conflict", str(e)) from None
        return Response(200, pool.to_json())

    def _window(self, q: dict[str, str], default_days: float) -> tuple[float, float]:
        now = self._clock.seconds()
        until = params.timestamp(q.get("until"), "until", default=now)
        since = params.timestamp(q.get("since"), "since", default=until - default_days * 86400)
        if since >= until:
            raise ApiError(400, "invalid_parameter", "'since' must be before 'until'")
        if until - since > 366 * 86400:
            raise ApiError(400, "invalid_parameter", "the window may span at most 366 days")
        return since, until

    async def pool_health(self, request: Request, pool_id: str) -> Response:
        account_id = await require_account(request, self._accounts)
        q = query_params(request)
        since, until = self._window(q, 7)
        step = params.integer(q.get("step"), "step", default=3600, minimum=60, maximum=86400)
        if (until - since) / step > 10_000:
            raise ApiError(400, "invalid_parameter", "the window holds more than 10000 steps; use a larger 'step'")
        try:
            pool, health = await self._numbers.pool_health(account_id, params.path_id(pool_id, "pool"), since=since, until=until, step=step)
        except NotFound:
            raise ApiError(404, "not_found", f"pool {pool_id} not found") from None
        return Response(200, health_json(pool, health, since, until, step))

    async def simulate_pool(self, request: Request, pool_id: str) -> Response:
        account_id = await require_account(request, self._accounts)
        q = query_params(request)
        since, until = self._window(q, 7)
        size = params.integer(q.get("size"), "size", minimum=0, maximum=100_000)
        hold = params.integer(q.get("hold_seconds"), "hold_seconds", default=0, minimum=0, maximum=7 * 86400) or None
        try:
            pool, result = await self._numbers.simulate_pool(
                account_id, params.path_id(pool_id, "pool"), size=size, hold_seconds=hold, since=since, until=until
            )
        except NotFound:
            raise ApiError(404, "not_found", f"pool {pool_id} not found") from None
        return Response(200, simulation_json(pool, result, since, until))

    # -- leases ------------------------------------------------------------------------------

    async def list_leases(self, request: Request) -> Response:
        account_id = await require_account(request, self._accounts)
        q = query_params(request)
        filters: dict[str, Any] = {"limit": params.integer(q.get("limit"), "limit", default=100, minimum=1, maximum=1000)}
        if q.get("pool_id"):
            filters["pool_id"] = params.integer(q.get("pool_id"), "pool_id", minimum=1)
        if q.get("active_at"):
            filters["active_at"] = params.timestamp(q.get("active_at"), "active_at", default=0)
        if q.get("number"):
            filters["number"] = params.string(q.get("number"), "number", max_length=20)
        leases = await self._numbers.leases(account_id, **filters)
        return Response(200, {"leases": [lease.to_json() for lease in leases]})

    async def lease_events(self, request: Request, lease_id: str) -> Response:
        account_id = await require_account(request, self._accounts)
        events = await self._numbers.lease_events(account_id, params.path_id(lease_id, "lease"))
        if not events:
            raise ApiError(404, "not_found", f"lease {lease_id} not found")
        return Response(
            200,
            {"lease_id": params.path_id(lease_id, "lease"), "events": [{"kind": k, "ts": ts, "expires_at": exp} for k, ts, exp in events]},
        )


def _with_site_number(body: dict[str, Any], ctx: SiteContext) -> dict[str, Any]:
    """The site's own number too: the one ct.js looks for on the page."""
    body["siteNumber"] = ctx.site.own_number
    body["siteFormattedNumber"] = format_national(ctx.site.own_number)
    return body


def health_json(pool: Any, health: Any, since: float, until: float, step: float) -> dict[str, Any]:
    return {
        "pool": pool.to_json(),
        "since": since,
        "until": until,
        "step": step,
        "size": health.size,
        "peak_concurrent": health.peak_concurrent,
        "exhausted": health.exhausted,
        "leases": health.leases,
        "busiest_hour_arrivals": health.busiest_hour_arrivals,
        "mean_lease_seconds": round(health.mean_lease_seconds, 1),
        "recommended_size": health.recommended_size,
        "utilisation": [
            {"start": p.start, "peak_leases": p.peak_leases, "utilisation": round(p.utilisation, 4)} for p in health.series
        ],
    }


def simulation_json(pool: Any, result: Any, since: float, until: float) -> dict[str, Any]:
    return {
        "pool": pool.to_json(),
        "since": since,
        "until": until,
        "size": result.size,
        "hold_seconds": result.hold_seconds,
        "cooldown_seconds": result.cooldown_seconds,
        "requests": result.requests,
        "visitors": result.visitors,
        "exhausted_requests": result.exhausted_requests,
        "exhausted_share": round(result.exhausted_share, 6),
        "peak_concurrent": result.peak_concurrent,
    }
