"""Our HMAC signature scheme, one for both directions. Pure.

``X-CT-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>." + body)>``: PBXs sign
the call events they post to us with it (telephony/pbx.py verifies), and we sign the lead
webhooks we post to a CRM with it (leads/outbox.py). Signing the timestamp with the body lets
the receiver refuse replays; several ``v1=`` entries let a sender sign with an old and a new
secret while the secret is rotated.
"""

from __future__ import annotations

import hashlib
import hmac

HEADER = "X-CT-Signature"


def mac(secret: str, timestamp: int | str, body: bytes) -> str:
    return hmac.new(secret.encode("utf-8"), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def sign(secret: str, body: bytes, *, timestamp: int) -> str:
    """The X-CT-Signature value for ``body`` sent at ``timestamp`` (unix seconds)."""
    return f"t={timestamp},v1={mac(secret, timestamp, body)}"
