"""Races between transactions of different processes on PostgreSQL, interleaved by hand."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
import sqlalchemy as sa

from calltrack.accounts import store as accounts_store
from calltrack.numbers import store
from calltrack.numbers.rules import parse_rules
from calltrack.numbers.store import VisitIn
from tests.conftest import PG_URL, START

pytestmark = pytest.mark.skipif(not PG_URL, reason="needs CALLTRACK_TEST_DATABASE_URL")


@pytest.fixture
def setup(engine: sa.Engine) -> Any:
    if engine.dialect.name != "postgresql":
        pytest.skip("PostgreSQL only: SQLite has one writer")
    with engine.begin() as c:
        acct = accounts_store.create_account_txn(c, name="A", timezone="UTC", currency="USD", default_region="US", now=START)
        site = accounts_store.add_site_txn(
            c, acct.id, name="a", allowed_domains=["a.example"], own_number="+14155550100", forward_to="+14155550199", now=START
        )
        pool = store.create_pool_txn(
            c, account_id=acct.id, site_id=site.id, name="P", priority=100, rules=parse_rules({"all": True}),
            hold_seconds=1800, cooldown_seconds=300, overflow_number=None, now=START,
        )
        store.add_numbers_txn(c, acct.id, [store.NewNumber(f"+1415555013{i}", "+14155550199", "pool", pool.id) for i in range(5)], START)

    def visit(vid: str, now: float) -> VisitIn:
        return VisitIn(acct.id, site.id, vid, "s-" + vid, now, None, pool)

    return engine, visit


def test_one_visitor_through_two_processes_at_once_gets_one_number(setup: Any) -> None:
    engine, visit = setup
    first = engine.connect()
    txn = first.begin()
    a = store.visit_batch_txn(first, [visit("V1", START + 1)])[0]
    b: dict[str, Any] = {}

    def other_process() -> None:
        with engine.begin() as conn:
            b["out"] = store.visit_batch_txn(conn, [visit("V1", START + 1)])[0]

    t = threading.Thread(target=other_process)
    t.start()
    time.sleep(0.3)
    assert "out" not in b  # waiting for the first transaction's visitor lock
    txn.commit()
    first.close()
    t.join(10)
    assert a.outcome == "leased" and b["out"].outcome == "renewed" and b["out"].e164 == a.e164
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM leases WHERE vid = 'V1' AND ended_at IS NULL")).scalar() == 1


def test_the_sweeper_leaves_a_lease_renewed_after_it_looked(setup: Any) -> None:
    engine, visit = setup
    with engine.begin() as conn:
        leased = store.visit_batch_txn(conn, [visit("V2", START + 10)])[0]
    deadline = leased.expires_at
    renewer = engine.connect()
    txn = renewer.begin()
    renewed = store.visit_batch_txn(renewer, [visit("V2", deadline - 1)])[0]
    swept: dict[str, int] = {}

    def sweeper() -> None:
        with engine.begin() as conn:
            swept["n"] = store.expire_leases_txn(conn, deadline + 1)

    t = threading.Thread(target=sweeper)
    t.start()
    time.sleep(0.3)
    txn.commit()
    renewer.close()
    t.join(10)
    assert renewed.outcome == "renewed" and swept["n"] == 0
    with engine.begin() as conn:
        again = store.visit_batch_txn(conn, [visit("V2", deadline + 30)])[0]
    assert again.outcome == "renewed" and again.e164 == leased.e164
