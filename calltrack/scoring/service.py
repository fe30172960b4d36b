"""ScoringService: rule versions per account, and every lead scored under the active one.

Leads are scored off the hot path: ingestion and forms mark a lead dirty, and once a second
the dirty leads of each account are scored together (facts from the database, the rules on
the compute pool, the scores back in one transaction). A webhook never waits for scoring.
``calltrack scoring backfill`` re-scores every lead after the rules change.

The dirty set lives in the process's memory: a graceful stop scores it before exiting
(:meth:`ScoringService.drain`), and a process that starts scores the recent leads that were
never scored (:meth:`ScoringService.catch_up`) — what a process that died (SIGKILL, power
loss) still had pending. A lead already scored whose re-scoring died with a process keeps its
older score until it is touched again or the backfill runs.
"""

from __future__ import annotations

import gc
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from calltrack.clock import Clock
from calltrack.compute import ComputePool
from calltrack.db.pool import DBPool
from calltrack.scoring import store
from calltrack.scoring.frames import FactRows, Scores, facts_frame, scores_from
from calltrack.scoring.rules import DEFAULT_RULES, RuleSet, needed_facts, parse_rules, rules_json, score

logger = logging.getLogger(__name__)

FLUSH_SECONDS = 1.0
# After a start, leads created this recently and never scored are scored (see catch_up).
CATCH_UP_SECONDS = 86400.0
CATCH_UP_CHUNK = 5000


def score_facts(facts: FactRows, rules: RuleSet, timezone: str) -> Scores:
    """Pure: a chunk's facts as read → its scores."""
    if not facts:
        return Scores([], [], [], [], [])
    return scores_from(score(facts_frame(facts), rules, timezone=timezone))


class ScoringService:
    def __init__(self, db: DBPool, clock: Clock, compute: ComputePool) -> None:
        self._db = db
        self._clock = clock
        self._compute = compute
        self._dirty: dict[int, set[int]] = {}
        self._call: Any = None
        self._running: set[Any] = set()  # scoring runs under way (Deferreds): a stop waits for them

    async def rules(self, account_id: int) -> tuple[int, dict[str, Any]]:
        """(version, document): 0 and the built-in defaults until the account sets its own."""
        version, document, _ = await self._db.run("active_rules", store.active_rules_txn, account_id)
        return version, document or DEFAULT_RULES

    async def set_rules(self, account_id: int, document: Any) -> int:
        """Check and store a new version (raises InvalidRules; the active one stays)."""
        parsed = parse_rules(document)
        return await self._db.run("add_rules", store.add_rules_txn, account_id, rules_json(parsed), self._clock.seconds())

    def mark_dirty(self, account_id: int, lead_id: int) -> None:
        """Score this lead soon (it changed); never waits."""
        self._dirty.setdefault(account_id, set()).add(lead_id)
        if self._call is None:
            self._call = self._clock.callLater(FLUSH_SECONDS, self._flush)

    def _flush(self) -> None:
        self._call = None
        dirty, self._dirty = self._dirty, {}
        for account_id, ids in sorted(dirty.items()):
            self.in_background(self.score_leads(account_id, sorted(ids)), f"scoring leads of account {account_id}")

    def in_background(self, work: Any, what: str) -> None:
        """Run a scoring coroutine without waiting for it; :meth:`drain` waits for it."""
        from twisted.internet import defer

        d = defer.ensureDeferred(work)
        d.addErrback(lambda f: logger.error("%s failed: %s", what, f.getErrorMessage()))
        self._running.add(d)
        d.addBoth(lambda _: self._running.discard(d))

    async def drain(self) -> None:
        """Score every lead marked dirty now, and return once that and every scoring run under
        way are done (a graceful stop)."""
        from twisted.internet import defer

        if self._call is not None and self._call.active():
            self._call.cancel()
        self._flush()
        while self._running:
            await defer.DeferredList(list(self._running))

    async def catch_up(self, within: float = CATCH_UP_SECONDS) -> int:
        """Score the leads created in the last ``within`` seconds that were never scored:
        their scoring was pending in a process that died. Returns how many were scored."""
        pending = await self._db.run("unscored_leads", store.unscored_leads_txn, self._clock.seconds() - within)
        by_account: dict[int, list[int]] = {}
        for account_id, lead_id in pending:
            by_account.setdefault(account_id, []).append(lead_id)
        for account_id, ids in sorted(by_account.items()):
            for start in range(0, len(ids), CATCH_UP_CHUNK):
                await self.score_leads(account_id, ids[start : start + CATCH_UP_CHUNK])
        if pending:
            logger.info("scored %d leads whose scoring was left pending by a stopped process", len(pending))
        return len(pending)

    async def score_leads(self, account_id: int, lead_ids: list[int]) -> int:
        version, document, tz = await self._db.run("active_rules", store.active_rules_txn, account_id)
        rules = parse_rules(document or DEFAULT_RULES)
        facts = await self._db.run("lead_facts", store.lead_facts_txn, account_id, needed_facts(rules), lead_ids=lead_ids)
        scores = await self._compute.run(score_facts, facts, rules, tz)
        return await self._db.run("apply_scores", store.apply_scores_txn, version, scores, self._clock.seconds())

    def backfill_sync(self, account_id: int, *, chunk: int = 50_000, progress: Callable[[int], None] | None = None, now: float) -> tuple[int, int, int]:
        """For the CLI: every lead of the account under the active version, a chunk at a time.
        Returns (version, leads scored, promoted to MQL)."""
        version, document, tz = self._db.run_sync("active_rules", store.active_rules_txn, account_id)
        rules = parse_rules(document or DEFAULT_RULES)
        facts_needed = needed_facts(rules)
        after, total, promoted = 0, 0, 0
        with _cyclic_collector_paused():
            while True:
                facts = self._db.run_sync("lead_facts", store.lead_facts_txn, account_id, facts_needed, after_id=after, limit=chunk)
                if not facts:
                    return version, total, promoted
                scores = score_facts(facts, rules, tz)
                promoted += self._db.run_sync("apply_scores", store.apply_scores_txn, version, scores, now)
                total += len(facts)
                after = facts.last_id
                if progress is not None:
                    progress(len(facts))
                del facts, scores
                gc.collect(0)


@contextmanager
def _cyclic_collector_paused() -> Iterator[None]:
    """Python's cyclic garbage collector off for a backfill, and run once per chunk instead.

    A chunk is hundreds of thousands of tuples (rows, columns, parameters), alive until it is
    written: the collector, triggered every 700 allocations, traversed them again and again
    and took more time than reading and writing them. None of them is in a cycle; the one
    collection per chunk, after they are freed, reclaims what pandas leaves in cycles."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
