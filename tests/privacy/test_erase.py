"""Erasing a person (POST /v1/contacts/erase, calltrack contacts erase): their personal data
leaves every table of the account, merged contacts included; reports, attribution and lead
counts read the same before and after; the lead history keeps who changed what; pending
webhook deliveries are cancelled; another account's person is never touched — on SQLite and
PostgreSQL."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from twisted.internet.task import Clock

from calltrack.app import build_app
from calltrack.config import load_config
from calltrack.db.engine import create_engine
from calltrack.leads.forms import read_form
from tests.conftest import resolve
from tests.numbers.helpers import rows
from tests.privacy.helpers import (
    ANN_EMAIL, ANN_NAME, ANN_PHONE, ANN_TRACES, BOB_EMAIL, BOB_PHONE, BOB_VID, ORIGIN, build, dump, form, snapshot,
)
from tests.telephony.helpers import STATIC_NUMBER, pbx_post


def erase(http, tenant, **who):  # type: ignore[no-untyped-def]
    return http.request("POST", "/v1/contacts/erase", json_body=who, key=tenant.key)


@pytest.mark.parametrize("by", ["phone", "email"])
def test_a_person_is_erased_everywhere_and_every_count_stays(app, http, tenant, clock, by) -> None:
    world = build(app, http, tenant, clock)
    before = snapshot(http, tenant)
    text = dump(app, tenant.account.id)
    assert all(trace in text for trace in ANN_TRACES), [t for t in ANN_TRACES if t not in text]  # the test would prove nothing otherwise
    other_before = dump(app, world.other.account.id)
    callers = rows(app, "SELECT count(DISTINCT caller), count(*) FROM calls WHERE account_id = :a", a=tenant.account.id)[0]

    status, body, _ = erase(http, tenant, **({"phone": "(415) 555-0100"} if by == "phone" else {"email": " Ann.Smith@Example.com "}))
    assert status == 200, body
    assert body["matched_by"] == by and body["actor"] == "api:" + tenant.key[:10]
    assert (body["contacts"], body["leads"], body["calls"], body["forms"]) == (2, 2, 1, 2)
    assert body["touchpoints"] == 2 and body["blocklist_removed"] == 1 and body["deliveries_cancelled"] >= 1

    text = dump(app, tenant.account.id)
    assert [t for t in ANN_TRACES if t in text] == []
    for kept in (BOB_PHONE, BOB_EMAIL, BOB_VID, "Bob Brown", "Maria", "google", "spring", "https://acme.example/quote"):
        assert kept in text, kept
    assert dump(app, world.other.account.id) == other_before  # same phone and email, another account: untouched
    assert snapshot(http, tenant) == before
    assert rows(app, "SELECT count(DISTINCT caller), count(*) FROM calls WHERE account_id = :a", a=tenant.account.id)[0] == callers

    # The lead's history keeps every change with its actor and time, the notes' values blanked,
    # and says who erased it.
    status, lead, _ = http.request("GET", f"/v1/leads/{world.ann_leads[0]}", key=tenant.key)
    assert status == 200 and lead["contact"] == {"id": lead["contact"]["id"], "phone": None, "email": None, "name": None}
    history = {(h["field"], h["actor"]): h for h in lead["history"]}
    api = "api:" + tenant.key[:10]
    assert history[("stage", api)]["new"] == "mql" and history[("owner", api)]["new"] == "Maria"
    assert history[("notes", api)]["old"] is None and history[("notes", api)]["new"] is None and history[("notes", api)]["ts"] > 0
    assert history[("erased", api)]["ts"] == clock.seconds()
    assert lead["stage"] == "mql" and lead["sales"]["notes"] is None
    assert [item["type"] for item in lead["timeline"]].count("touchpoint") >= 1  # the journey is still there, re-keyed

    # Pending deliveries of her leads are cancelled; the sent ones keep their log, not their body.
    deliveries = rows(app, "SELECT lead_id, status, body FROM lead_webhook_deliveries ORDER BY id")
    assert all(body is None for lead_id, _, body in deliveries if lead_id in world.ann_leads)
    assert {s for lead_id, s, _ in deliveries if lead_id in world.ann_leads} == {"delivered", "cancelled"}
    assert any(s == "pending" for lead_id, s, _ in deliveries if lead_id == world.bob_lead)
    attempts = rows(app, "SELECT response_excerpt FROM lead_webhook_attempts")
    assert attempts and all(r[0] is None for r in attempts)

    # The audit of erasures holds nothing personal; the person is not found again.
    status, listed, _ = http.request("GET", "/v1/contacts/erasures", key=tenant.key)
    assert status == 200 and [e["id"] for e in listed["erasures"]] == [body["id"]]
    assert not any(t in json.dumps(listed) for t in ANN_TRACES)
    assert erase(http, tenant, phone=ANN_PHONE)[0] == 404
    assert erase(http, tenant, email=ANN_EMAIL)[0] == 404

    # She rings again: a new person to us, nothing tied to the old history.
    status, _, _ = pbx_post(
        http, rows(app, "SELECT secret FROM telephony_credentials WHERE provider = 'pbx'")[0][0],
        {"event": "call.completed", "call_id": "ann-2", "from": ANN_PHONE, "to": STATIC_NUMBER, "started_at": clock.seconds(), "billsec": 5}, now=clock.seconds(),
    )
    assert status == 200
    fresh = rows(app, "SELECT lead_id, contact_id FROM calls WHERE call_ref = 'ann-2'")[0]
    assert fresh.lead_id not in world.ann_leads and fresh.contact_id != lead["contact"]["id"]


def test_another_accounts_key_erases_only_its_own_person(app, http, tenant, clock) -> None:
    world = build(app, http, tenant, clock)
    mine = dump(app, tenant.account.id)
    status, body, _ = erase(http, world.other, phone=ANN_PHONE)
    assert status == 200 and (body["contacts"], body["leads"], body["forms"], body["calls"]) == (1, 1, 1, 0)
    assert dump(app, tenant.account.id) == mine
    assert ANN_EMAIL not in dump(app, world.other.account.id)
    assert erase(http, world.other, email=BOB_EMAIL)[0] == 404  # Bob is the first account's
    assert BOB_EMAIL in dump(app, tenant.account.id)


def test_a_caller_known_only_by_calls_is_erased_and_bad_requests_are_refused(app, http, tenant, clock) -> None:
    build(app, http, tenant, clock)
    secret = rows(app, "SELECT secret FROM telephony_credentials WHERE provider = 'pbx'")[0][0]
    # A call to a number that is not ours: stored, its caller a person to nobody else.
    call = {"event": "call.completed", "call_id": "stray-1", "from": "+14155550188", "to": "+14155559999", "started_at": clock.seconds(), "billsec": 3}
    assert pbx_post(http, secret, call, now=clock.seconds())[0] == 200
    status, body, _ = erase(http, tenant, phone="+1 415 555 0188")
    assert status == 200 and body["calls"] == 1, body
    assert "4155550188" not in dump(app, tenant.account.id)

    for bad, code in (({}, 400), ({"phone": ANN_PHONE, "email": ANN_EMAIL}, 400), ({"phone": "call me"}, 400), ({"email": "nobody"}, 400),
                      ({"name": ANN_NAME}, 400), ({"phone": 4155550100}, 400), ({"email": "nobody@example.com"}, 404)):
        status, answer, _ = erase(http, tenant, **bad)
        assert status == code, (bad, answer)
    assert http.request("POST", "/v1/contacts/erase", json_body={"phone": ANN_PHONE})[0] == 401
    assert http.request("GET", "/v1/contacts/erasures", key="ctk_wrong")[0] == 401
    assert ANN_EMAIL in dump(app, tenant.account.id)  # none of that erased anything


def test_the_cli_erases_by_email_with_the_cli_as_actor(cli, tmp_path: Path) -> None:  # noqa: F811
    cli("db", "upgrade")
    cli("account", "create", "Acme", "--region", "US")
    cli("site", "add", "--name", "acme", "--domain", "acme.example", "--number", "415 555 2671")
    config = load_config()
    app = build_app(config, reactor=Clock(), engine=create_engine(config.database.url), synchronous_db=True)
    site = app.db.run_sync("site", lambda c: c.exec_driver_sql("SELECT site_key FROM sites").scalar_one())
    site = resolve(app.accounts.site_by_key(site))
    for fields in ({"email": ANN_EMAIL, "name": ANN_NAME, "message": "hi"}, {"email": BOB_EMAIL}):
        resolve(app.forms.submit(site, read_form(fields, region="US"), client_ref=None, vid=None, sid=None, url=None))
    out = json.loads(cli("--json", "contacts", "erase", "--email", ANN_EMAIL))
    assert (out["actor"], out["contacts"], out["forms"], out["leads"]) == ("cli", 1, 1, 1)
    assert "account 1 has no such person" in cli("contacts", "erase", "--email", ANN_EMAIL, ok=False)
    assert "not a phone number" in cli("contacts", "erase", "--phone", "call me", ok=False)
    with app.engine.connect() as conn:
        texts = " ".join(str(tuple(r)) for t in ("contacts", "form_submissions", "leads") for r in conn.exec_driver_sql(f"SELECT * FROM {t}"))
    assert ANN_EMAIL not in texts and ANN_NAME not in texts and BOB_EMAIL in texts
    text = cli("contacts", "erase", "--email", BOB_EMAIL)
    assert text.startswith("erasure 2: 1 contacts, 1 leads, 0 calls, 1 forms")


def test_erasing_twice_at_once_is_safe(app, http, tenant, clock) -> None:
    """The second of two requests for the same person finds nobody (the first committed)."""
    build(app, http, tenant, clock)
    first = resolve(app.privacy.erase(tenant.account, email=ANN_EMAIL, actor="api:x"))
    second = resolve(app.privacy.erase(tenant.account, phone=ANN_PHONE, actor="api:x"))
    assert first is not None and second is None
    assert form(http, tenant, {"email": ANN_EMAIL}, vid="vid-new")["lead_id"] not in (None,)  # she can be a lead again
    assert http.request("POST", "/v1/forms", json_body={"site": tenant.site.site_key, "fields": {"email": "x@example.com"}}, headers=ORIGIN)[0] == 201
