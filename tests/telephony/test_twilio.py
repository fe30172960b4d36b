"""Twilio-style webhooks: signatures proven against Twilio's own RequestValidator, the form
parsers on payloads shaped like Twilio's, and TwiML compared with twilio.twiml."""

from __future__ import annotations

import hashlib
from typing import Any
from xml.etree import ElementTree as ET

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from twilio.request_validator import RequestValidator
from twilio.twiml.voice_response import Dial, VoiceResponse

from calltrack.telephony import twilio
from calltrack.telephony.events import BadSignature, InvalidEvent

TOKEN = "12345"
VECTOR_URL = "https://mycompany.com/myapp.php?foo=1&bar=2"
VECTOR_PARAMS = {
    "CallSid": ["CA1234567890ABCDE"],
    "Caller": ["+12349013030"],
    "Digits": ["1234"],
    "From": ["+12349013030"],
    "To": ["+18005551212"],
}
VECTOR_SIG = "0/KCTR6DLpKmkAf8muzZqo1nDgQ="

PARENT = "CA00000000000000000000000000000001"
CHILD = "CA00000000000000000000000000000002"
ACCOUNT = "AC00000000000000000000000000000001"
# interfaces.md §1.1, as Twisted's request.args decoded to str.
VOICE = {
    "AccountSid": [ACCOUNT],
    "ApiVersion": ["2010-04-01"],
    "CallSid": [PARENT],
    "CallStatus": ["ringing"],
    "Called": ["+14155550123"],
    "Caller": ["+14155550100"],
    "Direction": ["inbound"],
    "From": ["+14155550100"],
    "FromCity": ["SAN FRANCISCO"],
    "FromCountry": ["US"],
    "FromState": ["CA"],
    "FromZip": ["94103"],
    "To": ["+14155550123"],
    "ToCity": [""],
    "ToCountry": ["US"],
    "ToState": ["CA"],
    "ToZip": [""],
}


class MultiDict(dict[str, list[str]]):
    """What Twilio's validator needs to see repeated names (Flask's MultiDict interface)."""

    def getall(self, name: str) -> list[str]:
        return self[name]


def child_status(status: str, seq: int, **more: str) -> dict[str, list[str]]:
    """A status callback for the leg our <Number statusCallback> dialled to the advertiser."""
    params = {
        "AccountSid": ACCOUNT,
        "ApiVersion": "2010-04-01",
        "CallSid": CHILD,
        "ParentCallSid": PARENT,
        "CallStatus": status,
        "Direction": "outbound-dial",
        "From": "+14155550100",
        "To": "+14155550199",  # the advertiser's real line, not the tracking number
        "CallbackSource": "call-progress-events",
        "SequenceNumber": str(seq),
        "Timestamp": "Sun, 25 Mar 2018 09:53:19 +0000",
        **more,
    }
    return {k: [v] for k, v in params.items()}


# --- signatures -------------------------------------------------------------------------------


def test_known_vector() -> None:
    """The documented vector: token 12345 signs the example request as 0/KCTR6DLpKmkAf8muzZqo1nDgQ=."""
    assert twilio.compute_signature(VECTOR_URL, VECTOR_PARAMS, TOKEN) == VECTOR_SIG
    twilio.verify_signature(VECTOR_URL, VECTOR_PARAMS, VECTOR_SIG, TOKEN)
    assert RequestValidator(TOKEN).compute_signature(VECTOR_URL, MultiDict(VECTOR_PARAMS)) == VECTOR_SIG


@pytest.mark.parametrize(
    "params",
    [
        VOICE,
        {"Digits": ["3", "1", "2"], "Empty": [""], "From": ["+14155550100"]},
        {"CallerName": ["Zoë Ångström 李"], "Caller": ["client:alice"], "a": ["", "x"]},
        {"same": ["b", "a", "b"]},
        {},
    ],
    ids=["voice", "repeated-and-empty", "unicode", "repeated-identical", "no-params"],
)
def test_form_signatures_agree_with_twilio(params: dict[str, list[str]]) -> None:
    """Our signature equals Twilio's for repeated names, empty values and unicode, both ways."""
    url = "https://ct.example.com/v1/twilio/voice?acct=7&x=%20y"
    ours = twilio.compute_signature(url, params, "s3cr3t-tøken")
    validator = RequestValidator("s3cr3t-tøken")
    assert ours == validator.compute_signature(url, MultiDict(params))
    assert validator.validate(url, MultiDict(params), ours)
    twilio.verify_signature(url, params, validator.compute_signature(url, MultiDict(params)), "s3cr3t-tøken")


@settings(max_examples=100, deadline=None)
@given(
    params=st.dictionaries(st.text(max_size=8), st.lists(st.text(max_size=8), min_size=1, max_size=3), max_size=6),
    token=st.text(min_size=1, max_size=20),
)
def test_any_form_signature_agrees_with_twilio(params: dict[str, list[str]], token: str) -> None:
    """For any params and token, compute_signature is RequestValidator.compute_signature."""
    url = "https://ct.example.com/v1/twilio/status"
    assert twilio.compute_signature(url, params, token) == RequestValidator(token).compute_signature(url, MultiDict(params))


@pytest.mark.parametrize(
    ("signed_url", "checked_url"),
    [
        ("https://ct.example.com/hook?a=1", "https://ct.example.com:443/hook?a=1"),
        ("https://ct.example.com:443/hook?a=1", "https://ct.example.com/hook?a=1"),
        ("http://ct.example.com/hook", "http://ct.example.com:80/hook"),
        ("http://ct.example.com:80/hook", "http://ct.example.com/hook"),
    ],
)
def test_default_port_either_way(signed_url: str, checked_url: str) -> None:
    """Like Twilio's validator, the URL is accepted with and without its default port."""
    signature = RequestValidator(TOKEN).compute_signature(signed_url, MultiDict(VOICE))
    twilio.verify_signature(checked_url, VOICE, signature, TOKEN)
    assert RequestValidator(TOKEN).validate(checked_url, MultiDict(VOICE), signature)


def test_other_ports_and_hosts_are_not_interchangeable() -> None:
    """Only the default port is optional: :8443 or another host is a different URL."""
    signature = twilio.compute_signature("https://ct.example.com:8443/hook", VOICE, TOKEN)
    for url in ("https://ct.example.com/hook", "https://evil.example.com:8443/hook", "http://ct.example.com:8443/hook"):
        with pytest.raises(BadSignature):
            twilio.verify_signature(url, VOICE, signature, TOKEN)


@pytest.mark.parametrize("signature", [None, "", "   ", VECTOR_SIG[:-2], "x" * 28, "0/KCTR6DLpKmkAf8muzZqo1nDgQ=\u2603"])
def test_missing_or_wrong_signature(signature: str | None) -> None:
    """A missing, truncated or forged signature is refused."""
    with pytest.raises(BadSignature):
        twilio.verify_signature(VECTOR_URL, VECTOR_PARAMS, signature, TOKEN)


def test_tampered_request_is_refused() -> None:
    """Changing a value, adding a param or using another token breaks the signature."""
    with pytest.raises(BadSignature):
        twilio.verify_signature(VECTOR_URL, {**VECTOR_PARAMS, "To": ["+18005551213"]}, VECTOR_SIG, TOKEN)
    with pytest.raises(BadSignature):
        twilio.verify_signature(VECTOR_URL, {**VECTOR_PARAMS, "Extra": ["1"]}, VECTOR_SIG, TOKEN)
    with pytest.raises(BadSignature):
        twilio.verify_signature(VECTOR_URL, VECTOR_PARAMS, VECTOR_SIG, "54321")
    with pytest.raises(BadSignature):
        twilio.verify_signature(VECTOR_URL + "&baz=3", VECTOR_PARAMS, VECTOR_SIG, TOKEN)


JSON_BODY = b'{"property": "value", "boolean": true}'
JSON_HASH = "0a1ff7634d9ab3b95db5c9a2dfe9416e41502b283a80c7cf19632632f96e6620"


def test_json_body_vector() -> None:
    """The documented JSON vector: the body's hash rides in the URL, which alone is signed."""
    url = f"https://mycompany.com/myapp.php?bodySHA256={JSON_HASH}"
    assert hashlib.sha256(JSON_BODY).hexdigest() == JSON_HASH
    assert twilio.compute_signature(url, {}, TOKEN) == "y77kIzt2vzLz71DgmJGsen2scGs="
    twilio.verify_signature(url, {}, "y77kIzt2vzLz71DgmJGsen2scGs=", TOKEN, raw_body=JSON_BODY, json_body=True)
    assert RequestValidator(TOKEN).validate(url, JSON_BODY.decode(), "y77kIzt2vzLz71DgmJGsen2scGs=")


def test_json_body_agrees_with_twilio_and_checks_the_hash() -> None:
    """A JSON body signed by Twilio's validator verifies; a changed body or missing hash does not."""
    body = '{"CallSid": "CA1", "note": "café"}'.encode()
    url = f"https://ct.example.com:443/v1/twilio/events?acct=7&bodySHA256={hashlib.sha256(body).hexdigest()}"
    validator = RequestValidator(TOKEN)
    signature = validator.compute_signature(url, {})
    twilio.verify_signature(url, {}, signature, TOKEN, raw_body=body, json_body=True)
    twilio.verify_signature(url.replace(":443", ""), {}, signature, TOKEN, raw_body=body, json_body=True)
    assert validator.validate(url, body.decode(), twilio.compute_signature(url, {}, TOKEN))
    with pytest.raises(BadSignature):
        twilio.verify_signature(url, {}, signature, TOKEN, raw_body=body + b" ", json_body=True)
    with pytest.raises(BadSignature):
        twilio.verify_signature(url, {}, signature, TOKEN, raw_body=None, json_body=True)
    plain = "https://ct.example.com/v1/twilio/events"
    with pytest.raises(BadSignature):
        twilio.verify_signature(plain, {}, twilio.compute_signature(plain, {}, TOKEN), TOKEN, raw_body=body, json_body=True)


# --- the incoming-call webhook ------------------------------------------------------------------


def test_parse_voice() -> None:
    """The documented incoming-call post becomes a "started" event with the raw numbers."""
    event = twilio.parse_voice(VOICE)
    assert event.provider == "twilio"
    assert (event.call_ref, event.event_ref, event.kind, event.status) == (PARENT, "voice", "started", "ringing")
    assert (event.caller_raw, event.called_raw) == ("+14155550100", "+14155550123")
    assert event.provider_account == ACCOUNT
    assert (event.caller_city, event.caller_region, event.caller_country) == ("SAN FRANCISCO", "CA", "US")
    assert event.direction == "inbound"


@pytest.mark.parametrize("caller", ["anonymous", "client:alice", "+266696687", "sip:bob@example.com", "4155550100"])
def test_voice_keeps_odd_callers_raw(caller: str) -> None:
    """Withheld and non-numeric callers are kept as sent; normalising is the service's job."""
    assert twilio.parse_voice({**VOICE, "From": [caller], "Caller": [caller]}).caller_raw == caller


def test_voice_falls_back_to_legacy_names_and_single_values() -> None:
    """Caller/Called stand in for From/To; a plain {name: value} dict works too."""
    event = twilio.parse_voice({"CallSid": PARENT, "Caller": "+14155550100", "Called": "+14155550123", "CallerName": "ACME"})  # type: ignore[dict-item]
    assert (event.caller_raw, event.called_raw, event.caller_name) == ("+14155550100", "+14155550123", "ACME")


@pytest.mark.parametrize(
    "change",
    [
        {"CallSid": None},
        {"CallSid": [""]},
        {"CallSid": ["CA 1"]},
        {"CallSid": ["C" * 129]},
        {"From": None, "Caller": None},
        {"To": None, "Called": None},
        {"To": [""], "Called": [""]},
        {"To": ["+1" * 150], "Called": None},
        {"AccountSid": ["AC\x00"]},
        {"Direction": ["<script>"]},
        {"FromCity": ["x" * 2049]},
    ],
)
def test_voice_refuses_malformed(change: dict[str, Any]) -> None:
    """Missing CallSid/To, bad ids or oversized values are InvalidEvent (→ 400)."""
    params = {**VOICE, **change}
    params = {k: v for k, v in params.items() if v is not None}
    with pytest.raises(InvalidEvent):
        twilio.parse_voice(params)


def test_too_many_params() -> None:
    """More than 100 distinct params is refused before anything is read."""
    with pytest.raises(InvalidEvent):
        twilio.parse_voice({**VOICE, **{f"X{i}": ["1"] for i in range(100)}})


def test_long_display_text_is_truncated() -> None:
    """Display-only fields are trimmed to 200 characters rather than refusing a call."""
    assert twilio.parse_voice({**VOICE, "CallerName": ["N" * 500]}).caller_name == "N" * 200


# --- status callbacks ------------------------------------------------------------------------------


def test_child_leg_ringing_answered_completed() -> None:
    """Child-leg callbacks are filed under the parent call, without the forwarding number."""
    ringing = twilio.parse_status(child_status("ringing", 1))
    answered = twilio.parse_status(child_status("in-progress", 2, Timestamp="Sun, 25 Mar 2018 09:53:30 +0000"))
    completed = twilio.parse_status(child_status("completed", 3, CallDuration="49", Duration="1"))
    for event in (ringing, answered, completed):
        assert event.call_ref == PARENT
        assert event.caller_raw is None and event.called_raw is None
        assert event.direction == "inbound"
        assert event.extra["leg"] == "child" and event.extra["child_call_sid"] == CHILD
    assert (ringing.kind, ringing.status, ringing.sequence) == ("ringing", "ringing", 1)
    assert (answered.kind, answered.status, answered.answered_at) == ("answered", "in-progress", 1521971610.0)
    assert (completed.kind, completed.status, completed.duration) == ("completed", "completed", 49)
    assert completed.ended_at == completed.occurred_at == 1521971599.0
    assert completed.event_ref == f"status:child:{CHILD}:completed:3"


@pytest.mark.parametrize("status", ["busy", "no-answer", "failed", "canceled"])
def test_child_leg_not_answered(status: str) -> None:
    """An advertiser who never answered ends the call with that status and no talk time."""
    event = twilio.parse_status(child_status(status, 2, CallDuration="0"))
    assert (event.kind, event.status, event.duration, event.call_ref) == ("completed", status, None, PARENT)


def test_parent_leg_maps_directly() -> None:
    """Callbacks on the caller's own leg keep its numbers and map status to kind directly."""
    base = {k: v for k, v in VOICE.items()}
    cases = {
        "ringing": ("ringing", "ringing"),
        "in-progress": ("answered", "in-progress"),
        "completed": ("completed", "completed"),
        "no-answer": ("completed", "no-answer"),
    }
    for i, (status, expected) in enumerate(cases.items()):
        params = {**base, "CallStatus": [status], "SequenceNumber": [str(i)], "CallbackSource": ["call-progress-events"]}
        event = twilio.parse_status(params)
        assert (event.kind, event.status) == expected
        assert (event.call_ref, event.caller_raw, event.called_raw) == (PARENT, "+14155550100", "+14155550123")
        assert event.event_ref == f"status:parent:{status}:{i}"


def test_parent_completed_duration_is_not_talk_time() -> None:
    """A parent "completed" (the real captured payload shape) carries CallDuration seconds of
    the caller's own leg, ringing included: kept, but not as talk time."""
    more = {"CallStatus": "completed", "SequenceNumber": "3", "CallDuration": "49", "Duration": "1", "AnsweredBy": "human"}
    params = {**VOICE, **{k: [v] for k, v in more.items()}}
    event = twilio.parse_status(params)
    assert (event.duration, event.extra["total_duration"], event.extra["answered_by"]) == (None, "49", "human")


def test_retry_is_identical_and_distinct_deliveries_differ() -> None:
    """A retried delivery has the same key; another status or sequence number does not."""
    first = twilio.parse_status(child_status("ringing", 1))
    assert twilio.parse_status(child_status("ringing", 1)).key == first.key
    assert twilio.parse_status(child_status("ringing", 2)).key != first.key
    assert twilio.parse_status(child_status("in-progress", 1)).key != first.key
    assert twilio.parse_status({**VOICE, "CallStatus": ["ringing"], "SequenceNumber": ["1"]}).key != first.key


def test_status_without_sequence_number() -> None:
    """A plain statusCallback (no call-progress events) has no SequenceNumber; still keyed."""
    event = twilio.parse_status({**VOICE, "CallStatus": ["completed"], "CallDuration": ["10"]})
    assert (event.sequence, event.event_ref) == (None, "status:parent:completed:")


def test_long_child_sid_keeps_event_ref_short() -> None:
    """A long (TeXML) CallSid is digested so event_ref stays within 128 characters, stably."""
    params = child_status("ringing", 1, CallSid="v3:" + "a" * 120)
    event = twilio.parse_status(params)
    assert len(event.event_ref) <= 128 and event.event_ref == twilio.parse_status(params).event_ref


@pytest.mark.parametrize("timestamp", ["", "garbage", "Mon, 32 Foo 2018 99:99:99 +0000", "Thu, 01 Jan 1970 00:00:00 +0000"])
def test_unreadable_timestamp_is_unknown(timestamp: str) -> None:
    """Timestamp is informational: unreadable or absurd means unknown, not a refused event."""
    event = twilio.parse_status(child_status("completed", 3, Timestamp=timestamp, CallDuration="5"))
    assert event.occurred_at is None and event.ended_at is None


@pytest.mark.parametrize(
    "change",
    [
        {"SequenceNumber": "one"},
        {"SequenceNumber": "-1"},
        {"SequenceNumber": "1000001"},
        {"SequenceNumber": "١"},
        {"CallDuration": "-5"},
        {"CallDuration": "4.5"},
        {"CallDuration": str(8 * 86400)},
        {"CallStatus": "exploded"},
        {"CallStatus": ""},
        {"ParentCallSid": "CA 2"},
    ],
)
def test_status_refuses_absurd_values(change: dict[str, str]) -> None:
    """A value that is present but not what Twilio sends is InvalidEvent."""
    with pytest.raises(InvalidEvent):
        twilio.parse_status(child_status("completed", 3, **change))


# --- recording callbacks ----------------------------------------------------------------------------


def recording(status: str, **more: str) -> dict[str, list[str]]:
    params = {
        "AccountSid": ACCOUNT,
        "CallSid": PARENT,
        "RecordingSid": "RE00000000000000000000000000000001",
        "RecordingUrl": f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT}/Recordings/RE00000000000000000000000000000001",
        "RecordingStatus": status,
        "RecordingDuration": "48",
        "RecordingChannels": "2",
        "RecordingStartTime": "Sun, 25 Mar 2018 09:52:30 +0000",
        "RecordingSource": "DialVerb",
        **more,
    }
    return {k: [v] for k, v in params.items() if v is not None}


def test_parse_recording_completed() -> None:
    """A completed recording is filed under the call with its URL and length."""
    event = twilio.parse_recording(recording("completed"))
    assert (event.kind, event.status, event.call_ref) == ("recording", None, PARENT)
    assert event.event_ref == "recording:RE00000000000000000000000000000001:completed"
    assert event.recording_url is not None and event.recording_url.endswith("/RE00000000000000000000000000000001")
    assert event.recording_duration == 48
    assert event.extra["source"] == "DialVerb"


def test_recording_not_ready_has_no_url() -> None:
    """Only a completed recording has a URL worth keeping; failed/absent ones are still events."""
    for status in ("in-progress", "failed", "absent"):
        event = twilio.parse_recording(recording(status, RecordingUrl=""))
        assert event.recording_url is None and event.event_ref.endswith(f":{status}")


def test_recording_with_parent_sid_goes_to_the_parent() -> None:
    """Should a recording name a ParentCallSid, it belongs to that (the caller's) call."""
    event = twilio.parse_recording(recording("completed", CallSid=CHILD, ParentCallSid=PARENT))
    assert event.call_ref == PARENT


@pytest.mark.parametrize(
    "change",
    [
        {"RecordingUrl": None},
        {"RecordingUrl": "javascript:alert(1)"},
        {"RecordingUrl": "ftp://example.com/r.mp3"},
        {"RecordingUrl": "https://example.com/" + "a" * 2040},
        {"RecordingUrl": "https://exa mple.com/r"},
        {"RecordingSid": None},
        {"RecordingStatus": "done"},
        {"RecordingDuration": "-1"},
        {"CallSid": None},
    ],
)
def test_recording_refuses_malformed(change: dict[str, str | None]) -> None:
    """A completed recording needs an http(s) URL within 2048 characters, and its ids."""
    with pytest.raises(InvalidEvent):
        twilio.parse_recording(recording("completed", **change))  # type: ignore[arg-type]


# --- TwiML ----------------------------------------------------------------------------------------------


def tree(xml: bytes | str) -> Any:
    """An XML document as nested (tag, attributes, text, children) for comparison."""
    root = ET.fromstring(xml)

    def walk(el: ET.Element) -> Any:
        return (el.tag, dict(el.attrib), (el.text or "").strip(), [walk(child) for child in el])

    return walk(root)


def test_dial_twiml_matches_the_twilio_library() -> None:
    """Our Dial is what twilio.twiml builds for the same options, attribute for attribute."""
    ours = twilio.dial_twiml(
        "+14155550100",
        status_callback="https://ct.example.com/v1/twilio/status?acct=7&x=1",
        recording_callback="https://ct.example.com/v1/twilio/recording?acct=7",
        record=True,
    )
    expected = VoiceResponse()
    dial = Dial(
        answer_on_bridge=True,
        timeout=30,
        record="record-from-answer-dual",
        recording_status_callback="https://ct.example.com/v1/twilio/recording?acct=7",
    )
    dial.number(
        "+14155550100",
        status_callback="https://ct.example.com/v1/twilio/status?acct=7&x=1",
        status_callback_event="initiated ringing answered completed",
    )
    expected.append(dial)
    assert ours.startswith(b'<?xml version="1.0" encoding="UTF-8"?><Response>')
    assert tree(ours) == tree(expected.to_xml())


def test_dial_twiml_without_recording_and_with_caller_id() -> None:
    """No recording attributes unless asked; callerId only when given."""
    plain = {"status_callback": "https://x.example/s", "recording_callback": None, "record": False}
    ours = twilio.dial_twiml("+14155550100", **plain, timeout=20)  # type: ignore[arg-type]
    expected = VoiceResponse()
    dial = Dial(answer_on_bridge=True, timeout=20)
    dial.number("+14155550100", status_callback="https://x.example/s", status_callback_event=twilio.STATUS_EVENTS)
    expected.append(dial)
    assert tree(ours) == tree(expected.to_xml())
    assert b"callerId" not in ours and b"record" not in ours
    with_id = twilio.dial_twiml("+14155550100", **plain, caller_id="+18005551212")  # type: ignore[arg-type]
    assert tree(with_id)[3][0][1]["callerId"] == "+18005551212"
    with pytest.raises(ValueError):
        twilio.dial_twiml("+14155550100", **plain, timeout=0)  # type: ignore[arg-type]


def test_twiml_escapes_what_it_is_given() -> None:
    """Markup in values stays text: escaped, and characters XML cannot carry are dropped."""
    xml = twilio.hangup_twiml('Sorry <b>"Bob" & co</b>\x00\x07!')
    assert tree(xml) == ("Response", {}, "", [("Say", {}, 'Sorry <b>"Bob" & co</b>!', []), ("Hangup", {}, "", [])])
    dial = twilio.dial_twiml('1"><Hangup/>', status_callback='https://x/s?a=1&b="2"', recording_callback=None, record=False)
    number = tree(dial)[3][0][3][0]
    assert number[2] == '1"><Hangup/>' and number[1]["statusCallback"] == 'https://x/s?a=1&b="2"'


def test_simple_twiml() -> None:
    """Reject, hang up with a message, and the empty response match twilio.twiml too."""
    rejected, hangup, empty = VoiceResponse(), VoiceResponse(), VoiceResponse()
    rejected.reject()
    hangup.say("This number is not in service.")
    hangup.hangup()
    assert tree(twilio.reject_twiml()) == tree(rejected.to_xml())
    assert tree(twilio.hangup_twiml("This number is not in service.")) == tree(hangup.to_xml())
    assert tree(twilio.empty_twiml()) == tree(empty.to_xml())
    assert twilio.empty_twiml() == b'<?xml version="1.0" encoding="UTF-8"?><Response />'


def test_blank_caller_is_withheld_not_missing() -> None:
    """A blank From is a withheld caller ID (""), while a callback without From says nothing (None)."""
    assert twilio.parse_voice({**VOICE, "From": [""], "Caller": [""]}).caller_raw == ""
    assert twilio.parse_voice({**VOICE, "From": [""]}).caller_raw == "+14155550100"  # the legacy twin still has it
    no_numbers = {k: v for k, v in VOICE.items() if k not in ("From", "Caller")}
    assert twilio.parse_status({**no_numbers, "CallStatus": ["completed"]}).caller_raw is None


def test_long_recording_sid_keeps_event_ref_short() -> None:
    """A long RecordingSid is digested too, so a valid callback never trips the 128 limit."""
    params = recording("completed", RecordingSid="R" * 128)
    assert len(twilio.parse_recording(params).event_ref) <= 128
