"""Telnyx Call Control: ed25519 signatures with PyNaCl keys, and events shaped like Telnyx's."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from nacl.signing import SigningKey

from calltrack.telephony import telnyx
from calltrack.telephony.events import BadSignature, InvalidEvent

NOW = 1_700_000_000
SESSION = "428c31b6-abf3-3bc1-b7f4-5013ef9657c1"


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def signed(key: SigningKey, body: bytes, timestamp: int | str = NOW) -> tuple[str, str]:
    """The (telnyx-signature-ed25519, telnyx-timestamp) headers Telnyx would send."""
    ts = str(timestamp)
    return b64(key.sign(ts.encode() + b"|" + body).signature), ts


def public(key: SigningKey) -> str:
    return b64(bytes(key.verify_key))


def event(event_type: str, event_id: str = "0ccc7b54-4df3-4bca-a65a-3da1ecc777f0", **payload: Any) -> bytes:
    """A webhook shaped like interfaces.md §2.1."""
    body = {
        "data": {
            "record_type": "event",
            "event_type": event_type,
            "id": event_id,
            "occurred_at": "2018-02-02T22:25:27.521992Z",
            "payload": {
                "call_control_id": "v3:abc",
                "connection_id": "7267xxxxxxxxxxxxxx",
                "call_leg_id": "428c31b6-7af4-4bcb-b7f5-5013ef9657c1",
                "call_session_id": SESSION,
                "client_state": "aGF2ZSBhIG5pY2UgZGF5ID1d",
                "caller_id_name": "4155550100",
                "from": "+14155550100",
                "to": "+14155550123",
                "direction": "incoming",
                "state": "parked",
                "start_time": "2018-02-02T22:25:27.521992Z",
                **payload,
            },
        },
        "meta": {"attempt": 1, "delivered_to": "https://ct.example.com/telnyx"},
    }
    return json.dumps(body).encode()


# --- signatures -------------------------------------------------------------------------------


def test_fixed_vector_key() -> None:
    """Seed 0x01*32 gives the documented public key, and its signature verifies."""
    key = SigningKey(b"\x01" * 32)
    assert public(key) == "iojj3XQJ8ZX9UtstPLpdcspnCb8dlBIb83SIAbQPb1w="
    body = event("call.initiated")
    signature, ts = signed(key, body)
    assert telnyx.verify_signature(body, signature, ts, [public(key)], now=NOW) == 0


def test_generated_key_and_tampering() -> None:
    """A fresh keypair verifies its own signature; a changed body or timestamp does not."""
    key = SigningKey.generate()
    body = event("call.hangup", hangup_cause="normal_clearing")
    signature, ts = signed(key, body)
    assert telnyx.verify_signature(body, signature, ts, [public(key)], now=NOW + 10) == 0
    with pytest.raises(BadSignature):
        telnyx.verify_signature(body.replace(b"normal_clearing", b"user_busy"), signature, ts, [public(key)], now=NOW)
    with pytest.raises(BadSignature):
        telnyx.verify_signature(body, signature, str(NOW + 1), [public(key)], now=NOW)


@pytest.mark.parametrize("skew", [-301, 301, -10_000, 10**9])
def test_stale_or_future_timestamp(skew: int) -> None:
    """Outside five minutes either way a valid signature is refused: no replays."""
    key = SigningKey.generate()
    body = event("call.answered")
    signature, ts = signed(key, body, NOW)
    with pytest.raises(BadSignature):
        telnyx.verify_signature(body, signature, ts, [public(key)], now=NOW + skew)
    assert telnyx.verify_signature(body, signature, ts, [public(key)], now=NOW + skew, tolerance=abs(skew)) == 0


def test_wrong_key_and_key_rotation() -> None:
    """Another account's key fails; with two keys, the one that verifies is reported."""
    old, new, stranger = SigningKey.generate(), SigningKey.generate(), SigningKey.generate()
    body = event("call.initiated")
    signature, ts = signed(new, body)
    with pytest.raises(BadSignature):
        telnyx.verify_signature(body, signature, ts, [public(stranger)], now=NOW)
    assert telnyx.verify_signature(body, signature, ts, [public(old), public(new)], now=NOW) == 1
    with pytest.raises(BadSignature):
        telnyx.verify_signature(body, signature, ts, [], now=NOW)


def test_malformed_stored_keys_are_skipped() -> None:
    """A stored key that is not base64 of 32 bytes is passed over, not a crash."""
    key = SigningKey.generate()
    body = event("call.initiated")
    signature, ts = signed(key, body)
    keys = ["not base64!", b64(b"short"), "", "é", b64(b"\x00" * 32), public(key)]
    assert telnyx.verify_signature(body, signature, ts, keys, now=NOW) == 5


@pytest.mark.parametrize(
    ("signature", "timestamp"),
    [
        (None, str(NOW)),
        ("", str(NOW)),
        ("sig", None),
        ("sig", ""),
        ("sig", "1700000000.5"),
        ("sig", "-1700000000"),
        ("sig", "١٧٠٠٠٠٠٠٠٠"),
        ("not*base64", str(NOW)),
        (b64(b"\x00" * 63), str(NOW)),
        (b64(b"\x00" * 64), str(NOW)),
    ],
)
def test_missing_or_malformed_headers(signature: str | None, timestamp: str | None) -> None:
    """Missing headers, a non-integer timestamp or a signature that is not 64 bytes: refused."""
    with pytest.raises(BadSignature):
        telnyx.verify_signature(b"{}", signature, timestamp, [public(SigningKey.generate())], now=NOW)


# --- events -------------------------------------------------------------------------------------------


def test_call_initiated() -> None:
    """The caller's incoming leg starts the call, keyed by the session and deduped by data.id."""
    e = telnyx.parse_event(event("call.initiated"))
    assert e is not None
    assert (e.provider, e.call_ref, e.event_ref) == ("telnyx", SESSION, "0ccc7b54-4df3-4bca-a65a-3da1ecc777f0")
    assert (e.kind, e.status, e.caller_raw, e.called_raw) == ("started", "ringing", "+14155550100", "+14155550123")
    assert e.occurred_at == e.started_at == 1517610327.521992
    assert e.caller_name == "4155550100" and e.provider_account == "7267xxxxxxxxxxxxxx"
    assert e.extra["leg"] == "incoming" and e.extra["call_control_id"] == "v3:abc"


def test_call_answered() -> None:
    """The transferred (outgoing) leg's call.answered is the advertiser picking up; the
    caller's leg answered by the Call Control application is not."""
    e = telnyx.parse_event(event("call.answered", "id-2", state="answered", direction="outgoing"))
    assert e is not None and (e.kind, e.status, e.answered_at) == ("answered", "in-progress", 1517610327.521992)
    app_answer = telnyx.parse_event(event("call.answered", "id-3", state="answered"))
    assert app_answer is not None and (app_answer.kind, app_answer.status, app_answer.answered_at) == ("ringing", None, None)


@pytest.mark.parametrize(
    ("cause", "status"),
    [
        ("normal_clearing", "completed"),
        ("user_busy", "busy"),
        ("no_answer", "no-answer"),
        ("timeout", "no-answer"),
        ("originator_cancel", "canceled"),
        ("call_rejected", "failed"),
        ("unallocated_number", "failed"),
        ("unspecified", "failed"),
    ],
)
def test_call_hangup(cause: str, status: str) -> None:
    """The hangup cause picks the terminal status; times are kept, talk time left to the service."""
    end = "2018-02-02T22:26:27.521992+00:00"
    body = event("call.hangup", "id-3", hangup_cause=cause, hangup_source="caller", sip_hangup_cause="200", end_time=end)
    e = telnyx.parse_event(body)
    assert e is not None and (e.kind, e.status) == ("completed", status)
    assert (e.started_at, e.ended_at, e.duration) == (1517610327.521992, 1517610387.521992, None)
    assert e.extra["hangup_cause"] == cause and e.extra["sip_hangup_cause"] == "200"


def test_recording_saved() -> None:
    """A saved recording prefers the permanent public URL and measures its length."""
    urls = {
        "mp3": "https://s3.amazonaws.com/telnyx/rec.mp3?X-Amz-Signature=abc",
        "wav": "https://s3.amazonaws.com/telnyx/rec.wav",
    }
    body = event(
        "call.recording.saved",
        "id-4",
        recording_urls=urls,
        public_recording_urls={"mp3": "https://telnyx.example/rec.mp3"},
        recording_started_at="2018-02-02T22:25:30Z",
        recording_ended_at="2018-02-02T22:26:20.4Z",
    )
    e = telnyx.parse_event(body)
    assert e is not None and (e.kind, e.status) == ("recording", None)
    assert (e.recording_url, e.recording_duration) == ("https://telnyx.example/rec.mp3", 50)
    e = telnyx.parse_event(event("call.recording.saved", "id-5", recording_urls=urls, public_recording_urls={}))
    assert e is not None and e.recording_url == urls["mp3"] and e.recording_duration is None


def test_outgoing_leg_folds_onto_the_call() -> None:
    """The transfer leg shares the session: filed under it, without the advertiser's number."""
    e = telnyx.parse_event(event("call.initiated", "id-6", direction="outgoing", to="+14155550199", call_leg_id="leg-b"))
    assert e is not None and (e.call_ref, e.kind, e.status) == (SESSION, "ringing", "ringing")
    assert e.caller_raw is None and e.called_raw is None and e.extra["leg"] == "outgoing"
    answered = telnyx.parse_event(event("call.answered", "id-7", direction="outgoing"))
    assert answered is not None and answered.kind == "answered" and answered.called_raw is None


def test_blank_caller_is_withheld_not_missing() -> None:
    """A null or blank "from" is a withheld caller (""); an event without "from" says nothing."""
    for blank in (None, "", "  "):
        e = telnyx.parse_event(event("call.initiated", **{"from": blank}))
        assert e is not None and e.caller_raw == ""
    body = json.loads(event("call.hangup", hangup_cause="normal_clearing"))
    del body["data"]["payload"]["from"]
    e = telnyx.parse_event(json.dumps(body).encode())
    assert e is not None and e.caller_raw is None


def test_call_ref_fallbacks() -> None:
    """Without a session id the call control id names the call, then the leg id."""
    e = telnyx.parse_event(event("call.answered", call_session_id=None))
    assert e is not None and e.call_ref == "v3:abc"
    e = telnyx.parse_event(event("call.answered", call_session_id="", call_control_id=None))
    assert e is not None and e.call_ref == "428c31b6-7af4-4bcb-b7f5-5013ef9657c1"


@pytest.mark.parametrize("event_type", ["call.bridged", "call.speak.ended", "call.playback.started", "call.dtmf.received"])
def test_untracked_events_are_none(event_type: str) -> None:
    """Events we do not track parse to None (the HTTP layer answers 200, stores nothing)."""
    assert telnyx.parse_event(event(event_type)) is None


def test_retried_delivery_is_identical() -> None:
    """A duplicate delivery (same data.id, meta.attempt 2) has the same key."""
    first = telnyx.parse_event(event("call.initiated"))
    again = json.loads(event("call.initiated"))
    again["meta"]["attempt"] = 2
    second = telnyx.parse_event(json.dumps(again).encode())
    assert first is not None and second is not None and first.key == second.key


def _mutate(path: list[str], value: Any) -> bytes:
    body = json.loads(event("call.hangup", hangup_cause="normal_clearing"))
    target = body
    for name in path[:-1]:
        target = target[name]
    if value is KeyError:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return json.dumps(body).encode()


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"not json",
        b"[]",
        b'"data"',
        b"\xff\xfe",
        b'{"data": NaN}',
        b"[" * 100_000 + b"]" * 100_000,
        b'{"data":' * 50_000 + b"1" + b"}" * 50_000,
        _mutate(["data"], KeyError),
        _mutate(["data"], []),
        _mutate(["data", "payload"], KeyError),
        _mutate(["data", "payload"], "x"),
        _mutate(["data", "id"], KeyError),
        _mutate(["data", "id"], 7),
        _mutate(["data", "id"], "has space"),
        _mutate(["data", "event_type"], KeyError),
        _mutate(["data", "event_type"], ["call.hangup"]),
        _mutate(["data", "occurred_at"], "yesterday"),
        _mutate(["data", "occurred_at"], "2018-02-02T22:25:27"),
        _mutate(["data", "payload", "call_session_id"], {"x": 1}),
        _mutate(["data", "payload", "from"], 14155550100),
        _mutate(["data", "payload", "direction"], "sideways"),
        _mutate(["data", "payload", "start_time"], True),
        _mutate(["data", "payload", "hangup_source"], ["caller"]),
    ],
)
def test_malformed_bodies(body: bytes) -> None:
    """Malformed JSON, deep nesting, missing or mistyped fields: InvalidEvent, never a crash."""
    with pytest.raises(InvalidEvent):
        telnyx.parse_event(body)


def test_recording_without_url_or_with_bad_times() -> None:
    """A saved recording needs an http(s) URL, and cannot end before it starts."""
    with pytest.raises(InvalidEvent):
        telnyx.parse_event(event("call.recording.saved", recording_urls={}))
    with pytest.raises(InvalidEvent):
        telnyx.parse_event(event("call.recording.saved", recording_urls={"mp3": "javascript:alert(1)"}))
    with pytest.raises(InvalidEvent):
        telnyx.parse_event(
            event(
                "call.recording.saved",
                recording_urls={"mp3": "https://x.example/a.mp3"},
                recording_started_at="2018-02-02T22:26:00Z",
                recording_ended_at="2018-02-02T22:25:00Z",
            )
        )
