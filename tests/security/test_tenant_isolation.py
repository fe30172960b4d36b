"""Every account-scoped route, called with account B's key and account A's ids, answers 404 (or
B's own, empty, list), never A's data, and changes nothing of A's — on SQLite and PostgreSQL.

The test walks the router: a route it does not know how to call fails it, so a new endpoint
cannot be added without saying here how another tenant is kept out of it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from calltrack.app import App
from tests.conftest import Http, Tenant, make_tenant
from tests.numbers.helpers import visit
from tests.telephony.helpers import pbx_post, setup_phones

CHROME = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36"

# Strings only account A's data holds: none may appear in anything account B is shown.
A_EMAIL = "alice@tenant-a.example"
A_PHONE = "+14155550100"
A_CAMPAIGN = "campaign-of-tenant-a"
A_OWNER = "Owner Of Tenant A"
A_CRM = "https://crm.tenant-a.example/hook"
A_RULE = "rule of tenant a"
A_SOURCE = "source-of-tenant-a"
A_POOL = "pool-of-tenant-a"


@dataclass
class World:
    a: Tenant
    b: Tenant
    ids: dict[str, Any]
    markers: list[str]


def build_world(app: App, http: Http, clock: Any) -> World:
    a = make_tenant(app, "Tenant A", ("tenant-a.example",))
    b = make_tenant(app, "Tenant B", ("tenant-b.example",))
    phones = setup_phones(app, a)

    def as_a(method: str, path: str, body: Any = None, **kw: Any) -> Any:
        code, answer, _ = http.request(method, path, json_body=body, key=a.key, **kw)
        assert code < 300, (method, path, code, answer)
        return answer

    as_a("PATCH", f"/v1/pools/{phones.pool.id}", {"name": A_POOL})
    owner = as_a("POST", "/v1/owners", {"name": A_OWNER, "email": "owner@tenant-a.example"})
    rule = as_a("POST", "/v1/owner-rules", {"when": {"campaign": A_CAMPAIGN}, "owner_id": owner["id"]})
    webhook = as_a("POST", "/v1/lead-webhooks", {"url": A_CRM})
    price = as_a("POST", "/v1/pricing-models", {"source": A_SOURCE, "model": "per_lead", "price": 30})
    as_a("POST", "/v1/costs", data=f"date,source,medium,campaign,cost\n2025-12-30,{A_SOURCE},cpc,{A_CAMPAIGN},12.5\n".encode(),
         headers={"Content-Type": "text/csv"})
    as_a("PUT", "/v1/scoring/rules", {"rules": [{"name": A_RULE, "when": {"answered": True}, "points": 50}]})
    answer = visit(app, a, "visitor-a", utm_source=A_SOURCE, utm_medium="cpc", utm_campaign=A_CAMPAIGN)
    assert answer.outcome == "leased"
    call = pbx_post(http, phones.pbx_secret, {"event": "call.started", "call_id": "a-call-1", "from": A_PHONE, "to": answer.phone_number}, now=clock.seconds())
    assert call[0] == 200, call
    form = {"site": a.site.site_key, "vid": "visitor-a", "id": "a-form-1", "fields": {"email": A_EMAIL, "phone": A_PHONE, "name": "Alice A"}}
    code, stored, _ = http.request("POST", "/v1/forms", data=json.dumps(form).encode(), headers={"User-Agent": CHROME, "Content-Type": "text/plain"})
    assert code == 201, stored
    lead_id = as_a("GET", "/v1/leads")["leads"][0]["id"]
    delivery = as_a("GET", f"/v1/lead-webhooks/{webhook['id']}/deliveries")["deliveries"][0]
    ids = {
        "site": a.site.id, "pool": phones.pool.id, "number": as_a("GET", "/v1/numbers")["numbers"][0]["id"],
        "lease": as_a("GET", "/v1/leases")["leases"][0]["id"], "call": call[1]["call_id"], "lead": lead_id, "owner": owner["id"],
        "rule": rule["id"], "webhook": webhook["id"], "delivery": delivery["id"], "price": price["id"], "form": stored["id"],
    }
    markers = [A_EMAIL, A_PHONE, A_CAMPAIGN, A_OWNER, A_CRM, A_RULE, A_SOURCE, A_POOL, a.site.site_key, answer.phone_number, "tenant-a.example"]
    return World(a, b, ids, markers)


# -- how each route is called as B ------------------------------------------------------------


@dataclass(frozen=True)
class Call:
    """One request as account B: ``path`` and ``body`` are built from A's ids."""

    path: Callable[[dict[str, Any]], str]
    expect: str  # "404": A's object is not found; "list": B's own view, none of A's; "refused": 4xx; "own": B's own change
    body: Callable[[dict[str, Any]], Any] | None = None
    raw: bytes | None = None
    content_type: str | None = None


def p(template: str) -> Callable[[dict[str, Any]], str]:
    return lambda ids: template.format(**ids)


def json_of(value: Any) -> Callable[[dict[str, Any]], Any]:
    return value if callable(value) else (lambda ids: value)


ACCOUNT_ROUTES: dict[tuple[str, str], list[Call]] = {
    ("GET", "/v1/sites"): [Call(p("/v1/sites"), "list")],
    ("POST", "/v1/sites"): [Call(p("/v1/sites"), "own", json_of({"name": "B site", "allowed_domains": ["tenant-b.example"], "own_number": "(415) 555-2681"}))],
    ("GET", "/v1/sites/{id}"): [Call(p("/v1/sites/{site}"), "404")],
    ("GET", "/v1/numbers"): [Call(p("/v1/numbers"), "list"), Call(p("/v1/numbers?pool_id={pool}&include_retired=true"), "list")],
    ("POST", "/v1/numbers"): [
        Call(p("/v1/numbers"), "refused", json_of(lambda ids: {"number": "+14155550180", "pool_id": ids["pool"]})),
        Call(p("/v1/numbers"), "refused", json_of(lambda ids: {"number": "+14155550181", "site_id": ids["site"]})),
    ],
    ("POST", "/v1/numbers/import"): [
        Call(p("/v1/numbers/import?site_id={site}"), "refused", raw=b"number\n+14155550182\n", content_type="text/csv"),
        Call(p("/v1/numbers/import"), "refused", raw=f"number,pool,forward_to\n+14155550183,{A_POOL},+14155550177\n".encode(), content_type="text/csv"),
    ],
    ("POST", "/v1/numbers/{id}/retire"): [Call(p("/v1/numbers/{number}/retire"), "404")],
    ("GET", "/v1/pools"): [Call(p("/v1/pools"), "list"), Call(p("/v1/pools?site_id={site}"), "list")],
    ("POST", "/v1/pools"): [Call(p("/v1/pools"), "refused", json_of(lambda ids: {"site_id": ids["site"], "name": "stolen", "rules": {"all": True}}))],
    ("GET", "/v1/pools/{id}"): [Call(p("/v1/pools/{pool}"), "404")],
    ("PATCH", "/v1/pools/{id}"): [Call(p("/v1/pools/{pool}"), "404", json_of({"name": "renamed by B"})), Call(p("/v1/pools/{pool}"), "404", json_of({"retired": True}))],
    ("GET", "/v1/pools/{id}/health"): [Call(p("/v1/pools/{pool}/health"), "404")],
    ("GET", "/v1/pools/{id}/simulate"): [Call(p("/v1/pools/{pool}/simulate?size=2"), "404")],
    ("GET", "/v1/leases"): [Call(p("/v1/leases"), "list"), Call(p("/v1/leases?pool_id={pool}"), "list")],
    ("GET", "/v1/leases/{id}/events"): [Call(p("/v1/leases/{lease}/events"), "404")],
    ("POST", "/v1/forms"): [
        # Server to server with B's key and A's site key: not B's site.
        Call(p("/v1/forms"), "refused", json_of(lambda ids: {"site": ids["site_key"], "fields": {"email": "mallory@tenant-b.example"}})),
    ],
    ("GET", "/v1/forms"): [Call(p("/v1/forms"), "list")],
    ("GET", "/v1/leads"): [Call(p("/v1/leads"), "list"), Call(p("/v1/leads?status=spam"), "list"), Call(p(f"/v1/leads?campaign={A_CAMPAIGN}"), "list")],
    ("GET", "/v1/leads/{id}"): [Call(p("/v1/leads/{lead}"), "404")],
    ("PATCH", "/v1/leads/{id}"): [Call(p("/v1/leads/{lead}"), "404", json_of({"stage": "lost", "loss_reason": "B was here"}))],
    ("GET", "/v1/owners"): [Call(p("/v1/owners"), "list")],
    ("POST", "/v1/owners"): [Call(p("/v1/owners"), "own", json_of({"name": A_OWNER.replace("A", "B")}))],
    ("PATCH", "/v1/owners/{id}"): [Call(p("/v1/owners/{owner}"), "404", json_of({"active": False}))],
    ("GET", "/v1/owner-rules"): [Call(p("/v1/owner-rules"), "list")],
    ("POST", "/v1/owner-rules"): [
        Call(p("/v1/owner-rules"), "refused", json_of(lambda ids: {"when": {"channel": "email"}, "owner_id": ids["owner"]})),
        Call(p("/v1/owner-rules"), "refused", json_of({"when": {"channel": "email"}, "owner": A_OWNER})),
    ],
    ("DELETE", "/v1/owner-rules/{id}"): [Call(p("/v1/owner-rules/{rule}"), "404")],
    ("GET", "/v1/lead-webhooks"): [Call(p("/v1/lead-webhooks"), "list")],
    ("POST", "/v1/lead-webhooks"): [Call(p("/v1/lead-webhooks"), "own", json_of({"url": "https://crm.tenant-b.example/hook"}))],
    ("GET", "/v1/lead-webhooks/{id}"): [Call(p("/v1/lead-webhooks/{webhook}"), "404")],
    ("DELETE", "/v1/lead-webhooks/{id}"): [Call(p("/v1/lead-webhooks/{webhook}"), "404")],
    ("GET", "/v1/lead-webhooks/{id}/deliveries"): [Call(p("/v1/lead-webhooks/{webhook}/deliveries"), "404")],
    ("GET", "/v1/lead-webhooks/{id}/deliveries/{delivery}"): [Call(p("/v1/lead-webhooks/{webhook}/deliveries/{delivery}"), "404")],
    ("POST", "/v1/lead-webhooks/{id}/deliveries/{delivery}/resend"): [Call(p("/v1/lead-webhooks/{webhook}/deliveries/{delivery}/resend"), "404")],
    ("GET", "/v1/scoring/rules"): [Call(p("/v1/scoring/rules"), "list")],
    ("PUT", "/v1/scoring/rules"): [Call(p("/v1/scoring/rules"), "own", json_of({"rules": [{"name": "B's rule", "when": {"answered": True}, "points": 5}]}))],
    ("GET", "/v1/attribution"): [
        Call(p("/v1/attribution?model=first_touch,linear,markov&stage=lead&from=2025-12-01&to=2026-01-02"), "list"),
        Call(p("/v1/attribution?model=linear&stage=lead&level=campaign&format=csv&from=2025-12-01&to=2026-01-02"), "list"),
    ],
    ("POST", "/v1/costs"): [Call(p("/v1/costs"), "own", raw=b"date,source,medium,campaign,cost\n2025-12-30,bing,cpc,b-campaign,3\n", content_type="text/csv")],
    ("GET", "/v1/costs"): [Call(p("/v1/costs?from=2025-12-01&to=2026-01-01"), "list")],
    ("GET", "/v1/pricing-models"): [Call(p("/v1/pricing-models"), "list")],
    ("POST", "/v1/pricing-models"): [Call(p("/v1/pricing-models"), "own", json_of({"source": "b-source", "model": "per_click", "price": 1}))],
    ("DELETE", "/v1/pricing-models/{id}"): [Call(p("/v1/pricing-models/{price}"), "404")],
    ("GET", "/v1/reports/campaigns"): [
        Call(p(f"/v1/reports/campaigns{ext}?from=2025-12-01&to=2026-01-01&level={level}"), "list")
        for ext in ("", ".json", ".csv", ".html") for level in ("campaign", "source", "tracking_number")
    ],
    ("GET", "/v1/reports/operations"): [Call(p("/v1/reports/operations?from=2025-12-01&to=2026-01-01"), "list")],
    ("GET", "/v1/reports/plan"): [Call(p("/v1/reports/plan?budget=1000&from=2025-12-01&to=2026-01-01"), "list")],
    ("GET", "/v1/calls"): [Call(p("/v1/calls"), "list")],
    ("GET", "/v1/calls/{id}"): [Call(p("/v1/calls/{call}"), "404")],
    ("GET", "/v1/calls/{id}/explain"): [Call(p("/v1/calls/{call}/explain"), "404")],
    # Privacy (issue 8 item 4): B's own settings; A's person is not B's to erase.
    ("GET", "/v1/account/retention"): [Call(p("/v1/account/retention"), "list")],
    ("PATCH", "/v1/account/retention"): [Call(p("/v1/account/retention"), "own", json_of({"forms_days": 1}))],
    ("POST", "/v1/contacts/erase"): [Call(p("/v1/contacts/erase"), "404", json_of({"email": A_EMAIL})), Call(p("/v1/contacts/erase"), "404", json_of({"phone": A_PHONE}))],
    ("GET", "/v1/contacts/erasures"): [Call(p("/v1/contacts/erasures"), "list")],
}

# Not account-scoped: no account key reaches another tenant's data through these. Each says why.
NOT_ACCOUNT_SCOPED = {
    ("GET", "/healthz"): "operations",
    ("GET", "/metrics"): "operations: counts only, no account data",
    ("GET", "/openapi.json"): "the document",
    ("GET", "/ct.js"): "the static script",
    ("GET", "/demo"): "the demo page of a site key's site",
    ("POST", "/demo"): "the demo page's form target",
    ("GET", "/v1/number"): "site key (public by design; a visitor's own number)",
    ("POST", "/v1/number"): "site key",
    ("OPTIONS", "/v1/number"): "site key",
    ("POST", "/v1/ping"): "site key",
    ("OPTIONS", "/v1/ping"): "site key",
    ("OPTIONS", "/v1/forms"): "site key",
    ("GET", "/r/{token}"): "the report link's token is the credential (tests/reports)",
    ("POST", "/v1/webhooks/twilio/voice"): "provider signature (tests/security/test_webhook_signatures.py)",
    ("POST", "/v1/webhooks/twilio/status"): "provider signature",
    ("POST", "/v1/webhooks/twilio/recording"): "provider signature",
    ("POST", "/v1/webhooks/telnyx"): "provider signature",
    ("POST", "/v1/webhooks/calls"): "provider signature",
}


# Views of A's data, read with A's key before and after B's calls: they must not change.
A_VIEWS = [
    "/v1/sites/{site}", "/v1/pools/{pool}", "/v1/numbers?include_retired=true", "/v1/leads/{lead}", "/v1/calls/{call}", "/v1/owners",
    "/v1/owner-rules", "/v1/lead-webhooks/{webhook}", "/v1/lead-webhooks/{webhook}/deliveries/{delivery}", "/v1/pricing-models",
    "/v1/costs?from=2025-12-01&to=2026-01-01", "/v1/forms", "/v1/scoring/rules", "/v1/leases", "/v1/account/retention",
]


def test_every_route_is_classified(app: App) -> None:
    served = {(r.method, r.name) for r in app.router.routes()}
    unknown = served - set(ACCOUNT_ROUTES) - set(NOT_ACCOUNT_SCOPED)
    assert not unknown, f"say in {__file__} how another account is kept out of: {sorted(unknown)}"
    assert not set(ACCOUNT_ROUTES) & set(NOT_ACCOUNT_SCOPED)


def test_another_accounts_key_never_reaches_this_accounts_data(app: App, http: Http, clock: Any) -> None:
    world = build_world(app, http, clock)
    ids = dict(world.ids, site_key=world.a.site.site_key)
    served = {(r.method, r.name) for r in app.router.routes()}

    def a_views() -> dict[str, Any]:
        out = {}
        for view in A_VIEWS:
            code, body, _ = http.request("GET", view.format(**ids), key=world.a.key)
            out[view] = (code, body)
        return out

    before = a_views()
    assert all(code in (200, 404) for code, _ in before.values())
    called = shown_to_a = lists = 0
    problems: list[str] = []
    for route, calls in ACCOUNT_ROUTES.items():
        if route not in served:
            continue  # an entry for a route this checkout does not have yet
        method = route[0]
        for c in calls:
            path = c.path(ids)
            headers = {"Content-Type": c.content_type} if c.content_type else None
            if c.body is not None:
                code, body, _ = http.request(method, path, json_body=c.body(ids), key=world.b.key)
            else:
                code, body, _ = http.request(method, path, data=c.raw, headers=headers, key=world.b.key)
            called += 1
            text = body.decode("utf-8", "replace") if isinstance(body, bytes) else json.dumps(body)
            # A value B sent itself may be echoed in an error ("no pool named …"); that is not a leak.
            sent = path + (json.dumps(c.body(ids)) if c.body is not None else (c.raw or b"").decode())
            leaked = [m for m in world.markers if m in text and m not in sent]
            where = f"{method} {path} as B → {code} {text[:300]}"
            if leaked:
                problems.append(f"{where}: shows A's {leaked}")
            if c.expect == "404" and code != 404:
                problems.append(f"{where}: expected 404")
            elif c.expect == "list" and code != 200:
                problems.append(f"{where}: expected B's own 200 view")
            if c.expect == "list" and code == 200:
                # The control: the same view as A shows A's data, so the markers are the right ones to look for.
                lists += 1
                _, mine, _ = http.request(method, path, key=world.a.key)
                mine_text = mine.decode("utf-8", "replace") if isinstance(mine, bytes) else json.dumps(mine)
                shown_to_a += any(m in mine_text for m in world.markers)
            elif c.expect == "refused" and not 400 <= code < 500:
                problems.append(f"{where}: expected a 4xx refusal")
            elif c.expect == "own" and not 200 <= code < 300:
                problems.append(f"{where}: expected B's own change to succeed")
    after = a_views()
    changed = [view for view in A_VIEWS if before[view] != after[view]]
    assert not problems, "\n".join(problems)
    assert not changed, f"B's calls changed A's data: {changed}"
    assert called >= len([r for r in ACCOUNT_ROUTES if r in served])
    assert shown_to_a >= 0.6 * lists, f"only {shown_to_a} of {lists} list views show A its own data: the markers miss what lists show"


@pytest.mark.parametrize("how", ["none", "malformed", "unknown", "revoked_shape"])
def test_account_routes_without_a_valid_key_are_401(app: App, http: Http, clock: Any, how: str) -> None:
    world = build_world(app, http, clock)
    ids = dict(world.ids, site_key=world.a.site.site_key)
    headers = {"none": {}, "malformed": {"Authorization": "Basic " + world.a.key}, "unknown": {"Authorization": "Bearer ctk_" + "x" * 32},
               "revoked_shape": {"Authorization": "Bearer " + world.a.key[:-1] + ("A" if world.a.key[-1] != "A" else "B")}}[how]
    served = {(r.method, r.name) for r in app.router.routes()}
    for (method, _), calls in ((r, c) for r, c in ACCOUNT_ROUTES.items() if r in served):
        c = calls[0]
        if (method, c.path(ids).split("?")[0]) == ("POST", "/v1/forms"):
            continue  # a form post without a key is the site-key path (tests/leads/test_forms.py)
        data = json.dumps(c.body(ids)).encode() if c.body is not None else c.raw
        hdrs = dict(headers, **({"Content-Type": c.content_type or "application/json"} if data else {}))
        code, body, _ = http.request(method, c.path(ids), data=data, headers=hdrs)
        assert code == 401, (method, c.path(ids), code, body)
        assert not any(m in json.dumps(body) for m in world.markers)
