"""Every call webhook, every way of signing it, against forged, missing, tampered, stale and
replayed deliveries — on SQLite and PostgreSQL.

A refused delivery answers 403 and stores nothing; a replayed one (the provider retrying)
answers 200 like the first and is stored once, so the provider stops retrying; a captured
delivery replayed after the signature window is refused where the scheme signs a timestamp
(Telnyx, TeXML, our X-CT-Signature). Twilio's scheme signs no time: a replay of it is a
retry, harmless because it is stored once.

To cover a new webhook or scheme, add a :class:`Scheme` and a delivery to ``DELIVERIES``.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import pytest
from nacl.signing import SigningKey
from twilio.request_validator import RequestValidator

from calltrack.app import App
from calltrack.signatures import sign as ct_sign
from tests.conftest import Http, Tenant
from tests.numbers.helpers import count
from tests.telephony.helpers import BASE, CALLER, STATIC_NUMBER, TWILIO_SID, TWILIO_TOKEN, Phones, setup_phones

TOLERANCE = 300  # [telephony] signature_tolerance_seconds
SID = "CA" + "5" * 32
STRANGER = SigningKey(b"\x09" * 32)


@dataclass(frozen=True)
class Delivery:
    path: str
    body: bytes
    headers: dict[str, str]


@dataclass(frozen=True)
class Scheme:
    """How one provider signs: ``sign(phones, path, body, now, how)`` → headers.

    ``how`` is "good", "forged" (another key or secret) or "missing"; ``timestamped`` tells
    whether a stale signature can be tested at all.
    """

    name: str
    content_type: str
    timestamped: bool
    sign: Callable[[Phones, str, bytes, float, str], dict[str, str]]


def _twilio(phones: Phones, path: str, body: bytes, now: float, how: str) -> dict[str, str]:
    if how == "missing":
        return {}
    from urllib.parse import parse_qsl

    params = dict(parse_qsl(body.decode(), keep_blank_values=True))
    token = TWILIO_TOKEN if how == "good" else "not-the-auth-token"
    return {"X-Twilio-Signature": RequestValidator(token).compute_signature(BASE + path, params)}


def _ed25519(phones: Phones, path: str, body: bytes, now: float, how: str) -> dict[str, str]:
    if how == "missing":
        return {}
    key = phones.telnyx_key if how == "good" else STRANGER
    ts = str(int(now))
    return {"telnyx-signature-ed25519": base64.b64encode(key.sign(ts.encode() + b"|" + body).signature).decode(), "telnyx-timestamp": ts}


def _pbx(phones: Phones, path: str, body: bytes, now: float, how: str) -> dict[str, str]:
    if how == "missing":
        return {}
    return {"X-CT-Signature": ct_sign(phones.pbx_secret if how == "good" else "whsec_not-the-secret", body, timestamp=int(now))}


FORM = "application/x-www-form-urlencoded"
TWILIO = Scheme("twilio", FORM, False, _twilio)
TEXML = Scheme("texml", FORM, True, _ed25519)
TELNYX = Scheme("telnyx", "application/json", True, _ed25519)
PBX = Scheme("pbx", "application/json", True, _pbx)


def _form(account: str, **fields: str) -> bytes:
    return urlencode({"AccountSid": account, "CallSid": SID, **fields}).encode()


def voice(account: str) -> bytes:
    return _form(account, From=CALLER, To=STATIC_NUMBER, CallStatus="ringing", Direction="inbound")


def status(account: str) -> bytes:
    return _form(account, From=CALLER, To=STATIC_NUMBER, CallStatus="completed", CallDuration="42", Direction="inbound", SequenceNumber="3")


def recording(account: str) -> bytes:
    return _form(account, RecordingSid="RE" + "5" * 32, RecordingStatus="completed", RecordingDuration="40",
                 RecordingUrl="https://api.twilio.com/2010-04-01/Accounts/AC1/Recordings/RE5")


def telnyx_event() -> bytes:
    return json.dumps({
        "data": {"record_type": "event", "event_type": "call.initiated", "id": "ev-sig-1", "occurred_at": "2026-01-01T00:00:05Z",
                 "payload": {"call_control_id": "v3:sig", "call_session_id": "sess-sig", "call_leg_id": "leg-sig", "from": CALLER,
                             "to": STATIC_NUMBER, "direction": "incoming", "state": "parked"}},
        "meta": {"attempt": 1},
    }).encode()


def pbx_event() -> bytes:
    return json.dumps({"event": "call.started", "call_id": "pbx-sig-1", "from": CALLER, "to": STATIC_NUMBER}).encode()


# (name, scheme, path, body, needs the call first)
DELIVERIES: list[tuple[str, Scheme, str, Callable[[], bytes], bool]] = [
    ("twilio-voice", TWILIO, "/v1/webhooks/twilio/voice", lambda: voice(TWILIO_SID), False),
    ("twilio-status", TWILIO, "/v1/webhooks/twilio/status", lambda: status(TWILIO_SID), True),
    ("twilio-recording", TWILIO, "/v1/webhooks/twilio/recording", lambda: recording(TWILIO_SID), True),
    ("texml-voice", TEXML, "/v1/webhooks/twilio/voice", lambda: voice("texml-account"), False),
    ("texml-status", TEXML, "/v1/webhooks/twilio/status", lambda: status("texml-account"), True),
    ("texml-recording", TEXML, "/v1/webhooks/twilio/recording", lambda: recording("texml-account"), True),
    ("telnyx", TELNYX, "/v1/webhooks/telnyx", telnyx_event, False),
    ("pbx", PBX, "/v1/webhooks/calls", pbx_event, False),
]
IDS = [d[0] for d in DELIVERIES]


@pytest.fixture
def phones(app: App, tenant: Tenant) -> Phones:
    return setup_phones(app, tenant)


def post(http: Http, scheme: Scheme, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, Any]:
    code, answer, _ = http.request("POST", path, data=body, headers={"Content-Type": scheme.content_type, **headers})
    return code, answer


def stored(app: App) -> tuple[int, int]:
    return count(app, "calls"), count(app, "call_events")


def prepare(app: App, http: Http, phones: Phones, clock: Any, scheme: Scheme, needs_call: bool) -> None:
    """The call a status or recording callback belongs to, delivered first (signed the same way)."""
    if needs_call:
        account = TWILIO_SID if scheme is TWILIO else "texml-account"
        body = voice(account)
        assert post(http, scheme, "/v1/webhooks/twilio/voice", body, scheme.sign(phones, "/v1/webhooks/twilio/voice", body, clock.seconds(), "good"))[0] == 200


def test_every_webhook_route_is_covered(app: App) -> None:
    served = {r.name for r in app.router.routes() if r.name.startswith("/v1/webhooks/")}
    assert served == {path for _, _, path, _, _ in DELIVERIES}


@pytest.mark.parametrize(("name", "scheme", "path", "body", "needs_call"), DELIVERIES, ids=IDS)
def test_a_good_signature_is_stored(app, http, phones, clock, name, scheme, path, body, needs_call):
    prepare(app, http, phones, clock, scheme, needs_call)
    before = stored(app)
    data = body()
    code, answer = post(http, scheme, path, data, scheme.sign(phones, path, data, clock.seconds(), "good"))
    assert code == 200, answer
    assert stored(app)[1] == before[1] + 1


@pytest.mark.parametrize("how", ["forged", "missing", "tampered", "stale", "future"])
@pytest.mark.parametrize(("name", "scheme", "path", "body", "needs_call"), DELIVERIES, ids=IDS)
def test_a_bad_signature_is_refused_and_stores_nothing(app, http, phones, clock, name, scheme, path, body, needs_call, how):
    if how in ("stale", "future") and not scheme.timestamped:
        pytest.skip(f"{scheme.name} signs no time; replays are harmless retries (test_a_replay_is_stored_once)")
    prepare(app, http, phones, clock, scheme, needs_call)
    before = stored(app)
    data = body()
    now = clock.seconds()
    if how in ("forged", "missing"):
        headers = scheme.sign(phones, path, data, now, how)
    elif how == "tampered":
        headers = scheme.sign(phones, path, data, now, "good")
        data = data.replace(CALLER[-4:].encode(), b"9999") if CALLER[-4:].encode() in data else data.replace(b"completed", b"absent")
    else:
        skew = TOLERANCE + 1 if how == "future" else -(TOLERANCE + 1)
        headers = scheme.sign(phones, path, data, now + skew, "good")
    code, answer = post(http, scheme, path, data, headers)
    assert code == 403, (code, answer)
    assert answer["error"]["code"] == "bad_signature"
    assert stored(app) == before


@pytest.mark.parametrize(("name", "scheme", "path", "body", "needs_call"), DELIVERIES, ids=IDS)
def test_a_replay_is_stored_once_and_answered_like_the_first(app, http, phones, clock, name, scheme, path, body, needs_call):
    prepare(app, http, phones, clock, scheme, needs_call)
    data = body()
    headers = scheme.sign(phones, path, data, clock.seconds(), "good")
    first = post(http, scheme, path, data, headers)
    after_first = stored(app)
    clock.advance(30)  # the provider retries a little later, with the same signed bytes
    again = post(http, scheme, path, data, headers)
    assert first[0] == again[0] == 200, (first, again)
    assert stored(app) == after_first
    if isinstance(first[1], dict) and "duplicate" in first[1]:
        assert first[1]["duplicate"] is False and again[1]["duplicate"] is True
    else:
        assert again[1] == first[1]  # the same TwiML


@pytest.mark.parametrize(("name", "scheme", "path", "body", "needs_call"), [d for d in DELIVERIES if d[1].timestamped], ids=[d[0] for d in DELIVERIES if d[1].timestamped])
def test_a_captured_delivery_replayed_after_the_window_is_refused(app, http, phones, clock, name, scheme, path, body, needs_call):
    prepare(app, http, phones, clock, scheme, needs_call)
    data = body()
    headers = scheme.sign(phones, path, data, clock.seconds(), "good")
    assert post(http, scheme, path, data, headers)[0] == 200
    before = stored(app)
    clock.advance(TOLERANCE + 60)
    code, answer = post(http, scheme, path, data, headers)
    assert code == 403 and answer["error"]["code"] == "bad_signature"
    assert stored(app) == before
