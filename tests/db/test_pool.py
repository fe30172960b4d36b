"""DBPool: transactions off the calling thread, group commit, retries."""

from __future__ import annotations

import queue
import threading
import time
from typing import Any

import pytest
import sqlalchemy as sa
from twisted.internet import defer
from twisted.python.failure import Failure

from calltrack.db.engine import create_engine
from calltrack.db.pool import DBPool

items = sa.Table("items", sa.MetaData(), sa.Column("id", sa.Integer, primary_key=True), sa.Column("v", sa.Integer, nullable=False))


class PumpReactor:
    """Just enough reactor for deferToThreadPool: results are delivered when the test pumps."""

    def __init__(self) -> None:
        self.calls: queue.Queue[Any] = queue.Queue()

    def callFromThread(self, f: Any, *args: Any, **kwargs: Any) -> None:  # noqa: N802
        self.calls.put((f, args, kwargs))

    def pump_until(self, done: Any, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while not done():
            f, args, kwargs = self.calls.get(timeout=max(0.01, deadline - time.monotonic()))
            f(*args, **kwargs)


@pytest.fixture
def pool(tmp_path: Any) -> Any:
    engine = create_engine(f"sqlite:///{tmp_path / 'p.db'}")
    items.create(engine)
    reactor = PumpReactor()
    p = DBPool(engine, reactor, max_batch=100)
    p.start()
    yield p, reactor
    p.stop()


def insert_batch_txn(conn: sa.Connection, values: list[int]) -> list[int]:
    if any(v < 0 for v in values):
        raise ValueError("negative")
    ids = conn.execute(items.insert().returning(items.c.id, sort_by_parameter_order=True), [{"v": v} for v in values]).scalars().all()
    return list(ids)


def test_work_runs_on_the_pool_thread_and_returns_after_commit(pool: Any) -> None:
    p, reactor = pool
    seen: list[Any] = []

    def txn(conn: sa.Connection) -> str:
        conn.execute(items.insert().values(v=1))
        return threading.current_thread().name

    d = defer.ensureDeferred(p.run("t", txn))
    d.addBoth(seen.append)
    reactor.pump_until(lambda: seen)
    assert seen[0] != threading.current_thread().name
    assert p.run_sync("count", lambda c: c.execute(sa.select(sa.func.count()).select_from(items)).scalar_one()) == 1


def test_requests_queued_during_a_commit_share_the_next_one(pool: Any) -> None:
    p, reactor = pool
    q = p.batch_queue("insert", insert_batch_txn)
    results: dict[int, Any] = {}
    for v in range(50):
        p.run_batched(q, v).addBoth(lambda r, v=v: results.__setitem__(v, r))
    reactor.pump_until(lambda: len(results) == 50)
    assert sorted(results.values()) == list(range(1, 51))
    assert q.items == 50
    assert q.batches <= 3  # the first alone, the rest together (at most max_batch each)


def test_one_bad_item_fails_alone(pool: Any) -> None:
    p, reactor = pool
    q = p.batch_queue("insert", insert_batch_txn)
    results: dict[int, Any] = {}
    for v in (1, 2, -3, 4):
        p.run_batched(q, v).addBoth(lambda r, v=v: results.__setitem__(v, r))
    reactor.pump_until(lambda: len(results) == 4)
    assert isinstance(results[-3], Failure) and results[-3].check(ValueError)
    assert all(isinstance(results[v], int) for v in (1, 2, 4))
    rows = p.run_sync("all", lambda c: [r.v for r in c.execute(sa.select(items.c.v).order_by(items.c.v))])
    assert rows == [1, 2, 4]


def test_transient_errors_are_retried(pool: Any) -> None:
    p, _ = pool
    attempts = []

    def flaky(conn: sa.Connection) -> int:
        attempts.append(1)
        if len(attempts) < 3:
            raise sa.exc.OperationalError("INSERT", {}, Exception("database is locked"))
        return 7

    assert p.run_sync("flaky", flaky) == 7
    assert len(attempts) == 3


def test_transient_errors_the_driver_raises_itself_are_retried(pool: Any) -> None:
    """Work on the driver's own cursor (scoring's executemany) gets the driver's exception, not
    SQLAlchemy's: a PostgreSQL deadlock there must be retried like any other."""
    import sqlite3

    p, _ = pool
    attempts = []

    def flaky(conn: sa.Connection) -> int:
        attempts.append(1)
        conn.execute(items.insert().values(v=len(attempts)))
        if len(attempts) < 3:
            raise sqlite3.OperationalError("database is locked")
        return 7

    assert p.run_sync("flaky", flaky) == 7
    assert len(attempts) == 3
    with p.engine.connect() as conn:
        assert conn.execute(sa.select(items.c.v)).scalars().all() == [3]  # the failed attempts rolled back


def test_a_result_object_may_not_leave_the_transaction(pool: Any) -> None:
    p, _ = pool
    with pytest.raises(AssertionError):
        p.run_sync("leak", lambda c: c.execute(sa.select(items)))
