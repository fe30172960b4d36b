"""The call-ingest path runs its statements on the driver's cursor (leads.store.DriverStatement)
and reads the dialled number and its leases with statements of its own: these check that they
answer as the SQLAlchemy-run originals do, on SQLite and PostgreSQL."""

from __future__ import annotations

import random
import urllib.parse
from types import SimpleNamespace

import pytest
import sqlalchemy as sa

from calltrack.db.schema import calls, contacts
from calltrack.leads.store import DriverStatement, insert_or_nothing
from calltrack.numbers import store as numbers_store
from calltrack.telephony import store
from calltrack.telephony.resources import _form_parsed_by_twisted
from tests.conftest import START, resolve
from tests.numbers.helpers import add_numbers, make_pool, visit
from tests.telephony.helpers import STATIC_NUMBER, setup_phones


def test_driver_statement_binds_defaults_processors_and_reads_tuples(app, tenant):
    account_id = tenant.account.id
    new_contact = insert_or_nothing(contacts, ("account_id", "phone", "created_at", "updated_at"), returning="id")
    with app.engine.begin() as conn:
        # An int for a float column goes through the Float bind processor, as SQLAlchemy would send it.
        first = new_contact.scalar(conn, {"account_id": account_id, "phone": "+14155550111", "created_at": 5, "updated_at": 5})
        again = new_contact.scalar(conn, {"account_id": account_id, "phone": "+14155550111", "created_at": 6, "updated_at": 6})
        by_phone = DriverStatement(
            sa.select(contacts.c.id, contacts.c.created_at)
            .where(contacts.c.account_id == sa.bindparam("account_id"), contacts.c.phone == sa.bindparam("phone"), contacts.c.email.is_(None))
            .limit(1)  # a bound parameter with a value of its own, which the caller does not pass
        )
        row = by_phone.first(conn, {"account_id": account_id, "phone": "+14155550111"})
        missing = by_phone.first(conn, {"account_id": account_id, "phone": "+14155550112"})
        renamed = DriverStatement(contacts.update().where(contacts.c.phone == sa.bindparam("p")).values(name=sa.bindparam("n"))).run(
            conn, {"p": "+14155550111", "n": "Ann"}
        )
        rows = DriverStatement(sa.select(contacts.c.name).where(contacts.c.account_id == sa.bindparam("a"))).all(conn, {"a": account_id})
    assert isinstance(first, int) and again is None  # ON CONFLICT DO NOTHING: no row returned
    assert row == (first, 5.0) and isinstance(row[1], float)
    assert missing is None
    assert renamed == 1 and rows == [("Ann",)]


def test_driver_statement_refuses_an_expanding_in_list(app):
    stmt = DriverStatement(sa.select(calls.c.id).where(calls.c.match_method.in_(["lease", "static"])))
    with app.engine.begin() as conn, pytest.raises(TypeError, match="expanding IN"):
        stmt.first(conn)


def test_driver_statement_errors_are_the_drivers_and_leave_the_transaction_usable_for_a_retry(app, tenant):
    stmt = DriverStatement(contacts.insert(), column_keys=("account_id", "phone", "created_at", "updated_at"))
    dbapi = app.engine.dialect.dbapi
    with pytest.raises(dbapi.IntegrityError), app.engine.begin() as conn:
        stmt.run(conn, {"account_id": tenant.account.id, "phone": "+14155550111", "created_at": 1.0, "updated_at": 1.0})
        stmt.run(conn, {"account_id": tenant.account.id, "phone": "+14155550111", "created_at": 1.0, "updated_at": 1.0})
    with app.engine.connect() as conn:  # the failed transaction was rolled back whole
        assert conn.execute(sa.select(sa.func.count()).select_from(contacts)).scalar_one() == 0


def test_dialled_number_reads_as_numbers_store_does(app, tenant):
    phones = setup_phones(app, tenant, pool_size=2, cooldown=120)
    overflow_pool = make_pool(app, tenant, "overflow", 1, first=50, overflow_number="+14155550180")
    account_id = tenant.account.id
    pool_number = visit(app, tenant, "v1", utm_source="google").phone_number
    kinds = []
    with app.engine.begin() as conn:
        for e164 in (pool_number, STATIC_NUMBER, "+14155550180", "+14155550181"):
            ours = store._dialled(conn, account_id, e164)
            theirs = numbers_store.dialled_number_txn(conn, account_id, e164)
            kinds.append(theirs.kind)
            assert ours.kind == theirs.kind
            assert ours.number_id == (theirs.number.id if theirs.number else None)
            assert ours.forward_to == (theirs.number.forward_to if theirs.number else None)
            assert ours.pool_id == (theirs.pool.id if theirs.pool else None)
            assert ours.site_id == (theirs.pool.site_id if theirs.pool else None)
            if theirs.kind == "pool":
                assert ours.cooldown == float(theirs.pool.cooldown_seconds) == 120.0
            if theirs.kind == "static":
                assert ours.static_source == store._static_source(theirs.number)
                assert ours.static_source["placement"] == "I-80 billboard"
            if theirs.kind == "overflow":
                assert ours.pool_id == overflow_pool.id
                assert ours.overflow_channel == store._pool_channel(theirs.pool)
    assert kinds == ["pool", "static", "overflow", None] and phones.pool is not None


def test_lease_spans_read_as_numbers_store_does(app, tenant, clock):
    make_pool(app, tenant, "web", 1, cooldown_seconds=60)
    first = visit(app, tenant, "v1", utm_source="google", utm_medium="cpc", utm_campaign="spring")
    clock.advance(4000)  # the first lease has expired; the number goes to the next visitor
    second = visit(app, tenant, "v2", utm_source="bing", utm_medium="cpc")
    assert first.phone_number == second.phone_number
    extra = add_numbers(app, tenant, make_pool(app, tenant, "idle", 0), ["+14155550170"])
    with app.engine.begin() as conn:
        number_id = store._dialled(conn, tenant.account.id, first.phone_number).number_id
        for number, since, until in ((number_id, START - 10, START + 10_000), (number_id, START + 3000, START + 5000),
                                     (number_id, START + 20_000, START + 30_000), (extra[0].id, START, START + 10_000)):
            assert store._lease_spans(conn, number, since, until) == numbers_store.lease_spans_txn(conn, number, since, until)
        spans, sources = store._lease_spans(conn, number_id, START - 10, START + 10_000)
    assert [s[1] for s in spans] == ["v1", "v2"] and [s[5] for s in spans] == [False, True]
    assert sorted(v["source"] for v in sources.values()) == ["bing", "google"]


# -- the form as Twisted parsed it ---------------------------------------------------------------

FORM_BODIES = [
    b"a=1&b=2&b=3", b"a=%FF&b=+x+", b"a=&b", b"a==b&c=%2B", b"x=1&&y=2", b"From=%2B1415&To=caf%C3%A9", b"a=1;b=2", b"a=1&",
    b"&a=1", b"=1&b=", b"a=%C3&b=%E2%82", "To=café&x=©".encode(), b"a=%zz&b=%2", b"a=1&a=1&a=2", b"",
]


@pytest.mark.parametrize("body", FORM_BODIES + [bytes(random.Random(seed).choices(b"ab=&;%+2Fz\xc3\xa9", k=12)) for seed in range(300)])
def test_the_form_twisted_parsed_is_taken_only_when_it_reads_as_parse_qs_would(body):
    from twisted.web.http import parse_qs as twisted_parse_qs

    request = SimpleNamespace(uri=b"/v1/webhooks/twilio/voice", args=twisted_parse_qs(body, 1))
    taken = _form_parsed_by_twisted(request, body)
    try:
        expected = urllib.parse.parse_qs(body.decode("utf-8"), keep_blank_values=True)
    except UnicodeDecodeError:
        return  # the resource answers 400 before asking
    if body in (b"a=1&b=2&b=3", b"a=%FF&b=+x+", b"a==b&c=%2B", b"From=%2B1415&To=caf%C3%A9", b"a=1&a=1&a=2"):
        assert taken is not None
    assert taken is None or taken == expected
    with_query = SimpleNamespace(uri=b"/v1/webhooks/twilio/voice?x=1", args=twisted_parse_qs(body, 1))
    assert _form_parsed_by_twisted(with_query, body) is None  # Twisted's args would mix the query's in


def test_voice_webhooks_read_the_form_twisted_parsed_and_fall_back_when_it_may_differ(app, http, tenant, monkeypatch):
    from calltrack.telephony import resources
    from twilio.request_validator import RequestValidator

    from tests.telephony.helpers import BASE, TWILIO_TOKEN, twilio_post, voice_params

    setup_phones(app, tenant)
    reparsed = []
    monkeypatch.setattr(resources, "parse_qs", lambda *a, **k: reparsed.append(a) or urllib.parse.parse_qs(*a, **k))
    status, body, _ = twilio_post(http, "/v1/webhooks/twilio/voice", voice_params("CA" + "1" * 32, to=STATIC_NUMBER))
    assert status == 200 and b"<Number" in body and reparsed == []
    # A ";" in a value: Twisted splits there, parse_qs does not; the signature is over parse_qs's reading.
    params = voice_params("CA" + "2" * 32, to=STATIC_NUMBER, CallerName="a;b")
    raw = urllib.parse.urlencode(params).replace("%3B", ";").encode()  # a literal ";", as some senders leave it
    signature = RequestValidator(TWILIO_TOKEN).compute_signature(BASE + "/v1/webhooks/twilio/voice", params)
    status, body, _ = http.request("POST", "/v1/webhooks/twilio/voice", data=raw, headers={
        "Content-Type": "application/x-www-form-urlencoded", "X-Twilio-Signature": signature,
    })
    assert status == 200 and len(reparsed) == 1
    with app.engine.connect() as conn:
        assert conn.execute(sa.select(calls.c.caller_name).where(calls.c.call_ref == "CA" + "2" * 32)).scalar_one() == "a;b"


# -- one batch: the dialled number with the caller, follow-ups asked once ----------------------


def _deliveries(app, tenant, calls_: list[tuple[str, str, str]]) -> list[store.Delivery]:
    from calltrack.telephony import twilio

    out = []
    for call_sid, caller, to in calls_:
        params = {"AccountSid": "AC1", "CallSid": call_sid, "From": caller, "To": to, "CallStatus": "ringing", "FromState": "CA"}
        event = twilio.parse_voice({k: [v] for k, v in params.items()})
        out.append(app.telephony.delivery(tenant.account.id, event, "US", START + len(out)))
    return out


def test_dialled_and_caller_in_one_statement_reads_as_the_two_apart(app, tenant):
    setup_phones(app, tenant)
    account_id = tenant.account.id
    resolve(app.telephony.block_caller(account_id, "+14155550123", "robocaller"))
    with app.engine.begin() as conn:
        contact_id = insert_or_nothing(contacts, ("account_id", "phone", "created_at", "updated_at"), returning="id").scalar(
            conn, {"account_id": account_id, "phone": "+14155550124", "created_at": 1.0, "updated_at": 1.0}
        )
        for e164 in (STATIC_NUMBER, "+14155550181"):  # one of ours; one that is not (asked apart)
            for caller in ("+14155550123", "+14155550124", "+14155550125", None):
                dialled, known = store._dialled_and_caller(conn, account_id, e164, caller)
                assert dialled == store._dialled(conn, account_id, e164)
                assert known == store._known_caller(conn, account_id, caller)
                assert known.contact_id == (contact_id if caller == "+14155550124" else None)
                assert known.blocked == (caller == "+14155550123")


def test_a_batch_asks_for_managers_and_lead_webhooks_once_and_still_assigns_and_notifies(app, tenant, monkeypatch):
    from calltrack.leads import store as leads_store

    setup_phones(app, tenant)
    account_id = tenant.account.id
    resolve(app.owners.add(account_id, "Ann", None))
    resolve(app.outbox.add(account_id, "https://crm.example/hook", ["lead.created"]))
    asked = []
    real = leads_store._FOLLOW_UPS
    monkeypatch.setattr(leads_store, "_FOLLOW_UPS", SimpleNamespace(first=lambda conn, params: asked.append(params) or real.first(conn, params)))
    batch = _deliveries(app, tenant, [(f"CA{i:032d}", f"+1415555{200 + i:04d}", STATIC_NUMBER) for i in range(3)])
    with app.engine.begin() as conn:
        results = store.ingest_batch_txn(conn, batch)
    assert len(asked) == 1 and all(r.call.lead_id for r in results)
    with app.engine.connect() as conn:
        owners = conn.execute(sa.text("SELECT owner FROM leads ORDER BY id")).scalars().all()
        events = conn.execute(sa.text("SELECT lead_id FROM lead_webhook_deliveries WHERE event = 'lead.created' ORDER BY lead_id")).scalars().all()
    assert owners == ["Ann"] * 3 and events == sorted(r.call.lead_id for r in results)


def test_an_account_without_managers_or_webhooks_makes_leads_without_either(app, tenant):
    setup_phones(app, tenant)
    with app.engine.begin() as conn:
        results = store.ingest_batch_txn(conn, _deliveries(app, tenant, [("CA" + "7" * 32, "+14155550300", STATIC_NUMBER)]))
    assert results[0].call.lead_id is not None
    with app.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT owner FROM leads")).scalars().all() == [None]
        assert conn.execute(sa.text("SELECT count(*) FROM lead_webhook_deliveries")).scalar_one() == 0


# -- callers in North American E.164, read without parse() ----------------------------------


def _read_by_parsing(text: str, region: str) -> str | None:
    import phonenumbers

    parsed = phonenumbers.parse(text, region)
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164) if phonenumbers.is_valid_number(parsed) else None


@pytest.mark.parametrize("region", ["US", "GB"])
def test_north_american_e164_callers_read_as_phonenumbers_parses_them(region):
    from calltrack.leads.contacts import read_caller

    rng = random.Random(11)
    numbers = ["+14155550100", "+12125550199", "+18005550100", "+19999999999", "+12000000000", "+16135550123", "+18765550123",
               "+14155550100 ", "+1415555010", "+141555501000", "+10155550100", "+11155550100"]
    numbers += [f"+1{rng.randint(2, 9)}{rng.randrange(10**9):09d}" for _ in range(2000)]
    for text in numbers:
        read_caller.cache_clear()
        got = read_caller(text, region)
        assert got.e164 == _read_by_parsing(text.strip(), region), text
        assert not got.withheld and got.extension is None
