"""TelephonyService: verified call events in, one call row each, matched and tied to leads.

Resources verify and parse a delivery with the adapters, then hand the event here. Events go
through one group-commit queue (see db/pool.py): a burst of webhooks costs one commit, and
each delivery is acknowledged only after the batch carrying it has committed.

Secrets are read from the database and kept for a short while in memory (signature checks
happen on every webhook); a secret added by the CLI is found on the first miss, and a revoked
one stops working within :data:`CREDENTIALS_TTL` seconds.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Iterable, Sequence
from typing import Any

from prometheus_client import CollectorRegistry, Counter

from calltrack.accounts.service import AccountsService
from calltrack.clock import Clock
from calltrack.config import LeadsConfig
from calltrack.db.pool import DBPool
from calltrack.leads.contacts import Caller, read_caller
from calltrack.telephony import store
from calltrack.telephony.events import CallEvent
from calltrack.telephony.store import CallRecord, Credential, Delivery, Ingested, LeadRules

logger = logging.getLogger(__name__)

CREDENTIALS_TTL = 30.0
PROVIDERS_WITH_SECRETS = ("twilio", "telnyx", "pbx")


def lead_rules(config: LeadsConfig) -> LeadRules:
    return LeadRules(
        repeat_window=config.repeat_window_days * 86400.0,
        repeat_caller_window=config.repeat_caller_days * 86400.0,
        spam_callers_per_lease=config.spam_callers_per_lease,
        spam_short_calls_per_day=config.spam_short_calls_per_day,
        spam_short_call_seconds=config.spam_short_call_seconds,
    )


class TelephonyMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.deliveries = Counter(
            "calltrack_webhook_deliveries",
            "Call webhook deliveries by provider and outcome (stored, duplicate, bad_signature, invalid, ignored)",
            ["provider", "outcome"],
            registry=registry,
        )
        self._children: dict[tuple[str, str], Any] = {}

    def count(self, provider: str, outcome: str) -> None:
        child = self._children.get((provider, outcome))
        if child is None:  # labels() looks the child up under a lock: once per pair is enough
            child = self._children[(provider, outcome)] = self.deliveries.labels(provider, outcome)
        child.inc()


class TelephonyService:
    def __init__(
        self,
        db: DBPool,
        clock: Clock,
        accounts: AccountsService,
        leads_config: LeadsConfig,
        *,
        registry: CollectorRegistry,
    ) -> None:
        self._db = db
        self._clock = clock
        self._accounts = accounts
        self._rules = lead_rules(leads_config)
        self._queue = db.batch_queue("ingest_call_events", store.ingest_batch_txn)
        self._credentials: list[Credential] = []
        self._credentials_at = float("-inf")
        self._regions: dict[int, str] = {}
        self.metrics = TelephonyMetrics(registry)
        # Told of every lead a call touched, to score it off the hot path (app.py wires it).
        self.scoring: Any = None

    # -- secrets ---------------------------------------------------------------------------

    async def _all_credentials(self, *, refresh: bool = False) -> list[Credential]:
        now = self._clock.seconds()
        if refresh or now - self._credentials_at > CREDENTIALS_TTL:
            self._credentials = await self._db.run("active_credentials", store.active_credentials_txn)
            self._credentials_at = now
        return self._credentials

    async def twilio_credentials(self, account_sid: str) -> list[Credential]:
        """The Twilio auth tokens registered for this AccountSid (rotation may add a second)."""
        found = [c for c in await self._all_credentials() if c.provider == "twilio" and c.provider_account == account_sid]
        if not found and self._clock.seconds() - self._credentials_at > 1.0:
            found = [c for c in await self._all_credentials(refresh=True) if c.provider == "twilio" and c.provider_account == account_sid]
        return found

    async def candidate_credentials(self, provider: str, called_raw: str | None) -> list[Credential]:
        """Secrets that may have signed a delivery to ``called_raw``: the owning account's when
        the number is one of ours, else every account's for that provider (the signature,
        checked against each, tells which tenant sent it)."""
        creds = [c for c in await self._all_credentials() if c.provider == provider]
        if not creds and self._clock.seconds() - self._credentials_at > 1.0:
            creds = [c for c in await self._all_credentials(refresh=True) if c.provider == provider]
        if called_raw:
            owner = await self._owner_of(called_raw)
            if owner is not None:
                owned = [c for c in creds if c.account_id == owner]
                if owned:
                    return owned
        return creds

    async def _owner_of(self, called_raw: str) -> int | None:
        """The account owning a dialled number; a national-format one is tried in every
        region accounts use, in a fixed order, until one reads as a number some account has."""
        tried: set[str] = set()
        for region in sorted({"US", *self._regions.values()}):
            e164 = read_caller(called_raw, region).e164
            if e164 is None or e164 in tried:
                continue
            tried.add(e164)
            owner = await self._db.run("account_of_number", store.account_of_number_txn, e164)
            if owner is not None:
                return owner
        return None

    async def resolve_account(self, provider: str, account_ids: list[int], called_raw: str | None, call_refs: Sequence[str]) -> int | None:
        """Which of ``account_ids`` (all of whose secrets verified a delivery) it belongs to."""
        if len(account_ids) == 1:
            return account_ids[0]
        if called_raw:
            owner = await self._owner_of(called_raw)
            if owner in account_ids:
                return owner
        if call_refs:
            holders = await self._db.run("accounts_with_call", store.accounts_with_call_txn, provider, list(call_refs))
            among = [a for a in holders if a in account_ids]
            if len(among) == 1:
                return among[0]
        return None

    async def add_credential(
        self, account_id: int, provider: str, *, provider_account: str | None = None, secret: str | None = None, record_calls: bool = False
    ) -> Credential:
        """Register a provider secret for an account; for 'pbx' a new one is made when none is given."""
        if provider not in PROVIDERS_WITH_SECRETS:
            raise ValueError(f"provider must be one of {', '.join(PROVIDERS_WITH_SECRETS)}")
        if provider == "twilio" and not provider_account:
            raise ValueError("a Twilio credential needs the AccountSid it belongs to")
        if provider == "pbx" and not secret:
            secret = "whsec_" + secrets.token_urlsafe(32)
        if not secret:
            raise ValueError("the secret (auth token or public key) is required")
        cred = await self._db.run(
            "add_credential", store.add_credential_txn, account_id, provider=provider, provider_account=provider_account,
            secret=secret, record_calls=record_calls, now=self._clock.seconds(),
        )
        self._credentials_at = float("-inf")
        return cred

    async def credentials_of(self, account_id: int) -> list[Credential]:
        return [c for c in await self._all_credentials(refresh=True) if c.account_id == account_id]

    async def block_caller(self, account_id: int, phone: str, reason: str = "") -> int:
        """Block a caller; returns how many of their leads became spam."""
        return await self._db.run("block_caller", store.block_caller_txn, account_id, phone, reason, self._clock.seconds())

    async def revoke_credential(self, account_id: int, credential_id: int) -> bool:
        done = await self._db.run("revoke_credential", store.revoke_credential_txn, account_id, credential_id, self._clock.seconds())
        self._credentials_at = float("-inf")
        return done

    # -- events ----------------------------------------------------------------------------

    async def _region(self, account_id: int) -> str:
        region = self._regions.get(account_id)
        if region is None:
            account = await self._accounts.get_account(account_id)
            region = account.default_region if account is not None else "US"
            self._regions[account_id] = region
        return region

    def delivery(self, account_id: int, event: CallEvent, region: str, received_at: float) -> Delivery:
        caller: Caller | None = read_caller(event.caller_raw, region) if event.caller_raw is not None else None
        called = read_caller(event.called_raw, region).e164 if event.called_raw else None
        return Delivery(account_id, event, caller, called, received_at, self._rules)

    async def ingest(self, account_id: int, event: CallEvent) -> Ingested:
        """Store the event once and apply it; returns after the commit."""
        region = await self._region(account_id)
        delivery = self.delivery(account_id, event, region, self._clock.seconds())
        result: Ingested = await self._db.run_batched(self._queue, delivery)
        self.metrics.count(event.provider, "duplicate" if result.duplicate else "stored")
        if not result.duplicate and result.call.lead_id is not None and self.scoring is not None:
            self.scoring.mark_dirty(account_id, result.call.lead_id)
        call = result.call
        if result.matched_now and call.match_method == "unmatched" and call.number_id is None and event.called_raw:
            logger.warning(
                "call %s to %s matched no tracking number of account %d; stored unmatched, forwarded to %s",
                call.id, call.tracking_number or event.called_raw[:40], account_id, call.forwarded_to or "nobody (hung up)",
                extra={"call_id": call.id, "account_id": account_id},
            )
        return result

    def ingest_many_sync(self, account_id: int, region: str, events: Iterable[CallEvent], *, now: float, keep: bool = True) -> Any:
        """For the CLI (never the reactor): a bulk import, one transaction per 500 events.

        Returns every result, or with ``keep=False`` only the counts (imported, duplicates,
        {match method: count}), so a long import holds no more than one chunk in memory."""
        out: list[Ingested] = []
        imported = duplicates = 0
        methods: dict[str, int] = {}
        chunk: list[Delivery] = []

        def flush() -> None:
            nonlocal imported, duplicates
            for r in self._db.run_sync("import_calls", store.ingest_batch_txn, chunk):
                if keep:
                    out.append(r)
                if r.duplicate:
                    duplicates += 1
                else:
                    imported += 1
                    method = r.call.match_method or "none"
                    methods[method] = methods.get(method, 0) + 1
            chunk.clear()

        for event in events:
            chunk.append(self.delivery(account_id, event, region, now))
            if len(chunk) == 500:
                flush()
        if chunk:
            flush()
        return out if keep else (imported, duplicates, methods)

    async def record_calls(self, account_id: int) -> bool:
        return any(c.record_calls for c in await self._all_credentials() if c.account_id == account_id)

    # -- reading ---------------------------------------------------------------------------

    async def get_call(self, account_id: int, call_id: int) -> tuple[CallRecord, dict[str, Any], list[dict[str, Any]]] | None:
        return await self._db.run("get_call", store.get_call_txn, account_id, call_id)

    async def list_calls(self, account_id: int, **filters: Any) -> list[CallRecord]:
        return await self._db.run("list_calls", store.list_calls_txn, account_id, **filters)
