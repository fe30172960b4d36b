"""Twilio-style voice webhooks: signature, form parsing and TwiML. Pure.

Twilio, SignalWire LaML and Telnyx TeXML post the same form fields and read the same TwiML,
so this one module serves all three; only whose token signs the request differs.

Params arrive as ``{name: [values]}`` (Twisted's ``request.args``, decoded to str). Our TwiML
dials the advertiser with ``<Number statusCallback=…>``, so most status callbacks describe
the *child* leg (the forwarded call); :func:`parse_status` folds them onto the parent call.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Mapping, Sequence
from functools import lru_cache
from datetime import timezone
from email.utils import parsedate_to_datetime
from urllib.parse import parse_qs, urlsplit
from xml.etree import ElementTree as ET

from calltrack.telephony.events import (
    MAX_REF,
    MAX_TIME,
    MAX_URL,
    MIN_TIME,
    BadSignature,
    CallEvent,
    InvalidEvent,
    check_ref,
    check_text,
    check_url,
)

Params = Mapping[str, Sequence[str]]

MAX_PARAMS = 100
MAX_DURATION = 7 * 86400
MAX_SEQUENCE = 10**6
STATUS_EVENTS = "initiated ringing answered completed"
CALL_STATUSES = frozenset(
    {"queued", "initiated", "ringing", "in-progress", "answered", "completed", "busy", "no-answer", "failed", "canceled"}
)
RECORDING_STATUSES = frozenset({"in-progress", "completed", "absent", "failed"})
_NOT_ANSWERED = frozenset({"busy", "no-answer", "failed", "canceled"})
_DEFAULT_PORTS = {"https": 443, "http": 80}
_DIGITS = re.compile(r"[0-9]{1,9}")
_TOKEN = re.compile(r"[a-z][a-z-]{0,31}")
# Characters XML 1.0 cannot carry at all, escaped or not.
_XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
# Fields kept in CallEvent.extra: useful when a call looks odd, harmless to store.
_EXTRA = {
    "ForwardedFrom": "forwarded_from",
    "StirVerstat": "stir_verstat",
    "AnsweredBy": "answered_by",
    "SipResponseCode": "sip_response_code",
    "CallbackSource": "callback_source",
}


# --- signatures ----------------------------------------------------------------------------


def compute_signature(url: str, params: Params, token: str) -> str:
    """X-Twilio-Signature for a request: base64 HMAC-SHA1 over url + sorted name/value pairs.

    Repeated identical values count once, as in Twilio's own RequestValidator.
    """
    parts = [url]
    for name in sorted(params):
        values = _values(params[name])
        if len(values) == 1:  # the usual case: nothing to sort or make unique
            parts.append(name + values[0])
            continue
        for value in sorted(set(values)):
            parts.append(name + value)
    return base64.b64encode(hmac.digest(token.encode("utf-8"), "".join(parts).encode("utf-8"), "sha1")).decode("ascii")


def verify_signature(
    url: str,
    params: Params,
    signature: str | None,
    token: str,
    *,
    raw_body: bytes | None = None,
    json_body: bool = False,
) -> None:
    """Check X-Twilio-Signature; raise BadSignature when it is missing or wrong.

    ``url`` is the public URL as configured at the provider (query included, fragment not).
    Twilio has signed with and without the default port over the years, so both are tried.
    For a JSON body (``json_body``) Twilio signs the URL alone and puts the body's SHA-256 in
    its ``bodySHA256`` query parameter, which must then match ``raw_body``.
    """
    if not signature or not token:
        raise BadSignature("missing X-Twilio-Signature")
    if json_body:
        if raw_body is None:
            raise BadSignature("a JSON body is needed to check its hash")
        try:
            claimed = parse_qs(urlsplit(url).query).get("bodySHA256", [""])[0]
        except ValueError:
            raise BadSignature("bad URL") from None
        actual = hashlib.sha256(raw_body).hexdigest()
        if not hmac.compare_digest(claimed.lower().encode("utf-8"), actual.encode("ascii")):
            raise BadSignature("the body does not match bodySHA256")
        params = {}
    ok = False
    try:
        given = signature.strip().encode("utf-8")
        for candidate in _url_variants(url):
            # No early exit: the work done must not depend on which variant matched.
            ok |= hmac.compare_digest(compute_signature(candidate, params, token).encode("ascii"), given)
    except UnicodeEncodeError:  # a lone surrogate: nothing Twilio could have signed
        raise BadSignature("X-Twilio-Signature does not match") from None
    if not ok:
        raise BadSignature("X-Twilio-Signature does not match")


@lru_cache(maxsize=256)
def _url_variants(url: str) -> tuple[str, ...]:
    """The URL as given, plus the same URL with its default port added or removed (cached:
    a server signs few distinct URLs, one per webhook path)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return (url,)
    default = _DEFAULT_PORTS.get(parts.scheme.lower())
    if default is None:
        return (url,)
    if port is None:
        other = parts._replace(netloc=f"{parts.netloc}:{default}")
    elif port == default:
        other = parts._replace(netloc=parts.netloc.rpartition(":")[0])
    else:
        return (url,)
    return (url, other.geturl())


# --- webhooks --------------------------------------------------------------------------------


def parse_voice(params: Params) -> CallEvent:
    """The incoming-call webhook: a call to one of our numbers has started ringing.

    Its CallStatus is whatever the provider has reached (queued, ringing…); for us the call is
    ringing until the advertiser answers, so the status is always "ringing". From/To are kept
    raw ("anonymous", "client:alice", national digits): the service normalises them.
    """
    form = _Form(params)
    call_sid = check_ref(form.get("CallSid"), "CallSid")
    caller = form.caller()
    if caller is None:
        raise InvalidEvent("From is missing")
    called = form.number("To") or form.number("Called")
    if called is None:
        raise InvalidEvent("To is missing")
    return CallEvent(
        provider="twilio",
        call_ref=call_sid,
        event_ref="voice",
        kind="started",
        status="ringing",
        caller_raw=caller,
        called_raw=called,
        provider_account=form.ref("AccountSid"),
        caller_name=form.text("CallerName"),
        caller_city=form.text("FromCity") or form.text("CallerCity"),
        caller_region=form.text("FromState") or form.text("CallerState"),
        caller_country=form.text("FromCountry") or form.text("CallerCountry"),
        direction=form.direction(),
        extra=form.extra(),
    )


def parse_status(params: Params) -> CallEvent:
    """A status callback, folded onto the call the caller made.

    A callback with ParentCallSid is about the child leg we dialled to the advertiser: it is
    filed under the parent's CallSid, carries no numbers (its To is the forwarding target),
    and its answer/hangup is the call's answer/hangup. ``event_ref`` names the leg, status and
    SequenceNumber, so a retried delivery repeats it exactly and a new one never does.
    """
    form = _Form(params)
    call_sid = check_ref(form.get("CallSid"), "CallSid")
    parent_sid = form.ref("ParentCallSid")
    status = form.get("CallStatus")
    if status not in CALL_STATUSES:
        raise InvalidEvent("CallStatus is missing or unknown")
    sequence = form.integer("SequenceNumber", MAX_SEQUENCE)
    at = _rfc2822(form.get("Timestamp"))
    duration = form.integer("CallDuration", MAX_DURATION)

    if status in ("queued", "initiated", "ringing"):
        kind, new_status = "ringing", "ringing"
    elif status in ("in-progress", "answered"):
        kind, new_status = "answered", "in-progress"
    else:
        kind, new_status = "completed", status

    suffix = f":{status}:{'' if sequence is None else sequence}"
    event_ref = "status:parent" + suffix if parent_sid is None else _event_ref("status:child:", call_sid, suffix)
    extra = form.extra()
    if parent_sid is not None:
        extra["leg"] = "child"
        extra["child_call_sid"] = call_sid
    elif duration is not None:
        # The caller's own leg was answered by Twilio and lasted through the ringing: its
        # CallDuration is not talk time. Only the forwarded (child) leg says who talked.
        extra["total_duration"] = str(duration)
        duration = None
    return CallEvent(
        provider="twilio",
        call_ref=parent_sid or call_sid,
        event_ref=event_ref,
        kind=kind,
        status=new_status,
        occurred_at=at,
        caller_raw=None if parent_sid else form.caller(),
        called_raw=None if parent_sid else form.number("To") or form.number("Called"),
        provider_account=form.ref("AccountSid"),
        answered_at=at if kind == "answered" else None,
        ended_at=at if kind == "completed" else None,
        duration=None if status in _NOT_ANSWERED else duration if kind == "completed" else None,
        # The child leg is one we placed; the call itself is the caller's inbound call.
        direction="inbound" if parent_sid else form.direction(),
        sequence=sequence,
        extra=extra,
    )


def parse_recording(params: Params) -> CallEvent:
    """A recording status callback; the URL is kept only once the recording is complete.

    For ``<Dial record>`` Twilio reports the recording under the parent's CallSid; should a
    ParentCallSid come along anyway, the recording is filed under it.
    """
    form = _Form(params)
    call_sid = check_ref(form.get("CallSid"), "CallSid")
    recording_sid = check_ref(form.get("RecordingSid"), "RecordingSid")
    status = form.get("RecordingStatus")
    if status not in RECORDING_STATUSES:
        raise InvalidEvent("RecordingStatus is missing or unknown")
    url = None
    if status == "completed":
        url = check_url(form.get("RecordingUrl"), "RecordingUrl")
    extra = {"recording_sid": recording_sid, "recording_status": status}
    for name, key in (("RecordingChannels", "channels"), ("RecordingSource", "source"), ("ErrorCode", "error_code")):
        if value := form.text(name):
            extra[key] = value
    return CallEvent(
        provider="twilio",
        call_ref=form.ref("ParentCallSid") or call_sid,
        event_ref=_event_ref("recording:", recording_sid, f":{status}"),
        kind="recording",
        status=None,
        provider_account=form.ref("AccountSid"),
        recording_url=url,
        recording_duration=form.integer("RecordingDuration", MAX_DURATION),
        extra=extra,
    )


def _event_ref(prefix: str, sid: str, suffix: str) -> str:
    """prefix + sid + suffix, with a long sid (TeXML's are) digested to stay within MAX_REF."""
    ref = prefix + sid + suffix
    if len(ref) > MAX_REF:
        ref = prefix + hashlib.sha256(sid.encode()).hexdigest()[:40] + suffix
    return ref


class _Form:
    """The posted params, size-checked once, with typed getters (first value wins)."""

    def __init__(self, params: Params) -> None:
        if len(params) > MAX_PARAMS:
            raise InvalidEvent(f"at most {MAX_PARAMS} parameters")
        self._params: dict[str, Sequence[str]] = {}
        for name, raw in params.items():
            values = _values(raw)
            if len(name) > MAX_URL or len(values) > MAX_PARAMS or (max(map(len, values)) if values else 0) > MAX_URL:
                raise InvalidEvent(f"parameter values must be at most {MAX_URL} characters")
            self._params[name] = values  # read only


    def get(self, name: str) -> str | None:
        """The first value, stripped; None when absent or blank (Twilio sends blank geo fields)."""
        values = self._params.get(name)
        value = values[0].strip() if values else ""
        return value or None

    def ref(self, name: str) -> str | None:
        value = self.get(name)
        return None if value is None else check_ref(value, name)

    def text(self, name: str) -> str | None:
        return check_text(self.get(name), name, truncate=True)

    def number(self, name: str) -> str | None:
        return check_text(self.get(name), name)

    def caller(self) -> str | None:
        """From (or the legacy Caller): "" when sent blank, which is a withheld caller ID;
        None only when neither was sent at all."""
        if "From" not in self._params and "Caller" not in self._params:
            return None
        return self.number("From") or self.number("Caller") or ""

    def integer(self, name: str, limit: int) -> int | None:
        """A count Twilio may leave out; present, it must be a plain decimal within ``limit``."""
        value = self.get(name)
        if value is None:
            return None
        if not _DIGITS.fullmatch(value) or int(value) > limit:
            raise InvalidEvent(f"{name} must be a whole number from 0 to {limit}")
        return int(value)

    def direction(self) -> str:
        value = self.get("Direction") or "inbound"
        if not _TOKEN.fullmatch(value):
            raise InvalidEvent("Direction is not a valid direction")
        return value

    def extra(self) -> dict[str, str]:
        found = {key: self.text(name) for name, key in _EXTRA.items()}
        return {key: value for key, value in found.items() if value}


def _values(raw: Sequence[str] | str) -> Sequence[str]:
    """A plain ``{name: value}`` dict works too, as with Twilio's own validator."""
    return [raw] if isinstance(raw, str) else raw


def _rfc2822(value: str | None) -> float | None:
    """Twilio's Timestamp; it is informational, so an unreadable one is simply unknown."""
    if value is None:
        return None
    try:
        moment = parsedate_to_datetime(value)
        if moment.tzinfo is None:  # "-0000": UTC, not the server's local time
            moment = moment.replace(tzinfo=timezone.utc)
        seconds = moment.timestamp()
    except (TypeError, ValueError, OverflowError, IndexError):
        return None
    return seconds if MIN_TIME <= seconds < MAX_TIME else None


# --- TwiML ---------------------------------------------------------------------------------


@lru_cache(maxsize=1024)
def dial_twiml(
    forward_to: str,
    *,
    status_callback: str,
    recording_callback: str | None,
    record: bool,
    timeout: int = 30,
    caller_id: str | None = None,
) -> bytes:
    """Forward the call to the advertiser's number (cached: the same few targets and
    callbacks come back call after call, and building the XML costs more than the rest of the
    answer).

    ``answerOnBridge`` keeps the caller hearing ringing (and the call unanswered, so unbilled
    and "no-answer" if nobody picks up) until the advertiser answers. ``callerId`` is left out
    by default so the advertiser sees who is calling.
    """
    if not 1 <= timeout <= 600:
        raise ValueError("timeout must be 1-600 seconds")
    dial: dict[str, str] = {"answerOnBridge": "true", "timeout": str(timeout)}
    if record:
        dial["record"] = "record-from-answer-dual"
        if recording_callback:
            dial["recordingStatusCallback"] = recording_callback
    if caller_id:
        dial["callerId"] = caller_id
    response = ET.Element("Response")
    number = ET.SubElement(
        ET.SubElement(response, "Dial", _clean(dial)),
        "Number",
        _clean({"statusCallback": status_callback, "statusCallbackEvent": STATUS_EVENTS}),
    )
    number.text = _XML_ILLEGAL.sub("", forward_to)
    return _render(response)


@lru_cache(maxsize=1)
def reject_twiml() -> bytes:
    """Refuse the call unanswered (a blocklisted caller hears busy and costs nothing)."""
    response = ET.Element("Response")
    ET.SubElement(response, "Reject")
    return _render(response)


@lru_cache(maxsize=64)
def hangup_twiml(message: str) -> bytes:
    """Say why we cannot connect the call (e.g. an unassigned number), then hang up."""
    response = ET.Element("Response")
    ET.SubElement(response, "Say").text = _XML_ILLEGAL.sub("", message)
    ET.SubElement(response, "Hangup")
    return _render(response)


@lru_cache(maxsize=1)
def empty_twiml() -> bytes:
    """Nothing to do: the answer to a Dial action or any callback that expects TwiML."""
    return _render(ET.Element("Response"))


def _clean(attrs: dict[str, str]) -> dict[str, str]:
    return {name: _XML_ILLEGAL.sub("", value) for name, value in attrs.items()}


def _render(root: ET.Element) -> bytes:
    body = ET.tostring(root, encoding="unicode")
    return ('<?xml version="1.0" encoding="UTF-8"?>' + body).encode("utf-8")
