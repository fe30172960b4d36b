"""Our own signed JSON call events, for Asterisk, FreeSWITCH or any PBX. Pure.

A PBX posts one JSON object per event to ``POST /v1/webhooks/calls`` signed with our scheme
(calltrack/signatures.py): ``X-CT-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret,
"<t>." + body)>``, several ``v1=`` while a secret is being rotated.

Body::

    {"event": "call.started|call.ringing|call.answered|call.completed|call.recording",
     "call_id": "1767225600.42", "from": "+14155550100", "to": "+14155550123",
     "started_at": "2026-01-01T00:00:00Z" | 1767225600, "answered_at": …, "ended_at": …,
     "duration": 40, "billsec": 31, "disposition": "ANSWERED|NO ANSWER|BUSY|FAILED|CONGESTION",
     "recording_url": "https://…", "caller_name": "…"}

Types are strict (numbers are JSON numbers, times carry an offset); unknown keys are ignored
so a newer PBX script still works with an older server.
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Sequence
from typing import Any

from calltrack.signatures import HEADER, mac, sign  # noqa: F401 - sign: pbx.sign for PBX scripts and tests
from calltrack.telephony.events import (
    BadSignature,
    CallEvent,
    InvalidEvent,
    check_ref,
    check_text,
    check_url,
    load_json_object,
    parse_time,
)

MAX_HEADER = 4096
MAX_KEYS = 100
MAX_DURATION = 7 * 86400
# event → (kind, status); "call.completed" takes its status from the disposition.
EVENTS: dict[str, tuple[str, str | None]] = {
    "call.started": ("started", "ringing"),
    "call.ringing": ("ringing", "ringing"),
    "call.answered": ("answered", "in-progress"),
    "call.completed": ("completed", None),
    "call.recording": ("recording", None),
}
# Asterisk's CDR dispositions (FreeSWITCH users map their hangup causes onto these).
DISPOSITIONS = {
    "ANSWERED": "completed",
    "NO ANSWER": "no-answer",
    "BUSY": "busy",
    "FAILED": "failed",
    "CONGESTION": "failed",
}
_TIMESTAMP = re.compile(r"[0-9]{1,12}")
_HEX = re.compile(r"[0-9a-fA-F]{64}")


def verify_signature(
    header: str | None, raw_body: bytes, secrets: Sequence[str], *, now: float, tolerance: float = 300
) -> int:
    """Check X-CT-Signature; return the index of the secret that signed, else BadSignature.

    Empty secrets are skipped: anyone can compute an HMAC with an empty key.
    """
    if not header or len(header) > MAX_HEADER:
        raise BadSignature(f"missing {HEADER}")
    timestamps: list[str] = []
    macs: list[bytes] = []
    for item in header.split(","):
        name, _, value = item.strip().partition("=")
        if name == "t":
            timestamps.append(value)
        elif name == "v1" and _HEX.fullmatch(value):
            macs.append(value.lower().encode("ascii"))
    if len(timestamps) != 1 or not _TIMESTAMP.fullmatch(timestamps[0]) or not macs:
        raise BadSignature(f"{HEADER} must be t=<unix seconds>,v1=<hex>")
    timestamp = timestamps[0]
    if abs(now - int(timestamp)) > tolerance:
        raise BadSignature(f"{HEADER} timestamp is too old or in the future")
    for index, secret in enumerate(secrets):
        if not secret:
            continue
        expected = mac(secret, timestamp, raw_body).encode("ascii")
        if any(hmac.compare_digest(expected, given) for given in macs):
            return index
    raise BadSignature(f"{HEADER} does not match")


def parse_event(raw_body: bytes) -> CallEvent:
    """One PBX event. ``event_ref`` is the event name: a PBX sends each once per call, and a
    retry repeats it, so (call_id, event) is the natural idempotency key."""
    body = load_json_object(raw_body)
    if len(body) > MAX_KEYS:
        raise InvalidEvent(f"at most {MAX_KEYS} keys")
    event = body.get("event")
    if not isinstance(event, str) or event not in EVENTS:
        raise InvalidEvent(f"event must be one of {', '.join(EVENTS)}")
    kind, status = EVENTS[event]
    call_id = check_ref(body.get("call_id"), "call_id")
    caller = check_text(body.get("from"), "from")
    if caller is None and ("from" in body or kind == "started"):
        caller = ""  # a call with no caller ID: withheld, as opposed to not told
    called = check_text(body.get("to"), "to")
    if kind == "started" and called is None:
        raise InvalidEvent("to (the number dialled) is required on call.started")
    started_at = parse_time(body.get("started_at"), "started_at")
    answered_at = parse_time(body.get("answered_at"), "answered_at")
    ended_at = parse_time(body.get("ended_at"), "ended_at")
    billsec = _seconds(body.get("billsec"), "billsec")
    total = _seconds(body.get("duration"), "duration")
    disposition = body.get("disposition")
    if disposition is not None:
        disposition = disposition_status(disposition)
    if kind == "completed":
        status = disposition or ("completed" if (billsec or answered_at is not None) else "no-answer")
    recording_url = body.get("recording_url")
    if recording_url is not None:
        recording_url = check_url(recording_url, "recording_url")
    elif kind == "recording":
        raise InvalidEvent("recording_url is required on call.recording")
    occurred_at = {"started": started_at, "answered": answered_at, "completed": ended_at}.get(kind)
    return CallEvent(
        provider="pbx",
        call_ref=call_id,
        event_ref=event,
        kind=kind,
        status=status,
        occurred_at=occurred_at,
        caller_raw=caller,
        called_raw=called,
        started_at=started_at,
        answered_at=answered_at,
        ended_at=ended_at,
        duration=billsec,
        recording_url=recording_url,
        recording_duration=_seconds(body.get("recording_duration"), "recording_duration"),
        caller_name=check_text(body.get("caller_name"), "caller_name"),
        extra={} if total is None else {"total_duration": str(total)},
    )


def disposition_status(value: object) -> str:
    """Our status for an Asterisk disposition ("NO ANSWER", also "no_answer")."""
    status = DISPOSITIONS.get(value.strip().upper().replace("_", " ")) if isinstance(value, str) else None
    if status is None:
        raise InvalidEvent(f"disposition must be one of {', '.join(DISPOSITIONS)}")
    return status


def _seconds(value: Any, name: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_DURATION:
        raise InvalidEvent(f"{name} must be whole seconds from 0 to {MAX_DURATION}")
    return value
