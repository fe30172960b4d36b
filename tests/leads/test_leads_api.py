"""Leads through the API: one lead per person, filters, pages, the timeline, tenants apart."""

from __future__ import annotations

import pytest

from tests.conftest import make_tenant
from tests.numbers.helpers import count, rows, visit
from tests.telephony.helpers import STATIC_NUMBER, setup_phones, twilio_post, voice_params

ORIGIN = {"Origin": "https://acme.example"}


def form(http, tenant, fields, **extra):
    body = {"site": tenant.site.site_key, "fields": fields, **extra}
    return http.request("POST", "/v1/forms", json_body=body, headers=ORIGIN)


@pytest.fixture
def phones(app, tenant):
    return setup_phones(app, tenant)


def test_a_form_makes_a_lead_with_the_visitors_source(app, http, tenant):
    visit(app, tenant, "v1", utm_source="google", utm_medium="cpc", utm_campaign="spring", utm_term="plumber")
    status, body, _ = form(
        http, tenant, {"name": "Ann Lee", "email": "Ann@Example.com", "phone": "415 555 0123", "company": "Lee & Co", "message": "Leaking tap"},
        vid="v1", sid="s-v1", form_type="estimate",
    )
    assert status == 201
    lead = http.request("GET", f"/v1/leads/{body['lead_id']}", key=tenant.key)[1]
    assert lead["kind"] == "form" and lead["form_type"] == "estimate"
    assert lead["contact"] == {"id": lead["contact"]["id"], "phone": "+14155550123", "email": "ann@example.com", "name": "Ann Lee"}
    assert (lead["source"]["campaign"], lead["source"]["keyword"], lead["source"]["channel"]) == ("spring", "plumber", "paid_search")
    stored = rows(app, "SELECT company, message, form_type FROM form_submissions")[0]
    assert tuple(stored) == ("Lee & Co", "Leaking tap", "estimate")
    assert [item["type"] for item in lead["timeline"]] == ["touchpoint", "form"]


def test_callback_form_is_a_callback_lead(app, http, tenant):
    status, body, _ = form(http, tenant, {"phone": "4155550124"}, form_type="callback")
    assert status == 201
    assert rows(app, "SELECT kind FROM leads")[0][0] == "callback"


def test_same_person_by_phone_or_email_is_one_lead(app, http, tenant, phones, clock):
    form(http, tenant, {"email": "bo@example.com", "phone": "+1 415 555 0100"}, id="f1")
    clock.advance(3600)
    form(http, tenant, {"email": "BO@example.com"}, id="f2")
    clock.advance(3600)
    twilio_post(http, "/v1/webhooks/twilio/voice", voice_params("CA" + "1" * 32, to=STATIC_NUMBER))  # from +14155550100
    assert count(app, "contacts") == 1 and count(app, "leads") == 1
    lead_id = rows(app, "SELECT id FROM leads")[0][0]
    detail = http.request("GET", f"/v1/leads/{lead_id}", key=tenant.key)[1]
    assert detail["touches"] == 3
    assert [i["type"] for i in detail["timeline"]] == ["form", "form", "call"]
    assert detail["timeline"][2]["call"]["match"]["method"] == "static"


def test_form_with_a_new_email_fills_in_the_known_contact(app, http, tenant):
    form(http, tenant, {"phone": "4155550125"}, id="a")
    form(http, tenant, {"phone": "4155550125", "email": "cy@example.com"}, id="b")
    contact = rows(app, "SELECT phone, email FROM contacts")
    assert [tuple(c) for c in contact] == [("+14155550125", "cy@example.com")]


def test_filters_and_pages(app, http, tenant, clock):
    for i in range(5):
        visit(app, tenant, f"v{i}", utm_source="google" if i % 2 else "bing", utm_medium="cpc", utm_campaign=f"c{i % 2}")
        form(http, tenant, {"email": f"p{i}@example.com"}, vid=f"v{i}", sid=f"s-v{i}")
        clock.advance(60)
    get = lambda q: http.request("GET", "/v1/leads" + q, key=tenant.key)[1]  # noqa: E731
    assert len(get("")["leads"]) == 5
    assert {lead["source"]["source"] for lead in get("?source=google")["leads"]} == {"google"}
    assert len(get("?campaign=c0")["leads"]) == 3
    assert len(get("?kind=form")["leads"]) == 5 and get("?kind=call")["leads"] == []
    page1 = get("?limit=2")
    assert len(page1["leads"]) == 2 and page1["next_cursor"]
    page2 = get(f"?limit=2&cursor={page1['next_cursor']}")
    page3 = get(f"?limit=2&cursor={page2['next_cursor']}")
    ids = [lead["id"] for p in (page1, page2, page3) for lead in p["leads"]]
    assert ids == sorted(ids, reverse=True) and len(set(ids)) == 5 and page3["next_cursor"] is None
    first_ts = rows(app, "SELECT min(created_at) FROM leads")[0][0]
    assert len(get(f"?from={first_ts + 60}")["leads"]) == 4
    assert len(get(f"?to={first_ts + 60}")["leads"]) == 1


@pytest.mark.parametrize("query", ["?status=bogus", "?kind=fax", "?limit=0", "?limit=abc", "?from=yesterday", "?cursor=-1"])
def test_bad_filters_are_400(http, tenant, query):
    status, body, _ = http.request("GET", "/v1/leads" + query, key=tenant.key)
    assert status == 400 and body["error"]["message"]


def test_leads_are_tenant_scoped(app, http, tenant):
    _, body, _ = form(http, tenant, {"email": "x@example.com"})
    other = make_tenant(app, "Other", ("other.example",))
    assert http.request("GET", f"/v1/leads/{body['lead_id']}", key=other.key)[0] == 404
    assert http.request("GET", "/v1/leads", key=other.key)[1]["leads"] == []
    assert http.request("GET", "/v1/leads")[0] == 401
    assert http.request("GET", "/v1/leads/abc", key=tenant.key)[0] == 404


def test_server_to_server_form_with_an_api_key(app, http, tenant):
    body = {"site": tenant.site.site_key, "fields": {"email": "srv@example.com"}, "form_type": "demo"}
    status, answer, _ = http.request("POST", "/v1/forms", json_body=body, key=tenant.key)
    assert status == 201 and answer["lead_id"]
    other = make_tenant(app, "Other", ("other.example",))
    assert http.request("POST", "/v1/forms", json_body=body | {"id": "x"}, key=other.key)[0] == 404
    assert http.request("POST", "/v1/forms", json_body=body | {"id": "y"}, key="ctk_wrong")[0] == 401
    assert http.request("POST", "/v1/forms", json_body=body | {"form_type": "Bad Type!"}, key=tenant.key)[0] == 400
