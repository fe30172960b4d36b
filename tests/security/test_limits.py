"""Body size and rate limits hold on every route they guard — on SQLite and PostgreSQL, and
(the transfer-level cases: chunked bodies, multi-megabyte bodies) against a live server.

Body size: every route that takes a body refuses one past ``[http] max_body_bytes`` with a 413
JSON error before authentication or parsing, and stores nothing. Rate limits: the browser-facing
routes share one budget per client address (X-Forwarded-For counts only when trusted) and one
per site; past the new-lease budget a script gets the site's own number, never the pool.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import requests
import sqlalchemy as sa
from twisted.internet import task

from calltrack.app import App, build_app
from calltrack.db.schema import metadata
from tests.conftest import Http, Tenant, make_config, make_tenant
from tests.numbers.helpers import count, make_pool
from tests.security.live import live_server

CHROME = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36"
LIMIT = 64 * 1024  # the default [http] max_body_bytes
BODY_METHODS = {"POST", "PUT", "PATCH"}


def all_rows(app: App) -> dict[str, int]:
    with app.engine.connect() as conn:
        return {t.name: int(conn.execute(sa.select(sa.func.count()).select_from(t)).scalar_one()) for t in metadata.sorted_tables}


def oversized(content_type: str, size: int) -> bytes:
    """A well-formed body of ``size`` bytes in the route's own format, so only its size is wrong."""
    if content_type == "application/x-www-form-urlencoded":
        head = b"AccountSid=AC1&CallSid=CA1&Junk="
    elif content_type == "text/csv":
        head = b"date,source,medium,campaign,cost\n2026-01-01,google,cpc,"
    else:
        head = b'{"site": "x", "fields": {"email": "a@example.com"}, "junk": "'
        return head + b"x" * (size - len(head) - 2) + b'"}'
    return head + b"x" * (size - len(head))


def content_type_of(path: str) -> str:
    if path.startswith("/v1/webhooks/twilio/"):
        return "application/x-www-form-urlencoded"
    if path in ("/v1/costs", "/v1/numbers/import"):
        return "text/csv"
    return "application/json"


def body_routes(app: App) -> list[tuple[str, str]]:
    return sorted({(r.method, re.sub(r"\{[^}]+\}", "1", r.name)) for r in app.router.routes() if r.method in BODY_METHODS})


def test_every_route_with_a_body_refuses_an_oversized_one(app: App, http: Http, tenant: Tenant) -> None:
    routes = body_routes(app)
    assert len(routes) >= 25, routes
    before = all_rows(app)
    for method, path in routes:
        ctype = content_type_of(path)
        code, body, headers = http.request(method, path, data=oversized(ctype, LIMIT + 1), key=tenant.key,
                                           headers={"Content-Type": ctype, "User-Agent": CHROME})
        assert code == 413, (method, path, code, body)
        assert headers.getRawHeaders("content-type")[0].startswith("application/json")
        assert body["error"]["code"] == "body_too_large", (method, path, body)
    assert all_rows(app) == before


def test_a_body_of_exactly_the_limit_is_read(app: App, http: Http, tenant: Tenant) -> None:
    make_pool(app, tenant, "all", 2)
    head = json.dumps({"site": tenant.site.site_key, "utm_source": ""}).encode()[:-2]
    body = head + b"x" * (LIMIT - len(head) - 2) + b'"}'
    assert len(body) == LIMIT
    code, answer, _ = http.request("POST", "/v1/number", data=body, headers={"Content-Type": "application/json", "User-Agent": CHROME})
    assert code == 200, answer  # read and answered; the long tag is stored cut (DESIGN: 200 characters)
    code, answer, _ = http.request("POST", "/v1/number", data=body + b" ", headers={"Content-Type": "application/json", "User-Agent": CHROME})
    assert code == 413


@pytest.mark.integration
def test_chunked_and_huge_bodies_against_a_live_server(tmp_path: Path) -> None:
    with live_server(tmp_path) as srv:
        def chunks(total: int, size: int = 16 * 1024) -> Any:
            sent = 0
            while sent < total:
                yield b"x" * min(size, total - sent)
                sent += size

        # No Content-Length: the server counts the chunks as they come.
        r = requests.post(srv.base + "/v1/forms", data=chunks(LIMIT * 4), headers={"Content-Type": "application/json"}, timeout=30)
        assert r.status_code == 413 and r.json()["error"]["code"] == "body_too_large"
        # A Content-Length past the limit is refused whatever follows.
        r = requests.post(srv.base + "/v1/webhooks/calls", data=b"x" * (5 * 1024 * 1024), headers={"Content-Type": "application/json"}, timeout=60)
        assert r.status_code == 413
        r = srv.api("PATCH", "/v1/leads/1", data=chunks(LIMIT + 1), headers={"Content-Type": "application/json"})
        assert r.status_code == 413
        # A small chunked body is read as usual.
        r = srv.api("POST", "/v1/owners", data=iter([b'{"name": ', b'"Chunky"}']), headers={"Content-Type": "application/json"})
        assert r.status_code == 201, r.text
        assert requests.get(srv.base + "/healthz", timeout=5).status_code == 200


# -- rate limits ------------------------------------------------------------------------------


def limited_app(engine: sa.Engine, clock: task.Clock, **env: str) -> tuple[App, Http, Tenant]:
    app = build_app(make_config(**env), reactor=clock, clock=clock, engine=engine, synchronous_db=True)
    tenant = make_tenant(app)
    make_pool(app, tenant, "all", 20)
    return app, Http(app), tenant


def public_calls(site_key: str) -> list[tuple[str, str, bytes | None, dict[str, str]]]:
    """One request of each browser-facing route (method, path, body, headers)."""
    json_ct = {"Content-Type": "application/json", "User-Agent": CHROME, "Origin": "https://acme.example"}
    return [
        ("GET", f"/v1/number?site={site_key}&vid=v-get", None, {"User-Agent": CHROME}),
        ("POST", "/v1/number", json.dumps({"site": site_key, "vid": "v-post"}).encode(), json_ct),
        ("POST", "/v1/ping", json.dumps({"site": site_key, "vid": "v-get"}).encode(), json_ct),
        ("POST", "/v1/forms", json.dumps({"site": site_key, "fields": {"email": "jo@example.com"}}).encode(), json_ct),
        ("OPTIONS", f"/v1/number?site={site_key}", None, {"Origin": "https://acme.example"}),
        ("OPTIONS", f"/v1/ping?site={site_key}", None, {"Origin": "https://acme.example"}),
        ("OPTIONS", f"/v1/forms?site={site_key}", None, {"Origin": "https://acme.example"}),
    ]


def test_every_browser_route_draws_on_one_budget_per_address(engine: sa.Engine, clock: task.Clock) -> None:
    app, http, tenant = limited_app(engine, clock, CALLTRACK_RATELIMIT_PER_IP_PER_MINUTE="7")
    calls = public_calls(tenant.site.site_key)
    # Every browser-facing route (the site-key ones; GET /v1/forms is the account's list) is in the mix.
    browser = {(r.method, r.name) for r in app.router.routes() if r.name in ("/v1/number", "/v1/ping", "/v1/forms")} - {("GET", "/v1/forms")}
    assert {(m, p.split("?")[0]) for m, p, _, _ in calls} == browser
    assert [http.request(m, p, data=d, headers=h)[0] < 400 for m, p, d, h in calls] == [True] * 7
    for m, p, d, h in calls:
        code, body, headers = http.request(m, p, data=d, headers=h)
        assert code == 429 and body["error"]["code"] == "rate_limited", (m, p, code, body)
        assert int(headers.getRawHeaders("retry-after")[0]) >= 1
    clock.advance(9)  # 7 a minute: a token every 8.6 s
    assert http.request(*calls[0][:2], data=calls[0][2], headers=calls[0][3])[0] == 200


def test_a_form_flood_stores_no_more_than_the_limit(engine: sa.Engine, clock: task.Clock) -> None:
    app, http, tenant = limited_app(engine, clock, CALLTRACK_RATELIMIT_PER_IP_PER_MINUTE="5")
    codes = []
    for i in range(40):
        body = json.dumps({"site": tenant.site.site_key, "id": f"flood-{i}", "fields": {"email": f"bot{i}@example.com"}}).encode()
        codes.append(http.request("POST", "/v1/forms", data=body, headers={"Content-Type": "application/json", "User-Agent": CHROME})[0])
    assert codes == [201] * 5 + [429] * 35
    assert count(app, "form_submissions") == 5 and count(app, "leads") == 5


def test_rotating_x_forwarded_for_does_not_escape_the_limit_unless_trusted(engine: sa.Engine, clock: task.Clock) -> None:
    app, http, tenant = limited_app(engine, clock, CALLTRACK_RATELIMIT_PER_IP_PER_MINUTE="3")
    codes = [http.request("GET", f"/v1/number?site={tenant.site.site_key}", headers={"User-Agent": CHROME, "X-Forwarded-For": f"203.0.113.{i}"})[0] for i in range(6)]
    assert codes == [200, 200, 200, 429, 429, 429]


def test_behind_a_trusted_proxy_addresses_are_apart_and_the_site_budget_still_holds(engine: sa.Engine, clock: task.Clock) -> None:
    app, http, tenant = limited_app(engine, clock, CALLTRACK_RATELIMIT_PER_IP_PER_MINUTE="2", CALLTRACK_RATELIMIT_PER_SITE_PER_MINUTE="5",
                                    CALLTRACK_HTTP_TRUST_FORWARDED_FOR="true")

    def from_(addr: str) -> int:
        return http.request("GET", f"/v1/number?site={tenant.site.site_key}", headers={"User-Agent": CHROME, "X-Forwarded-For": f"{addr}, 10.0.0.1"})[0]

    assert [from_("203.0.113.1") for _ in range(3)] == [200, 200, 429]
    assert [from_(f"198.51.100.{i}") for i in range(4)] == [200, 200, 200, 429]  # the site's 5 are spent
    other = make_tenant(app, "Other", ("other.example",))
    assert http.request("GET", f"/v1/number?site={other.site.site_key}", headers={"User-Agent": CHROME, "X-Forwarded-For": "198.51.100.9"})[0] == 200


def test_one_address_cannot_hold_the_pool(engine: sa.Engine, clock: task.Clock) -> None:
    app, http, tenant = limited_app(engine, clock, CALLTRACK_RATELIMIT_NEW_LEASES_PER_IP_PER_MINUTE="3", CALLTRACK_HTTP_TRUST_FORWARDED_FOR="true")
    answers = [http.request("GET", f"/v1/number?site={tenant.site.site_key}&vid=bot-{i}", headers={"User-Agent": CHROME, "X-Forwarded-For": "203.0.113.7"})[1] for i in range(10)]
    assert [a["lease"] for a in answers] == [True] * 3 + [False] * 7
    assert {a["phoneNumber"] for a in answers[3:]} == {tenant.site.own_number}
    assert count(app, "leases") == 3
    code, real, _ = http.request("GET", f"/v1/number?site={tenant.site.site_key}&vid=person", headers={"User-Agent": CHROME, "X-Forwarded-For": "198.51.100.4"})
    assert code == 200 and real["lease"] is True  # a real visitor elsewhere still gets a pool number
