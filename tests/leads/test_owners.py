"""Lead owners: round robin across restarts, rules first, inactive owners skipped, counts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from calltrack.leads.assignment import InvalidRule, OwnerRule, matches, parse_conditions, rule_owner
from tests.conftest import make_tenant
from tests.numbers.helpers import rows, visit
from tests.telephony.helpers import STATIC_NUMBER, setup_phones, twilio_post, voice_params

ORIGIN = {"Origin": "https://acme.example"}


def form(http, tenant, email, **extra):
    _, body, _ = http.request("POST", "/v1/forms", json_body={"site": tenant.site.site_key, "fields": {"email": email}, **extra}, headers=ORIGIN)
    return body["lead_id"]


def owner_of(app, lead_id):
    return rows(app, "SELECT owner FROM leads WHERE id = :i", i=lead_id)[0][0]


def test_conditions_parse_and_match() -> None:
    conditions = parse_conditions({"source": "Google", "channel": ["paid_search", "display"]})
    assert conditions == (("channel", frozenset({"paid_search", "display"})), ("source", frozenset({"google"})))
    assert matches(conditions, {"source": "google", "channel": "display"})
    assert not matches(conditions, {"source": "google", "channel": "email"})
    assert not matches(conditions, {"channel": "display"})
    for bad in (None, {}, {"colour": "red"}, {"source": []}, {"source": [1]}, {"source": "x" * 201}):
        with pytest.raises(InvalidRule):
            parse_conditions(bad)
    rules = [OwnerRule(2, 10, conditions, 7), OwnerRule(1, 20, (("kind", frozenset({"form"})),), 8)]
    facts = {"source": "google", "channel": "display", "kind": "form"}
    assert rule_owner(rules, facts, {7, 8}).owner_id == 7
    assert rule_owner(rules, facts, {8}).owner_id == 8  # an inactive owner's rule is passed over


def test_round_robin_rules_and_inactive_owners(app, http, tenant):
    assert form(http, tenant, "a0@example.com") and owner_of(app, 1) is None  # no managers yet: unassigned
    for name in ("Ann", "Bob", "Cy"):
        assert http.request("POST", "/v1/owners", json_body={"name": name}, key=tenant.key)[0] == 201
    got = [owner_of(app, form(http, tenant, f"a{i}@example.com")) for i in range(1, 7)]
    assert got == ["Ann", "Bob", "Cy", "Ann", "Bob", "Cy"]
    cy = next(o for o in http.request("GET", "/v1/owners", key=tenant.key)[1]["owners"] if o["name"] == "Cy")
    assert http.request("PATCH", f"/v1/owners/{cy['id']}", json_body={"active": False}, key=tenant.key)[0] == 200
    assert [owner_of(app, form(http, tenant, f"b{i}@example.com")) for i in range(3)] == ["Ann", "Bob", "Ann"]
    status, rule, _ = http.request("POST", "/v1/owner-rules", json_body={"priority": 1, "when": {"source": "google"}, "owner": "Bob"}, key=tenant.key)
    assert status == 201 and rule["when"] == {"source": ["google"]}
    visit(app, tenant, "g1", utm_source="google", utm_medium="cpc")
    assert owner_of(app, form(http, tenant, "g1@example.com", vid="g1", sid="s-g1")) == "Bob"
    history = http.request("GET", f"/v1/leads/{rows(app, 'SELECT max(id) FROM leads')[0][0]}", key=tenant.key)[1]["history"]
    assert [(h["field"], h["new"], h["actor"]) for h in history] == [("owner", "Bob", f"system:rule:{rule['id']}")]
    owners = {o["name"]: o for o in http.request("GET", "/v1/owners", key=tenant.key)[1]["owners"]}
    assert (owners["Ann"]["leads"], owners["Bob"]["leads"], owners["Cy"]["leads"]) == (4, 4, 2)
    assert http.request("DELETE", f"/v1/owner-rules/{rule['id']}", key=tenant.key)[0] == 204
    assert http.request("GET", "/v1/owner-rules", key=tenant.key)[1]["rules"] == []


def test_spam_leads_get_no_owner_and_calls_are_assigned_too(app, http, tenant):
    setup_phones(app, tenant)
    http.request("POST", "/v1/owners", json_body={"name": "Ann"}, key=tenant.key)
    twilio_post(http, "/v1/webhooks/twilio/voice", voice_params("CA" + "1" * 32, to=STATIC_NUMBER))
    from tests.conftest import resolve

    resolve(app.telephony.block_caller(tenant.account.id, "+14155550111", "robocaller"))
    twilio_post(http, "/v1/webhooks/twilio/voice", voice_params("CA" + "2" * 32, to=STATIC_NUMBER, caller="+14155550111"))
    assert [tuple(r) for r in rows(app, "SELECT stage, owner FROM leads ORDER BY id")] == [("new", "Ann"), ("spam", None)]


def test_owner_api_bad_input_and_tenants(app, http, tenant):
    assert http.request("POST", "/v1/owners", json_body={"name": "Ann"}, key=tenant.key)[0] == 201
    assert http.request("POST", "/v1/owners", json_body={"name": "Ann"}, key=tenant.key)[0] == 409
    assert http.request("POST", "/v1/owners", json_body={}, key=tenant.key)[0] == 400
    other = make_tenant(app, "Other", ("other.example",))
    ann = http.request("GET", "/v1/owners", key=tenant.key)[1]["owners"][0]
    assert http.request("PATCH", f"/v1/owners/{ann['id']}", json_body={"active": False}, key=other.key)[0] == 404
    assert http.request("PATCH", f"/v1/owners/{ann['id']}", json_body={"active": "no"}, key=tenant.key)[0] == 400
    assert http.request("POST", "/v1/owner-rules", json_body={"when": {"source": "x"}, "owner": "Ann"}, key=other.key)[0] == 404
    assert http.request("POST", "/v1/owner-rules", json_body={"when": {"colour": "x"}, "owner": "Ann"}, key=tenant.key)[0] == 400
    assert http.request("POST", "/v1/owner-rules", json_body={"when": {"source": "x"}, "owner_id": ann["id"]}, key=other.key)[0] == 404
    assert http.request("DELETE", "/v1/owner-rules/99", key=tenant.key)[0] == 404
    assert http.request("GET", "/v1/owners", key=other.key)[1]["owners"] == []
    assert http.request("GET", "/v1/owners")[0] == 401


def test_owners_cli(cli, tmp_path: Path) -> None:  # noqa: F811
    cli("db", "upgrade")
    cli("account", "create", "Acme", "--timezone", "UTC", "--currency", "usd", "--region", "US")
    assert "added owner 1: Ann" in cli("owners", "add", "Ann", "--email", "ann@acme.example")
    cli("owners", "add", "Bob")
    assert "already has an owner" in cli("owners", "add", "Ann", ok=False)
    assert "go to Bob" in cli("owners", "rule", "Bob", "--when", "source=google,bing", "--when", "kind=call", "--priority", "5")
    assert "not a condition" in cli("owners", "rule", "Bob", "--when", "colour=red", ok=False)
    assert "no owner named" in cli("owners", "rule", "Zed", "--when", "source=x", ok=False)
    assert "inactive" in cli("owners", "deactivate", "Bob")
    listed = json.loads(cli("--json", "owners", "list"))
    assert [(o["name"], o["active"]) for o in listed["owners"]] == [("Ann", True), ("Bob", False)]
    assert listed["rules"][0]["when"] == {"kind": ["call"], "source": ["bing", "google"]} and listed["rules"][0]["owner"] == "Bob"
