"""NumbersService: tracking numbers for visitors, pools and their health.

The number endpoint's two paths:

- a request that needs the database (a new visitor, new tags, a lease this process has not
  confirmed lately) goes through group commit (:func:`store.visit_batch_txn`) and is answered
  after its batch commits;
- a returning visitor whose lease this process confirmed in the database less than
  ``renew_write_interval_seconds`` ago is answered from memory, with no database round trip.
  The lease in the database then runs at least ``hold - renew_write_interval`` past the
  visitor's last request, and a number is never reused within that interval of its lease's
  end (the effective cool-down is at least the interval), so another process can never hand
  the number to someone else while this one still answers it from memory.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import secrets
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge
from twisted.internet import defer, task
from twisted.python.failure import Failure

from calltrack.accounts.store import Site, site_by_key_txn
from calltrack.clock import Clock
from calltrack.compute import ComputePool
from calltrack.config import NumbersConfig
from calltrack.db.pool import DBPool
from calltrack.metrics import ReactorCounter
from calltrack.numbers import sizing, store
from calltrack.numbers.channels import CLICK_IDS, UTM_FIELDS, derive_channel, referrer_host
from calltrack.numbers.rules import PoolRules, VisitFacts, choose_pool, choose_static
from calltrack.numbers.store import NewNumber, Pool, VisitIn, VisitOut
from calltrack.numbers.inputs import URL_MAX, TAG_MAX, clean_text
from calltrack.phones import format_national

logger = logging.getLogger(__name__)

_SITE_CACHE_SECONDS = 10.0
_MAX_CACHED_VISITORS = 200_000


@dataclass(frozen=True)
class SiteContext:
    site: Site
    pools: tuple[Pool, ...]
    own_host: str
    loaded_at: float
    statics: tuple[store.TrackingNumber, ...] = ()


@dataclass(frozen=True)
class Visit:
    """One number request as the resource parsed it."""

    vid: str | None
    sid: str | None
    url: str | None = None
    referrer: str | None = None
    tags: tuple[tuple[str, str], ...] = ()  # utm_* present in the request
    click_ids: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class NumberAnswer:
    phone_number: str
    ttl: int
    vid: str | None
    sid: str | None
    outcome: str  # leased | renewed | cached | exhausted | no_pool | bot | no_lease | anonymous

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "phoneNumber": self.phone_number,
            "formattedPhoneNumber": format_national(self.phone_number),
            "ttl": self.ttl,
        }
        if self.sid is not None:
            body["sid"] = self.sid
        if self.vid is not None:
            body["vid"] = self.vid
        body["lease"] = self.outcome in ("leased", "renewed", "cached")
        return body


@dataclass
class _Held:
    """This process's memory of a visitor's open lease."""

    e164: str
    lease_id: int
    pool_id: int
    db_expires_at: float
    confirmed_at: float
    # Where the visitor's last request said it came from (touch_of): a request that says the
    # same brings no new touchpoint, and is answered from here.
    touch: tuple[Any, ...]
    hold_seconds: int
    # How long this memory may answer without the database: the renewal interval, but never
    # longer than the pool's cool-down (a pool made when the interval was shorter).
    trust_seconds: float


_random_block = bytearray()


def new_visitor_id() -> str:
    """16 URL-safe characters (96 random bits), from a block of random bytes drawn 4 KiB at a
    time: one system call for hundreds of ids instead of one each."""
    global _random_block
    if len(_random_block) < 12:
        _random_block = bytearray(secrets.token_bytes(4096))
    chunk = bytes(_random_block[:12])
    del _random_block[:12]
    return base64.urlsafe_b64encode(chunk).decode("ascii")


def touch_signature(sid: str, visit: Visit, referrer_domain: str) -> str:
    parts = [sid, referrer_domain]
    parts += [f"{k}={v}" for k, v in sorted(visit.tags)]
    parts += [f"{k}={v}" for k, v in sorted(visit.click_ids)]
    return hashlib.blake2b("\x1f".join(parts).encode("utf-8"), digest_size=16).hexdigest()


class NumberMetrics:
    def __init__(self, registry: CollectorRegistry, db: DBPool) -> None:
        # Counted on the reactor thread, once per request: no lock (calltrack/metrics.py).
        self.requests = ReactorCounter("calltrack_number_requests", "Number requests by outcome", ["outcome"], registry=registry)
        self.exhausted = Counter(
            "calltrack_pool_exhaustions", "Visitors who found their pool without a free number", ["pool_id"], registry=registry
        )
        self.expired = Counter("calltrack_leases_expired", "Leases closed by the sweeper", registry=registry)
        self.open_leases = Gauge(
            "calltrack_leases_open", "Leases holding a number, all processes (as of this process's last sweep)", registry=registry
        )
        depth = Gauge("calltrack_db_queue_depth", "Writes waiting for group commit", registry=registry)
        depth.set_function(db.queue_depth)


    def count(self, outcome: str) -> None:
        self.requests.inc(outcome)


class NumbersService:
    def __init__(
        self, db: DBPool, clock: Clock, config: NumbersConfig, *, registry: CollectorRegistry, compute: ComputePool
    ) -> None:
        self._db = db
        self._compute = compute
        self._clock = clock
        self._config = config
        self._metrics = NumberMetrics(registry, db)
        self._visits = db.batch_queue("visit_batch", store.visit_batch_txn)
        # site key -> (context or None for an unknown key, when loaded)
        self._sites: dict[str, tuple[SiteContext | None, float]] = {}
        self._loading: dict[str, list[defer.Deferred[SiteContext | None]]] = {}
        self._site_generation = 0
        self._held: OrderedDict[tuple[int, str], _Held] = OrderedDict()
        self._sweeper: task.LoopingCall | None = None

    # -- lifecycle --------------------------------------------------------------------------

    def start(self) -> None:
        self._sweeper = task.LoopingCall(self._sweep)
        self._sweeper.clock = self._clock  # type: ignore[assignment]
        self._sweeper.start(self._config.sweep_interval_seconds, now=False)

    def stop(self) -> None:
        if self._sweeper is not None and self._sweeper.running:
            self._sweeper.stop()

    async def _sweep(self) -> None:
        try:
            await self.sweep_now()
        except Exception:
            logger.exception("lease sweep failed; it runs again in %ss", self._config.sweep_interval_seconds)

    async def sweep_now(self) -> int:
        """Close the leases whose hold has passed; refresh the open-lease gauge."""
        n, still_open = await self._db.run("expire_leases", _sweep_txn, self._clock.seconds())
        self._metrics.open_leases.set(still_open)
        if n:
            self._metrics.expired.inc(n)
            logger.debug("closed %d expired leases", n)
        return n

    # -- sites ------------------------------------------------------------------------------

    async def site_context(self, site_key: str) -> SiteContext | None:
        """The site and its pools (None for an unknown key), from a cache.

        An entry older than a few seconds is still answered while one reload runs in the
        background (pool changes made by another process show within that time); requests
        for a key not yet cached wait for a single shared load, so a burst never turns into
        a burst of identical queries.
        """
        cached = self._sites.get(site_key)
        if cached is not None:
            ctx, loaded_at = cached
            if self._clock.seconds() - loaded_at >= _SITE_CACHE_SECONDS and site_key not in self._loading:
                defer.ensureDeferred(self._load_site_once(site_key)).addErrback(
                    lambda f: logger.error("reloading site %s failed: %s", site_key, f.getErrorMessage())
                )
            return ctx
        return await self._load_site_once(site_key)

    async def _load_site_once(self, site_key: str) -> SiteContext | None:
        waiting = self._loading.get(site_key)
        if waiting is not None:
            d: defer.Deferred[SiteContext | None] = defer.Deferred()
            waiting.append(d)
            return await d
        self._loading[site_key] = []
        generation = self._site_generation
        try:
            loaded = await self._db.run("load_site", _load_site_txn, site_key)
        except Exception:
            failure = Failure()
            for d in self._loading.pop(site_key):
                d.errback(failure)
            raise
        now = self._clock.seconds()
        ctx = None
        if loaded is not None:
            site, pools, statics = loaded
            ctx = SiteContext(site, tuple(pools), _own_host(site), now, tuple(statics))
        if generation == self._site_generation:  # nothing changed while we loaded
            if len(self._sites) > 10_000:
                self._sites.clear()
            self._sites[site_key] = (ctx, now)
        for d in self._loading.pop(site_key):
            d.callback(ctx)
        return ctx

    def forget_site(self, site_id: int | None = None) -> None:
        self._site_generation += 1
        if site_id is None:
            self._sites.clear()
        else:
            self._sites = {k: v for k, v in self._sites.items() if v[0] is None or v[0].site.id != site_id}

    # -- the number endpoint ----------------------------------------------------------------

    def _ttl(self, pool: Pool | None) -> int:
        return pool.hold_seconds if pool is not None else self._config.default_hold_seconds

    def _trust_seconds(self) -> float:
        return self._config.renew_write_interval_seconds

    async def number_for_visit(
        self, ctx: SiteContext, visit: Visit, *, bot: bool, may_lease: Callable[[], bool] = lambda: True
    ) -> NumberAnswer:
        """Choose the number a visitor sees, leasing a pool number when a pool serves them.

        ``may_lease() == False``: keep and renew the visitor's lease but take no new number (the
        caller's address is over its new-lease rate). Asked only when the database is asked:
        a visitor answered from memory takes no number.
        """
        site = ctx.site
        if bot:
            self._metrics.count("bot")
            return NumberAnswer(site.own_number, self._config.default_hold_seconds, None, None, "bot")
        new_visitor = visit.vid is None
        vid = visit.vid or new_visitor_id()
        sid = visit.sid or new_visitor_id()
        now = self._clock.seconds()
        ref_host = referrer_host(visit.referrer)
        if _is_own(ref_host, ctx.own_host):
            ref_host = ""  # moving inside the site is not a source
        touch_key = (sid, ref_host, visit.tags, visit.click_ids)
        key = (site.id, vid)
        held = self._held.get(key)
        if held is not None and held.touch == touch_key and now - held.confirmed_at < held.trust_seconds and now < held.db_expires_at:
            self._held.move_to_end(key)
            self._metrics.count("cached")
            return NumberAnswer(held.e164, held.hold_seconds, vid, sid, "cached")

        sig = touch_signature(sid, visit, ref_host)
        tags = dict(visit.tags)
        clicks = dict(visit.click_ids)
        facts = _facts(ctx, visit, ref_host)
        channel = facts.channel
        pool = choose_pool(ctx.pools, facts)
        touch: dict[str, Any] = {
            "account_id": site.account_id,
            "site_id": site.id,
            "vid": vid,
            "sid": sid,
            "ts": now,
            "channel": channel,
            "url": visit.url,
            "referrer": visit.referrer,
            "pool_id": pool.id if pool else None,
            "sig": sig,
        }
        for f in UTM_FIELDS:
            touch[f] = tags.get(f)
        for f in CLICK_IDS:
            touch[f] = clicks.get(f)
        out = await self._db.run_batched(
            self._visits, VisitIn(site.account_id, site.id, vid, sid, now, touch, pool, allocate=may_lease(), new_visitor=new_visitor)
        )
        return self._answer(ctx, key, out, vid, sid, touch_key, pool)

    def anonymous_number(self, ctx: SiteContext, visit: Visit, *, bot: bool) -> NumberAnswer:
        """For a visitor who has not consented to be tracked: no visitor id, nothing stored,
        no lease; a static number that stands for the visit's source when one matches."""
        outcome = "bot" if bot else "anonymous"
        self._metrics.count(outcome)
        number = ctx.site.own_number
        if not bot:
            ref_host = referrer_host(visit.referrer)
            static = choose_static(ctx.statics, _facts(ctx, visit, "" if _is_own(ref_host, ctx.own_host) else ref_host))
            if static is not None:
                number = static.e164
        return NumberAnswer(number, self._config.default_hold_seconds, None, None, outcome)

    async def ping(self, ctx: SiteContext, vid: str, sid: str | None) -> NumberAnswer:
        """Renew the visitor's lease (heartbeat); never takes a new number."""
        now = self._clock.seconds()
        key = (ctx.site.id, vid)
        held = self._held.get(key)
        if held is not None and now - held.confirmed_at < held.trust_seconds and now < held.db_expires_at:
            self._metrics.count("cached")
            return NumberAnswer(held.e164, held.hold_seconds, vid, sid, "cached")
        out = await self._db.run_batched(
            self._visits, VisitIn(ctx.site.account_id, ctx.site.id, vid, sid or "", now, None, None, allocate=False)
        )
        touch_key = held.touch if held is not None else ()
        pool = next((p for p in ctx.pools if p.id == out.pool_id), None)
        return self._answer(ctx, key, out, vid, sid, touch_key, pool)

    def _answer(
        self, ctx: SiteContext, key: tuple[int, str], out: VisitOut, vid: str, sid: str | None, touch_key: tuple[Any, ...], pool: Pool | None
    ) -> NumberAnswer:
        self._metrics.count(out.outcome)
        if out.outcome in ("leased", "renewed"):
            assert out.e164 is not None and out.lease_id is not None and out.expires_at is not None
            hold = pool.hold_seconds if pool is not None else self._config.default_hold_seconds
            self._held[key] = _Held(
                out.e164, out.lease_id, out.pool_id or 0, out.expires_at, self._clock.seconds(), touch_key, hold,
                min(self._trust_seconds(), pool.cooldown_seconds if pool is not None else 0),
            )
            self._held.move_to_end(key)
            if len(self._held) > _MAX_CACHED_VISITORS:
                self._held.popitem(last=False)
            return NumberAnswer(out.e164, hold, vid, sid, out.outcome)
        self._held.pop(key, None)
        if out.outcome == "exhausted":
            self._metrics.exhausted.labels(str(out.pool_id)).inc()
            logger.warning("pool %s is exhausted; visitor %s gets the overflow number", out.pool_id, vid)
            fallback = (pool.overflow_number if pool is not None else None) or ctx.site.own_number
            return NumberAnswer(fallback, self._ttl(pool), vid, sid, "exhausted")
        return NumberAnswer(ctx.site.own_number, self._ttl(pool), vid, sid, out.outcome)

    # -- numbers ----------------------------------------------------------------------------

    async def add_numbers(self, account_id: int, numbers: list[NewNumber]) -> list[store.TrackingNumber]:
        added = await self._db.run("add_numbers", store.add_numbers_txn, account_id, numbers, self._clock.seconds())
        self.forget_site()
        return added

    async def list_numbers(self, account_id: int, *, pool_id: int | None = None, include_retired: bool = False) -> list[store.TrackingNumber]:
        return await self._db.run(
            "list_numbers", store.list_numbers_txn, account_id, pool_id=pool_id, include_retired=include_retired
        )

    async def retire_number(self, account_id: int, number_id: int) -> store.TrackingNumber:
        retired = await self._db.run("retire_number", store.retire_number_txn, account_id, number_id, self._clock.seconds())
        self._held = OrderedDict((k, v) for k, v in self._held.items() if v.e164 != retired.e164)
        return retired

    # -- pools ------------------------------------------------------------------------------

    async def create_pool(
        self,
        account_id: int,
        site: Site,
        *,
        name: str,
        rules: PoolRules,
        priority: int | None = None,
        hold_seconds: int | None = None,
        cooldown_seconds: int | None = None,
        overflow_number: str | None = None,
    ) -> Pool:
        if priority is None:
            # Pools with conditions come before a catch-all pool unless told otherwise; among
            # equals the older pool wins.
            priority = 1000 if rules.matches_all else 100
        pool = await self._db.run(
            "create_pool",
            store.create_pool_txn,
            account_id=account_id,
            site_id=site.id,
            name=name,
            priority=priority,
            rules=rules,
            hold_seconds=hold_seconds or self._config.default_hold_seconds,
            cooldown_seconds=self._effective_cooldown(cooldown_seconds),
            overflow_number=overflow_number,
            now=self._clock.seconds(),
        )
        self.forget_site(site.id)
        return pool

    def _effective_cooldown(self, requested: int | None) -> int:
        wanted = self._config.default_cooldown_seconds if requested is None else requested
        # See the module docstring: never shorter than the in-memory trust interval.
        return max(int(wanted), int(self._config.renew_write_interval_seconds + 0.999))

    async def update_pool(self, account_id: int, pool_id: int, changes: dict[str, Any]) -> Pool:
        if "cooldown_seconds" in changes:
            changes = dict(changes, cooldown_seconds=self._effective_cooldown(changes["cooldown_seconds"]))
        pool = await self._db.run("update_pool", store.update_pool_txn, account_id, pool_id, changes, self._clock.seconds())
        self.forget_site(pool.site_id)
        if pool.retired:
            self._held = OrderedDict((k, v) for k, v in self._held.items() if v.pool_id != pool.id)
        return pool

    async def get_pool(self, account_id: int, pool_id: int) -> Pool:
        return await self._db.run("get_pool", store.get_pool_txn, account_id, pool_id)

    async def list_pools(self, account_id: int, site_id: int | None = None) -> list[Pool]:
        return await self._db.run("list_pools", store.list_pools_txn, account_id, site_id)

    async def leases(self, account_id: int, **filters: Any) -> list[store.LeaseRecord]:
        return await self._db.run("list_leases", store.list_leases_txn, account_id, **filters)

    async def lease_events(self, account_id: int, lease_id: int) -> list[tuple[str, float, float]]:
        return await self._db.run("lease_events", store.lease_events_txn, account_id, lease_id)

    async def pool_health(
        self, account_id: int, pool_id: int, *, since: float, until: float, step: float = 3600.0
    ) -> tuple[Pool, sizing.PoolHealth]:
        pool = await self.get_pool(account_id, pool_id)
        spans, exhausted, size = await self._db.run(
            "pool_intervals", store.pool_intervals_txn, account_id, pool_id, since, until
        )
        health = await self._compute.run(
            sizing.pool_health, spans, exhausted, size=size, cooldown_seconds=pool.cooldown_seconds, since=since, until=until, step=step
        )
        return pool, health

    async def simulate_pool(
        self, account_id: int, pool_id: int, *, size: int, hold_seconds: int | None, since: float, until: float
    ) -> tuple[Pool, sizing.SimulationResult]:
        pool = await self.get_pool(account_id, pool_id)
        visits = await self._db.run("pool_visits", store.pool_visits_txn, account_id, pool_id, since, until)
        result = await self._compute.run(
            sizing.simulate_pool,
            visits,
            size=size,
            hold_seconds=hold_seconds or pool.hold_seconds,
            cooldown_seconds=pool.cooldown_seconds,
        )
        return pool, result


def _is_own(host: str, own_host: str) -> bool:
    return bool(own_host) and (host == own_host or host.endswith("." + own_host))


def _facts(ctx: SiteContext, visit: Visit, ref_host: str) -> VisitFacts:
    tags = dict(visit.tags)
    channel = derive_channel(
        utm_source=tags.get("utm_source"),
        utm_medium=tags.get("utm_medium"),
        referrer=visit.referrer,
        own_host=ctx.own_host,
        click_ids=dict(visit.click_ids),  # type: ignore[arg-type]
    )
    return VisitFacts(
        channel=channel,
        utm_source=(tags.get("utm_source") or "").lower(),
        utm_medium=(tags.get("utm_medium") or "").lower(),
        utm_campaign=(tags.get("utm_campaign") or "").lower(),
        keyword=(tags.get("utm_term") or "").lower(),
        referrer_domain=ref_host,
    )


def _sweep_txn(conn: Any, now: float) -> tuple[int, int]:
    return store.expire_leases_txn(conn, now), store.count_open_leases_txn(conn)


def _own_host(site: Site) -> str:
    return site.allowed_domains[0].lower().removeprefix("www.") if site.allowed_domains else ""


def _load_site_txn(conn: Any, site_key: str) -> tuple[Site, list[Pool], list[store.TrackingNumber]] | None:
    site = site_by_key_txn(conn, site_key)
    if site is None:
        return None
    statics = store.sourced_static_numbers_txn(conn, site.account_id)
    return site, store.active_pools_for_site_txn(conn, site.id), statics


_TAG_NAMES = frozenset(UTM_FIELDS + CLICK_IDS)


def clean_visit(params: dict[str, Any]) -> Visit:
    """Build a Visit from request parameters: tags and ids cut to their column sizes."""
    tags: tuple[tuple[str, str], ...] = ()
    clicks: tuple[tuple[str, str], ...] = ()
    if not _TAG_NAMES.isdisjoint(params):  # most requests carry none of them
        tags = tuple((f, v) for f in UTM_FIELDS if (v := clean_text(params.get(f), TAG_MAX)))
        clicks = tuple((f, v) for f in CLICK_IDS if (v := clean_text(params.get(f), TAG_MAX)))
    return Visit(
        vid=params.get("vid") or None,
        sid=params.get("sid") or None,
        url=clean_text(params.get("url"), URL_MAX),
        referrer=clean_text(params.get("ref"), URL_MAX),
        tags=tags,
        click_ids=clicks,
    )

