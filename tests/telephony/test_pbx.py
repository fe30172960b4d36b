"""Our signed JSON for PBXs: the X-CT-Signature scheme and the event body."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

import pytest

from calltrack.telephony import pbx
from calltrack.telephony.events import BadSignature, InvalidEvent

NOW = 1_767_225_600
SECRET = "whsec-test-1"


def body(**fields: Any) -> bytes:
    base: dict[str, Any] = {"event": "call.completed", "call_id": "1767225600.42", "from": "+14155550100", "to": "+14155550123"}
    base.update(fields)
    return json.dumps({k: v for k, v in base.items() if v is not ...}).encode()


# --- signatures ---------------------------------------------------------------------------------


def test_sign_is_hmac_sha256_over_timestamp_dot_body() -> None:
    """The header is t=<ts>,v1=<hex HMAC-SHA256(secret, "<ts>." + body)>, as documented."""
    raw = body()
    expected = hmac.new(SECRET.encode(), f"{NOW}.".encode() + raw, hashlib.sha256).hexdigest()
    assert pbx.sign(SECRET, raw, timestamp=NOW) == f"t={NOW},v1={expected}"
    assert pbx.verify_signature(pbx.sign(SECRET, raw, timestamp=NOW), raw, [SECRET], now=NOW) == 0


def test_rotation_either_side() -> None:
    """During rotation the PBX may send two v1 entries, and we may hold two secrets."""
    raw = body()
    old, new = pbx.sign("old", raw, timestamp=NOW), pbx.sign("new", raw, timestamp=NOW)
    both = f"{old},v1={new.split('v1=')[1]}"
    assert pbx.verify_signature(both, raw, ["new"], now=NOW) == 0
    assert pbx.verify_signature(both, raw, ["old"], now=NOW) == 0
    assert pbx.verify_signature(new, raw, ["old", "new"], now=NOW) == 1
    assert pbx.verify_signature(new, raw, ["", "new"], now=NOW) == 1


def test_header_tolerates_spacing_case_and_unknown_entries() -> None:
    """Spaces after commas, upper-case hex and future v2= entries do not break verification."""
    raw = body()
    mac = pbx.sign(SECRET, raw, timestamp=NOW).split("v1=")[1]
    assert pbx.verify_signature(f"t={NOW}, v2=abc, v1={mac.upper()}", raw, [SECRET], now=NOW) == 0


@pytest.mark.parametrize("skew", [-301, 301, 86400])
def test_replay_window_both_ways(skew: int) -> None:
    """A signature older or newer than five minutes is refused."""
    raw = body()
    header = pbx.sign(SECRET, raw, timestamp=NOW)
    with pytest.raises(BadSignature):
        pbx.verify_signature(header, raw, [SECRET], now=NOW + skew)
    assert pbx.verify_signature(header, raw, [SECRET], now=NOW + 299 * (1 if skew > 0 else -1)) == 0


def test_tampering_and_wrong_secret() -> None:
    """A changed body, a changed timestamp or another secret breaks the signature."""
    raw = body()
    header = pbx.sign(SECRET, raw, timestamp=NOW)
    with pytest.raises(BadSignature):
        pbx.verify_signature(header, raw.replace(b"42", b"43"), [SECRET], now=NOW)
    with pytest.raises(BadSignature):
        pbx.verify_signature(header.replace(f"t={NOW}", f"t={NOW + 1}"), raw, [SECRET], now=NOW)
    with pytest.raises(BadSignature):
        pbx.verify_signature(header, raw, ["other"], now=NOW)
    with pytest.raises(BadSignature):
        pbx.verify_signature(header, raw, [], now=NOW)
    with pytest.raises(BadSignature):
        pbx.verify_signature(pbx.sign("", raw, timestamp=NOW), raw, [""], now=NOW)


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "v1=" + "0" * 64,
        f"t={NOW}",
        f"t={NOW},v1=xyz",
        f"t={NOW},v1={'0' * 63}",
        f"t={NOW}.5,v1={'0' * 64}",
        f"t=-{NOW},v1={'0' * 64}",
        f"t={NOW},t={NOW},v1={'0' * 64}",
        f"t={NOW},v1={'0' * 64}," + "x" * 5000,
        "garbage",
    ],
)
def test_malformed_headers(header: str | None) -> None:
    """Missing or malformed headers are BadSignature, never another error."""
    with pytest.raises(BadSignature):
        pbx.verify_signature(header, body(), [SECRET], now=NOW)


# --- events -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("event", "kind", "status"),
    [
        ("call.started", "started", "ringing"),
        ("call.ringing", "ringing", "ringing"),
        ("call.answered", "answered", "in-progress"),
    ],
)
def test_progress_events(event: str, kind: str, status: str) -> None:
    """Each progress event maps to its kind and status, keyed by the event name."""
    e = pbx.parse_event(body(event=event, started_at="2026-01-01T00:00:00Z", answered_at=NOW + 7))
    assert (e.provider, e.call_ref, e.event_ref, e.kind, e.status) == ("pbx", "1767225600.42", event, kind, status)
    assert (e.caller_raw, e.called_raw, e.started_at, e.answered_at) == ("+14155550100", "+14155550123", NOW, NOW + 7)


def test_completed_event() -> None:
    """A completed call carries its times, talk time (billsec) and recording."""
    e = pbx.parse_event(
        body(
            started_at="2026-01-01T01:00:00+01:00",
            answered_at="2026-01-01T00:00:07Z",
            ended_at=NOW + 127.5,
            duration=127,
            billsec=120,
            disposition="ANSWERED",
            recording_url="https://pbx.example.com/rec/1767225600.42.wav",
            caller_name="Alice Smith",
        )
    )
    assert (e.kind, e.status, e.duration) == ("completed", "completed", 120)
    assert (e.started_at, e.answered_at, e.ended_at, e.occurred_at) == (NOW, NOW + 7, NOW + 127.5, NOW + 127.5)
    assert e.recording_url == "https://pbx.example.com/rec/1767225600.42.wav"
    assert e.caller_name == "Alice Smith" and e.extra == {"total_duration": "127"}


@pytest.mark.parametrize(
    ("disposition", "status"),
    [
        ("ANSWERED", "completed"),
        ("NO ANSWER", "no-answer"),
        ("no_answer", "no-answer"),
        ("BUSY", "busy"),
        ("FAILED", "failed"),
        ("CONGESTION", "failed"),
    ],
)
def test_dispositions(disposition: str, status: str) -> None:
    """Asterisk dispositions map onto call statuses."""
    assert pbx.parse_event(body(disposition=disposition)).status == status


def test_missing_disposition_is_inferred() -> None:
    """Without a disposition, talk time or an answer time means answered; else no answer."""
    assert pbx.parse_event(body(billsec=5)).status == "completed"
    assert pbx.parse_event(body(answered_at=NOW)).status == "completed"
    assert pbx.parse_event(body(billsec=0)).status == "no-answer"
    assert pbx.parse_event(body()).status == "no-answer"


def test_recording_event() -> None:
    """call.recording carries a URL and no status."""
    e = pbx.parse_event(body(event="call.recording", recording_url="https://pbx.example.com/r.mp3", recording_duration=31))
    assert (e.kind, e.status, e.recording_url, e.recording_duration) == ("recording", None, "https://pbx.example.com/r.mp3", 31)


def test_blank_caller_is_withheld_not_missing() -> None:
    """A blank or null "from" is a withheld caller (""), and so is none at all on call.started;
    a later event without "from" says nothing about the caller (None)."""
    assert pbx.parse_event(body(event="call.started", **{"from": ""})).caller_raw == ""
    assert pbx.parse_event(body(event="call.started", **{"from": None})).caller_raw == ""
    assert pbx.parse_event(body(event="call.started", **{"from": ...})).caller_raw == ""
    assert pbx.parse_event(body(event="call.answered", **{"from": ...})).caller_raw is None


def test_nulls_and_unknown_keys() -> None:
    """Nulls mean "not known"; keys we do not know are ignored for forward compatibility."""
    e = pbx.parse_event(body(answered_at=None, ended_at=None, disposition=None, recording_url=None, future_field={"x": [1]}))
    assert e.answered_at is None and e.recording_url is None


@pytest.mark.parametrize(
    "fields",
    [
        {"event": "call.exploded"},
        {"event": None},
        {"event": ["call.completed"]},
        {"call_id": ...},
        {"call_id": ""},
        {"call_id": 42},
        {"call_id": "has space"},
        {"call_id": "x" * 129},
        {"event": "call.started", "to": ...},
        {"from": 14155550100},
        {"to": "+1" * 101},
        {"started_at": "2026-01-01T00:00:00"},
        {"started_at": "yesterday"},
        {"started_at": True},
        {"started_at": 1e400},
        {"started_at": 12},
        {"started_at": "5000-01-01T00:00:00Z"},
        {"started_at": "١٧٦٧٢٢٥٦٠٠"},
        {"started_at": "2026-W01-1T00:00:00Z"},
        {"billsec": "31"},
        {"billsec": 31.5},
        {"billsec": -1},
        {"billsec": True},
        {"duration": 10**9},
        {"disposition": "MAYBE"},
        {"disposition": ""},
        {"disposition": 1},
        {"recording_url": "file:///etc/passwd"},
        {"event": "call.recording"},
        {"caller_name": "x" * 201},
        {"caller_name": ["x"]},
        {**{f"k{i}": 1 for i in range(100)}},
    ],
)
def test_malformed_events(fields: dict[str, Any]) -> None:
    """Wrong types, unknown values and absurd sizes are InvalidEvent."""
    with pytest.raises(InvalidEvent):
        pbx.parse_event(body(**fields))


@pytest.mark.parametrize("raw", [b"", b"[]", b"null", b"\xff", b'{"event": Infinity}', b"{" * 100_000])
def test_malformed_json(raw: bytes) -> None:
    """Non-JSON, non-objects and deep nesting are InvalidEvent."""
    with pytest.raises(InvalidEvent):
        pbx.parse_event(raw)
