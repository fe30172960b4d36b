"""Cases a second review found (missed calls, answers told by duration, batch order, money
bounds, merged contacts, BANT on closed leads), kept as regressions."""
from __future__ import annotations

from tests.conftest import resolve
from tests.numbers.helpers import rows, visit
from tests.telephony.helpers import CALLER, STATIC_NUMBER, child_status, pbx_post, setup_phones, twilio_post, voice_params

ORIGIN = {"Origin": "https://acme.example"}


def new_lead(http, tenant, **fields):
    st, body, _ = http.request("POST", "/v1/forms", json_body={"site": tenant.site.site_key, "fields": fields}, headers=ORIGIN)
    assert st in (200, 201, 202), body
    return int(body["lead_id"])


def patch(http, tenant, lead_id, body):
    return http.request("PATCH", f"/v1/leads/{lead_id}", json_body=body, key=tenant.key)


def test_a_missed_twilio_call_stays_missed_whatever_the_parent_leg_lasted(app, http, tenant):
    """Child leg no-answer + parent completed with CallDuration (Twilio always sends it on the
    parent: the caller's own leg lasted 31 s while it rang). The call should be no-answer."""
    setup_phones(app, tenant)
    sid = "CA" + "0" * 31 + "7"
    twilio_post(http, "/v1/webhooks/twilio/voice", voice_params(sid, to=STATIC_NUMBER))
    twilio_post(http, "/v1/webhooks/twilio/status", child_status(sid, "no-answer", 1))
    parent = voice_params(sid, to=STATIC_NUMBER) | {"CallStatus": "completed", "CallDuration": "31", "SequenceNumber": "2"}
    twilio_post(http, "/v1/webhooks/twilio/status", parent)
    status, duration, answered_at = rows(app, "SELECT status, duration, answered_at FROM calls")[0]
    assert status == "no-answer", (status, duration, answered_at)


def test_a_call_answered_by_its_duration_alone_is_a_response(app, http, tenant, clock):
    """A PBX/CDR completion with billsec but no answered_at was answered: speed to lead says so."""
    phones = setup_phones(app, tenant)
    now = clock.seconds()
    pbx_post(http, phones.pbx_secret, {"event": "call.completed", "call_id": "1.1", "from": CALLER, "to": STATIC_NUMBER,
                                       "started_at": now, "ended_at": now + 130, "billsec": 120, "disposition": "ANSWERED"}, now=now)
    assert rows(app, "SELECT status FROM calls")[0][0] == "completed"
    lead_id = rows(app, "SELECT id FROM leads")[0][0]
    clock.advance(3 * 3600)
    detail = http.request("GET", f"/v1/leads/{lead_id}", key=tenant.key)[1]
    assert detail["speed"]["missed_not_called_back"] is False and detail["speed"]["status"] != "overdue", detail["speed"]


def test_a_value_rounding_past_numeric_14_2_is_refused(http, tenant, engine):
    lead_id = new_lead(http, tenant, email="ann@example.com")
    st, body, _ = patch(http, tenant, lead_id, {"value": 999999999999.999})
    assert st == 400 and body["error"]["code"] == "invalid_outcome", (st, body)
    assert patch(http, tenant, lead_id, {"value": 999999999999.99})[0] == 200


def test_the_spam_reason_stays_in_the_history_when_undone(http, tenant):
    lead_id = new_lead(http, tenant, email="ann@example.com")
    assert patch(http, tenant, lead_id, {"stage": "spam", "spam_reason": "competitor"})[0] == 200
    assert patch(http, tenant, lead_id, {"stage": "new"})[0] == 200
    detail = http.request("GET", f"/v1/leads/{lead_id}", key=tenant.key)[1]
    assert any("competitor" in str(h) for h in detail["history"]), detail["history"]


def test_a_merged_persons_second_phone_still_finds_them(app, http, tenant, clock):
    setup_phones(app, tenant)
    other_phone = "+14155550111"
    # X: form with email + phone A; Y: a call from phone B
    http.request("POST", "/v1/forms", json_body={"site": tenant.site.site_key, "id": "f1", "fields": {"email": "ann@example.com", "phone": CALLER}}, headers=ORIGIN)
    twilio_post(http, "/v1/webhooks/twilio/voice", voice_params("CA" + "1" * 32, caller=other_phone, to=STATIC_NUMBER))
    # a form naming the email and phone B: X and Y are one person
    http.request("POST", "/v1/forms", json_body={"site": tenant.site.site_key, "id": "f2", "fields": {"email": "ann@example.com", "phone": other_phone}}, headers=ORIGIN)
    assert len(rows(app, "SELECT id FROM contacts WHERE merged_into IS NULL")) == 1
    clock.advance(60)
    twilio_post(http, "/v1/webhooks/twilio/voice", voice_params("CA" + "2" * 32, caller=other_phone, to=STATIC_NUMBER))
    live = rows(app, "SELECT id, phone, email FROM contacts WHERE merged_into IS NULL")
    assert len(live) == 1, [tuple(r) for r in live]


def test_bant_on_a_lost_lead_is_recorded_without_a_move(http, tenant):
    lead_id = new_lead(http, tenant, email="ann@example.com")
    assert patch(http, tenant, lead_id, {"stage": "lost", "loss_reason": "no response"})[0] == 200
    st, body, _ = patch(http, tenant, lead_id, {"bant": {"budget": True, "authority": True, "need": True, "timing": True}})
    assert st == 200, (st, body)


def test_failed_bant_is_a_first_response(http, tenant, clock):
    lead_id = new_lead(http, tenant, email="ann@example.com")
    clock.advance(60)
    lead = patch(http, tenant, lead_id, {"bant": {"budget": False}})[1]
    assert lead["stage"] == "nurturing"
    assert lead["first_response_at"] is not None, lead["speed"]


def test_missed_twilio_calls_never_make_the_lead_spam(app, http, tenant, clock):
    """README: 'missed calls never count' for the short-calls spam rule. A caller who rings
    three times and hangs up after 5 s of ringing each time (nobody answered) becomes spam,
    because the parent leg's CallDuration (ringing time) is taken as talk time."""
    setup_phones(app, tenant)
    for i in range(3):
        sid = f"CA{i:032d}"
        twilio_post(http, "/v1/webhooks/twilio/voice", voice_params(sid, to=STATIC_NUMBER))
        twilio_post(http, "/v1/webhooks/twilio/status", child_status(sid, "no-answer", 1))
        parent = voice_params(sid, to=STATIC_NUMBER) | {"CallStatus": "completed", "CallDuration": "5", "SequenceNumber": "2"}
        twilio_post(http, "/v1/webhooks/twilio/status", parent)
        clock.advance(600)
    assert rows(app, "SELECT stage FROM leads")[0][0] != "spam", [tuple(r) for r in rows(app, "SELECT status, duration FROM calls")]


def test_a_batch_keeps_a_callers_calls_in_order(app, http, tenant, clock):
    """ingest_batch_txn sorts a batch by call_ref (random for Twilio SIDs and for CDR rows
    without uniqueid, which get a hash). Two calls of one person in one batch are then applied
    out of time order: the later call opens the lead and gives it its source."""
    from calltrack.numbers.store import NewNumber
    from calltrack.telephony.cdr import read_cdr
    setup_phones(app, tenant)
    resolve(app.numbers.add_numbers(tenant.account.id, [NewNumber("+14155550188", "+14155550166", "static", source="radio", medium="offline")]))
    evs = list(read_cdr([
        "call_id,from,to,started_at,billsec,disposition\n",
        f"b-first,{CALLER},{STATIC_NUMBER},2026-01-01T00:00:00Z,30,ANSWERED\n",   # billboard, first
        f"a-second,{CALLER},+14155550188,2026-01-02T00:00:00Z,30,ANSWERED\n",     # radio, a day later
    ]))
    app.telephony.ingest_many_sync(tenant.account.id, "US", evs, now=clock.seconds())
    source, created_at = rows(app, "SELECT source, created_at FROM leads")[0]
    assert source == "billboard", (source, created_at)


def test_a_lone_surrogate_in_json_is_400(http, tenant):
    lead_id = new_lead(http, tenant, email="ann@example.com")
    raw = b'{"notes": "\\ud800"}'
    status, body, _ = http.request("PATCH", f"/v1/leads/{lead_id}", data=raw, headers={"Content-Type": "application/json"}, key=tenant.key)
    assert status == 400 and body["error"]["code"] == "malformed_json"
    pair = '{"notes": "\\ud83d\\ude00 fine"}'.encode()  # an escaped pair is one real character
    assert http.request("PATCH", f"/v1/leads/{lead_id}", data=pair, headers={"Content-Type": "application/json"}, key=tenant.key)[0] == 200


def test_missed_outcomes_do_not_depend_on_order():
    from calltrack.telephony.events import later_status

    assert later_status("busy", "no-answer") == later_status("no-answer", "busy") == "busy"
    assert later_status("completed", "no-answer") == later_status("no-answer", "completed") == "no-answer"
    assert later_status("no-answer", "completed", answered=True) == "completed"
