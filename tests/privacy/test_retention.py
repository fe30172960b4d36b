"""Retention: recordings, caller numbers and form fields older than an account's settings are
anonymised by the purge (on demand, and hourly in the server), in batches; reports, attribution
and lead counts read the same after; a caller who keeps calling keeps one identity until their
last call is old; the lead history stays — on SQLite and PostgreSQL."""

from __future__ import annotations

import json

import pytest

from calltrack.privacy import service as privacy_service
from calltrack.privacy import store as privacy_store
from tests.conftest import make_tenant, resolve
from tests.numbers.helpers import rows, visit
from tests.privacy.helpers import DAY, ORIGIN
from tests.telephony.helpers import STATIC_NUMBER, pbx_post, setup_phones, twilio_post, voice_params

X, Y, Z = "+14155550111", "+14155550122", "+14155550144"
PERIODS = ("from=2025-12-31&to=2026-02-20", "from=2026-02-05&to=2026-02-20")


def pbx_call(http, phones, clock, ref: str, caller: str, **extra) -> None:  # type: ignore[no-untyped-def]
    body = {"event": "call.completed", "call_id": ref, "from": caller, "to": STATIC_NUMBER, "started_at": clock.seconds(), "billsec": 30,
            "disposition": "ANSWERED", **extra}
    status, answer, _ = pbx_post(http, phones.pbx_secret, body, now=clock.seconds())
    assert status == 200, answer


def form(http, tenant, fields, *, vid=None, url=None) -> int:  # type: ignore[no-untyped-def]
    body = {"site": tenant.site.site_key, "fields": fields, "vid": vid, "sid": vid and f"s-{vid}", "url": url}
    status, answer, _ = http.request("POST", "/v1/forms", json_body={k: v for k, v in body.items() if v is not None}, headers=ORIGIN)
    assert status == 201, answer
    return int(answer["lead_id"])


def history(app, tenant, clock):  # type: ignore[no-untyped-def]
    """Day 0: X rings (recorded, named), Y rings a pool number from a Google visit, a withheld
    caller rings, two forms. Day 40: Y rings again, Z rings (recorded), a new form."""
    phones = setup_phones(app, tenant)
    from tests.conftest import Http

    http = Http(app)
    pbx_call(http, phones, clock, "x-1", X, recording_url="https://pbx.example/rec/x-1.wav", caller_name="Xavier Old")
    number = visit(app, tenant, "vid-y", utm_source="google", utm_medium="cpc", utm_campaign="spring").phone_number
    assert twilio_post(http, "/v1/webhooks/twilio/voice", voice_params("CA" + "b" * 32, caller=Y, to=number, CallerName="Yolanda"))[0] == 200
    pbx_call(http, phones, clock, "w-1", "", caller_name="Private Person")
    visit(app, tenant, "vid-f", utm_source="facebook", utm_medium="paid_social", utm_campaign="spring")
    old_form = form(http, tenant, {"email": "old@example.com", "phone": "415 555 0133", "name": "Olga Form", "message": "call me"}, vid="vid-f",
                    url="https://acme.example/quote?email=old@example.com#top")
    form(http, tenant, {"email": "quiet@example.com"})
    assert http.request("PATCH", f"/v1/leads/{old_form}", json_body={"stage": "mql", "notes": "keen"}, key=tenant.key)[0] == 200
    clock.advance(40 * DAY)
    pbx_call(http, phones, clock, "y-2", Y)
    pbx_call(http, phones, clock, "z-1", Z, recording_url="https://pbx.example/rec/z-1.wav")
    form(http, tenant, {"email": "new@example.com", "name": "Nina New"})
    return http, old_form


def snapshot(http, tenant):  # type: ignore[no-untyped-def]
    got = []
    for period in PERIODS:
        for query in ("level=source_medium&models=last_touch,linear", "level=campaign&models=none", "level=tracking_number&models=none"):
            status, body, _ = http.request("GET", f"/v1/reports/campaigns?{period}&{query}", key=tenant.key)
            assert status == 200, body
            got.append(body)
    status, body, _ = http.request("GET", "/v1/attribution?model=first_touch,linear&stage=lead&from=2025-12-31&to=2026-03-30", key=tenant.key)
    assert status == 200, body
    got.append(body)
    status, body, _ = http.request("GET", "/v1/leads?limit=1000", key=tenant.key)
    got.append(sorted((lead["id"], lead["stage"], lead["touches"], lead["source"]["channel"]) for lead in body["leads"]))
    return got


def calls_by_ref(app):  # type: ignore[no-untyped-def]
    return {r.call_ref: r for r in rows(app, "SELECT * FROM calls")}


def payloads(app, ref: str) -> str:  # type: ignore[no-untyped-def]
    return " ".join(r[0] for r in rows(app, "SELECT e.payload FROM call_events e JOIN calls c ON c.id = e.call_id WHERE c.call_ref = :r", r=ref))


def test_settings_through_the_api_per_account(app, http, tenant) -> None:
    assert http.request("GET", "/v1/account/retention", key=tenant.key)[1] == {"recordings_days": None, "callers_days": None, "forms_days": None}
    status, body, _ = http.request("PATCH", "/v1/account/retention", json_body={"recordings_days": 90, "forms_days": 365}, key=tenant.key)
    assert status == 200 and body == {"recordings_days": 90, "callers_days": None, "forms_days": 365}
    status, body, _ = http.request("PATCH", "/v1/account/retention", json_body={"forms_days": None, "callers_days": 30}, key=tenant.key)
    assert body == {"recordings_days": 90, "callers_days": 30, "forms_days": None}
    for bad in ({}, {"recordings_days": 0}, {"recordings_days": "90"}, {"calls_days": 3}, {"forms_days": 10**6}):
        status, answer, _ = http.request("PATCH", "/v1/account/retention", json_body=bad, key=tenant.key)
        assert status == 400 and answer["error"]["code"] == "invalid_retention", (bad, answer)
    other = make_tenant(app, "Other Co", ("other.example",))
    assert http.request("GET", "/v1/account/retention", key=other.key)[1]["recordings_days"] is None
    assert http.request("PATCH", "/v1/account/retention", json_body={"forms_days": 1}, key="ctk_nope")[0] == 401
    assert http.request("GET", "/v1/account/retention", key=tenant.key)[1]["recordings_days"] == 90


def test_the_purge_anonymises_old_data_and_every_count_stays(app, tenant, clock) -> None:
    http, old_form = history(app, tenant, clock)
    before = snapshot(http, tenant)
    lead_history = http.request("GET", f"/v1/leads/{old_form}", key=tenant.key)[1]["history"]
    other = make_tenant(app, "Other Co", ("other.example",))
    assert http.request("PATCH", "/v1/account/retention", json_body={"recordings_days": 30, "callers_days": 30, "forms_days": 30}, key=tenant.key)[0] == 200

    done = resolve(app.privacy.purge())
    assert done == {tenant.account.id: {"recordings": 1, "callers": 2, "forms": 2, "contacts": 3}}, done
    assert snapshot(http, tenant) == before
    calls = calls_by_ref(app)
    x, y_old, y_new, withheld, z = calls["x-1"], calls["CA" + "b" * 32], calls["y-2"], calls["w-1"], calls["z-1"]
    assert x.caller.startswith("~") and len(x.caller) == 16 and x.caller_name is None and x.recording_url is None and x.duration == 30
    assert "Xavier" not in payloads(app, "x-1") and "4155550111" not in payloads(app, "x-1") and "rec/x-1" not in payloads(app, "x-1")
    assert (y_old.caller, y_new.caller, y_old.caller_name) == (Y, Y, "Yolanda")  # Y rang again 0 days ago: kept, old call too
    assert withheld.caller is None and withheld.caller_withheld and withheld.caller_name is None and "Private" not in payloads(app, "w-1")
    assert z.caller == Z and z.recording_url == "https://pbx.example/rec/z-1.wav"
    forms = {r.email or r.id: r for r in rows(app, "SELECT * FROM form_submissions ORDER BY id")}
    assert forms["new@example.com"].name == "Nina New"
    old = [r for r in forms.values() if r.email is None]
    assert len(old) == 2 and all(r.fields == "{}" and r.phone is None and r.name is None and r.message is None for r in old)
    assert {r.url for r in old} == {None, "https://acme.example/quote"} and all(r.lead_id for r in old)
    contacts = {(r.phone, r.email, r.name) for r in rows(app, "SELECT phone, email, name FROM contacts")}
    assert contacts == {(None, None, None), (Y, None, "Yolanda"), (Z, None, None), (None, "new@example.com", "Nina New")}
    assert http.request("GET", f"/v1/leads/{old_form}", key=tenant.key)[1]["history"] == lead_history  # the audit stays
    assert rows(app, "SELECT count(*) FROM contacts WHERE account_id = :a", a=other.account.id)[0][0] == 0

    assert resolve(app.privacy.purge()) == {tenant.account.id: {"recordings": 0, "callers": 0, "forms": 0, "contacts": 0}}
    clock.advance(31 * DAY)  # now Y's last call is 31 days old: all of Y's calls take one pseudonym
    before = snapshot(http, tenant)  # (alerts in a report depend on today)
    done = resolve(app.privacy.purge(tenant.account.id))
    assert done[tenant.account.id]["callers"] == 3 and done[tenant.account.id]["recordings"] == 1  # Y twice, Z once; Z's recording
    ys = {r[0] for r in rows(app, "SELECT caller FROM calls WHERE call_ref IN (:a, :b)", a="CA" + "b" * 32, b="y-2")}
    assert len(ys) == 1 and ys.pop().startswith("~")
    assert rows(app, "SELECT count(*) FROM calls WHERE caller LIKE '+%'")[0][0] == 0
    assert snapshot(http, tenant) == before
    metrics = http.request("GET", "/metrics")[1].decode()
    assert 'calltrack_privacy_purged_total{kind="callers"} 5.0' in metrics


def test_batches_pick_up_where_they_stopped(app, tenant, clock, monkeypatch: pytest.MonkeyPatch) -> None:
    """Batches of 2 rows: the cursor walks through many; a caller seen in several batches is
    replaced once, with one pseudonym."""
    monkeypatch.setattr(privacy_store, "BATCH", 2)
    batches: list[str] = []
    run = app.db.run

    async def counting(desc, fn, *args, **kwargs):  # type: ignore[no-untyped-def]
        batches.append(desc)
        return await run(desc, fn, *args, **kwargs)

    monkeypatch.setattr(app.db, "run", counting)
    phones = setup_phones(app, tenant)
    from tests.conftest import Http

    http = Http(app)
    for i in range(7):
        pbx_call(http, phones, clock, f"c-{i}", X if i % 2 else Y)
        form(http, tenant, {"email": f"p{i}@example.com", "message": "hello"})
        clock.advance(60)
    clock.advance(2 * DAY)
    resolve(app.privacy.set_retention(tenant.account.id, {"callers_days": 1, "forms_days": 1}))
    done = resolve(app.privacy.purge())[tenant.account.id]
    assert done == {"callers": 7, "forms": 7, "contacts": 9}
    # Callers: the first batch meets both numbers and replaces all 7 calls; the next finds none left.
    assert (batches.count("purge_callers"), batches.count("purge_forms"), batches.count("purge_contacts")) == (2, 4, 5)
    assert len({r[0] for r in rows(app, "SELECT DISTINCT caller FROM calls")}) == 2
    assert rows(app, "SELECT count(*) FROM form_submissions WHERE fields != '{}'")[0][0] == 0
    assert rows(app, "SELECT count(*) FROM contacts WHERE phone IS NOT NULL OR email IS NOT NULL")[0][0] == 0


def test_the_server_purges_hourly_from_where_it_stopped(app, tenant, clock) -> None:
    http, _ = history(app, tenant, clock)
    resolve(app.privacy.set_retention(tenant.account.id, {"recordings_days": 30}))
    app.privacy.start()
    try:
        clock.advance(privacy_service.FIRST_PURGE_AFTER)
        assert rows(app, "SELECT count(*) FROM calls WHERE recording_url IS NOT NULL")[0][0] == 1  # z-1, from today
        mark = app.privacy._marks[(tenant.account.id, "recordings")]
        clock.advance(29 * DAY)  # the loop runs every hour meanwhile, each time reading only what aged since
        assert app.privacy._marks[(tenant.account.id, "recordings")] > mark
        assert rows(app, "SELECT count(*) FROM calls WHERE recording_url IS NOT NULL")[0][0] == 1
        clock.advance(2 * DAY)
        assert rows(app, "SELECT count(*) FROM calls WHERE recording_url IS NOT NULL")[0][0] == 0
    finally:
        app.privacy.stop()
    assert not clock.getDelayedCalls() or all(c.func != app.privacy._tick for c in clock.getDelayedCalls())


def test_the_cli_sets_shows_and_purges(cli) -> None:  # noqa: F811
    cli("db", "upgrade")
    cli("account", "create", "Acme")
    assert "no account has a retention setting" in cli("retention", "purge")
    assert cli("account", "retention") == "recordings: kept\ncallers: kept\nforms: kept\n"
    out = cli("account", "retention", "--recordings-days", "90", "--forms-days", "30")
    assert out.startswith("recordings: 90 days\ncallers: kept\nforms: 30 days\n")
    assert json.loads(cli("--json", "account", "retention", "--forms-days", "keep")) == {"recordings_days": 90, "callers_days": None, "forms_days": None}
    assert "1 to 36500" in cli("account", "retention", "--callers-days", "0", ok=False)
    assert "number of days or 'keep'" in cli("account", "retention", "--callers-days", "soon", ok=False)
    assert cli("retention", "purge") == "account 1: 0 recordings\n"
    assert json.loads(cli("--json", "retention", "purge", "--account", "1")) == {"1": {"recordings": 0}}
    assert "no account 7" in cli("retention", "purge", "--account", "7", ok=False)
