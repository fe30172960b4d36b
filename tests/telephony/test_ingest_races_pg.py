"""Deliveries of one call racing through several processes on PostgreSQL: one call row,
each event once, the status where the latest event puts it, one contact and one lead."""

from __future__ import annotations

import threading
from typing import Any

import pytest
import sqlalchemy as sa

from calltrack.accounts import store as accounts_store
from calltrack.leads.contacts import read_caller
from calltrack.numbers import store as numbers_store
from calltrack.telephony import store
from calltrack.telephony.events import CallEvent
from calltrack.telephony.store import Delivery
from tests.conftest import PG_URL, START

pytestmark = pytest.mark.skipif(not PG_URL, reason="needs CALLTRACK_TEST_DATABASE_URL")


@pytest.fixture
def account(engine: sa.Engine) -> Any:
    if engine.dialect.name != "postgresql":
        pytest.skip("PostgreSQL only: SQLite has one writer")
    with engine.begin() as c:
        acct = accounts_store.create_account_txn(c, name="A", timezone="UTC", currency="USD", default_region="US", now=START)
        accounts_store.add_site_txn(c, acct.id, name="a", allowed_domains=["a.example"], own_number="+14155550100", forward_to="+14155550199", now=START)
        numbers_store.add_numbers_txn(c, acct.id, [numbers_store.NewNumber("+14155550150", "+14155550199", "static", source="radio")], START)
    return engine, acct.id


def delivery(account_id: int, call: str, event_ref: str, kind: str, status: str, caller: str = "+14155550111") -> Delivery:
    ev = CallEvent("pbx", call, event_ref, kind, status, caller_raw=caller, called_raw="+14155550150")
    return Delivery(account_id, ev, read_caller(caller, "US"), "+14155550150", START + 5)


def race(engine: sa.Engine, deliveries: list[Delivery]) -> list[Any]:
    barrier = threading.Barrier(len(deliveries))
    out: list[Any] = [None] * len(deliveries)
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            barrier.wait(5)
            for attempt in range(5):
                try:
                    with engine.begin() as conn:
                        out[i] = store.ingest_txn(conn, deliveries[i])
                    return
                except sa.exc.OperationalError:  # a deadlock victim retries, as DBPool does
                    if attempt == 4:
                        raise
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(deliveries))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert not errors, errors
    return out


def test_the_same_delivery_eight_times_at_once_is_stored_once(account: Any) -> None:
    engine, account_id = account
    results = race(engine, [delivery(account_id, "c1", "call.started", "started", "ringing") for _ in range(8)])
    assert sorted(r.duplicate for r in results) == [False] + [True] * 7
    with engine.connect() as c:
        assert c.execute(sa.text("SELECT count(*) FROM calls")).scalar() == 1
        assert c.execute(sa.text("SELECT count(*) FROM call_events")).scalar() == 1
        assert c.execute(sa.text("SELECT count(*) FROM leads")).scalar() == 1


def test_every_event_of_a_call_at_once_ends_completed(account: Any) -> None:
    engine, account_id = account
    events = [("call.started", "started", "ringing"), ("call.ringing", "ringing", "ringing"),
              ("call.answered", "answered", "in-progress"), ("call.completed", "completed", "completed")]
    race(engine, [delivery(account_id, "c2", ref, kind, status) for ref, kind, status in events] * 2)
    with engine.connect() as c:
        assert c.execute(sa.text("SELECT status FROM calls")).scalars().all() == ["completed"]
        assert c.execute(sa.text("SELECT count(*) FROM call_events")).scalar() == 4


def test_two_new_calls_from_one_new_person_make_one_contact_and_one_lead(account: Any) -> None:
    engine, account_id = account
    race(engine, [delivery(account_id, f"c{i}", "call.started", "started", "ringing", caller="+14155550122") for i in range(6)])
    with engine.connect() as c:
        assert c.execute(sa.text("SELECT count(*) FROM calls")).scalar() == 6
        assert c.execute(sa.text("SELECT count(*) FROM contacts")).scalar() == 1
        assert c.execute(sa.text("SELECT count(*), max(touches) FROM leads")).one() == (1, 6)
