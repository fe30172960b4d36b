"""The public number endpoint over HTTP (treq's StubTreq against the real resource tree)."""

from __future__ import annotations

import json
from typing import Any

import pytest
import sqlalchemy as sa
from twisted.internet import task

from calltrack.app import App, build_app
from tests.conftest import Http, Tenant, make_config, make_tenant, resolve
from tests.numbers.helpers import count, make_pool, rows

CHROME = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36"


def get_number(http: Http, site_key: str, query: str = "", **headers: str) -> tuple[int, Any, Any]:
    hdrs = {"User-Agent": CHROME}
    hdrs.update(headers)
    return http.request("GET", f"/v1/number?site={site_key}{query}", headers=hdrs)


def test_number_answer_has_the_documented_shape(http: Http, app: App, tenant: Tenant) -> None:
    make_pool(app, tenant, "all", 2)
    code, body, headers = get_number(http, tenant.site.site_key, "&utm_source=google&utm_medium=cpc&gclid=Cj0")
    assert code == 200
    assert set(body) == {"phoneNumber", "formattedPhoneNumber", "ttl", "sid", "vid", "lease", "siteNumber", "siteFormattedNumber"}
    assert body["siteNumber"] == tenant.site.own_number and body["siteFormattedNumber"] == "(415) 555-2671"
    assert body["phoneNumber"].startswith("+1415555")
    assert body["formattedPhoneNumber"].startswith("(415) 555-")
    assert body["ttl"] == 1800 and body["lease"] is True
    assert headers.getRawHeaders("cache-control") == ["no-store"]
    touch = rows(app, "SELECT channel, gclid, utm_source FROM touchpoints")[0]
    assert (touch.channel, touch.gclid, touch.utm_source) == ("paid_search", "Cj0", "google")


def test_the_same_visitor_keeps_its_number(http: Http, app: App, tenant: Tenant) -> None:
    make_pool(app, tenant, "all", 3)
    _, first, _ = get_number(http, tenant.site.site_key)
    _, again, _ = get_number(http, tenant.site.site_key, f"&vid={first['vid']}&sid={first['sid']}")
    assert again["phoneNumber"] == first["phoneNumber"]
    assert again["vid"] == first["vid"]


def test_post_json_form_and_text_plain_bodies(http: Http, app: App, tenant: Tenant) -> None:
    make_pool(app, tenant, "all", 3)
    code, body, _ = http.request(
        "POST", "/v1/number", json_body={"site": tenant.site.site_key, "vid": "v-json", "utm_source": "fb"}, headers={"User-Agent": CHROME}
    )
    assert code == 200 and body["vid"] == "v-json"
    code, body, _ = http.request(
        "POST",
        "/v1/number",
        data=f"site={tenant.site.site_key}&vid=v-form".encode(),
        headers={"User-Agent": CHROME, "Content-Type": "application/x-www-form-urlencoded"},
    )
    assert code == 200 and body["vid"] == "v-form"
    code, body, _ = http.request(  # sendBeacon and no-preflight fetch send text/plain
        "POST",
        "/v1/number",
        data=json.dumps({"site": tenant.site.site_key, "vid": "v-text"}).encode(),
        headers={"User-Agent": CHROME, "Content-Type": "text/plain;charset=UTF-8"},
    )
    assert code == 200 and body["vid"] == "v-text"


def test_ping_renews_and_needs_a_vid(http: Http, app: App, tenant: Tenant, clock: task.Clock) -> None:
    make_pool(app, tenant, "all", 1)
    _, first, _ = get_number(http, tenant.site.site_key, "&vid=reader&sid=s1")
    clock.advance(120)
    code, body, _ = http.request("POST", "/v1/ping", json_body={"site": tenant.site.site_key, "vid": "reader", "sid": "s1"}, headers={"User-Agent": CHROME})
    assert code == 200 and body["phoneNumber"] == first["phoneNumber"] and body["lease"] is True
    code, body, _ = http.request("POST", "/v1/ping", json_body={"site": tenant.site.site_key}, headers={"User-Agent": CHROME})
    assert code == 400 and body["error"]["code"] == "missing_parameter"
    code, body, _ = http.request("POST", "/v1/ping", json_body={"site": tenant.site.site_key, "vid": "stranger"}, headers={"User-Agent": CHROME})
    assert code == 200 and body["lease"] is False and body["phoneNumber"] == tenant.site.own_number
    assert count(app, "leases") == 1


def test_unknown_site_is_404(http: Http) -> None:
    code, body, _ = get_number(http, "site_nope")
    assert code == 404 and body["error"]["code"] == "unknown_site"


def test_missing_site_is_400(http: Http) -> None:
    code, body, _ = http.request("GET", "/v1/number", headers={"User-Agent": CHROME})
    assert code == 400 and "site" in body["error"]["message"]


@pytest.mark.parametrize(
    ("header", "value"),
    [
        ("Origin", "https://evil.example"),
        ("Origin", "https://acme.example.evil.example"),
        ("Origin", "https://evilacme.example"),
        ("Referer", "https://evil.example/landing"),
    ],
)
def test_a_page_outside_the_allowed_domains_is_403(http: Http, app: App, tenant: Tenant, header: str, value: str) -> None:
    make_pool(app, tenant, "all", 1)
    code, body, _ = get_number(http, tenant.site.site_key, **{header: value})
    assert code == 403 and body["error"]["code"] == "domain_not_allowed"
    assert count(app, "leases") == 0


def test_a_landing_url_outside_the_allowed_domains_is_403(http: Http, tenant: Tenant) -> None:
    code, _, _ = get_number(http, tenant.site.site_key, "&url=https%3A%2F%2Fevil.example%2F")
    assert code == 403


def test_cors_for_an_allowed_subdomain(http: Http, app: App, tenant: Tenant) -> None:
    make_pool(app, tenant, "all", 1)
    code, _, headers = get_number(http, tenant.site.site_key, Origin="https://www.acme.example")
    assert code == 200
    assert headers.getRawHeaders("access-control-allow-origin") == ["https://www.acme.example"]
    assert headers.getRawHeaders("vary") == ["Origin"]


def test_preflight(http: Http, tenant: Tenant) -> None:
    code, _, headers = http.request("OPTIONS", f"/v1/number?site={tenant.site.site_key}", headers={"Origin": "https://acme.example"})
    assert code == 204
    assert headers.getRawHeaders("access-control-allow-origin") == ["https://acme.example"]
    assert "POST" in headers.getRawHeaders("access-control-allow-methods")[0]
    code, _, _ = http.request("OPTIONS", f"/v1/ping?site={tenant.site.site_key}", headers={"Origin": "https://evil.example"})
    assert code == 403
    code, _, _ = http.request("OPTIONS", "/v1/number", headers={"Origin": "https://acme.example"})
    assert code == 400


def test_amp_source_origin_is_checked_and_echoed(http: Http, app: App, tenant: Tenant) -> None:
    make_pool(app, tenant, "all", 1)
    code, _, headers = get_number(http, tenant.site.site_key, "&__amp_source_origin=https%3A%2F%2Facme.example")
    assert code == 200
    assert headers.getRawHeaders("amp-access-control-allow-source-origin") == ["https://acme.example"]
    code, _, _ = get_number(http, tenant.site.site_key, "&__amp_source_origin=https%3A%2F%2Fevil.example")
    assert code == 403


@pytest.mark.parametrize("ua", ["Googlebot/2.1 (+http://www.google.com/bot.html)", "", "Mozilla/5.0 (compatible; bingbot/2.0)"])
def test_bots_get_the_sites_number_without_a_lease(http: Http, app: App, tenant: Tenant, ua: str) -> None:
    make_pool(app, tenant, "all", 1)
    code, body, _ = get_number(http, tenant.site.site_key, **{"User-Agent": ua})
    assert code == 200
    assert body["phoneNumber"] == tenant.site.own_number and body["lease"] is False
    assert count(app, "leases") == 0


@pytest.mark.parametrize("vid", ["a b", "x" * 65, "<script>", "é"])
def test_malformed_visitor_ids_are_400(http: Http, tenant: Tenant, vid: str) -> None:
    from urllib.parse import quote

    code, body, _ = get_number(http, tenant.site.site_key, f"&vid={quote(vid)}")
    assert code == 400 and body["error"]["code"] == "invalid_vid"


def test_malformed_json_body_is_400(http: Http, tenant: Tenant) -> None:
    for raw in (b"{not json", b"[1, 2]", b"\xff\xfe"):
        code, body, _ = http.request("POST", "/v1/number", data=raw, headers={"Content-Type": "application/json", "User-Agent": CHROME})
        assert code == 400, raw
        assert body["error"]["code"] == "malformed_json"


def test_a_non_string_site_is_400(http: Http) -> None:
    code, body, _ = http.request("POST", "/v1/number", json_body={"site": 12}, headers={"User-Agent": CHROME})
    assert code == 400


def test_oversized_body_is_413_and_nothing_is_stored(http: Http, app: App, tenant: Tenant) -> None:
    make_pool(app, tenant, "all", 1)
    body = json.dumps({"site": tenant.site.site_key, "utm_source": "x" * 70_000}).encode()
    code, err, _ = http.request("POST", "/v1/number", data=body, headers={"Content-Type": "application/json", "User-Agent": CHROME})
    assert code == 413 and err["error"]["code"] == "body_too_large"
    assert count(app, "touchpoints") == 0


def test_rate_limit_per_address_is_429_with_retry_after(engine: sa.Engine, clock: task.Clock) -> None:
    app = build_app(
        make_config(CALLTRACK_RATELIMIT_PER_IP_PER_MINUTE="5"), reactor=clock, clock=clock, engine=engine, synchronous_db=True
    )
    tenant = make_tenant(app)
    make_pool(app, tenant, "all", 20)
    http = Http(app)
    codes = [get_number(http, tenant.site.site_key)[0] for _ in range(6)]
    assert codes == [200] * 5 + [429]
    code, body, headers = get_number(http, tenant.site.site_key)
    assert body["error"]["code"] == "rate_limited"
    assert int(headers.getRawHeaders("retry-after")[0]) >= 1
    clock.advance(13)  # 5 a minute: a token every 12 s
    assert get_number(http, tenant.site.site_key)[0] == 200


def test_rate_limit_per_site(engine: sa.Engine, clock: task.Clock) -> None:
    app = build_app(
        make_config(CALLTRACK_RATELIMIT_PER_SITE_PER_MINUTE="3"), reactor=clock, clock=clock, engine=engine, synchronous_db=True
    )
    tenant = make_tenant(app)
    other = make_tenant(app, "Other", ("other.example",))
    http = Http(app)
    assert [get_number(http, tenant.site.site_key)[0] for _ in range(4)] == [200, 200, 200, 429]
    assert get_number(http, other.site.site_key)[0] == 200  # another site is not affected


def test_unknown_path_and_wrong_method_are_json(http: Http) -> None:
    code, body, _ = http.request("GET", "/v1/nothing")
    assert code == 404 and body["error"]["code"] == "not_found"
    code, body, headers = http.request("DELETE", "/v1/number")
    assert code == 405 and body["error"]["code"] == "method_not_allowed"
    assert "GET" in headers.getRawHeaders("allow")[0]


def test_an_internal_error_is_a_json_500_that_tells_nothing(http: Http, app: App, tenant: Tenant, monkeypatch: pytest.MonkeyPatch) -> None:
    async def boom(*_a: Any, **_k: Any) -> None:
        raise RuntimeError("secret detail")

    monkeypatch.setattr(app.numbers, "number_for_visit", boom)
    code, body, _ = get_number(http, tenant.site.site_key)
    assert code == 500 and body["error"]["code"] == "internal_error"
    assert "secret" not in json.dumps(body)


def test_healthz_and_metrics(http: Http, app: App, tenant: Tenant) -> None:
    make_pool(app, tenant, "all", 1)
    get_number(http, tenant.site.site_key)
    get_number(http, tenant.site.site_key)
    code, body, _ = http.request("GET", "/healthz")
    assert code == 200 and body["status"] == "ok"
    code, text, headers = http.request("GET", "/metrics")
    assert code == 200 and headers.getRawHeaders("content-type")[0].startswith("text/plain")
    text = text.decode()
    assert 'calltrack_number_requests_total{outcome="leased"} 1.0' in text
    assert 'calltrack_number_requests_total{outcome="exhausted"} 1.0' in text
    assert 'calltrack_pool_exhaustions_total{pool_id="' in text
    assert 'calltrack_http_request_duration_seconds_bucket{le="0.005",route="/v1/number"}' in text
    resolve(app.numbers.sweep_now())
    assert "calltrack_leases_open 1.0" in http.request("GET", "/metrics")[1].decode()


def test_healthz_is_503_when_the_database_is_gone(http: Http, app: App, monkeypatch: pytest.MonkeyPatch) -> None:
    async def down(*_a: Any, **_k: Any) -> None:
        raise sa.exc.OperationalError("SELECT 1", {}, Exception("connection refused"))

    monkeypatch.setattr(app.db, "run", down)
    code, body, _ = http.request("GET", "/healthz")
    assert code == 503 and body["status"] == "unhealthy"


def test_without_consent_nothing_is_stored_and_a_static_number_stands_for_the_source(http: Http, app: App, tenant: Tenant) -> None:
    from calltrack.numbers.inputs import new_number_from_json

    make_pool(app, tenant, "all", 2)
    statics = [
        {"number": "415-555-0160", "source": "google", "medium": "cpc"},
        {"number": "415-555-0161", "medium": "organic_search"},
        {"number": "415-555-0162", "placement": "billboard"},
    ]
    from tests.conftest import resolve

    resolve(app.numbers.add_numbers(
        tenant.account.id,
        [new_number_from_json(n, region="US", pools_by_id={}, default_forward=tenant.site.forward_to) for n in statics],
    ))
    cases = [
        ("&utm_source=Google&utm_medium=cpc", "+14155550160"),
        ("&ref=https%3A%2F%2Fwww.bing.com%2F", "+14155550161"),
        ("&utm_source=newsletter", tenant.site.own_number),
    ]
    for query, expected in cases:
        code, body, _ = get_number(http, tenant.site.site_key, "&consent=0" + query)
        assert code == 200
        assert body["phoneNumber"] == expected, query
        assert body["lease"] is False and "vid" not in body
    assert count(app, "touchpoints") == 0 and count(app, "leases") == 0


def test_one_address_cannot_take_a_whole_pool(engine: sa.Engine, clock: task.Clock) -> None:
    app = build_app(
        make_config(CALLTRACK_RATELIMIT_NEW_LEASES_PER_IP_PER_MINUTE="3"), reactor=clock, clock=clock, engine=engine, synchronous_db=True
    )
    tenant = make_tenant(app)
    make_pool(app, tenant, "all", 10)
    http = Http(app)
    answers = [get_number(http, tenant.site.site_key, f"&vid=loop{i}")[1] for i in range(5)]
    assert [a["lease"] for a in answers] == [True, True, True, False, False]
    assert answers[4]["phoneNumber"] == tenant.site.own_number
    # visitors who already hold a number keep it
    again = get_number(http, tenant.site.site_key, "&vid=loop0&sid=s0")[1]
    assert again["lease"] is True and again["phoneNumber"] == answers[0]["phoneNumber"]
    clock.advance(21)  # 3 a minute: a new lease every 20 s
    assert get_number(http, tenant.site.site_key, "&vid=later")[1]["lease"] is True
    assert count(app, "leases") == 4


def test_amp_pages_from_the_amp_cache(http: Http, app: App, tenant: Tenant) -> None:
    make_pool(app, tenant, "all", 1)
    cache = "https://acme-example.cdn.ampproject.org"
    code, _, headers = get_number(http, tenant.site.site_key, "&__amp_source_origin=https%3A%2F%2Facme.example", Origin=cache)
    assert code == 200
    assert headers.getRawHeaders("access-control-allow-origin") == [cache]
    assert headers.getRawHeaders("amp-access-control-allow-source-origin") == ["https://acme.example"]
    code, _, _ = get_number(http, tenant.site.site_key, "&__amp_source_origin=https%3A%2F%2Fevil.example", Origin=cache)
    assert code == 403
