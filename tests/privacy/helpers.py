"""Two people with a history (visits, calls, a recording, forms, a merge of two contacts, sales
notes, lead webhook deliveries) in one account, a third in another account with Ann's phone and
email; and a dump of every text an account holds, to search for what should be gone."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from calltrack.db.schema import metadata
from tests.conftest import Tenant, make_tenant, resolve
from tests.leads.helpers import Crm, add_webhook, pump, use_crm
from tests.numbers.helpers import visit
from tests.telephony.helpers import STATIC_NUMBER, TWILIO_SID, pbx_post, setup_phones, twilio_post, voice_params

DAY = 86400.0
ORIGIN = {"Origin": "https://acme.example"}
ANN_PHONE = "+14155550100"
ANN_EMAIL = "ann.smith@example.com"
ANN_NAME = "Ann Smith-Jones"
ANN_VID = "vid-ann-7f3k2q"
ANN_VID2 = "vid-ann-phone-9x8w"
ANN_GCLID = "Cj0KCQ-ann-gclid-1234"
ANN_RECORDING = "https://api.twilio.com/2010-04-01/Accounts/AC1/Recordings/RE-ann-0001"
ANN_NOTE = "Ann asked us to ring back on (415) 555-0100 after 5pm"
ANN_SID = "CA" + "a" * 32
BOB_PHONE = "+14155550155"
BOB_EMAIL = "bob@example.com"
BOB_VID = "vid-bob-4h5j6k"
# What may remain of Ann in her account after an erasure: nothing of these.
ANN_TRACES = (
    ANN_PHONE, "4155550100", ANN_EMAIL, "ann.smith", ANN_NAME, "SAN FRANCISCO", ANN_VID, ANN_VID2, ANN_GCLID, ANN_RECORDING,
    "ring back", f"s-{ANN_VID}", "Ann's company",
)
PERIOD = "from=2025-12-31&to=2026-01-30"


@dataclass
class World:
    tenant: Tenant
    other: Tenant
    crm: Crm
    ann_leads: list[int]
    bob_lead: int
    other_lead: int


def form(http: Any, tenant: Tenant, fields: dict[str, str], *, vid: str | None = None, origin: dict[str, str] = ORIGIN, url: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"site": tenant.site.site_key, "fields": fields}
    if vid:
        body |= {"vid": vid, "sid": f"s-{vid}"}
    if url:
        body["url"] = url
    status, answer, _ = http.request("POST", "/v1/forms", json_body=body, headers=origin)
    assert status == 201, answer
    return answer


def build(app: Any, http: Any, tenant: Tenant, clock: Any) -> World:
    phones = setup_phones(app, tenant, record=True)
    hook = add_webhook(http, tenant)
    crm = Crm()
    stub = use_crm(app, crm)
    assert hook["id"]

    # Ann: a Google ad (her email in the landing page's query), a pool number, a call, a recording.
    answer = visit(
        app, tenant, ANN_VID, utm_source="google", utm_medium="cpc", utm_campaign="spring", gclid=ANN_GCLID,
        url=f"https://acme.example/quote?email={ANN_EMAIL}", ref="https://mail.example/inbox?u=ann.smith",
    )
    clock.advance(60)
    status, _, _ = twilio_post(http, "/v1/webhooks/twilio/voice", voice_params(ANN_SID, to=answer.phone_number, CallerName=ANN_NAME))
    assert status == 200
    recording = {"AccountSid": TWILIO_SID, "CallSid": ANN_SID, "RecordingSid": "RE" + "1" * 32, "RecordingStatus": "completed",
                 "RecordingUrl": ANN_RECORDING, "RecordingDuration": "31"}
    assert twilio_post(http, "/v1/webhooks/twilio/recording", recording)[0] == 200
    # …a form from her phone's browser with only her email: a second contact, a second lead…
    clock.advance(3600)
    visit(app, tenant, ANN_VID2, ref="https://www.bing.com/search?q=ann+smith+plumber")
    second = form(http, tenant, {"email": ANN_EMAIL, "name": ANN_NAME, "company": "Ann's company", "message": "leaky tap"}, vid=ANN_VID2)
    pump(app, stub)  # these deliveries go out: their bodies (with her contact) are fixed and kept
    # …and a form with both: the two contacts are one person (merged).
    clock.advance(3600)
    form(http, tenant, {"email": ANN_EMAIL, "phone": "(415) 555-0100"}, vid=ANN_VID, url=f"https://acme.example/thanks?name={ANN_NAME}")
    first = int(app.db.run_sync("x", lambda c: c.execute(sa.text("SELECT lead_id FROM calls WHERE call_ref = :s"), {"s": ANN_SID}).scalar_one()))
    status, body, _ = http.request("PATCH", f"/v1/leads/{first}", json_body={"stage": "mql", "notes": ANN_NOTE, "owner": "Maria"}, key=tenant.key)
    assert status == 200, body

    # Bob: a Facebook visit and a form; a call to the billboard number from the PBX.
    visit(app, tenant, BOB_VID, utm_source="facebook", utm_medium="paid_social", utm_campaign="spring")
    clock.advance(600)
    bob = form(http, tenant, {"email": BOB_EMAIL, "phone": BOB_PHONE, "name": "Bob Brown"}, vid=BOB_VID)
    call = {"event": "call.completed", "call_id": "bob-1", "from": BOB_PHONE, "to": STATIC_NUMBER, "started_at": clock.seconds(), "billsec": 40, "disposition": "ANSWERED"}
    assert pbx_post(http, phones.pbx_secret, call, now=clock.seconds())[0] == 200

    # Another account knows Ann too, with the same phone and email.
    other = make_tenant(app, "Other Co", ("other.example",))
    mine = form(http, other, {"email": ANN_EMAIL, "phone": ANN_PHONE, "name": ANN_NAME}, origin={"Origin": "https://other.example"})
    resolve(app.telephony.block_caller(tenant.account.id, ANN_PHONE, "rude"))  # after her leads: they stay what they are
    return World(tenant, other, crm, [first, int(second["lead_id"])], int(bob["lead_id"]), int(mine["lead_id"]))


def dump(app: Any, account_id: int) -> str:
    """Every value of every row that belongs to the account (child rows through their parent)."""
    parents = {
        "call_events": ("call_id", "calls"), "lead_events": ("lead_id", "leads"), "contact_visitors": ("contact_id", "contacts"),
        "lease_events": ("lease_id", "leases"), "lead_webhook_attempts": ("delivery_id", "lead_webhook_deliveries"),
    }
    out: list[str] = []
    with app.engine.connect() as conn:
        for table in metadata.sorted_tables:
            if table.name == "accounts":
                q = sa.select(table).where(table.c.id == account_id)
            elif "account_id" in table.c:
                q = sa.select(table).where(table.c.account_id == account_id)
            elif table.name in parents:
                fk, parent = parents[table.name]
                p = metadata.tables[parent]
                q = sa.select(table).where(table.c[fk].in_(sa.select(p.c.id).where(p.c.account_id == account_id)))
            else:
                continue
            out += [f"{table.name}: {dict(r._mapping)!r}" for r in conn.execute(q)]
    return "\n".join(out)


def snapshot(http: Any, tenant: Tenant) -> dict[str, Any]:
    """What reports and lists count, to compare before and after (a lead's visitor id is
    re-keyed by an erasure, so it is left out)."""
    got: dict[str, Any] = {}
    for name, path in (
        ("report", f"/v1/reports/campaigns?{PERIOD}&level=source_medium&models=last_touch,linear,markov"),
        ("report_campaign", f"/v1/reports/campaigns?{PERIOD}&level=campaign&models=first_touch&stage=lead"),
        ("landing_pages", f"/v1/reports/campaigns?{PERIOD}&level=landing_page&models=none"),
        ("attribution", "/v1/attribution?model=first_touch,linear,position_based&stage=lead&from=2025-12-31&to=2026-03-30"),
        ("leads", "/v1/leads?limit=1000"),
    ):
        status, body, _ = http.request("GET", path, key=tenant.key)
        assert status == 200, (path, body)
        got[name] = body
    got["leads"] = sorted(
        (lead["id"], lead["stage"], lead["kind"], lead["touches"], lead["sales"]["value"], tuple(sorted((k, v) for k, v in (lead["source"] or {}).items() if k != "vid")))
        for lead in got["leads"]["leads"]
    )
    return got
