"""Exports from real leads: made through the app (visits with click ids, forms, calls, stage
moves through PATCH /v1/leads), read by export_store and formatted by exports, on SQLite and
PostgreSQL. Which conversions a period and stage select, which click each gets (its own touch,
else the person's latest click within 90 days), what is left out."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass

import pytest

from calltrack.reports import export_store, exports
from tests.conftest import START, make_tenant
from tests.numbers.helpers import rows, visit
from tests.telephony.helpers import child_status, setup_phones, twilio_post, voice_params

DAY = 86400.0
HOUR = 3600.0
ORIGIN = {"Origin": "https://acme.example"}
JANE = "d6117306485ed0e50afab3ac871e98f81699151f30281527d63ff5f233656c69"  # sha256("janedoe@gmail.com"), the reference's vector
CALLER_HASH = "40d3f4e02db27d66cf4cfdda506c2c945f115a7955cc8491dda98ce5beabcda0"  # sha256("+14155550100")
MSCLKID = "f894f652ea334e739002f7167ab8f8e3"


@dataclass
class People:
    ann: int
    bob: int
    cy: int
    dee: int
    gus: int
    kim: int
    fay: int
    eve: int


def form(http, tenant, vid: str, fields: dict[str, str]) -> int:
    body = {"site": tenant.site.site_key, "vid": vid, "sid": f"s-{vid}", "fields": fields}
    status, answer, _ = http.request("POST", "/v1/forms", json_body=body, headers=ORIGIN)
    assert status == 201, answer
    return int(answer["lead_id"])


def patch(http, tenant, lead_id: int, **outcome) -> None:
    status, body, _ = http.request("PATCH", f"/v1/leads/{lead_id}", json_body=outcome, key=tenant.key)
    assert status == 200, body


def people(app, http, tenant, clock) -> People:
    """t0 = 2026-01-01T00:00Z (New York: 2025-12-31 19:00). Visits and calls at t0, forms at
    t0+1h; stage moves on the following days; Fay and Eve come back 60 and 100 days later."""
    setup_phones(app, tenant, pool_size=12)
    visit(app, tenant, "ann", gclid="Cj0KCQjw-ann", utm_source="google", utm_medium="cpc", utm_campaign="brand")
    visit(app, tenant, "bob", gbraid="0AAAAA-bob", msclkid=MSCLKID, utm_source="google", utm_medium="cpc")
    visit(app, tenant, "cy", wbraid="wb-cy")
    visit(app, tenant, "dee", utm_source="newsletter", utm_medium="email")
    visit(app, tenant, "gus", gclid="gus-click")
    kim_number = visit(app, tenant, "kim", gclid="kim-click").phone_number
    wil_number = visit(app, tenant, "wil", gclid="wil-click").phone_number
    visit(app, tenant, "fay", gclid="fay-click")
    visit(app, tenant, "eve", gclid="eve-click")
    # Kim rings the number her visit showed (a lead at once); Wil rings his, with his caller ID withheld.
    assert twilio_post(http, "/v1/webhooks/twilio/voice", voice_params("CA" + "1" * 32, caller="+14155550100", to=kim_number))[0] == 200
    assert twilio_post(http, "/v1/webhooks/twilio/status", child_status("CA" + "1" * 32, "completed", 3, duration=184))[0] == 200
    assert twilio_post(http, "/v1/webhooks/twilio/voice", voice_params("CA" + "2" * 32, caller="+266696687", to=wil_number))[0] == 200
    (kim,) = [r[0] for r in rows(app, "SELECT lead_id FROM calls WHERE call_ref = :s", s="CA" + "1" * 32)]
    assert rows(app, "SELECT lead_id, caller_withheld, match_method FROM calls WHERE call_ref = :s", s="CA" + "2" * 32)[0] == (None, True, "lease")
    clock.advance(HOUR)
    ann = form(http, tenant, "ann", {"email": " Jane.Doe@Gmail.com ", "phone": "415 555 0111", "_ga": "GA1.1.111.222", "ga_session_id": "1767225600"})
    bob = form(http, tenant, "bob", {"email": "bob@example.com"})
    cy = form(http, tenant, "cy", {"phone": "415 555 0133"})
    dee = form(http, tenant, "dee", {"email": "dee@example.com", "name": "Dee"})
    gus = form(http, tenant, "gus", {"email": "gus@example.com"})
    clock.advance(DAY)  # t0+1d+1h = 2026-01-02 01:00Z, New York 2026-01-01 20:00:00
    patch(http, tenant, ann, stage="mql")
    patch(http, tenant, bob, stage="mql")
    patch(http, tenant, cy, stage="mql")
    patch(http, tenant, cy, stage="spam", spam_reason="competitor")
    patch(http, tenant, gus, stage="customer", value=500)  # straight to customer: it reached MQL and SQL too
    clock.advance(DAY)
    patch(http, tenant, ann, stage="sql")
    patch(http, tenant, bob, stage="lost", loss_reason="refused to buy")
    clock.advance(DAY)  # t0+3d+1h = 2026-01-04 01:00Z, New York 2026-01-03 20:00:00
    patch(http, tenant, ann, stage="customer", value=1200, currency="EUR")
    clock.advance(57 * DAY)  # t0+60d+1h: Fay back without a click; hers is 60 days old
    visit(app, tenant, "fay", sid="s-fay", utm_source="newsletter", utm_medium="email")
    fay = form(http, tenant, "fay", {"email": "fay@example.com"})
    clock.advance(40 * DAY)  # t0+100d+1h: Eve back without a click; hers is 100 days old
    visit(app, tenant, "eve", sid="s-eve", utm_source="newsletter", utm_medium="email")
    eve = form(http, tenant, "eve", {"email": "eve@example.com"})
    return People(ann, bob, cy, dee, gus, kim, fay, eve)


def conversions(app, tenant, stage: str, since: float, until: float) -> list[exports.Conversion]:
    return app.db.run_sync("t", export_store.conversions_txn, tenant.account.id, stage, since, until)


def body(export: exports.Export, skip: int) -> list[str]:
    return export.payload.decode().split("\n")[skip:-1]


def test_google_ads_rows_per_stage_and_period(app, http, tenant, clock) -> None:
    p = people(app, http, tenant, clock)
    leads = conversions(app, tenant, "lead", START, START + 101 * DAY)
    assert [c.lead_id for c in leads] == [p.kim, p.ann, p.bob, p.dee, p.gus, p.fay, p.eve]  # the spam lead is not a conversion
    out = exports.google_ads_csv(leads, conversion_name="Lead", tz=tenant.account.timezone)
    assert body(out, 0)[:2] == [
        "Parameters:TimeZone=America/New_York",
        "Google Click ID,GBRAID,WBRAID,Conversion Name,Conversion Time,Conversion Value,Conversion Currency",
    ]
    assert body(out, 2) == [
        "kim-click,,,Lead,2025-12-31 19:00:00,,USD",  # a call, tied to the visit whose number was dialled
        "Cj0KCQjw-ann,,,Lead,2025-12-31 20:00:00,1200.00,EUR",
        ",0AAAAA-bob,,Lead,2025-12-31 20:00:00,,USD",  # gbraid in its own column; the msclkid is Microsoft's
        "gus-click,,,Lead,2025-12-31 20:00:00,500.00,USD",
        "fay-click,,,Lead,2026-03-01 20:00:00,,USD",  # her own touch had no click; her 60-day-old one counts
    ]
    assert sorted(sum(out.left_out.values(), [])) == [p.dee, p.eve]  # no click; a click 100 days old

    mql = exports.google_ads_csv(conversions(app, tenant, "mql", START, START + 10 * DAY), conversion_name="MQL", tz="America/New_York")
    assert body(mql, 2) == [
        "Cj0KCQjw-ann,,,MQL,2026-01-01 20:00:00,1200.00,EUR",
        ",0AAAAA-bob,,MQL,2026-01-01 20:00:00,,USD",  # lost since: it still was an MQL
        "gus-click,,,MQL,2026-01-01 20:00:00,500.00,USD",  # went straight to customer
    ]
    sql = exports.google_ads_csv(conversions(app, tenant, "sql", START, START + 10 * DAY), conversion_name="SQL", tz="America/New_York")
    assert body(sql, 2) == ["gus-click,,,SQL,2026-01-01 20:00:00,500.00,USD", "Cj0KCQjw-ann,,,SQL,2026-01-02 20:00:00,1200.00,EUR"]
    customers = exports.google_ads_csv(conversions(app, tenant, "customer", START, START + 10 * DAY), conversion_name="Sale", tz="America/New_York")
    assert body(customers, 2) == ["gus-click,,,Sale,2026-01-01 20:00:00,500.00,USD", "Cj0KCQjw-ann,,,Sale,2026-01-03 20:00:00,1200.00,EUR"]

    # [from, to): the moment of the MQL moves is in the second period, not the first.
    moved = START + DAY + HOUR
    assert conversions(app, tenant, "mql", START, moved) == []
    assert [c.lead_id for c in conversions(app, tenant, "mql", moved, moved + 1)] == [p.ann, p.bob, p.gus]
    assert [c.lead_id for c in conversions(app, tenant, "customer", moved + 1, START + 10 * DAY)] == [p.ann]


def test_microsoft_and_enhanced_conversions_from_the_same_people(app, http, tenant, clock) -> None:
    p = people(app, http, tenant, clock)
    mql = conversions(app, tenant, "mql", START, START + 10 * DAY)
    ms = exports.microsoft_ads_csv(mql, conversion_name="Qualified lead")
    assert body(ms, 1) == [
        "Format Version,,,,,6.0,,,,,",
        f"Offline Conversion,,,,lead-{p.bob},,USD,Qualified lead,1/2/2026 1:00:00 AM,,{MSCLKID}",
    ]
    assert sorted(sum(ms.left_out.values(), [])) == [p.ann, p.gus]

    leads = conversions(app, tenant, "lead", START, START + 101 * DAY)
    ec = exports.enhanced_conversions_csv(leads, conversion_name="Lead", tz="America/New_York")
    got = {row["Google Click ID"] or row["Email"] or row["Phone Number"]: row for row in csv.DictReader(io.StringIO("\n".join(body(ec, 1))))}
    assert got["Cj0KCQjw-ann"]["Email"] == JANE  # stored as jane.doe@gmail.com; Google's gmail rule drops the dot
    assert got["Cj0KCQjw-ann"]["Phone Number"] == exports.sha256_hex("+14155550111")
    assert got["kim-click"]["Phone Number"] == CALLER_HASH and got["kim-click"]["Email"] == ""
    assert got[exports.sha256_hex("dee@example.com")]["Google Click ID"] == ""
    assert got[exports.sha256_hex("bob@example.com")]["Google Click ID"] == ""  # a gbraid is no gclid
    assert len(got) == 7 and ec.left_out == {}  # everyone but the spam lead has an email or phone; the withheld caller made no lead
    assert all(row["Conversion Time"] and row["Conversion Name"] == "Lead" for row in got.values())


def test_ga4_fields_and_call_duration_come_from_forms_and_calls(app, http, tenant, clock) -> None:
    p = people(app, http, tenant, clock)
    found = {c.lead_id: c for c in conversions(app, tenant, "lead", START, START + DAY)}
    assert (found[p.ann].ga_client_id, found[p.ann].ga_session_id) == ("GA1.1.111.222", "1767225600")
    assert found[p.kim].kind == "call" and found[p.kim].call_duration == 184 and found[p.kim].phone == "+14155550100"
    events, out = exports.ga4_events(found.values(), event_name="generate_lead", as_of=START + 2 * HOUR)
    assert [e.lead_id for e in events] == [p.ann]
    assert events[0].body["client_id"] == "111.222" and events[0].body["timestamp_micros"] == int(START + HOUR) * 1_000_000
    assert events[0].body["events"][0]["params"]["session_id"] == "1767225600"
    assert sorted(sum(out.left_out.values(), [])) == sorted([p.bob, p.dee, p.gus, p.kim])


def test_leads_export_for_a_crm(app, http, tenant, clock) -> None:
    p = people(app, http, tenant, clock)
    found = app.db.run_sync("t", export_store.leads_txn, tenant.account.id, START, START + 101 * DAY)
    assert [lead.id for lead in found] == [p.kim, p.ann, p.bob, p.dee, p.gus, p.fay, p.eve]
    document = json.loads(exports.leads_json(found, since=START, until=START + 101 * DAY, tz="America/New_York").payload)
    ann = document["leads"][1]
    assert ann == {
        "id": p.ann, "created_at": "2026-01-01T01:00:00Z", "stage": "customer", "score": ann["score"], "temperature": ann["temperature"],
        "owner": None, "value": 1200.0, "currency": "EUR", "contact_name": None, "contact_phone": "+14155550111",
        "contact_email": "jane.doe@gmail.com", "kind": "form", "form_type": None, "channel": "paid_search", "source": "google",
        "medium": "cpc", "campaign": "brand", "keyword": None, "placement": None, "landing_page": None, "gclid": "Cj0KCQjw-ann",
        "gbraid": None, "wbraid": None, "msclkid": None, "fbclid": None, "first_response_at": "2026-01-02T01:00:00Z",
        "converted_at": "2026-01-04T01:00:00Z", "loss_reason": None,
    }
    assert document["count"] == 7 and document["from"] == "2026-01-01T00:00:00Z"
    bob = document["leads"][2]
    assert (bob["stage"], bob["loss_reason"], bob["gbraid"], bob["msclkid"], bob["currency"]) == ("lost", "refused to buy", "0AAAAA-bob", MSCLKID, "USD")
    kim = document["leads"][0]
    assert (kim["kind"], kim["contact_phone"], kim["gclid"]) == ("call", "+14155550100", "kim-click")
    table = list(csv.DictReader(io.StringIO(exports.leads_csv(found).payload.decode())))
    assert [int(r["id"]) for r in table] == [lead.id for lead in found]
    assert table[1]["value"] == "1200.00" and table[1]["contact_phone"] == "'+14155550111" and table[2]["value"] == ""
    assert table[3]["contact_name"] == "Dee" and table[3]["channel"] == "email"


@pytest.mark.parametrize("stage", ["lead", "mql", "customer"])
def test_another_account_sees_nothing(app, http, tenant, clock, stage) -> None:
    people(app, http, tenant, clock)
    other = make_tenant(app, "Other Co", ("other.example",))
    assert conversions(app, other, stage, START, START + 101 * DAY) == []
    assert app.db.run_sync("t", export_store.leads_txn, other.account.id, START, START + 101 * DAY) == []
