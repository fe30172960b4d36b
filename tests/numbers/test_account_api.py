"""The account API for sites, numbers, pools, health and the lease log, and tenant isolation."""

from __future__ import annotations

import pytest
from twisted.internet import task

from calltrack.app import App
from tests.conftest import Http, Tenant, make_tenant
from tests.numbers.helpers import make_pool, visit
from tests.numbers.test_number_http import CHROME


def test_an_api_key_is_required(http: Http, tenant: Tenant) -> None:
    code, body, headers = http.request("GET", "/v1/pools")
    assert code == 401 and body["error"]["code"] == "unauthenticated"
    assert headers.getRawHeaders("www-authenticate") == ["Bearer"]
    code, body, _ = http.request("GET", "/v1/pools", key="ctk_not-a-key")
    assert code == 401 and body["error"]["code"] == "invalid_api_key"
    code, _, _ = http.request("GET", "/v1/pools", headers={"Authorization": f"Basic {tenant.key}"})
    assert code == 401


def test_sites(http: Http, tenant: Tenant) -> None:
    code, body, _ = http.request(
        "POST",
        "/v1/sites",
        key=tenant.key,
        json_body={"name": "shop", "allowed_domains": ["https://Shop.Acme.example/"], "own_number": "415 555 0199"},
    )
    assert code == 201, body
    assert body["allowed_domains"] == ["shop.acme.example"] and body["own_number"] == "+14155550199"
    assert body["site_key"].startswith("site_")
    code, listed, _ = http.request("GET", "/v1/sites", key=tenant.key)
    assert [s["name"] for s in listed["sites"]] == ["Acme Plumbing", "shop"]
    for bad in (
        {"name": "x", "allowed_domains": [], "own_number": "415 555 0199"},
        {"name": "x", "allowed_domains": ["bad domain!"], "own_number": "415 555 0199"},
        {"name": "x", "allowed_domains": ["a.example"], "own_number": "12"},
        {"name": "x", "allowed_domains": "a.example"},
        {"allowed_domains": ["a.example"], "own_number": "415 555 0199"},
    ):
        code, err, _ = http.request("POST", "/v1/sites", key=tenant.key, json_body=bad)
        assert code == 400, bad
        assert err["error"]["code"] == "invalid_site"


def test_pools_create_get_patch(http: Http, tenant: Tenant) -> None:
    code, pool, _ = http.request(
        "POST",
        "/v1/pools",
        key=tenant.key,
        json_body={
            "site_id": tenant.site.id,
            "name": "Google Ads",
            "rules": {"channel": "paid_search", "utm_source": ["google", "Bing"]},
            "hold_seconds": 900,
            "cooldown_seconds": 10,
            "overflow_number": "(415) 555-0181",
        },
    )
    assert code == 201, pool
    assert pool["rules"] == {"channel": "paid_search", "utm_source": ["bing", "google"]}
    assert pool["cooldown_seconds"] == 60  # never shorter than the renewal interval
    assert pool["overflow_number"] == "+14155550181"
    code, got, _ = http.request("GET", f"/v1/pools/{pool['id']}", key=tenant.key)
    assert got == pool
    code, patched, _ = http.request("PATCH", f"/v1/pools/{pool['id']}", key=tenant.key, json_body={"hold_seconds": 1200, "rules": {"all": True}})
    assert code == 200 and patched["hold_seconds"] == 1200 and patched["rules"] == {"all": True}
    code, err, _ = http.request("POST", "/v1/pools", key=tenant.key, json_body={"site_id": tenant.site.id, "name": "Google Ads"})
    assert code == 409 and err["error"]["code"] == "conflict"


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"name": "p"}, "site_id"),
        ({"site_id": 1, "name": ""}, "name"),
        ({"site_id": 1, "name": "p", "rules": {"colour": "red"}}, "colour"),
        ({"site_id": 1, "name": "p", "rules": {"channel": "tv"}}, "tv"),
        ({"site_id": 1, "name": "p", "rules": "all"}, "rules"),
        ({"site_id": 1, "name": "p", "hold_seconds": 5}, "hold_seconds"),
        ({"site_id": 1, "name": "p", "hold_seconds": "1800"}, "hold_seconds"),
        ({"site_id": 1, "name": "p", "overflow_number": "call us"}, "overflow_number"),
        ({"site_id": 1, "name": "p", "colour": "red"}, "colour"),
    ],
)
def test_bad_pools_are_400_naming_the_field(http: Http, tenant: Tenant, body: dict[str, object], fragment: str) -> None:
    code, err, _ = http.request("POST", "/v1/pools", key=tenant.key, json_body=body)
    assert code == 400, err
    assert fragment in err["error"]["message"]


def test_numbers_add_list_retire(http: Http, app: App, tenant: Tenant) -> None:
    pool = make_pool(app, tenant, "all", 0)
    code, body, _ = http.request(
        "POST",
        "/v1/numbers",
        key=tenant.key,
        json_body={"numbers": [{"number": "415.555.0130", "pool_id": pool.id}, {"number": "+1 415 555 0131", "pool_id": pool.id}]},
    )
    assert code == 201, body
    assert [n["number"] for n in body["numbers"]] == ["+14155550130", "+14155550131"]
    assert body["numbers"][0]["forward_to"] == tenant.site.forward_to  # the pool's site forwards
    code, static, _ = http.request(
        "POST", "/v1/numbers", key=tenant.key,
        json_body={"number": "(415) 555-0150", "forward_to": "415-555-0199", "source": "billboard", "placement": "I-80 exit 12"},
    )
    assert code == 201 and static["numbers"][0]["kind"] == "static" and static["numbers"][0]["placement"] == "I-80 exit 12"
    code, err, _ = http.request("POST", "/v1/numbers", key=tenant.key, json_body={"number": "415.555.0130", "pool_id": pool.id})
    assert code == 409
    code, err, _ = http.request("POST", "/v1/numbers", key=tenant.key, json_body={"number": "(415) 555-0151"})
    assert code == 400 and "forward_to" in err["error"]["message"]
    code, err, _ = http.request("POST", "/v1/numbers", key=tenant.key, json_body={"number": "0000", "forward_to": "415-555-0199"})
    assert code == 400
    code, err, _ = http.request(
        "POST", "/v1/numbers", key=tenant.key, json_body={"number": "415-555-0152", "pool_id": pool.id, "source": "google"}
    )
    assert code == 400 and "static" in err["error"]["message"]
    number_id = body["numbers"][0]["id"]
    code, retired, _ = http.request("POST", f"/v1/numbers/{number_id}/retire", key=tenant.key)
    assert code == 200 and retired["status"] == "retired"
    code, listed, _ = http.request("GET", "/v1/numbers", key=tenant.key)
    assert sorted(n["number"] for n in listed["numbers"]) == ["+14155550131", "+14155550150"]
    code, listed, _ = http.request("GET", "/v1/numbers?include_retired=true", key=tenant.key)
    assert len(listed["numbers"]) == 3


def test_csv_import_is_all_or_nothing_with_line_numbers(http: Http, app: App, tenant: Tenant) -> None:
    make_pool(app, tenant, "Google Ads", 0)
    good = "number,pool,source,placement\n415-555-0140,Google Ads,,\n415-555-0141,Google Ads,,\n415-555-0142,,billboard,Main St\n"
    code, body, _ = http.request(
        "POST", f"/v1/numbers/import?site_id={tenant.site.id}", key=tenant.key, data=good.encode(), headers={"Content-Type": "text/csv"}
    )
    assert code == 201, body
    assert body["imported"] == 3
    bad = "number,pool\n415-555-0143,Google Ads\nnot a number,Google Ads\n415-555-0144,Nope\n"
    code, err, _ = http.request("POST", f"/v1/numbers/import?site_id={tenant.site.id}", key=tenant.key, data=bad.encode())
    assert code == 400
    assert "line 3" in err["error"]["message"] and "line 4" in err["error"]["message"]
    code, listed, _ = http.request("GET", "/v1/numbers", key=tenant.key)
    assert len(listed["numbers"]) == 3  # nothing of the bad file was stored
    for raw in (b"", b"\xff\xfe\x00", b"phone\n4155550145\n", b"number,colour\n4155550145,red\n"):
        code, _, _ = http.request("POST", f"/v1/numbers/import?site_id={tenant.site.id}", key=tenant.key, data=raw)
        assert code == 400, raw


def test_leases_health_and_simulation(http: Http, app: App, tenant: Tenant, clock: task.Clock) -> None:
    pool = make_pool(app, tenant, "all", 2)
    for i in range(4):
        visit(app, tenant, f"v{i}")
        clock.advance(60)
    code, body, _ = http.request("GET", "/v1/leases", key=tenant.key)
    assert code == 200 and len(body["leases"]) == 2
    lease = body["leases"][0]
    code, events, _ = http.request("GET", f"/v1/leases/{lease['id']}/events", key=tenant.key)
    assert code == 200 and [e["kind"] for e in events["events"]] == ["start"]
    code, active, _ = http.request("GET", f"/v1/leases?active_at={clock.seconds()}&number=%2B1{lease['number'][2:]}", key=tenant.key)
    assert [x["id"] for x in active["leases"]] == [lease["id"]]
    code, health, _ = http.request("GET", f"/v1/pools/{pool.id}/health?step=600&since={clock.seconds() - 3600}", key=tenant.key)
    assert code == 200, health
    assert health["size"] == 2 and health["peak_concurrent"] == 2 and health["exhausted"] == 2 and health["leases"] == 2
    assert health["recommended_size"] >= 2
    assert len(health["utilisation"]) == 6
    code, sim, _ = http.request("GET", f"/v1/pools/{pool.id}/simulate?size=4&since={clock.seconds() - 3600}", key=tenant.key)
    assert code == 200, sim
    assert sim["requests"] == 4 and sim["exhausted_requests"] == 0
    code, sim1, _ = http.request("GET", f"/v1/pools/{pool.id}/simulate?size=1&since={clock.seconds() - 3600}", key=tenant.key)
    assert sim1["exhausted_requests"] == 3
    for bad in ("size=-1", "", "size=2&since=x", f"size=2&since={clock.seconds() + 10}"):
        code, _, _ = http.request("GET", f"/v1/pools/{pool.id}/simulate?{bad}", key=tenant.key)
        assert code == 400, bad


def test_another_accounts_objects_are_404(http: Http, app: App, tenant: Tenant) -> None:
    pool = make_pool(app, tenant, "all", 1)
    visit(app, tenant, "v")
    lease_id = http.request("GET", "/v1/leases", key=tenant.key)[1]["leases"][0]["id"]
    number_id = http.request("GET", "/v1/numbers", key=tenant.key)[1]["numbers"][0]["id"]
    intruder = make_tenant(app, "Intruder", ("intruder.example",))
    k = intruder.key
    assert http.request("GET", f"/v1/pools/{pool.id}", key=k)[0] == 404
    assert http.request("PATCH", f"/v1/pools/{pool.id}", key=k, json_body={"hold_seconds": 999})[0] == 404
    assert http.request("GET", f"/v1/pools/{pool.id}/health", key=k)[0] == 404
    assert http.request("GET", f"/v1/pools/{pool.id}/simulate?size=1", key=k)[0] == 404
    assert http.request("GET", f"/v1/leases/{lease_id}/events", key=k)[0] == 404
    assert http.request("POST", f"/v1/numbers/{number_id}/retire", key=k)[0] == 404
    assert http.request("GET", f"/v1/sites/{tenant.site.id}", key=k)[0] == 404
    assert http.request("POST", "/v1/pools", key=k, json_body={"site_id": tenant.site.id, "name": "steal"})[0] == 404
    assert http.request("POST", "/v1/numbers", key=k, json_body={"number": "415-555-0190", "pool_id": pool.id, "forward_to": "415-555-0199"})[0] == 400
    assert http.request("GET", "/v1/leases", key=k)[1] == {"leases": []}
    assert http.request("GET", "/v1/numbers", key=k)[1] == {"numbers": []}
    assert http.request("GET", "/v1/pools", key=k)[1] == {"pools": []}
    assert [s["name"] for s in http.request("GET", "/v1/sites", key=k)[1]["sites"]] == ["Intruder"]
    # and the pool is untouched
    assert http.request("GET", f"/v1/pools/{pool.id}", key=tenant.key)[1]["hold_seconds"] == 1800


def test_a_site_key_only_reaches_its_own_pools(http: Http, app: App, tenant: Tenant) -> None:
    make_pool(app, tenant, "all", 1)
    other = make_tenant(app, "Other", ("other.example",))
    code, body, _ = http.request("GET", f"/v1/number?site={other.site.site_key}", headers={"User-Agent": CHROME})
    assert code == 200 and body["lease"] is False and body["phoneNumber"] == other.site.own_number


def test_absurd_ids_and_numbers_are_4xx_not_500(http: Http, tenant: Tenant) -> None:
    huge = "9" * 25
    k = tenant.key
    for method, path in [("GET", f"/v1/pools/{huge}"), ("GET", f"/v1/sites/{huge}"), ("GET", f"/v1/leases/{huge}/events"),
                         ("POST", f"/v1/numbers/{huge}/retire"), ("GET", f"/v1/pools/{huge}/health")]:
        assert http.request(method, path, key=k)[0] == 404, path
    assert http.request("GET", f"/v1/numbers?pool_id={huge}", key=k)[0] == 400
    assert http.request("POST", "/v1/pools", key=k, json_body={"site_id": int(huge), "name": "p"})[0] == 400
    for bad in ("nan", "inf", "-inf"):
        assert http.request("GET", f"/v1/leases?active_at={bad}", key=k)[0] == 400
    deep = b"[" * 30_000 + b"]" * 30_000
    code, body, _ = http.request("POST", "/v1/pools", key=k, data=deep, headers={"Content-Type": "application/json"})
    assert code == 400 and body["error"]["code"] == "malformed_json"
