"""Helpers for call tests: a tenant with provider secrets, numbers, and signed deliveries."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from nacl.signing import SigningKey
from twilio.request_validator import RequestValidator

from calltrack.app import App
from calltrack.numbers.store import NewNumber
from calltrack.telephony import pbx
from tests.conftest import Http, Tenant, resolve
from tests.numbers.helpers import make_pool

BASE = "http://127.0.0.1:8080"  # the default public_base_url: what providers sign
TWILIO_SID = "AC" + "0" * 31 + "1"
TWILIO_TOKEN = "twilio-auth-token-1"
STATIC_NUMBER = "+14155550199"
CALLER = "+14155550100"


@dataclass
class Phones:
    tenant: Tenant
    pool: Any
    pbx_secret: str
    telnyx_key: SigningKey


def setup_phones(app: App, tenant: Tenant, *, pool_size: int = 3, cooldown: int = 300, record: bool = False) -> Phones:
    account_id = tenant.account.id
    resolve(app.telephony.add_credential(account_id, "twilio", provider_account=TWILIO_SID, secret=TWILIO_TOKEN, record_calls=record))
    pbx_cred = resolve(app.telephony.add_credential(account_id, "pbx"))
    key = SigningKey(b"\x02" * 32)
    resolve(app.telephony.add_credential(account_id, "telnyx", secret=_b64(key.verify_key.encode())))
    pool = make_pool(app, tenant, "web", pool_size, cooldown_seconds=cooldown)
    resolve(
        app.numbers.add_numbers(
            account_id,
            [NewNumber(STATIC_NUMBER, "+14155550177", "static", source="billboard", medium="outdoor", placement="I-80 billboard")],
        )
    )
    return Phones(tenant, pool, pbx_cred.secret, key)


def _b64(raw: bytes) -> str:
    import base64

    return base64.b64encode(raw).decode()


def twilio_post(
    http: Http, path: str, params: dict[str, str], *, token: str = TWILIO_TOKEN, signature: str | None = None, headers: dict[str, str] | None = None
) -> tuple[int, Any, Any]:
    body = urlencode(params).encode()
    sig = signature if signature is not None else RequestValidator(token).compute_signature(BASE + path, params)
    hdrs = {"Content-Type": "application/x-www-form-urlencoded", "X-Twilio-Signature": sig, **(headers or {})}
    return http.request("POST", path, data=body, headers=hdrs)


def voice_params(call_sid: str, *, caller: str = CALLER, to: str, **extra: str) -> dict[str, str]:
    return {
        "AccountSid": TWILIO_SID, "ApiVersion": "2010-04-01", "CallSid": call_sid, "CallStatus": "ringing",
        "Called": to, "Caller": caller, "Direction": "inbound", "From": caller, "FromCity": "SAN FRANCISCO",
        "FromCountry": "US", "FromState": "CA", "FromZip": "94103", "To": to, "ToCity": "", "ToCountry": "US", "ToState": "CA", "ToZip": "",
        **extra,
    }


def child_status(call_sid: str, status: str, seq: int, *, duration: int | None = None, child: str | None = None) -> dict[str, str]:
    p = {
        "AccountSid": TWILIO_SID, "CallSid": child or ("CA" + "f" * 24 + call_sid[-8:]), "ParentCallSid": call_sid,
        "CallStatus": status, "Direction": "outbound-dial", "From": CALLER, "To": "+14155552672",
        "CallbackSource": "call-progress-events", "SequenceNumber": str(seq), "Timestamp": "Thu, 01 Jan 2026 00:00:30 +0000",
    }
    if duration is not None:
        p["CallDuration"] = str(duration)
    return p


def pbx_post(http: Http, secret: str, body: dict[str, Any], *, now: float, raw: bytes | None = None) -> tuple[int, Any, Any]:
    data = raw if raw is not None else json.dumps(body).encode()
    header = pbx.sign(secret, data, timestamp=int(now))
    return http.request("POST", "/v1/webhooks/calls", data=data, headers={"Content-Type": "application/json", "X-CT-Signature": header})


def telnyx_post(http: Http, key: SigningKey, body: dict[str, Any], *, now: float) -> tuple[int, Any, Any]:
    data = json.dumps(body).encode()
    ts = str(int(now))
    sig = _b64(key.sign(ts.encode() + b"|" + data).signature)
    return http.request(
        "POST", "/v1/webhooks/telnyx", data=data,
        headers={"Content-Type": "application/json", "telnyx-signature-ed25519": sig, "telnyx-timestamp": ts},
    )
