"""OutboxService: lead webhook endpoints, and the dispatcher that delivers the outbox.

The dispatcher runs in every ``calltrack serve`` process: each ``poll_seconds`` it claims
due deliveries (oldest first, a bounded number in flight, a bounded share for one endpoint)
and posts them with treq, signed. Nothing on the ingestion path waits for it: events are
rows written with the lead; a CRM that hangs holds a few attempts in flight until their
timeout and nothing else. An attempt's outcome is recorded; a failure is tried again after
an exponential back-off (restarts included: the schedule is in the table), and a delivery
whose attempts run out is 'failed', kept, and can be resent.
"""

from __future__ import annotations

import logging
import secrets
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge
from twisted.internet import defer, error, task
from twisted.web.client import ResponseFailed, ResponseNeverReceived

from calltrack.clock import Clock
from calltrack.config import OutboxConfig
from calltrack.db.pool import DBPool
from calltrack.leads import outbox_store as store
from calltrack.leads import store as leads_store
from calltrack.leads.outbox import backoff, check_target, excerpt, next_delay, read_events, request_headers, retry_after

logger = logging.getLogger(__name__)

_BACKLOG_EVERY = 10.0  # seconds between refreshes of the backlog gauges
_PRUNE_EVERY = 3600.0
_RESPONSE_BYTES = 2048
# A claim lasts the attempt's timeout and this much more, time enough to record the outcome;
# a process that dies mid-attempt delays its deliveries by no more than that.
_RECORD_MARGIN = 10.0
ENDPOINT_STRIKES = 3
ENDPOINT_REST_MAX = 300.0  # of an answer kept for the log; the rest is read and dropped


def _lead_json(conn: Any, account_id: int, lead_id: int) -> dict[str, Any] | None:
    lead = leads_store.get_lead_txn(conn, account_id, lead_id)
    return None if lead is None else lead.to_json()


def new_secret() -> str:
    return "whsec_" + secrets.token_urlsafe(32)


class OutboxService:
    def __init__(
        self, db: DBPool, clock: Clock, config: OutboxConfig | None = None, *, registry: CollectorRegistry | None = None, http: Any = None
    ) -> None:
        """``http``: a treq-like client (``post``); the real one (treq over a persistent
        connection pool on the reactor) is built at start when none is given."""
        self._db = db
        self._clock = clock
        self._config = config or OutboxConfig()
        self.http = http
        self._loop: task.LoopingCall | None = None
        self._ticking = False
        self._more = False
        self._in_flight: dict[int, int] = {}
        # Endpoints failing in a row: (failures, resting until). A dead CRM gets a probe now
        # and then, not an attempt for every new lead (each attempt costs database writes).
        self._failing: dict[int, tuple[int, float]] = {}
        self._last_backlog = float("-inf")
        self._last_prune = float("-inf")
        registry = registry or CollectorRegistry()
        self.attempts = Counter(
            "calltrack_lead_webhook_attempts", "Lead webhook attempts, by outcome (delivered, http_error, timeout, error)",
            ["outcome"], registry=registry,
        )
        self.given_up = Counter("calltrack_lead_webhook_failed", "Lead webhook deliveries failed for good (attempts ran out)", registry=registry)
        self.pending = Gauge("calltrack_lead_webhook_outbox_pending", "Lead webhook deliveries not yet delivered", registry=registry)
        self.oldest_due = Gauge(
            "calltrack_lead_webhook_outbox_oldest_due_seconds", "Age of the oldest lead webhook event that is due and not delivered",
            registry=registry,
        )

    # -- endpoints -----------------------------------------------------------------------------

    async def add(self, account_id: int, url: Any, events: Any, description: str = "") -> tuple[store.Webhook, str]:
        """Register an endpoint (raises InvalidWebhook, OutboxConflict); the secret is only
        returned here."""
        target = check_target(url, allow_private=self._config.allow_private_targets)
        chosen = read_events(events)
        secret = new_secret()
        webhook = await self._db.run(
            "add_lead_webhook", store.add_webhook_txn, account_id, url=target, events=chosen, description=description,
            secret=secret, now=self._clock.seconds(), limit=self._config.max_endpoints_per_account,
        )
        return webhook, secret

    async def list(self, account_id: int) -> list[store.Webhook]:
        return await self._db.run("lead_webhooks", store.list_webhooks_txn, account_id)

    async def get(self, account_id: int, webhook_id: int) -> store.Webhook | None:
        return await self._db.run("lead_webhook", store.get_webhook_txn, account_id, webhook_id)

    async def remove(self, account_id: int, webhook_id: int) -> int:
        return await self._db.run("remove_lead_webhook", store.disable_webhook_txn, account_id, webhook_id, self._clock.seconds())

    async def deliveries(
        self, account_id: int, webhook_id: int, *, status: str | None = None, lead_id: int | None = None, before_id: int | None = None, limit: int = 50
    ) -> list[dict[str, Any]]:
        return await self._db.run(
            "lead_webhook_deliveries", store.deliveries_txn, account_id, webhook_id, status=status, lead_id=lead_id, before_id=before_id, limit=limit
        )

    async def delivery(self, account_id: int, webhook_id: int, delivery_id: int) -> dict[str, Any] | None:
        return await self._db.run("lead_webhook_delivery", store.delivery_txn, account_id, webhook_id, delivery_id)

    async def resend(self, account_id: int, webhook_id: int, delivery_id: int) -> dict[str, Any]:
        found = await self._db.run("resend_lead_webhook", store.resend_txn, account_id, webhook_id, delivery_id, self._clock.seconds())
        if self._loop is not None:  # dispatching here: no need to wait for the next poll
            self.kick()
        return found

    # -- the dispatcher ------------------------------------------------------------------------

    def start(self) -> None:
        if self.http is None:
            self.http = _treq_client(self._config.timeout_seconds)
        self._loop = task.LoopingCall(self.kick)
        self._loop.clock = self._clock  # type: ignore[assignment]
        self._loop.start(self._config.poll_seconds, now=False)

    def stop(self) -> None:
        """Stop claiming; attempts in flight finish or lapse (their rows come due again)."""
        if self._loop is not None and self._loop.running:
            self._loop.stop()
        self._loop = None

    @property
    def in_flight(self) -> int:
        return sum(self._in_flight.values())

    def kick(self) -> None:
        """Look for due deliveries now (the poll calls it; so does a finished attempt when the
        last claim was full, so a backlog drains as fast as the endpoints answer)."""
        if self._ticking:
            self._more = True
            return
        d = defer.ensureDeferred(self.tick())
        d.addErrback(lambda f: logger.error("lead webhook dispatcher: %s", f.getErrorMessage()))

    async def tick(self) -> int:
        """Claim what is due and start sending it; returns how many attempts were started."""
        self._ticking = True
        started = 0
        try:
            now = self._clock.seconds()
            if now - self._last_backlog >= _BACKLOG_EVERY:
                self._last_backlog = now
                pending, oldest = await self._db.run("outbox_backlog", store.backlog_txn, now)
                self.pending.set(pending)
                self.oldest_due.set(oldest)
            if now - self._last_prune >= _PRUNE_EVERY:
                self._last_prune = now
                await self.prune(now)
            room = self._config.max_in_flight - self.in_flight
            if room <= 0:
                return 0
            claims = await self._db.run(
                "claim_lead_webhooks", store.claim_due_txn, now, room,
                hold_seconds=self._config.timeout_seconds + _RECORD_MARGIN, per_webhook=self._config.max_in_flight_per_endpoint,
                in_flight=dict(self._in_flight), resting=[w for w, (_, until) in self._failing.items() if until > now], lead_json=_lead_json,
            )
            for claim in claims:
                self._in_flight[claim.webhook_id] = self._in_flight.get(claim.webhook_id, 0) + 1
                d = defer.ensureDeferred(self._deliver(claim))
                d.addErrback(lambda f, c=claim: logger.error("lead webhook delivery %d: %s", c.delivery_id, f.getErrorMessage()))
                started += 1
            self._more = self._more or len(claims) == room
            return started
        finally:
            self._ticking = False

    async def _deliver(self, claim: store.Claim) -> None:
        try:
            await self._attempt(claim)
        finally:
            left = self._in_flight.get(claim.webhook_id, 1) - 1
            if left > 0:
                self._in_flight[claim.webhook_id] = left
            else:
                self._in_flight.pop(claim.webhook_id, None)
            if self._more and self._loop is not None:
                self._more = False
                self.kick()

    async def _attempt(self, claim: store.Claim) -> None:
        cfg = self._config
        started = self._clock.seconds()
        headers = request_headers(secret=claim.secret, body=claim.body, delivery_id=claim.delivery_id, event=claim.event, attempt=claim.attempt, now=started)
        status: int | None = None
        err: str | None = None
        answer: str | None = None
        asked: float | None = None
        d = defer.ensureDeferred(self._post(claim.url, claim.body, headers))
        timed_out = False

        def expire() -> None:
            # Our own timer rather than addTimeout: cancelling a request in flight fails it
            # with ResponseNeverReceived, not CancelledError, and the log should say "timeout".
            nonlocal timed_out
            timed_out = True
            d.cancel()

        timer = self._clock.callLater(cfg.timeout_seconds, expire)
        try:
            status, raw, retry = await d
            answer = excerpt(raw) or None
            if status in (429, 503):
                asked = retry_after(retry, now=self._clock.seconds())
            if 300 <= status < 400:
                err = "redirects are not followed: register the final URL"
            elif not 200 <= status < 300:
                err = f"HTTP {status}"
            outcome = "delivered" if err is None else "http_error"
        except Exception as e:  # refused, reset, TLS, a bad answer: each is one failed attempt
            if timed_out:
                err, outcome = f"no answer within {cfg.timeout_seconds:g} s", "timeout"
            else:
                err, outcome = _describe(e), "error"
        finally:
            if timer.active():
                timer.cancel()
        ended = self._clock.seconds()
        self.attempts.labels(outcome).inc()
        delivered = err is None
        self._note_endpoint(claim.webhook_id, delivered, ended)
        retry_at = None
        if not delivered and claim.attempt < cfg.max_attempts:
            retry_at = ended + next_delay(claim.attempt, claim.delivery_id, base=cfg.backoff_base_seconds, cap=cfg.backoff_max_seconds, asked=asked)
        new_status = await self._db.run(
            "record_lead_webhook_attempt", store.record_attempt_txn, claim.delivery_id, at=ended, status_code=status, error=err,
            duration_ms=int(round((ended - started) * 1000)), response_excerpt=answer, delivered=delivered, retry_at=retry_at,
        )
        if new_status == "failed":
            self.given_up.inc()
            logger.warning("lead webhook delivery %d to endpoint %d failed for good after %d attempts: %s", claim.delivery_id, claim.webhook_id, claim.attempt, err)

    async def prune(self, now: float) -> int:
        """Forget settled deliveries older than ``keep_days`` (a batch at a time, so the
        writer is never held long)."""
        before = now - self._config.keep_days * 86400.0
        total = 0
        while True:
            n = await self._db.run("prune_lead_webhooks", store.prune_txn, before)
            total += n
            if n < 5000:
                return total

    def _note_endpoint(self, webhook_id: int, delivered: bool, now: float) -> None:
        """After ENDPOINT_STRIKES failures in a row an endpoint rests (its deliveries wait,
        unattempted) for a back-off of its own, at most ENDPOINT_REST_MAX; a success ends it."""
        if delivered:
            self._failing.pop(webhook_id, None)
            return
        failures = self._failing.get(webhook_id, (0, 0.0))[0] + 1
        until = 0.0
        if failures >= ENDPOINT_STRIKES:
            cfg = self._config
            rest = backoff(failures - ENDPOINT_STRIKES + 1, webhook_id, base=cfg.backoff_base_seconds, cap=min(ENDPOINT_REST_MAX, cfg.backoff_max_seconds))
            until = now + rest
        self._failing[webhook_id] = (failures, until)

    async def _post(self, url: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes, str | None]:
        import treq

        response = await self.http.post(url, data=body, headers=headers, allow_redirects=False)
        kept: list[bytes] = []
        size = 0

        def keep(chunk: bytes) -> None:
            nonlocal size
            if size < _RESPONSE_BYTES:
                kept.append(chunk[: _RESPONSE_BYTES - size])
            size += len(chunk)

        try:
            await treq.collect(response, keep)
        except ResponseFailed:
            pass  # the status is what counts; a body cut short changes nothing
        retry = response.headers.getRawHeaders(b"retry-after", [None])[0]
        return int(response.code), b"".join(kept), retry.decode("latin-1") if retry else None


def _describe(e: Exception) -> str:
    if isinstance(e, error.ConnectionRefusedError):
        return "connection refused"
    if isinstance(e, error.DNSLookupError):
        return "the host name does not resolve"
    if isinstance(e, error.ConnectError):
        return f"could not connect: {type(e).__name__}"
    if isinstance(e, (ResponseFailed, ResponseNeverReceived, error.ConnectionLost)):
        return f"the connection broke before an answer: {type(e).__name__}"
    return f"the attempt failed: {type(e).__name__}"


def _treq_client(timeout: float) -> Any:
    from treq.client import HTTPClient
    from twisted.internet import reactor
    from twisted.web.client import Agent, HTTPConnectionPool

    pool = HTTPConnectionPool(reactor, persistent=True)
    pool.maxPersistentPerHost = 4
    return HTTPClient(Agent(reactor, connectTimeout=timeout, pool=pool))
