"""Form submissions: reading the fields (pure) and POST /v1/forms (bad input, replays, tenants)."""

from __future__ import annotations

import json

import pytest

from calltrack.app import App
from calltrack.leads.forms import InvalidForm, read_form
from tests.conftest import Http, Tenant, make_tenant
from tests.numbers.helpers import count, rows

CHROME = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36"


def test_contact_fields_are_found_and_secrets_dropped() -> None:
    form = read_form(
        {"name": "Jo Bloggs", "Phone": "(415) 555-0177", "E-mail": "Jo@Example.COM", "password": "hunter2", "card_number": "4111", "msg": "leak\x00"},
        region="US",
    )
    assert form.phone == "+14155550177" and form.email == "jo@example.com" and form.name == "Jo Bloggs"
    assert "password" not in form.fields and "card_number" not in form.fields
    assert form.fields["msg"] == "leak"


@pytest.mark.parametrize(
    "fields",
    [None, {}, [], "x", {"name": "Jo"}, {"phone": "call me"}, {"email": "not-an-email"}, {"phone": {"x": 1}}, {f"f{i}": "a@b.co" for i in range(51)}],
)
def test_unusable_forms_are_refused(fields: object) -> None:
    with pytest.raises(InvalidForm):
        read_form(fields, region="US")


def post(http: Http, body: object, **headers: str) -> tuple[int, object]:
    hdrs = {"User-Agent": CHROME, "Content-Type": "text/plain;charset=UTF-8"}
    hdrs.update(headers)
    code, resp, _ = http.request("POST", "/v1/forms", data=json.dumps(body).encode(), headers=hdrs)
    return code, resp


def test_a_submission_is_stored_once_even_when_replayed(http: Http, app: App, tenant: Tenant) -> None:
    body = {"site": tenant.site.site_key, "id": "sub-1", "vid": "v1", "sid": "s1", "url": "https://acme.example/contact",
            "fields": {"name": "Jo", "phone": "415 555 0177"}}
    assert post(http, body) == (201, {"id": 1, "duplicate": False, "lead_id": 1})
    assert post(http, body) == (200, {"id": 1, "duplicate": True, "lead_id": 1})
    without_id = dict(body, id=None)
    assert post(http, without_id)[0] == 201
    assert post(http, without_id)[0] == 200  # same content, same session: a double click
    assert count(app, "form_submissions") == 2
    stored = rows(app, "SELECT phone, vid, url FROM form_submissions ORDER BY id")[0]
    assert (stored.phone, stored.vid) == ("+14155550177", "v1")


def test_bad_form_posts_are_4xx_and_store_nothing(http: Http, app: App, tenant: Tenant) -> None:
    key = tenant.site.site_key
    cases = [
        ({"site": "site_nope", "fields": {"phone": "415 555 0177"}}, 404),
        ({"fields": {"phone": "415 555 0177"}}, 400),
        ({"site": key, "fields": {"name": "no contact"}}, 400),
        ({"site": key, "fields": "phone=1"}, 400),
        ({"site": key, "vid": "bad vid!", "fields": {"phone": "415 555 0177"}}, 400),
        ({"site": key, "url": "https://evil.example/", "fields": {"phone": "415 555 0177"}}, 403),
    ]
    for body, status in cases:
        assert post(http, body)[0] == status, body
    assert post(http, {"site": key, "fields": {"phone": "415 555 0177"}}, Origin="https://evil.example")[0] == 403
    code, _, _ = http.request("POST", "/v1/forms", data=b"{not json", headers={"User-Agent": CHROME})
    assert code == 400
    big = {"site": key, "fields": {"phone": "415 555 0177", "msg": "x" * 70_000}}
    assert post(http, big)[0] == 413
    assert count(app, "form_submissions") == 0


def test_submissions_are_listed_only_to_their_account(http: Http, app: App, tenant: Tenant) -> None:
    post(http, {"site": tenant.site.site_key, "fields": {"email": "jo@example.com"}})
    other = make_tenant(app, "Other", ("other.example",))
    code, mine, _ = http.request("GET", "/v1/forms", key=tenant.key)
    assert code == 200 and [f["email"] for f in mine["forms"]] == ["jo@example.com"]
    assert http.request("GET", "/v1/forms", key=other.key)[1] == {"forms": []}
    assert http.request("GET", "/v1/forms")[0] == 401


def test_payment_data_is_never_kept_whatever_the_field_is_called() -> None:
    form = read_form(
        {"email": "jo@example.com", "cc_number": "4111 1111 1111 1111", "cc_exp": "12/29", "security_code": "123",
         "pin": "4321", "notes": "4111-1111-1111-1111", "order": "1234567890123"},
        region="US",
    )
    assert set(form.fields) == {"email", "order"}  # 1234567890123 fails the Luhn check: an order number


def test_racing_deliveries_of_one_submission_store_it_once(app: App, tenant: Tenant) -> None:
    import threading

    from calltrack.leads.store import add_submission_txn

    if app.engine.dialect.name != "postgresql":
        pytest.skip("SQLite has one writer")
    values = {"account_id": tenant.account.id, "site_id": tenant.site.id, "client_ref": "race", "vid": None, "sid": None,
              "ts": 0.0, "url": None, "fields": {"email": "jo@example.com"}, "email": "jo@example.com", "phone": None, "name": None}
    results: list[bool] = []

    def deliver() -> None:
        with app.engine.begin() as conn:
            results.append(add_submission_txn(conn, values)[1])

    threads = [threading.Thread(target=deliver) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [False] * 7 + [True]
    assert count(app, "form_submissions") == 1
