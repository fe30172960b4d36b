"""Regressions for what the abuse tests found: each was a 500 (on PostgreSQL) and is now a 400
that names the field and stores nothing — on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest

from calltrack.app import App
from tests.conftest import Http, Tenant
from tests.security.test_limits import all_rows


CASES = ("site name", "pool name", "pool rule", "pricing source", "pricing campaign", "costs CSV")
# NUL was the 500; tab, escape and DEL are refused alike (calltrack/text.py): names and tags
# have no use for any of them.
CONTROL = {"NUL": "\u0000", "tab": "\t", "escape": "\u001b", "DEL": "\u007f"}


def _case(tenant: Tenant, case: str, c: str) -> tuple[str, str, Any, str]:
    site = tenant.site.id
    return {
        # PostgreSQL text cannot hold NUL: these were stored on SQLite and a 500 on PostgreSQL.
        "site name": ("POST", "/v1/sites", {"name": f"Acme{c}", "allowed_domains": ["acme.example"], "own_number": "(415) 555-2671"}, "name contains control characters"),
        "pool name": ("POST", "/v1/pools", {"site_id": site, "name": f"web{c}", "rules": {"all": True}}, "'name' contains control characters"),
        "pool rule": ("POST", "/v1/pools", {"site_id": site, "name": "web", "rules": {"utm_source": ["google", f"g{c}"]}}, "rule 'utm_source' contains control characters"),
        "pricing source": ("POST", "/v1/pricing-models", {"source": f"lead{c}gen", "model": "per_lead", "price": 5}, "source contains control characters"),
        "pricing campaign": ("POST", "/v1/pricing-models", {"source": "leadgen", "campaign": f"br{c}and", "model": "per_lead", "price": 5}, "campaign contains control characters"),
        "costs CSV": ("POST", "/v1/costs", f"date,source,medium,campaign,cost\n2026-01-01,google,cpc,br{c}and,1.50\n".encode(), "campaign contains control characters"),
    }[case]


@pytest.mark.parametrize("char", list(CONTROL))
@pytest.mark.parametrize("case", CASES)
def test_text_with_a_control_character_is_a_400_not_a_500(app: App, http: Http, tenant: Tenant, case: str, char: str) -> None:
    method, path, body, message = _case(tenant, case, CONTROL[char])
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
