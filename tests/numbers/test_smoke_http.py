from tests.conftest import Http, Tenant


def test_smoke(http: Http, tenant: Tenant) -> None:
    code, body, _ = http.request("GET", "/healthz")
    assert code == 200, body
    code, body, _ = http.request("POST", "/v1/pools", key=tenant.key, json_body={"site_id": tenant.site.id, "name": "paid", "rules": {"all": True}})
    assert code == 201, body
    pool_id = body["id"]
    code, body, _ = http.request("POST", "/v1/numbers", key=tenant.key, json_body={"numbers": [{"number": "415-555-01%02d" % i, "pool_id": pool_id} for i in range(3)]})
    assert code == 201, body
    code, body, _ = http.request("GET", f"/v1/number?site={tenant.site.site_key}&utm_source=google", headers={"User-Agent": "Mozilla/5.0 Chrome"})
    assert code == 200, body
    print(body)
