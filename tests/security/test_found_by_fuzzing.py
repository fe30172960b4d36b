"""Regressions for what the abuse tests found: each was a 500 (on PostgreSQL) and is now a 400
that names the field and stores nothing — on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest

from calltrack.app import App
from tests.conftest import Http, Tenant
from tests.security.test_limits import all_rows


def _cases(tenant: Tenant) -> list[tuple[str, str, Any, str]]:
    site = tenant.site.id
    return [
        # PostgreSQL text cannot hold NUL: these were stored on SQLite and a 500 on PostgreSQL.
        ("POST", "/v1/sites", {"name": "Acme\u0000", "allowed_domains": ["acme.example"], "own_number": "(415) 555-2671"}, "name contains control characters"),
        ("POST", "/v1/pools", {"site_id": site, "name": "web\u0000", "rules": {"all": True}}, "'name' contains control characters"),
        ("POST", "/v1/pools", {"site_id": site, "name": "web", "rules": {"utm_source": ["google", "\u0000"]}}, "rule 'utm_source' contains control characters"),
        ("POST", "/v1/pricing-models", {"source": "leadgen\u0000", "model": "per_lead", "price": 5}, "source contains control characters"),
        ("POST", "/v1/pricing-models", {"source": "leadgen", "campaign": "\u0000", "model": "per_lead", "price": 5}, "campaign contains control characters"),
        ("POST", "/v1/costs", b"date,source,medium,campaign,cost\n2026-01-01,google,cpc,brand\x00,1.50\n", "campaign contains control characters"),
    ]


@pytest.mark.parametrize("case", range(6))
def test_text_with_a_nul_is_a_400_not_a_500(app: App, http: Http, tenant: Tenant, case: int) -> None:
    method, path, body, message = _cases(tenant)[case]
    before = all_rows(app)
    if isinstance(body, bytes):
        code, answer, _ = http.request(method, path, data=body, headers={"Content-Type": "text/csv"}, key=tenant.key)
    else:
        code, answer, _ = http.request(method, path, json_body=body, key=tenant.key)
    assert code == 400, answer
    assert message in answer["error"]["message"]
    assert all_rows(app) == before


def test_a_pool_renamed_with_a_nul_keeps_its_name(app: App, http: Http, tenant: Tenant) -> None:
    code, pool, _ = http.request("POST", "/v1/pools", json_body={"site_id": tenant.site.id, "name": "web", "rules": {"all": True}}, key=tenant.key)
    assert code == 201
    code, answer, _ = http.request("PATCH", f"/v1/pools/{pool['id']}", json_body={"name": "w\u0000b"}, key=tenant.key)
    assert code == 400 and "control characters" in answer["error"]["message"]
    assert http.request("GET", f"/v1/pools/{pool['id']}", key=tenant.key)[1]["name"] == "web"


@pytest.mark.parametrize(("key", "code"), [("%00", 400), ("site_%00x", 400), ("x" * 101, 400), ("site_nope", 404), ("", 200)])
def test_the_demo_page_checks_its_site_key(app: App, http: Http, tenant: Tenant, key: str, code: int) -> None:
    """GET /demo?site=%00 was a 500 on PostgreSQL (found by schemathesis)."""
    from calltrack.demo import DEMO_ACCOUNT
    from tests.conftest import make_tenant

    make_tenant(app, DEMO_ACCOUNT, ("127.0.0.1",))
    status, body, _ = http.request("GET", f"/demo?site={key}")
    assert status == code, body
