"""Shared by the lead, attribution, report and privacy tests: a scripted CRM endpoint for the
lead webhooks (reached through treq's StubTreq), and a small set of journeys through the app."""

from __future__ import annotations

import json
from typing import Any

from treq.testing import StubTreq
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET

from tests.conftest import resolve
from tests.numbers.helpers import visit
from tests.telephony.helpers import STATIC_NUMBER, setup_phones, twilio_post, voice_params

ORIGIN = {"Origin": "https://acme.example"}
CRM = "https://crm.example/hooks/calltrack"


class Crm(Resource):
    """A CRM endpoint whose answers are scripted: an HTTP status, (status, headers), or
    "hang" (never answers). Once the script is spent it answers 200."""

    isLeaf = True

    def __init__(self, *script: Any) -> None:
        super().__init__()
        self.script = list(script)
        self.got: list[tuple[dict[str, str], bytes]] = []

    def render_POST(self, request: Any) -> Any:
        headers = {k.decode().lower(): v[0].decode() for k, v in request.requestHeaders.getAllRawHeaders()}
        self.got.append((headers, request.content.read()))
        action = self.script.pop(0) if self.script else 200
        if action == "hang":
            return NOT_DONE_YET
        code, extra = action if isinstance(action, tuple) else (action, {})
        request.setResponseCode(code)
        for name, value in extra.items():
            request.setHeader(name, value)
        return b'{"ok": true}' if code < 300 else b"upstream exploded \x00\x01 <b>"

    def events(self) -> list[tuple[str, int]]:
        return [(h["x-ct-event"], json.loads(b)["data"]["lead"]["id"]) for h, b in self.got]


def use_crm(app: Any, crm: Resource) -> StubTreq:
    stub = StubTreq(crm)
    app.outbox.http = stub
    return stub


def pump(app: Any, stub: StubTreq) -> int:
    """One dispatcher pass: claim what is due, send it, let the CRM answer."""
    started = resolve(app.outbox.tick())
    stub.flush()
    return started


def add_webhook(http: Any, tenant: Any, events: Any = None, url: str = CRM) -> dict[str, Any]:
    body: dict[str, Any] = {"url": url}
    if events is not None:
        body["events"] = events
    status, answer, _ = http.request("POST", "/v1/lead-webhooks", json_body=body, key=tenant.key)
    assert status == 201, answer
    return answer


DAY = 86400.0


def visitor_form(http: Any, tenant: Any, vid: str, email: str) -> int:
    """A form posted by visitor ``vid`` (so its visits are the person's journey)."""
    status, body, _ = http.request(
        "POST", "/v1/forms", json_body={"site": tenant.site.site_key, "vid": vid, "sid": f"s-{vid}", "fields": {"email": email}}, headers=ORIGIN
    )
    assert status == 201, body
    return body["lead_id"]


def journeys(app: Any, http: Any, tenant: Any, clock: Any) -> tuple[int, int]:
    """Ann: Google ad, then Facebook a day later, then a form (lead), MQL on day 3.
    Bob: Facebook, then a form the same day. Cy: rings the billboard number.
    Dee: a Google ad visit and nothing else (a non-converting journey)."""
    setup_phones(app, tenant)
    visit(app, tenant, "ann", utm_source="google", utm_medium="cpc", utm_campaign="=HYPERLINK(\"http://x\")")
    clock.advance(DAY)
    visit(app, tenant, "ann", sid="s2-ann", utm_source="facebook", utm_medium="paid_social", utm_campaign="spring")
    visit(app, tenant, "bob", utm_source="facebook", utm_medium="paid_social", utm_campaign="spring")
    visit(app, tenant, "dee", utm_source="google", utm_medium="cpc", utm_campaign="brand")
    clock.advance(3600)
    ann = visitor_form(http, tenant, "ann", "ann@example.com")
    bob = visitor_form(http, tenant, "bob", "bob@example.com")
    clock.advance(600)
    twilio_post(http, "/v1/webhooks/twilio/voice", voice_params("CA" + "7" * 32, caller="+14155550123", to=STATIC_NUMBER))
    clock.advance(2 * DAY)
    assert http.request("PATCH", f"/v1/leads/{ann}", json_body={"stage": "mql"}, key=tenant.key)[0] == 200
    return ann, bob
