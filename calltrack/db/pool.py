"""DBPool: database work off the reactor thread, one transaction per call, and group commit.

``await pool.run(desc, fn_txn, *args)`` runs ``fn_txn(conn, *args)`` inside one transaction on
the pool's threads and returns its result after the commit.

``await pool.run_batched(queue, item)`` is group commit for the hot paths: items queued while a
batch is in flight are handed together to ``queue.batch_txn(conn, items)`` in one transaction,
so a burst of N requests costs one commit (and one fsync) instead of N. Each caller gets its own
result after its batch has committed. If a batch fails, every item in it is retried in a
transaction of its own, so one bad item never takes the others down.

SQLite has one writer, so its pool has one thread (as buildbot does); PostgreSQL gets
``pool_size + max_overflow`` threads.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from sqlalchemy import exc
from sqlalchemy.engine import Connection, Engine
from twisted.internet import defer, threads
from twisted.python.failure import Failure
from twisted.python.threadpool import ThreadPool

from calltrack.db.engine import is_sqlite

logger = logging.getLogger(__name__)

T = TypeVar("T")
I = TypeVar("I")  # noqa: E741 - a batch item
R = TypeVar("R")  # a batch item's result

# Transient failures worth a retry: SQLite "database is locked", PostgreSQL deadlocks and
# serialization failures, a dropped connection.
_RETRIES = 3


@dataclass
class BatchQueue(Generic[I, R]):
    """A group-commit queue: items wait here while the previous batch is in flight.

    ``batch_txn(conn, items)`` must return one result per item, in order.
    """

    desc: str
    batch_txn: Callable[[Connection, list[I]], list[R]]
    pending: deque[tuple[I, defer.Deferred[R]]] = field(default_factory=deque)
    in_flight: bool = False
    batches: int = 0
    items: int = 0


class DBPool:
    """Runs ``*_txn`` functions in transactions on a dedicated thread pool.

    Args:
        engine: the SQLAlchemy engine.
        reactor: the reactor to deliver results on.
        max_batch: the most items one group commit carries.
        synchronous: run everything inline on the calling thread (tests with a fake clock).
    """

    def __init__(
        self,
        engine: Engine,
        reactor: Any,
        *,
        max_threads: int | None = None,
        max_batch: int = 256,
        synchronous: bool = False,
    ) -> None:
        self.engine = engine
        self._reactor = reactor
        self._synchronous = synchronous
        self.max_batch = max_batch
        self.is_sqlite = is_sqlite(engine.url)
        if max_threads is None:
            max_threads = 1 if self.is_sqlite else engine.pool.size() + engine.pool._max_overflow  # type: ignore[attr-defined]
        if self.is_sqlite:
            max_threads = 1
        # Transient failures, as SQLAlchemy wraps them, and as the driver raises them from its
        # own cursor (work that bypasses SQLAlchemy, as apply_scores_txn's executemany does: a
        # PostgreSQL deadlock there used to fail the scoring run instead of retrying it).
        self._transient: tuple[type[BaseException], ...] = (exc.OperationalError,)
        driver_error = getattr(engine.dialect.dbapi, "OperationalError", None)
        if isinstance(driver_error, type) and issubclass(driver_error, BaseException):
            self._transient += (driver_error,)
        self._threadpool = ThreadPool(minthreads=1, maxthreads=max_threads, name="DBPool")
        self._started = False
        self._queues: list[BatchQueue[Any, Any]] = []

    def start(self) -> None:
        if not self._synchronous and not self._started:
            self._threadpool.start()
            self._started = True

    def stop(self) -> None:
        if self._started:
            self._threadpool.stop()
            self._started = False
        self.engine.dispose()

    def _defer(self, fn: Callable[..., T], *args: Any) -> defer.Deferred[T]:
        if self._synchronous:
            return defer.maybeDeferred(fn, *args)
        self.start()
        return threads.deferToThreadPool(self._reactor, self._threadpool, fn, *args)

    # -- single transactions ---------------------------------------------------------------

    async def run(self, desc: str, fn_txn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run ``fn_txn(conn, *args, **kwargs)`` in one transaction; the result after commit."""
        return await self._defer(self._in_txn, desc, fn_txn, args, kwargs)

    def run_sync(self, desc: str, fn_txn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """The same on the calling thread: for the CLI and scripts, never the reactor."""
        return self._in_txn(desc, fn_txn, args, kwargs)

    def _in_txn(self, desc: str, fn_txn: Callable[..., T], args: Sequence[Any], kwargs: dict[str, Any]) -> T:
        started = time.perf_counter()
        for attempt in range(_RETRIES + 1):
            try:
                with self.engine.begin() as conn:
                    result = fn_txn(conn, *args, **kwargs)
                break
            except self._transient as e:
                if attempt == _RETRIES:
                    raise
                logger.warning("db %s: transient error, retrying: %s", desc, getattr(e, "orig", e))
                time.sleep(0.01 * (2**attempt))
        assert not hasattr(result, "fetchall"), "return values, not a Result"  # buildbot's rule
        logger.debug("db %s took %.1f ms", desc, (time.perf_counter() - started) * 1000)
        return result

    # -- group commit ----------------------------------------------------------------------

    def batch_queue(self, desc: str, batch_txn: Callable[[Connection, list[I]], list[R]]) -> BatchQueue[I, R]:
        queue: BatchQueue[I, R] = BatchQueue(desc, batch_txn)
        self._queues.append(queue)
        return queue

    def run_batched(self, queue: BatchQueue[I, R], item: I) -> defer.Deferred[R]:
        """Queue ``item``; fires with its result once the batch that carried it committed."""
        d: defer.Deferred[R] = defer.Deferred()
        queue.pending.append((item, d))
        if not queue.in_flight:
            self._drain(queue)
        return d

    def queue_depth(self) -> int:
        return sum(len(q.pending) for q in self._queues)

    def _drain(self, queue: BatchQueue[I, R]) -> None:
        if not queue.pending:
            queue.in_flight = False
            return
        queue.in_flight = True
        batch = [queue.pending.popleft() for _ in range(min(self.max_batch, len(queue.pending)))]
        items = [item for item, _ in batch]
        queue.batches += 1
        queue.items += len(items)
        d = self._defer(self._run_batch, queue, items)

        def delivered(outcomes: list[tuple[bool, Any]]) -> None:
            for (_, waiter), (ok, value) in zip(batch, outcomes, strict=True):
                if ok:
                    waiter.callback(value)
                else:
                    waiter.errback(value)

        def failed(failure: Any) -> None:  # pragma: no cover - _run_batch catches everything
            for _, waiter in batch:
                waiter.errback(failure)

        d.addCallbacks(delivered, failed)
        d.addBoth(lambda _: self._drain(queue))

    def _run_batch(self, queue: BatchQueue[I, R], items: list[I]) -> list[tuple[bool, Any]]:
        """On a DB thread: the whole batch in one transaction, else each item alone."""
        try:
            results = self._in_txn(queue.desc, queue.batch_txn, (items,), {})
            return [(True, r) for r in results]
        except Exception:
            if len(items) == 1:
                return [(False, Failure())]
            logger.warning("db %s: a batch of %d failed; retrying each alone", queue.desc, len(items), exc_info=True)
        outcomes: list[tuple[bool, Any]] = []
        for item in items:
            outcomes.extend(self._run_batch(queue, [item]))
        return outcomes
