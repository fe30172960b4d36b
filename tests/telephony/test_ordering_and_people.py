"""Order of arrival, people and tenants: cases a review found, kept as regressions."""

from __future__ import annotations
import pytest
from tests.conftest import resolve
from tests.numbers.helpers import count, rows, visit
from tests.telephony.helpers import CALLER, STATIC_NUMBER, child_status, pbx_post, setup_phones, telnyx_post, twilio_post, voice_params

SID1 = "CA" + "0" * 31 + "1"
ORIGIN = {"Origin": "https://acme.example"}

@pytest.fixture
def phones(app, tenant):
    return setup_phones(app, tenant)

def leased(app, tenant, vid, **tags):
    a = visit(app, tenant, vid, **tags); assert a.outcome == "leased"; return a.phone_number

def tx(kind, eid, *, leg="incoming", number, **p):
    payload = {"call_control_id": f"v3:{leg}", "call_session_id": "sess-1", "call_leg_id": f"leg-{leg}", "direction": leg}
    payload |= {"from": CALLER, "to": number} if leg == "incoming" else {"from": number, "to": "+14155552672"}
    payload |= p
    return {"data": {"record_type": "event", "event_type": kind, "id": eid, "occurred_at": "2026-01-01T00:00:05Z", "payload": payload}}

@pytest.mark.parametrize("order", [0, 1])
def test_telnyx_terminal_order(app, http, tenant, phones, clock, order):
    number = leased(app, tenant, "v1"); now = clock.seconds()
    evs = [tx("call.initiated", "e1", number=number), tx("call.answered", "e2", number=number), tx("call.initiated", "e3", leg="outgoing", number=number)]
    ends = [tx("call.hangup", "e4", leg="outgoing", number=number, hangup_cause="timeout"), tx("call.hangup", "e5", number=number, hangup_cause="normal_clearing")]
    if order: ends.reverse()
    for e in evs + ends:
        assert telnyx_post(http, phones.telnyx_key, e, now=now)[0] == 200
    assert rows(app, "SELECT status FROM calls")[0][0] == "no-answer"

def test_twilio_parent_child_order(app, http, tenant, phones):
    number = leased(app, tenant, "v1"); out = {}
    for order in (0, 1):
        sid = f"CA{order:032d}"
        twilio_post(http, "/v1/webhooks/twilio/voice", voice_params(sid, to=number))
        parent = voice_params(sid, to=number) | {"CallStatus": "completed", "CallDuration": "31", "SequenceNumber": "1"}
        child = child_status(sid, "no-answer", 2)
        for p in ([parent, child] if order == 0 else [child, parent]):
            assert twilio_post(http, "/v1/webhooks/twilio/status", p)[0] == 200
        out[order] = tuple(rows(app, "SELECT status, duration FROM calls WHERE call_ref=:s", s=sid)[0])
    assert out[0] == out[1], out

def test_missed_calls_not_spam(app, http, tenant, phones, clock):
    for i in range(3):
        sid = f"CA{i:032d}"
        twilio_post(http, "/v1/webhooks/twilio/voice", voice_params(sid, to=STATIC_NUMBER))
        twilio_post(http, "/v1/webhooks/twilio/status", child_status(sid, "no-answer", 2))
        clock.advance(600)
    assert rows(app, "SELECT stage FROM leads")[0][0] != "spam"

def test_touches_double_counted(app, http, tenant, phones, clock):
    number = leased(app, tenant, "v1"); now = clock.seconds(); base = {"call_id": "1700.9", "to": number}
    pbx_post(http, phones.pbx_secret, base | {"event": "call.answered"}, now=now)
    pbx_post(http, phones.pbx_secret, base | {"event": "call.completed", "from": CALLER, "billsec": 40, "disposition": "ANSWERED"}, now=now)
    assert rows(app, "SELECT touches FROM leads")[0][0] == 1

def test_phone_then_email_form_same_vid(app, http, tenant, phones):
    number = leased(app, tenant, "v1")
    twilio_post(http, "/v1/webhooks/twilio/voice", voice_params(SID1, to=number))
    http.request("POST", "/v1/forms", json_body={"site": tenant.site.site_key, "vid": "v1", "sid": "s-v1", "fields": {"email": "ann@example.com"}}, headers=ORIGIN)
    assert count(app, "leads") == 1

def test_no_contact_merge(app, http, tenant, phones):
    twilio_post(http, "/v1/webhooks/twilio/voice", voice_params(SID1, to=STATIC_NUMBER))
    http.request("POST", "/v1/forms", json_body={"site": tenant.site.site_key, "fields": {"email": "ann@example.com"}, "id": "f1"}, headers=ORIGIN)
    http.request("POST", "/v1/forms", json_body={"site": tenant.site.site_key, "fields": {"email": "ann@example.com", "phone": CALLER}, "id": "f2"}, headers=ORIGIN)
    live = rows(app, "SELECT id, phone, email FROM contacts WHERE merged_into IS NULL")
    assert [tuple(c)[1:] for c in live] == [(CALLER, "ann@example.com")]
    assert {r[0] for r in rows(app, "SELECT contact_id FROM leads")} == {live[0][0]}
    assert {r[0] for r in rows(app, "SELECT contact_id FROM form_submissions")} == {live[0][0]}

def test_block_marks_existing_lead(app, http, tenant, phones, clock):
    twilio_post(http, "/v1/webhooks/twilio/voice", voice_params(SID1, to=STATIC_NUMBER))
    resolve(app.telephony.block_caller(tenant.account.id, CALLER, "robocaller"))
    clock.advance(60)
    twilio_post(http, "/v1/webhooks/twilio/voice", voice_params("CA" + "2" * 32, to=STATIC_NUMBER))
    assert rows(app, "SELECT stage FROM leads")[0][0] == "spam"

def test_pbx_and_cdr_one_call(app, http, tenant, phones, clock):
    from calltrack.telephony.cdr import read_cdr
    now = clock.seconds()
    pbx_post(http, phones.pbx_secret, {"event": "call.started", "call_id": "1767225600.42", "from": CALLER, "to": STATIC_NUMBER}, now=now)
    evs = list(read_cdr(["call_id,from,to,started_at,billsec,disposition\n", f"1767225600.42,{CALLER},{STATIC_NUMBER},2026-01-01T00:00:00Z,30,ANSWERED\n"]))
    app.telephony.ingest_many_sync(tenant.account.id, "US", evs, now=now)
    assert count(app, "calls") == 1

def test_unparseable_to_still_forwarded(app, http, tenant, phones):
    st, body, _ = twilio_post(http, "/v1/webhooks/twilio/voice", voice_params(SID1, to="sip:+14155550199@pbx.example"))
    r = rows(app, "SELECT match_method, forwarded_to FROM calls")[0]
    assert b"<Dial" in body and r.match_method == "unmatched", (body, tuple(r))

def test_shared_twilio_account_routes_by_number(app, http, tenant, phones):
    from tests.conftest import make_tenant
    from calltrack.numbers.store import NewNumber
    from tests.telephony.helpers import TWILIO_SID, TWILIO_TOKEN
    other = make_tenant(app, "Other Co", ("other.example",))
    resolve(app.telephony.add_credential(other.account.id, "twilio", provider_account=TWILIO_SID, secret=TWILIO_TOKEN))
    resolve(app.numbers.add_numbers(other.account.id, [NewNumber("+14155550188", "+14155550166", "static", source="radio")]))
    st, body, _ = twilio_post(http, "/v1/webhooks/twilio/voice", voice_params(SID1, to="+14155550188"))
    r = rows(app, "SELECT account_id, match_method, forwarded_to FROM calls")[0]
    assert r.account_id == other.account.id and b"+14155550166" in body, (tuple(r), body)


def test_undecodable_headers_and_nul_bytes_are_400(app, http, tenant, phones):
    for path, method in (("/v1/webhooks/calls", "POST"), ("/v1/leads", "GET"), ("/v1/webhooks/twilio/voice", "POST")):
        d = http.stub.request(method, "http://calltrack.test" + path, headers={b"Authorization": [b"Bearer \xe9"], b"X-CT-Signature": [b"\xe9"], b"X-Twilio-Signature": [b"\xe9"], b"Content-Type": [b"application/x-www-form-urlencoded"]}, data=b"a=b")
        http.stub.flush()
        resp = resolve(d)
        assert resp.code in (400, 403), (path, resp.code)
    for q in ("source=%00", "campaign=a%01b", "channel=%00"):
        status, body, _ = http.request("GET", "/v1/leads?" + q, key=tenant.key)
        assert status == 400 and body["error"]["code"] == "invalid_parameter"
    status, _, _ = http.request("POST", "/v1/forms", json_body={"site": tenant.site.site_key + "\u0000", "fields": {"email": "a@b.example"}}, key=tenant.key)
    assert status == 400
    status, _, _ = http.request("POST", "/v1/forms", json_body={"site": tenant.site.site_key, "url": "https://acme.example/\u0000", "fields": {"email": "a@b.example"}}, headers=ORIGIN)
    assert status == 400
