"""PrivacyService: retention settings, the retention purge, and erasing a person.

Retention (per account, ``PATCH /v1/account/retention``, ``calltrack account retention``):

- ``recordings_days``: calls that began longer ago lose their recording's address (on the call
  and in its stored deliveries). calltrack keeps only the provider's URL; the recording itself
  lives with the provider, whose own retention setting deletes it there.
- ``callers_days``: a caller number is replaced, on all its calls at once, by a random
  pseudonym once its *latest* call is that old, and those calls lose the caller's name, city
  and region (also in their stored deliveries). A contact's phone goes once the person has had
  no activity for as long.
- ``forms_days``: forms submitted longer ago lose their fields, email, phone, name, company and
  message, and their URL its query string. A contact's email goes once the person has had no
  activity for as long; their name once neither phone nor email is left.

Rows stay, so every count, report and attribution stays the same. Null keeps the data. Visits
(touchpoints) are not part of retention: they hold no name or number, and attribution and the
ad-platform exports read their click ids. Lead notes are sales' own and stay until an erasure.
Settled lead webhook bodies are forgotten after ``[outbox] keep_days`` anyway.

The purge runs in every ``calltrack serve`` process (an hour apart, the first a minute after
start) and on demand (``calltrack retention purge``), in batches of a few hundred rows, one
short transaction each. Processes purging at once change nothing twice: each batch reads only
rows still holding personal data. A process remembers how far each account was purged and
next time reads only what has aged since (a restart reads everything once); the contacts step
runs once a day.

Erasure (``POST /v1/contacts/erase``, ``calltrack contacts erase``): see
``store.erase_person_txn``; one transaction, recorded in ``privacy_erasures`` with the time, the
actor and the counts, and nothing personal.
"""

from __future__ import annotations

import logging
from typing import Any

from prometheus_client import CollectorRegistry, Counter
from twisted.internet import defer, task

from calltrack.accounts.store import Account
from calltrack.clock import Clock
from calltrack.db.pool import DBPool
from calltrack.leads.contacts import normalise_email
from calltrack.phones import InvalidPhoneNumber, to_e164
from calltrack.privacy import store
from calltrack.privacy.rules import Retention, read_retention
from calltrack.privacy.store import Erasure

logger = logging.getLogger(__name__)

PURGE_EVERY = 3600.0
FIRST_PURGE_AFTER = 60.0
CONTACTS_EVERY = 86400.0


class InvalidPerson(ValueError):
    """Neither a valid phone number nor a valid email; the message says which."""


class PrivacyService:
    def __init__(self, db: DBPool, clock: Clock, *, registry: CollectorRegistry | None = None) -> None:
        self._db = db
        self._clock = clock
        self._loop: task.LoopingCall | None = None
        self._first: Any = None
        self._running = False
        # (account, kind) → the cutoff up to which a full pass has purged; the next pass starts there.
        self._marks: dict[tuple[int, str], float] = {}
        self._contacts_at: dict[int, float] = {}
        self.purged = Counter(
            "calltrack_privacy_purged", "Rows anonymised by the retention purge, by kind (recordings, callers, forms, contacts)",
            ["kind"], registry=registry or CollectorRegistry(),
        )

    # -- settings ------------------------------------------------------------------------------

    async def retention(self, account_id: int) -> Retention:
        return await self._db.run("get_retention", store.get_retention_txn, account_id)

    async def set_retention(self, account_id: int, body: Any) -> Retention:
        """Apply a PATCH (raises InvalidRetention): the fields given replace the current ones."""
        current = await self.retention(account_id)
        return await self._db.run("set_retention", store.set_retention_txn, account_id, read_retention(body, current), self._clock.seconds())

    # -- erasure -------------------------------------------------------------------------------

    @staticmethod
    def identify(account: Account, *, phone: str | None, email: str | None) -> tuple[str | None, str | None]:
        """(E.164 phone, normalised email) from what was asked; exactly one must be given."""
        if (phone is None) == (email is None):
            raise InvalidPerson("give the person's phone or email (one of them)")
        if phone is not None:
            try:
                return to_e164(phone, account.default_region), None
            except InvalidPhoneNumber as e:
                raise InvalidPerson(str(e)) from None
        found = normalise_email(email)
        if found is None:
            raise InvalidPerson(f"{email!r} is not an email address")
        return None, found

    async def erase(self, account: Account, *, phone: str | None = None, email: str | None = None, actor: str) -> Erasure | None:
        """Erase the person with this phone (read in the account's region) or email from the
        account (raises InvalidPerson); None when the account has no such person."""
        e164, address = self.identify(account, phone=phone, email=email)
        erasure = await self._db.run("erase_person", store.erase_person_txn, account.id, phone=e164, email=address, actor=actor, now=self._clock.seconds())
        if erasure is not None:
            logger.info("erased a person from account %d (erasure %d, by %s)", account.id, erasure.id, actor, extra={"account_id": account.id})
        return erasure

    async def erasures(self, account_id: int, *, limit: int = 100) -> list[Erasure]:
        return await self._db.run("erasures", store.erasures_txn, account_id, limit=limit)

    # -- the purge -----------------------------------------------------------------------------

    def start(self) -> None:
        self._loop = task.LoopingCall(self._tick)
        self._loop.clock = self._clock  # type: ignore[assignment]
        self._loop.start(PURGE_EVERY, now=False)
        self._first = self._clock.callLater(FIRST_PURGE_AFTER, self._tick)

    def stop(self) -> None:
        if self._loop is not None and self._loop.running:
            self._loop.stop()
        self._loop = None
        if self._first is not None and self._first.active():
            self._first.cancel()
        self._first = None

    def _tick(self) -> None:
        if self._running:
            return
        d = defer.ensureDeferred(self.purge(remember=True))
        d.addErrback(lambda f: logger.error("retention purge failed (it runs again in %.0f s): %s", PURGE_EVERY, f.getErrorMessage()))

    async def purge(self, account_id: int | None = None, *, remember: bool = False) -> dict[int, dict[str, int]]:
        """Purge what each account's retention says is too old (one account, or every account
        with a setting). ``remember``: start where this process's last pass ended, and run the
        contacts step at most daily (the server's loop); without it every old row is read.
        Returns {account id: {kind: rows changed}}."""
        self._running = True
        try:
            out: dict[int, dict[str, int]] = {}
            for acc, retention in await self._db.run("retention_accounts", store.retention_accounts_txn, account_id):
                out[acc] = await self._purge_account(acc, retention, self._clock.seconds(), remember=remember)
                if any(out[acc].values()):
                    logger.info(
                        "retention purge of account %d: %s", acc, ", ".join(f"{n} {kind}" for kind, n in out[acc].items() if n), extra={"account_id": acc}
                    )
            return out
        finally:
            self._running = False

    async def _purge_account(self, account_id: int, retention: Retention, now: float, *, remember: bool) -> dict[str, int]:
        done: dict[str, int] = {}
        for kind, fn in (("recordings", store.purge_recordings_txn), ("callers", store.purge_callers_txn), ("forms", store.purge_forms_txn)):
            before = retention.cutoff(kind, now)
            if before is None:
                continue
            mark = self._marks.get((account_id, kind)) if remember else None
            cursor: store.Cursor | None = (mark, 0) if mark is not None else None
            total = 0
            while True:
                n, cursor = await self._db.run(f"purge_{kind}", fn, account_id, before=before, cursor=cursor, limit=store.BATCH)
                total += n
                if cursor is None:
                    break
            if remember:
                self._marks[(account_id, kind)] = max(before, mark if mark is not None else before)
            done[kind] = total
            self.purged.labels(kind).inc(total)
        phone_before, email_before = retention.cutoff("callers", now), retention.cutoff("forms", now)
        due = not remember or now - self._contacts_at.get(account_id, float("-inf")) >= CONTACTS_EVERY
        if (phone_before is not None or email_before is not None) and due:
            after: int | None = 0
            total = 0
            while after is not None:
                n, after = await self._db.run(
                    "purge_contacts", store.purge_contacts_txn, account_id, phone_before=phone_before, email_before=email_before, after_id=after,
                    limit=store.BATCH,
                )
                total += n
            if remember:
                self._contacts_at[account_id] = now
            done["contacts"] = total
            self.purged.labels("contacts").inc(total)
        return done
