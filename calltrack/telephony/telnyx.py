"""Telnyx Call Control webhooks: ed25519 signature and JSON events. Pure.

(Telnyx TeXML posts Twilio-style forms: use :mod:`calltrack.telephony.twilio` for those, with
this module's signature check.)

Every leg of one phone call shares ``call_session_id``: the caller's incoming leg and the
outgoing leg a transfer places to the advertiser. Events of both legs are filed under it;
the outgoing leg's numbers are left out, since its "to" is the forwarding target.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Sequence
from typing import Any

from nacl.exceptions import CryptoError
from nacl.signing import VerifyKey

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

TRACKED = ("call.initiated", "call.answered", "call.hangup", "call.recording.saved")
# Telnyx hangup_cause → our terminal status. normal_clearing is an ordinary hang-up, answered
# or not (the answer, if any, came as call.answered); anything unknown counts as failed.
HANGUP_STATUS = {
    "normal_clearing": "completed",
    "time_limit": "completed",
    "user_busy": "busy",
    "no_answer": "no-answer",
    "timeout": "no-answer",
    "originator_cancel": "canceled",
}
_TIMESTAMP = re.compile(r"[0-9]{1,12}")


def verify_signature(
    raw_body: bytes,
    signature_b64: str | None,
    timestamp: str | None,
    public_keys: Sequence[str],
    *,
    now: float,
    tolerance: float = 300,
) -> int:
    """Check ``telnyx-signature-ed25519`` over ``timestamp|body``; return which key verified.

    Several keys are allowed so an account can rotate its key. A stored key that does not
    decode is skipped, not fatal: one bad row must not stop the others from verifying.
    The timestamp window (both ways) stops a captured request being replayed later.
    """
    if not signature_b64 or not timestamp:
        raise BadSignature("missing telnyx-signature-ed25519 or telnyx-timestamp")
    timestamp = timestamp.strip()
    if not _TIMESTAMP.fullmatch(timestamp):
        raise BadSignature("telnyx-timestamp is not unix seconds")
    if abs(now - int(timestamp)) > tolerance:
        raise BadSignature("telnyx-timestamp is too old or in the future")
    signature = _b64(signature_b64.strip(), 64)
    if signature is None:
        raise BadSignature("telnyx-signature-ed25519 is not a base64 ed25519 signature")
    message = timestamp.encode("ascii") + b"|" + raw_body
    for index, key in enumerate(public_keys):
        raw_key = _b64(key.strip(), 32) if isinstance(key, str) else None
        if raw_key is None:
            continue
        try:
            VerifyKey(raw_key).verify(message, signature)
        except (CryptoError, ValueError, TypeError):
            continue
        return index
    raise BadSignature("no Telnyx public key verifies the signature")


def _b64(text: str, size: int) -> bytes | None:
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None
    return raw if len(raw) == size else None


def parse_event(raw_body: bytes) -> CallEvent | None:
    """A Call Control webhook as a CallEvent, or None for event types we do not track.

    ``event_ref`` is Telnyx's ``data.id``: Telnyx retries with the same id and may deliver out
    of order, so that id is what dedupes. Talk time is left to the service (answered_at to
    ended_at), since a hangup alone does not say whether the call was answered.
    """
    body = load_json_object(raw_body)
    data = _object(body.get("data"), "data")
    event_type = data.get("event_type")
    if not isinstance(event_type, str) or not event_type:
        raise InvalidEvent("data.event_type is missing")
    event_id = check_ref(data.get("id"), "data.id")
    payload = _object(data.get("payload"), "data.payload")
    occurred_at = parse_time(data.get("occurred_at"), "data.occurred_at")
    if event_type not in TRACKED:
        return None

    call_ref = next((payload[k] for k in ("call_session_id", "call_control_id", "call_leg_id") if payload.get(k)), None)
    call_ref = check_ref(call_ref, "payload.call_session_id")
    direction = payload.get("direction", "incoming")
    if direction not in ("incoming", "outgoing"):
        raise InvalidEvent("payload.direction must be incoming or outgoing")
    incoming = direction == "incoming"
    started_at = parse_time(payload.get("start_time"), "payload.start_time")
    ended_at = parse_time(payload.get("end_time"), "payload.end_time")
    extra = {"event_type": event_type, "leg": direction}
    for name in ("call_control_id", "call_leg_id", "connection_id", "hangup_cause", "hangup_source", "sip_hangup_cause"):
        if value := check_text(_scalar_text(payload.get(name), name), f"payload.{name}", truncate=True):
            extra[name] = value

    common: dict[str, Any] = {
        "provider": "telnyx",
        "call_ref": call_ref,
        "event_ref": event_id,
        "occurred_at": occurred_at,
        "provider_account": extra.get("connection_id"),
        "extra": extra,
    }
    if incoming:
        caller = check_text(payload.get("from"), "payload.from")
        if caller is None and ("from" in payload or event_type == "call.initiated"):
            caller = ""  # a call with no caller ID: withheld, as opposed to not told
        common["caller_raw"] = caller
        common["called_raw"] = check_text(payload.get("to"), "payload.to")
        common["caller_name"] = check_text(payload.get("caller_id_name"), "payload.caller_id_name", truncate=True)

    if event_type == "call.initiated":
        # The advertiser's phone ringing (outgoing leg) is the caller's call ringing too.
        if incoming:
            return CallEvent(kind="started", status="ringing", started_at=started_at or occurred_at, **common)
        return CallEvent(kind="ringing", status="ringing", **common)
    if event_type == "call.answered":
        if incoming:
            # With Call Control the application answers the caller's leg before it transfers
            # the call: that is not the advertiser picking up. The transferred (outgoing)
            # leg's answer is.
            return CallEvent(kind="ringing", status=None, started_at=started_at, **common)
        return CallEvent(kind="answered", status="in-progress", answered_at=occurred_at, started_at=started_at, **common)
    if event_type == "call.hangup":
        cause = payload.get("hangup_cause")
        status = HANGUP_STATUS.get(cause, "failed") if isinstance(cause, str) else "failed"
        return CallEvent(
            kind="completed", status=status, started_at=started_at, ended_at=ended_at or occurred_at, **common
        )
    return _recording(payload, common)


def _recording(payload: dict[str, Any], common: dict[str, Any]) -> CallEvent:
    """call.recording.saved: prefer the permanent public URL over the expiring signed one."""
    url = None
    for field in ("public_recording_urls", "recording_urls"):
        urls = payload.get(field)
        if urls is None:
            continue
        urls = _object(urls, f"payload.{field}")
        for fmt in ("mp3", "wav"):
            if url is None and urls.get(fmt):
                url = check_url(urls[fmt], f"payload.{field}.{fmt}")
    if url is None:
        raise InvalidEvent("payload.recording_urls has no mp3 or wav URL")
    started = parse_time(payload.get("recording_started_at"), "payload.recording_started_at")
    ended = parse_time(payload.get("recording_ended_at"), "payload.recording_ended_at")
    duration = None
    if started is not None and ended is not None:
        if not 0 <= ended - started <= 7 * 86400:
            raise InvalidEvent("the recording ends before it starts or lasts over a week")
        duration = round(ended - started)
    return CallEvent(kind="recording", status=None, recording_url=url, recording_duration=duration, **common)


def _object(value: Any, name: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise InvalidEvent(f"{name} must be an object")
    return value


def _scalar_text(value: Any, name: str) -> str | None:
    """Extra fields are strings, but Telnyx sends some codes as numbers (sip_hangup_cause)."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return str(value)
    if not isinstance(value, str):
        raise InvalidEvent(f"payload.{name} must be a string")
    return value
