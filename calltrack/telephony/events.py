"""The provider-neutral call event every adapter parses its webhook into. Pure.

A call is told to us as a series of events (started, ringing, answered, completed, a
recording) that may arrive twice, late or out of order. Each event names its call by the
provider's call id (``call_ref``) and itself by ``event_ref``; the pair is the idempotency
key, and a call's status only ever moves forward along :data:`STATUS_RANK`.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field, replace
from datetime import datetime, tzinfo
from typing import Any
from urllib.parse import urlsplit

# Providers whose events we read. A bulk import of PBX call logs (cdr.py) is "pbx" too: the
# same calls as the PBX's live webhooks.
PROVIDERS = ("twilio", "telnyx", "pbx")

# What an event says happened.
KINDS = ("started", "ringing", "answered", "completed", "recording")

# A call's status, in the order it may move. The terminal ones share the top rank: once a
# call has ended, a late "ringing" or "in-progress" cannot reopen it, and a second terminal
# status does not replace the first.
STATUS_RANK: dict[str, int] = {
    "queued": 0,
    "ringing": 1,
    "in-progress": 2,
    "completed": 3,
    "busy": 3,
    "no-answer": 3,
    "failed": 3,
    "canceled": 3,
}
TERMINAL = frozenset(s for s, r in STATUS_RANK.items() if r == 3)

MAX_REF = 128
MAX_TEXT = 200
MAX_URL = 2048


class InvalidEvent(ValueError):
    """A delivery that cannot be read as a call event; the message says why (→ 400)."""


class BadSignature(Exception):
    """A missing, forged or stale signature (→ 403, nothing stored)."""


@dataclass(frozen=True)
class CallEvent:
    """One thing a provider told us about one call.

    Numbers are as the provider sent them (``caller_raw``, ``called_raw``); the service
    normalises them with the account's region, since Plivo, Vonage and PBXs send national
    or bare digits.

    Attributes:
        provider: one of :data:`PROVIDERS`.
        call_ref: the provider's id of the call (Twilio CallSid, Telnyx call_session_id,
            the PBX's uniqueid).
        event_ref: this event's id within the call (the pair is unique per delivery).
        kind: one of :data:`KINDS`.
        status: the call's status after this event (a key of :data:`STATUS_RANK`), or None
            when the event says nothing of it (a recording).
        occurred_at: when it happened, UTC unix seconds, if the provider says.
        caller_raw / called_raw: the caller's number and the number dialled (a tracking
            number); None when this event does not carry them (a child leg's events carry
            the forwarding target as "To", which is not the number dialled).
        provider_account: the provider's account id (Twilio AccountSid), to find the
            tenant's secret.
        started_at / answered_at / ended_at: UTC unix seconds, when known.
        duration: talk time in seconds (answered to end), when known.
        recording_url / recording_duration: a recording, when one is ready.
        caller_name, caller_city, caller_region, caller_country: caller details if sent.
        direction: "inbound" unless the provider says otherwise.
        sequence: the provider's sequence number for ordering (Twilio SequenceNumber).
        extra: other fields worth keeping (hangup cause, SIP code…), strings only.
    """

    provider: str
    call_ref: str
    event_ref: str
    kind: str
    status: str | None = None
    occurred_at: float | None = None
    caller_raw: str | None = None
    called_raw: str | None = None
    provider_account: str | None = None
    started_at: float | None = None
    answered_at: float | None = None
    ended_at: float | None = None
    duration: int | None = None
    recording_url: str | None = None
    recording_duration: int | None = None
    caller_name: str | None = None
    caller_city: str | None = None
    caller_region: str | None = None
    caller_country: str | None = None
    direction: str = "inbound"
    sequence: int | None = None
    extra: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.provider not in PROVIDERS:
            raise InvalidEvent(f"unknown provider {self.provider!r}")
        if self.kind not in KINDS:
            raise InvalidEvent(f"unknown event kind {self.kind!r}")
        if self.status is not None and self.status not in STATUS_RANK:
            raise InvalidEvent(f"unknown call status {self.status!r}")
        for name in ("call_ref", "event_ref"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value or len(value) > MAX_REF:
                raise InvalidEvent(f"{name} must be 1-{MAX_REF} characters")
        if self.duration is not None and not 0 <= self.duration <= 7 * 86400:
            raise InvalidEvent("duration must be between 0 and a week")

    @property
    def key(self) -> str:
        """The idempotency key of this delivery."""
        return f"{self.call_ref}|{self.event_ref}"

    def with_(self, **changes: Any) -> CallEvent:
        return replace(self, **changes)

    def to_json(self) -> dict[str, Any]:
        """The event as stored in ``call_events.payload`` (no secrets: adapters keep none)."""
        return {k: v for k, v in self.__dict__.items() if v not in (None, {}, "")}


def later_status(current: str | None, new: str | None, *, answered: bool = False) -> str | None:
    """The status a call has after ``new`` arrives: it never moves backwards.

    Among the terminal statuses the answer does not depend on the order of arrival: a call
    that was answered ended "completed"; one that was not takes the specific missed outcome
    (busy, no-answer, failed, canceled) over a bare "completed" (the caller's own leg ends
    "completed" whether or not anybody picked up at the other end).
    """
    if new is None:
        return current
    if current is None:
        return "completed" if answered and new in TERMINAL else new
    if STATUS_RANK[new] > STATUS_RANK[current]:
        return "completed" if answered and new in TERMINAL else new
    if current in TERMINAL and new in TERMINAL:
        if answered:
            return "completed"
        # Unanswered: the most telling outcome wins, whichever came first.
        return max(current, new, key=_MISSED_ORDER.index)
    return current


# A bare "completed" says least about an unanswered call; a cancel by the caller the most.
_MISSED_ORDER = ("completed", "failed", "no-answer", "busy", "canceled")


# --- Helpers the adapters share: one definition of "valid" for every provider. ---------------

MIN_TIME = 946_684_800.0  # 2000-01-01T00:00:00Z
MAX_TIME = 4_102_444_800.0  # 2100-01-01T00:00:00Z
_REF = re.compile(r"[!-~]{1,%d}" % MAX_REF)
# ASCII digits only: \d would let float() read other scripts' digits.
_ISO = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:[.,][0-9]{1,9})?)?(?:Z|z|[+-][0-9]{2}(?::?[0-9]{2})?)?"
)
_UNIX = re.compile(r"[0-9]{9,10}(?:\.[0-9]{1,9})?")
# Control characters, and lone surrogates (from JSON "\ud800" escapes) that no database takes.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
_URL_CHARS = re.compile(r"[!-~]+")


def check_ref(value: object, name: str) -> str:
    """A provider id: 1-128 printable ASCII characters, no spaces (they end up in keys)."""
    if not isinstance(value, str) or not _REF.fullmatch(value):
        raise InvalidEvent(f"{name} must be 1-{MAX_REF} printable ASCII characters")
    return value


def check_text(value: object, name: str, *, limit: int = MAX_TEXT, truncate: bool = False) -> str | None:
    """Free text from a provider without control characters; None when blank.

    ``truncate`` is for display-only fields (caller city) where a long value is harmless;
    numbers must never be cut, so for them too long is an error.
    """
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidEvent(f"{name} must be a string")
    text = _CONTROL.sub("", value).strip()
    if len(text) > limit:
        if not truncate:
            raise InvalidEvent(f"{name} must be at most {limit} characters")
        text = text[:limit].rstrip()
    return text or None


def check_url(value: object, name: str) -> str:
    """An http(s) URL we may later fetch or show as a link (so no javascript: or spaces)."""
    if not isinstance(value, str) or not 0 < len(value) <= MAX_URL or not _URL_CHARS.fullmatch(value):
        raise InvalidEvent(f"{name} must be a URL of at most {MAX_URL} printable ASCII characters")
    try:
        parts = urlsplit(value)
    except ValueError:
        raise InvalidEvent(f"{name} is not a valid URL") from None
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        raise InvalidEvent(f"{name} must be an http(s) URL")
    return value


def parse_time(value: object, name: str, *, tz: tzinfo | None = None) -> float | None:
    """A time as UTC unix seconds from ISO 8601 text or a unix number; None for null/blank.

    Text without an offset is read in ``tz``; with no ``tz`` it is refused, since guessing
    would shift the call by hours. Times outside 2000-2100 are refused as nonsense.
    """
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise InvalidEvent(f"{name} must be an ISO 8601 time or unix seconds")
    if isinstance(value, str):
        text = value.strip()
        if _UNIX.fullmatch(text):
            seconds = float(text)
        elif _ISO.fullmatch(text):
            try:
                moment = datetime.fromisoformat(text.replace(",", ".").replace("z", "Z"))
                if moment.tzinfo is None:
                    if tz is None:
                        raise InvalidEvent(f"{name} must carry a UTC offset (e.g. Z)")
                    moment = moment.replace(tzinfo=tz)
                seconds = moment.timestamp()
            except (ValueError, OverflowError) as e:
                if isinstance(e, InvalidEvent):
                    raise
                raise InvalidEvent(f"{name} is not a valid time") from None
        else:
            raise InvalidEvent(f"{name} must be an ISO 8601 time or unix seconds")
    else:
        try:
            seconds = float(value)
        except OverflowError:
            raise InvalidEvent(f"{name} is out of range") from None
    if not (math.isfinite(seconds) and MIN_TIME <= seconds < MAX_TIME):
        raise InvalidEvent(f"{name} must be between the years 2000 and 2100")
    return seconds


def load_json_object(raw_body: bytes) -> dict[str, Any]:
    """Parse a JSON webhook body that must be an object.

    Deep nesting surfaces as RecursionError and huge integers as ValueError inside the json
    module; both become InvalidEvent so a hostile body is a 400, not a 500.
    """

    def no_constants(name: str) -> None:
        raise InvalidEvent(f"{name} is not valid JSON")

    try:
        data = json.loads(raw_body.decode("utf-8"), parse_constant=no_constants)
    except (UnicodeDecodeError, ValueError, RecursionError) as e:
        if isinstance(e, InvalidEvent):
            raise
        raise InvalidEvent("the body is not valid UTF-8 JSON") from None
    if not isinstance(data, dict):
        raise InvalidEvent("the body must be a JSON object")
    return data
