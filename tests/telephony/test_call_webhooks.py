"""Calls through the real webhook endpoints: signatures, exactly once, ordering, matching,
leads and explain — on SQLite and PostgreSQL."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from tests.conftest import make_tenant, resolve
from tests.numbers.helpers import count, rows, visit
from tests.telephony.helpers import (
    CALLER, STATIC_NUMBER, TWILIO_SID, child_status, pbx_post, setup_phones, telnyx_post, twilio_post, voice_params,
)

SID1 = "CA" + "0" * 31 + "1"
SID2 = "CA" + "0" * 31 + "2"


@pytest.fixture
def phones(app, tenant):
    return setup_phones(app, tenant)


def dial_target(twiml: bytes) -> str | None:
    root = ET.fromstring(twiml)
    number = root.find("./Dial/Number")
    return None if number is None else number.text


def leased_number(app, tenant, vid: str, **tags: str) -> str:
    answer = visit(app, tenant, vid, **tags)
    assert answer.outcome == "leased"
    return answer.phone_number


def call_row(app, sid: str = SID1):
    found = rows(app, "SELECT * FROM calls WHERE call_ref = :s", s=sid)
    assert len(found) == 1
    return found[0]


# -- Twilio voice -------------------------------------------------------------------------------


def test_voice_webhook_forwards_and_matches_the_lease(app, http, tenant, phones):
    number = leased_number(app, tenant, "v1", utm_source="google", utm_medium="cpc", utm_campaign="spring", utm_term="boiler repair")
    status, body, headers = twilio_post(http, "/v1/webhooks/twilio/voice", voice_params(SID1, to=number))
    assert status == 200
    assert headers.getRawHeaders("content-type")[0].startswith("text/xml")
    assert dial_target(body) == tenant.site.forward_to
    dial = ET.fromstring(body).find("./Dial")
    assert "callerId" not in dial.attrib  # the caller's own number passes through
    call = call_row(app)
    assert (call.match_method, call.vid, call.caller, call.tracking_number) == ("lease", "v1", CALLER, number)
    assert (call.channel, call.source, call.campaign, call.keyword) == ("paid_search", "google", "spring", "boiler repair")
    lead = rows(app, "SELECT * FROM leads")
    assert len(lead) == 1 and lead[0].kind == "call" and lead[0].campaign == "spring" and lead[0].vid == "v1"
    assert call.lead_id == lead[0].id


def test_retried_voice_webhook_is_stored_once_and_answered_the_same(app, http, tenant, phones):
    number = leased_number(app, tenant, "v1")
    first = twilio_post(http, "/v1/webhooks/twilio/voice", voice_params(SID1, to=number))
    again = twilio_post(http, "/v1/webhooks/twilio/voice", voice_params(SID1, to=number))
    assert first[0] == again[0] == 200 and first[1] == again[1]
    assert (count(app, "calls"), count(app, "call_events"), count(app, "leads"), count(app, "contacts")) == (1, 1, 1, 1)
    assert rows(app, "SELECT touches FROM leads")[0][0] == 1


def test_status_before_voice_and_out_of_order_statuses_only_move_forward(app, http, tenant, phones, clock):
    number = leased_number(app, tenant, "v1", utm_source="bing", utm_medium="cpc")
    # The child leg's completion arrives first, then its earlier "in-progress", then the voice webhook.
    assert twilio_post(http, "/v1/webhooks/twilio/status", child_status(SID1, "completed", 3, duration=25))[0] == 200
    assert twilio_post(http, "/v1/webhooks/twilio/status", child_status(SID1, "in-progress", 2))[0] == 200
    call = call_row(app)
    assert call.status == "completed" and call.duration == 25 and call.tracking_number is None and call.match_method is None
    assert twilio_post(http, "/v1/webhooks/twilio/voice", voice_params(SID1, to=number))[0] == 200
    call = call_row(app)
    assert call.status == "completed" and call.duration == 25
    assert call.match_method == "lease" and call.source == "bing" and call.caller == CALLER
    assert count(app, "calls") == 1 and count(app, "call_events") == 3


def test_answered_then_completed_child_leg(app, http, tenant, phones):
    number = leased_number(app, tenant, "v1")
    twilio_post(http, "/v1/webhooks/twilio/voice", voice_params(SID1, to=number))
    twilio_post(http, "/v1/webhooks/twilio/status", child_status(SID1, "ringing", 1))
    twilio_post(http, "/v1/webhooks/twilio/status", child_status(SID1, "in-progress", 2))
    assert call_row(app).status == "in-progress"
    twilio_post(http, "/v1/webhooks/twilio/status", child_status(SID1, "completed", 3, duration=61))
    twilio_post(http, "/v1/webhooks/twilio/status", child_status(SID1, "completed", 3, duration=61))  # retried
    call = call_row(app)
    assert call.status == "completed" and call.duration == 61 and call.answered_at is not None
    assert count(app, "call_events") == 4


def test_recording_callback_sets_the_recording(app, http, tenant, phones):
    number = leased_number(app, tenant, "v1")
    twilio_post(http, "/v1/webhooks/twilio/voice", voice_params(SID1, to=number))
    rec = {
        "AccountSid": TWILIO_SID, "CallSid": SID1, "RecordingSid": "RE" + "1" * 32, "RecordingStatus": "completed",
        "RecordingUrl": "https://api.twilio.com/2010-04-01/Accounts/AC1/Recordings/RE1", "RecordingDuration": "42",
        "RecordingChannels": "2", "RecordingSource": "DialVerb",
    }
    assert twilio_post(http, "/v1/webhooks/twilio/recording", rec)[0] == 200
    call = call_row(app)
    assert call.recording_url.endswith("/RE1") and call.recording_duration == 42


def test_recording_options_per_account(app, http, clock):
    tenant = make_tenant(app)
    setup_phones(app, tenant, record=True)
    number = leased_number(app, tenant, "v1")
    _, body, _ = twilio_post(http, "/v1/webhooks/twilio/voice", voice_params(SID1, to=number))
    dial = ET.fromstring(body).find("./Dial")
    assert dial.attrib["record"] == "record-from-answer-dual"
    assert dial.attrib["recordingStatusCallback"] == "http://127.0.0.1:8080/v1/webhooks/twilio/recording"


# -- bad input ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "how",
    ["forged", "missing", "wrong_token", "unknown_account", "tampered"],
)
def test_bad_twilio_signatures_answer_403_and_store_nothing(app, http, tenant, phones, how):
    number = leased_number(app, tenant, "v1")
    params = voice_params(SID1, to=number)
    if how == "forged":
        result = twilio_post(http, "/v1/webhooks/twilio/voice", params, signature="0/KCTR6DLpKmkAf8muzZqo1nDgQ=")
    elif how == "missing":
        result = twilio_post(http, "/v1/webhooks/twilio/voice", params, signature="")
    elif how == "wrong_token":
        result = twilio_post(http, "/v1/webhooks/twilio/voice", params, token="not-the-token")
    elif how == "unknown_account":
        result = twilio_post(http, "/v1/webhooks/twilio/voice", params | {"AccountSid": "AC" + "9" * 32})
    else:
        from twilio.request_validator import RequestValidator

        sig = RequestValidator("twilio-auth-token-1").compute_signature("http://127.0.0.1:8080/v1/webhooks/twilio/voice", params)
        result = twilio_post(http, "/v1/webhooks/twilio/voice", params | {"From": "+14155550111"}, signature=sig)
    status, body, _ = result
    assert status == 403 and body["error"]["code"] == "bad_signature"
    assert count(app, "calls") == 0 and count(app, "call_events") == 0


def test_malformed_and_oversized_twilio_posts(app, http, tenant, phones):
    params = voice_params(SID1, to="+14155550010")
    del params["CallSid"]
    status, body, _ = twilio_post(http, "/v1/webhooks/twilio/voice", params)
    assert status == 400 and body["error"]["code"] == "invalid_event"
    status, body, _ = http.request("POST", "/v1/webhooks/twilio/voice", json_body={"CallSid": SID1})
    assert status == 415
    status, body, _ = twilio_post(http, "/v1/webhooks/twilio/voice", voice_params(SID1, to="+14155550010", Junk="x" * 70000))
    assert status == 413
    assert count(app, "calls") == 0


def test_unknown_number_is_stored_unmatched_and_forwarded_to_the_account_default(app, http, tenant, phones, caplog):
    status, body, _ = twilio_post(http, "/v1/webhooks/twilio/voice", voice_params(SID1, to="+14155550150"))
    assert status == 200 and dial_target(body) == tenant.site.forward_to
    call = call_row(app)
    assert call.match_method == "unmatched" and call.match_confidence == 0.0
    assert any("matched no tracking number" in r.getMessage() for r in caplog.records)


def test_unknown_number_without_any_target_hangs_up_politely(app, http):
    account, _ = resolve(app.accounts.create_account("No Sites", timezone="UTC", currency="EUR"))
    resolve(app.telephony.add_credential(account.id, "twilio", provider_account=TWILIO_SID, secret="tok"))
    status, body, _ = twilio_post(http, "/v1/webhooks/twilio/voice", voice_params(SID1, to="+14155550150"), token="tok")
    assert status == 200
    root = ET.fromstring(body)
    assert root.find("./Say") is not None and root.find("./Hangup") is not None and root.find("./Dial") is None
    assert count(app, "calls") == 1


# -- matching -----------------------------------------------------------------------------------


def test_static_number_carries_its_source(app, http, tenant, phones):
    _, body, _ = twilio_post(http, "/v1/webhooks/twilio/voice", voice_params(SID1, to=STATIC_NUMBER))
    assert dial_target(body) == "+14155550177"
    call = call_row(app)
    assert (call.match_method, call.match_confidence, call.channel, call.placement) == ("static", 1.0, "offline", "I-80 billboard")


def test_call_shortly_after_the_lease_ended_matches_with_lower_confidence(app, http, tenant, clock):
    setup_phones(app, tenant, cooldown=600)
    number = leased_number(app, tenant, "v1", utm_source="google", utm_medium="cpc")
    clock.advance(1800 + 30)  # the hold time passed with no heartbeat
    resolve(app.numbers.sweep_now())
    clock.advance(120)
    twilio_post(http, "/v1/webhooks/twilio/voice", voice_params(SID1, to=number))
    call = call_row(app)
    assert call.match_method == "expired_lease" and call.vid == "v1"
    assert 0.3 <= call.match_confidence < 0.8


def test_call_after_the_cooldown_is_unmatched_but_tracked_to_the_number(app, http, tenant, clock):
    setup_phones(app, tenant, cooldown=300)
    number = leased_number(app, tenant, "v1")
    clock.advance(1800 + 30)
    resolve(app.numbers.sweep_now())
    clock.advance(3 * 3600)
    twilio_post(http, "/v1/webhooks/twilio/voice", voice_params(SID1, to=number))
    call = call_row(app)
    assert call.match_method == "unmatched" and call.number_id is not None and call.vid is None


def test_repeat_caller_keeps_the_earlier_match(app, http, tenant, clock):
    setup_phones(app, tenant, pool_size=1, cooldown=60)
    number = leased_number(app, tenant, "v1", utm_source="google", utm_medium="cpc", utm_campaign="first")
    twilio_post(http, "/v1/webhooks/twilio/voice", voice_params(SID1, to=number))
    clock.advance(2 * 86400)
    resolve(app.numbers.sweep_now())
    assert leased_number(app, tenant, "v2", utm_source="facebook", utm_medium="paid_social") == number
    twilio_post(http, "/v1/webhooks/twilio/voice", voice_params(SID2, to=number))
    second = call_row(app, SID2)
    assert second.match_method == "repeat_caller" and second.vid == "v1" and second.campaign == "first"
    explain = rows(app, "SELECT explain FROM calls WHERE call_ref = :s", s=SID2)[0][0]
    assert '"v2"' in explain  # the visitor holding it now is listed among the others
    lead = rows(app, "SELECT * FROM leads")
    assert len(lead) == 1 and lead[0].touches == 2


def test_explain_endpoint_lists_others_and_is_tenant_scoped(app, http, tenant, clock):
    setup_phones(app, tenant, pool_size=1, cooldown=60)
    number = leased_number(app, tenant, "early")
    clock.advance(1800 + 90)
    resolve(app.numbers.sweep_now())
    clock.advance(60)
    assert leased_number(app, tenant, "now") == number
    clock.advance(30)
    twilio_post(http, "/v1/webhooks/twilio/voice", voice_params(SID1, to=number))
    call_id = call_row(app).id
    status, body, _ = http.request("GET", f"/v1/calls/{call_id}/explain", key=tenant.key)
    assert status == 200
    assert body["method"] == "lease" and body["vid"] == "now" and body["confidence"] == 0.95
    assert [o["vid"] for o in body["others"]] == ["early"]
    assert body["reason"] and body["events"][0]["kind"] == "started"
    other = make_tenant(app, "Other Co", ("other.example",))
    assert http.request("GET", f"/v1/calls/{call_id}/explain", key=other.key)[0] == 404
    assert http.request("GET", f"/v1/calls/{call_id}", key=other.key)[0] == 404
    assert http.request("GET", f"/v1/calls/{call_id}/explain")[0] == 401
    assert http.request("GET", "/v1/calls/99999999999999/explain", key=tenant.key)[0] == 404


# -- people and leads ---------------------------------------------------------------------------


def test_withheld_caller_is_interest_until_the_visitor_becomes_known(app, http, tenant, phones):
    number = leased_number(app, tenant, "v1", utm_source="google", utm_medium="cpc")
    twilio_post(http, "/v1/webhooks/twilio/voice", voice_params(SID1, to=number, caller="+266696687"))
    call = call_row(app)
    assert call.caller is None and call.caller_withheld and call.lead_id is None and call.vid == "v1"
    assert count(app, "leads") == 0 and count(app, "contacts") == 0
    status, body, _ = http.request(
        "POST", "/v1/forms", json_body={"site": tenant.site.site_key, "vid": "v1", "sid": "s-v1", "fields": {"email": "ann@example.com"}},
        headers={"Origin": "https://acme.example"},
    )
    assert status == 201 and body["lead_id"] is not None
    call = call_row(app)
    assert call.lead_id == body["lead_id"]
    assert rows(app, "SELECT touches FROM leads")[0][0] == 2


@pytest.mark.parametrize("raw", ["anonymous", "Restricted", "+7378742833", "", "client:alice"])
def test_withheld_and_odd_caller_ids_make_no_person(app, http, tenant, phones, raw):
    number = leased_number(app, tenant, "v1")
    assert twilio_post(http, "/v1/webhooks/twilio/voice", voice_params(SID1, to=number, caller=raw))[0] == 200
    call = call_row(app)
    assert call.caller is None and call.lead_id is None
    assert bool(call.caller_withheld) == (raw != "client:alice")


def test_a_known_caller_within_the_window_joins_the_open_lead_and_a_later_one_opens_another(app, http, tenant, phones, clock):
    twilio_post(http, "/v1/webhooks/twilio/voice", voice_params(SID1, to=STATIC_NUMBER))
    clock.advance(10 * 86400)
    twilio_post(http, "/v1/webhooks/twilio/voice", voice_params(SID2, to=STATIC_NUMBER))
    assert [r.touches for r in rows(app, "SELECT touches FROM leads")] == [2]
    clock.advance(31 * 86400)
    twilio_post(http, "/v1/webhooks/twilio/voice", voice_params("CA" + "3" * 32, to=STATIC_NUMBER))
    assert count(app, "leads") == 2 and count(app, "contacts") == 1


def test_blocklisted_caller_is_rejected_and_its_lead_is_spam(app, http, tenant, phones):
    resolve(app.telephony.block_caller(tenant.account.id, CALLER, "robocaller"))
    _, body, _ = twilio_post(http, "/v1/webhooks/twilio/voice", voice_params(SID1, to=STATIC_NUMBER))
    assert ET.fromstring(body).find("./Reject") is not None
    assert call_row(app).spam_reason == "blocklisted"
    lead = rows(app, "SELECT stage, spam_reason FROM leads")[0]
    assert tuple(lead) == ("spam", "blocklisted")
    assert http.request("GET", "/v1/leads", key=tenant.key)[1]["leads"] == []
    assert len(http.request("GET", "/v1/leads?status=spam", key=tenant.key)[1]["leads"]) == 1


def test_many_distinct_callers_on_one_lease_are_spam(app, http, tenant, phones):
    number = leased_number(app, tenant, "v1")
    for i in range(5):
        twilio_post(http, "/v1/webhooks/twilio/voice", voice_params(f"CA{i:032d}", to=number, caller=f"+1415555012{i}"))
    reasons = [r[0] for r in rows(app, "SELECT spam_reason FROM calls ORDER BY id")]
    assert reasons == [None, None, None, "many_callers_on_lease", "many_callers_on_lease"]
    assert count(app, "leads") == 5
    assert len(http.request("GET", "/v1/leads", key=tenant.key)[1]["leads"]) == 3


def test_very_short_repeated_calls_make_the_lead_spam(app, http, tenant, phones, clock):
    for i in range(3):
        sid = f"CA{i:032d}"
        twilio_post(http, "/v1/webhooks/twilio/voice", voice_params(sid, to=STATIC_NUMBER))
        twilio_post(http, "/v1/webhooks/twilio/status", child_status(sid, "completed", 2, duration=3))
        clock.advance(600)
    assert tuple(rows(app, "SELECT stage, spam_reason FROM leads")[0]) == ("spam", "short_repeated_calls")


def test_a_real_conversation_keeps_the_lead_despite_short_calls(app, http, tenant, phones, clock):
    durations = [120, 2, 3, 4]
    for i, duration in enumerate(durations):
        sid = f"CA{i:032d}"
        twilio_post(http, "/v1/webhooks/twilio/voice", voice_params(sid, to=STATIC_NUMBER))
        twilio_post(http, "/v1/webhooks/twilio/status", child_status(sid, "completed", 2, duration=duration))
        clock.advance(600)
    assert tuple(rows(app, "SELECT stage, spam_reason FROM leads")[0]) == ("new", None)


# -- our signed JSON and Telnyx ----------------------------------------------------------------


def test_pbx_events_in_any_order_and_replays(app, http, tenant, phones, clock):
    number = leased_number(app, tenant, "v1", utm_source="newsletter", utm_medium="email")
    now = clock.seconds()
    base = {"call_id": "1700000000.42", "from": "4155550100", "to": number}
    status, body, _ = pbx_post(http, phones.pbx_secret, base | {"event": "call.completed", "disposition": "ANSWERED", "billsec": 75}, now=now)
    assert status == 200 and body["status"] == "completed"
    status, body, _ = pbx_post(http, phones.pbx_secret, base | {"event": "call.started"}, now=now)
    assert status == 200 and body["forward_to"] == tenant.site.forward_to and body["match"]["method"] == "lease"
    status, body, _ = pbx_post(http, phones.pbx_secret, base | {"event": "call.started"}, now=now)
    assert status == 200 and body["duplicate"] is True
    call = rows(app, "SELECT * FROM calls")[0]
    assert (call.status, call.duration, call.caller, call.channel) == ("completed", 75, CALLER, "email")
    assert count(app, "call_events") == 2


def test_pbx_bad_signatures_and_bad_json(app, http, tenant, phones, clock):
    now = clock.seconds()
    body = {"event": "call.started", "call_id": "x1", "from": "+14155550100", "to": STATIC_NUMBER}
    assert pbx_post(http, "wrong-secret", body, now=now)[0] == 403
    assert pbx_post(http, phones.pbx_secret, body, now=now - 301)[0] == 403  # stale
    assert pbx_post(http, phones.pbx_secret, body, now=now + 301)[0] == 403  # from the future
    assert http.request("POST", "/v1/webhooks/calls", json_body=body)[0] == 403  # unsigned
    status, err, _ = pbx_post(http, phones.pbx_secret, {}, now=now, raw=b"{not json")
    assert status == 400 and err["error"]["code"] == "invalid_event"
    assert pbx_post(http, "wrong-secret", {}, now=now, raw=b"{not json")[0] == 403
    assert count(app, "calls") == 0


def test_telnyx_call_control_events(app, http, tenant, phones, clock):
    number = leased_number(app, tenant, "v1")
    now = clock.seconds()

    def event(kind: str, event_id: str, **payload: str) -> dict:
        return {
            "data": {
                "record_type": "event", "event_type": kind, "id": event_id, "occurred_at": "2026-01-01T00:00:05Z",
                "payload": {"call_control_id": "v3:abc", "call_session_id": "sess-1", "call_leg_id": "leg-1", "from": CALLER,
                            "to": number, "direction": "incoming", "state": "parked", **payload},
            },
            "meta": {"attempt": 1},
        }

    assert telnyx_post(http, phones.telnyx_key, event("call.initiated", "e1"), now=now)[0] == 200
    assert telnyx_post(http, phones.telnyx_key, event("call.initiated", "e1"), now=now)[1]["duplicate"] is True
    assert telnyx_post(http, phones.telnyx_key, event("call.bridged", "e2"), now=now)[1] == {"ignored": True}
    assert telnyx_post(http, phones.telnyx_key, event("call.hangup", "e3", hangup_cause="normal_clearing"), now=now)[0] == 200
    call = rows(app, "SELECT * FROM calls")[0]
    assert call.match_method == "lease" and call.status == "completed" and call.provider == "telnyx"
    from nacl.signing import SigningKey

    assert telnyx_post(http, SigningKey(b"\x03" * 32), event("call.answered", "e4"), now=now)[0] == 403
    assert telnyx_post(http, phones.telnyx_key, event("call.answered", "e5"), now=now - 400)[0] == 403
    assert count(app, "call_events") == 2


def test_texml_posts_signed_by_telnyx_use_the_twilio_endpoint(app, http, tenant, phones, clock):
    import base64
    from urllib.parse import urlencode

    number = leased_number(app, tenant, "v1")
    params = voice_params(SID1, to=number) | {"AccountSid": "texml-account"}
    data = urlencode(params).encode()
    ts = str(int(clock.seconds()))
    sig = base64.b64encode(phones.telnyx_key.sign(ts.encode() + b"|" + data).signature).decode()
    status, body, _ = http.request(
        "POST", "/v1/webhooks/twilio/voice", data=data,
        headers={"Content-Type": "application/x-www-form-urlencoded", "telnyx-signature-ed25519": sig, "telnyx-timestamp": ts},
    )
    assert status == 200 and dial_target(body) == tenant.site.forward_to
    assert call_row(app).match_method == "lease"
