"""GA4 Measurement Protocol: posting the bodies exports.ga4_events made, with requests (the CLI
runs without a reactor).

``/mp/collect`` answers 2xx even for a body GA4 throws away, so ``validate=True`` posts to
``/debug/mp/collect`` instead, which records nothing and answers
``{"validationMessages": [{"fieldPath", "description", "validationCode"}]}`` (empty when the
body is good). The API secret travels in the query string, as Google wants; it is never put in
a message: errors from requests (which quote the URL) have it masked.

Nothing remembers what was sent (GA4 does not deduplicate these events): send each period
once, e.g. daily with ``--from`` yesterday ``--to`` today.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import requests

from calltrack.reports.exports import ExportError, Ga4Event

GOOGLE = "https://www.google-analytics.com"
COLLECT = "/mp/collect"
DEBUG_COLLECT = "/debug/mp/collect"
USER_AGENT = "calltrack-ga4/1"
_MEASUREMENT_ID = re.compile(r"^G-[A-Z0-9]{4,20}$")


@dataclass
class Ga4Result:
    lead_id: int
    ok: bool
    status: int | None = None
    error: str | None = None
    messages: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"lead_id": self.lead_id, "ok": self.ok, "status": self.status, "error": self.error, "validation_messages": self.messages}


def check_settings(measurement_id: str | None, api_secret: str | None, base_url: str | None) -> tuple[str, str, str]:
    """The measurement id (``G-…``), the API secret and the base URL, checked."""
    mid = (measurement_id or "").strip()
    if not mid:
        raise ExportError("--measurement-id is required (G-XXXXXXX: Admin > Data streams > your web stream)")
    if not _MEASUREMENT_ID.match(mid):
        raise ExportError(f"--measurement-id {mid!r} is not a GA4 measurement id (G- followed by letters and digits)")
    secret = (api_secret or "").strip()
    if not secret:
        raise ExportError("--api-secret is required (Admin > Data streams > your stream > Measurement Protocol API secrets)")
    if len(secret) > 200 or any(c.isspace() or ord(c) < 32 for c in secret):
        raise ExportError("--api-secret is not an API secret (no spaces, at most 200 characters)")
    base = (base_url or GOOGLE).strip().rstrip("/")
    parts = urlsplit(base)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.username:
        raise ExportError(f"--base-url {base!r} must be an http(s) URL with a host and no query or user")
    return mid, secret, base


def _mask(text: str, secret: str) -> str:
    return text.replace(secret, "***") if secret else text


def send(
    events: Iterable[Ga4Event],
    *,
    measurement_id: str,
    api_secret: str,
    validate: bool = False,
    base_url: str = GOOGLE,
    session: requests.Session | None = None,
    timeout: float = 10.0,
) -> list[Ga4Result]:
    """Post each body; one result per event, in order. A refused or unreachable request is a
    failed result, not an exception: the others are still sent."""
    mid, secret, base = check_settings(measurement_id, api_secret, base_url)
    url = base + (DEBUG_COLLECT if validate else COLLECT)
    http = session or requests.Session()
    results: list[Ga4Result] = []
    try:
        for event in events:
            try:
                resp = http.post(
                    url, params={"measurement_id": mid, "api_secret": secret}, json=event.body, timeout=timeout,
                    headers={"User-Agent": USER_AGENT},
                )
            except requests.RequestException as e:
                results.append(Ga4Result(event.lead_id, False, error=_mask(f"{type(e).__name__}: {e}", secret)[:300]))
                continue
            if not 200 <= resp.status_code < 300:
                results.append(Ga4Result(event.lead_id, False, resp.status_code, error=_mask(resp.text[:200], secret) or resp.reason))
                continue
            if not validate:
                results.append(Ga4Result(event.lead_id, True, resp.status_code))
                continue
            try:
                messages = resp.json().get("validationMessages", [])
            except (ValueError, AttributeError):
                results.append(Ga4Result(event.lead_id, False, resp.status_code, error="the validation server's answer is not JSON"))
                continue
            if not isinstance(messages, list):
                messages = [{"description": str(messages)}]
            results.append(Ga4Result(event.lead_id, not messages, resp.status_code, messages=[m if isinstance(m, dict) else {"description": str(m)} for m in messages]))
    finally:
        if session is None:
            http.close()
    return results
