"""Outbound lead webhooks, the pure part: events, target checks, back-off, the signed request.

A CRM registers a URL for some of the events below. Each event becomes one outbox row per
subscribed endpoint in the transaction that made it (leads/outbox_store.py); the dispatcher
(leads/outbox_service.py) posts it, signed with our X-CT-Signature scheme, and retries with
exponential back-off until the endpoint answers 2xx or the attempts run out.

Delivery is at least once: a receiver that must not act twice keeps the ``id`` it has seen.
Events of one lead may arrive out of order after retries; ``occurred_at`` and the lead's
current ``stage`` in every body let a receiver order them.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from calltrack.signatures import HEADER, sign

CREATED = "lead.created"
QUALIFIED = "lead.qualified"
STAGE_CHANGED = "lead.stage_changed"
EVENTS = (CREATED, QUALIFIED, STAGE_CHANGED)
# Reaching any of these from outside them is "qualified" (marketing- or sales-qualified, or
# straight to customer).
QUALIFIED_STAGES = frozenset({"mql", "sql", "customer"})
STATUSES = ("pending", "delivered", "failed", "cancelled")
MAX_URL = 2000
USER_AGENT = "calltrack-webhooks/1"


class InvalidWebhook(ValueError):
    """A webhook registration that cannot be accepted; the message says why."""


def read_events(value: Any) -> tuple[str, ...]:
    """The subscribed events: a list of names (or "*" / none for all), in canonical order."""
    if value is None or value == "*" or value == ["*"]:
        return EVENTS
    if isinstance(value, str):
        value = [v.strip() for v in value.split(",") if v.strip()]
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise InvalidWebhook(f"events must be a list of: {', '.join(EVENTS)}")
    unknown = sorted(set(value) - set(EVENTS))
    if unknown:
        raise InvalidWebhook(f"unknown event {unknown[0]!r} (known: {', '.join(EVENTS)})")
    return tuple(e for e in EVENTS if e in value)


def events_column(events: Iterable[str]) -> str:
    """As stored: comma-wrapped, so ``LIKE '%,lead.created,%'`` finds the subscribers."""
    return "," + ",".join(events) + ","


def events_from_column(column: str) -> list[str]:
    return [e for e in column.split(",") if e]


def like_pattern(event: str) -> str:
    return f"%,{event},%"


def stage_events(old: str | None, new: str) -> list[str]:
    """What a stage move tells a CRM: always stage_changed; qualified on entering the
    qualified stages from outside them."""
    out = [STAGE_CHANGED]
    if new in QUALIFIED_STAGES and old not in QUALIFIED_STAGES:
        out.append(QUALIFIED)
    return out


def check_target(url: Any, *, allow_private: bool) -> str:
    """An http(s) URL a CRM can be reached at, without credentials in it. Literal loopback,
    private and link-local addresses (and ``localhost``) only when the operator allows them.
    A host name is not resolved here: the check guards against the obvious probe, and an
    operator who fears DNS tricks runs calltrack behind an egress proxy."""
    if not isinstance(url, str) or not url.strip():
        raise InvalidWebhook("url is required")
    url = url.strip()
    if len(url) > MAX_URL:
        raise InvalidWebhook(f"url is longer than {MAX_URL} characters")
    if any(c.isspace() or ord(c) < 32 for c in url):
        raise InvalidWebhook("url must not contain spaces or control characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as e:
        raise InvalidWebhook(f"url is malformed: {e}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidWebhook("url must be http:// or https:// with a host")
    if parts.username or parts.password:
        raise InvalidWebhook("url must not carry a user name or password (the signature authenticates us)")
    if port == 0:
        raise InvalidWebhook("url has port 0")
    if not allow_private and _private_host(parts.hostname):
        raise InvalidWebhook(
            "url points at a loopback, private or link-local address; the operator can allow that with outbox.allow_private_targets"
        )
    return url


def _private_host(host: str) -> bool:
    host = host.lower().rstrip(".")
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_unspecified or ip.is_reserved or ip.is_multicast


def backoff(attempts: int, delivery_id: int, *, base: float, cap: float) -> float:
    """Seconds to wait after the ``attempts``-th failure: base × 2^(attempts-1), at most cap,
    spread ±10% by the delivery id (fixed per delivery, so a test can know it, yet deliveries
    that failed together do not all come back in the same second)."""
    delay = min(cap, base * 2.0 ** max(0, attempts - 1))
    spread = ((delivery_id * 2654435761) % 1000) / 1000.0  # Knuth's multiplicative hash
    return delay * (0.9 + 0.2 * spread)


def retry_after(value: str | None, *, now: float) -> float | None:
    """Seconds a 429/503 asks us to wait (delta seconds or an HTTP date), if it says."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        from email.utils import parsedate_to_datetime

        return max(0.0, parsedate_to_datetime(value).timestamp() - now)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


def next_delay(attempts: int, delivery_id: int, *, base: float, cap: float, asked: float | None) -> float:
    """The back-off, or what the endpoint asked for if longer (never beyond the cap)."""
    delay = backoff(attempts, delivery_id, base=base, cap=cap)
    return min(cap, max(delay, asked)) if asked is not None else delay


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def build_body(delivery: Mapping[str, Any], lead: Mapping[str, Any]) -> bytes:
    """The JSON we send, fixed at the first attempt: the event, what changed, and the lead as
    ``GET /v1/leads/{id}`` shows it at that moment."""
    data: dict[str, Any] = {"lead": dict(lead)}
    if delivery.get("detail"):
        data["change"] = json.loads(delivery["detail"])
    document = {
        "id": int(delivery["id"]),
        "type": delivery["event"],
        "occurred_at": iso(float(delivery["occurred_at"])),
        "account_id": int(delivery["account_id"]),
        "data": data,
    }
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str).encode("utf-8")


def request_headers(secret: str, body: bytes, *, delivery_id: int, event: str, attempt: int, now: float) -> dict[str, str]:
    """Signed afresh at each attempt (the timestamp is the sending time), so a receiver's
    replay window accepts a retry sent hours after the event."""
    return {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        HEADER: sign(secret, body, timestamp=int(now)),
        "X-CT-Event": event,
        "X-CT-Delivery": str(delivery_id),
        "X-CT-Attempt": str(attempt),
    }


def excerpt(raw: bytes, limit: int = 200) -> str:
    """The start of an answer, for the delivery log: printable text only."""
    text = raw[: limit * 4].decode("utf-8", errors="replace")
    text = "".join(c if c.isprintable() else " " for c in text)
    return text[:limit]
