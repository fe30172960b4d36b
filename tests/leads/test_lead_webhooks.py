"""Outbound lead webhooks: events written with the change that made them, delivered signed,
retried with back-off through failures, time-outs and refusals, logged, resent; the API's bad
input. The CRM is a real twisted.web resource reached through treq's StubTreq."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from twisted.internet import defer, error
from twisted.web.resource import Resource

from calltrack.leads import outbox
from calltrack.leads.outbox import InvalidWebhook, backoff, check_target, read_events, retry_after, stage_events
from calltrack.telephony import pbx
from tests.conftest import START, make_tenant, resolve
from tests.leads.helpers import CRM, ORIGIN, Crm, add_webhook, pump, use_crm
from tests.numbers.helpers import rows

def form(http: Any, tenant: Any, email: str) -> int:
    status, body, _ = http.request("POST", "/v1/forms", json_body={"site": tenant.site.site_key, "fields": {"email": email}}, headers=ORIGIN)
    assert status == 201, body
    return int(body["lead_id"])


def patch(http: Any, tenant: Any, lead_id: int, **outcome: Any) -> tuple[int, Any]:
    status, body, _ = http.request("PATCH", f"/v1/leads/{lead_id}", json_body=outcome, key=tenant.key)
    return status, body


def log(http: Any, tenant: Any, hook: dict[str, Any], **q: Any) -> list[dict[str, Any]]:
    query = "&".join(f"{k}={v}" for k, v in q.items())
    status, body, _ = http.request("GET", f"/v1/lead-webhooks/{hook['id']}/deliveries?{query}", key=tenant.key)
    assert status == 200, body
    return body["deliveries"]


def detail(http: Any, tenant: Any, hook: dict[str, Any], delivery_id: int) -> dict[str, Any]:
    status, body, _ = http.request("GET", f"/v1/lead-webhooks/{hook['id']}/deliveries/{delivery_id}", key=tenant.key)
    assert status == 200, body
    return body


# -- the pure part -------------------------------------------------------------------------------


def test_events_targets_and_stage_events() -> None:
    assert read_events(None) == read_events("*") == outbox.EVENTS
    assert read_events(["lead.stage_changed", "lead.created"]) == ("lead.created", "lead.stage_changed")
    assert read_events("lead.qualified") == ("lead.qualified",)
    for bad in ([], ["lead.deleted"], [1], {"a": 1}, 5):
        with pytest.raises(InvalidWebhook):
            read_events(bad)
    assert check_target(" https://crm.example/x?y=1 ", allow_private=False) == "https://crm.example/x?y=1"
    for bad in (None, "", "ftp://crm.example/", "https:///nohost", "https://user:pw@crm.example/", "https://crm.example/a b",
                "https://crm.example:0/", "https://crm.example:99999/", "https://crm.example/" + "a" * 2000, "javascript:alert(1)"):
        with pytest.raises(InvalidWebhook):
            check_target(bad, allow_private=True)
    for private in ("http://127.0.0.1:8080/", "http://localhost/", "http://10.1.2.3/", "http://192.168.0.5/", "http://169.254.169.254/latest",
                    "http://[::1]/", "http://[::ffff:10.0.0.1]/", "http://0.0.0.0/", "http://api.localhost/"):
        with pytest.raises(InvalidWebhook, match="allow_private_targets"):
            check_target(private, allow_private=False)
        assert check_target(private, allow_private=True) == private
    assert stage_events("new", "mql") == ["lead.stage_changed", "lead.qualified"]
    assert stage_events("contacted", "customer") == ["lead.stage_changed", "lead.qualified"]
    assert stage_events("mql", "sql") == ["lead.stage_changed"]  # qualified already
    assert stage_events("new", "spam") == ["lead.stage_changed"]


@given(st.integers(1, 40), st.integers(1, 10**9))
def test_backoff_doubles_within_its_spread_and_stops_at_the_cap(attempts: int, delivery_id: int) -> None:
    base, cap = 30.0, 6 * 3600.0
    delay = backoff(attempts, delivery_id, base=base, cap=cap)
    plain = min(cap, base * 2 ** (attempts - 1))
    assert 0.9 * plain <= delay <= 1.1 * plain
    assert delay == backoff(attempts, delivery_id, base=base, cap=cap)  # fixed per delivery
    if attempts > 1:  # the same delivery never waits less after one more failure
        assert delay >= backoff(attempts - 1, delivery_id, base=base, cap=cap)


def test_retry_after_reads_seconds_and_dates() -> None:
    assert retry_after("120", now=START) == 120.0
    assert retry_after("Thu, 01 Jan 2026 00:02:00 GMT", now=START) == 120.0
    assert retry_after("soon", now=START) is None and retry_after(None, now=START) is None
    assert outbox.next_delay(1, 7, base=30, cap=600, asked=500.0) == 500.0
    assert outbox.next_delay(1, 7, base=30, cap=600, asked=10**6) == 600  # never beyond the cap


# -- delivery --------------------------------------------------------------------------------


def test_a_new_lead_is_posted_signed_and_logged(app, http, tenant, clock) -> None:
    hook = add_webhook(http, tenant)
    assert hook["secret"].startswith("whsec_") and hook["events"] == list(outbox.EVENTS)
    crm = Crm()
    stub = use_crm(app, crm)
    lead_id = form(http, tenant, "ann@example.com")
    assert pump(app, stub) == 1
    (headers, raw), = crm.got
    # The receiver checks our signature exactly as we check a PBX's.
    assert pbx.verify_signature(headers["x-ct-signature"], raw, [hook["secret"]], now=clock.seconds()) == 0
    body = json.loads(raw)
    assert body["type"] == headers["x-ct-event"] == "lead.created"
    assert body["id"] == int(headers["x-ct-delivery"]) and headers["x-ct-attempt"] == "1"
    assert body["account_id"] == tenant.account.id and body["occurred_at"] == "2026-01-01T00:00:00.000Z"
    assert body["data"]["lead"]["id"] == lead_id and body["data"]["lead"]["contact"]["email"] == "ann@example.com"
    assert headers["content-type"] == "application/json" and headers["user-agent"].startswith("calltrack-webhooks/")
    (entry,) = log(http, tenant, hook)
    assert (entry["status"], entry["attempts"], entry["last_status"], entry["delivered_at"]) == ("delivered", 1, 200, clock.seconds())
    full = detail(http, tenant, hook, entry["id"])
    assert full["body"] == body and [(a["status_code"], a["response"]) for a in full["attempt_log"]] == [(200, '{"ok": true}')]
    assert pump(app, stub) == 0 and len(crm.got) == 1  # delivered once, not again
    listed = http.request("GET", "/v1/lead-webhooks", key=tenant.key)[1]["webhooks"]
    assert listed == [{k: v for k, v in hook.items() if k != "secret"} | {"deliveries": {"delivered": 1}}]


def test_failures_time_outs_and_refusals_are_retried_with_back_off_until_delivered(app, http, tenant, clock) -> None:
    hook = add_webhook(http, tenant)
    crm = Crm(500, "hang", (503, {"Retry-After": "900"}))
    stub = use_crm(app, crm)
    form(http, tenant, "bob@example.com")
    (delivery,) = log(http, tenant, hook)
    did = delivery["id"]

    assert pump(app, stub) == 1  # 1: HTTP 500
    (entry,) = log(http, tenant, hook)
    first_wait = backoff(1, did, base=30, cap=6 * 3600)
    assert (entry["status"], entry["attempts"], entry["last_error"]) == ("pending", 1, "HTTP 500")
    assert entry["next_attempt_at"] == pytest.approx(clock.seconds() + first_wait)
    clock.advance(first_wait - 1)
    assert pump(app, stub) == 0  # not yet due
    clock.advance(1)
    assert pump(app, stub) == 1  # 2: the CRM hangs…
    assert log(http, tenant, hook)[0]["attempts"] == 1  # …still in flight
    clock.advance(10)  # outbox.timeout_seconds
    (entry,) = log(http, tenant, hook)
    assert (entry["attempts"], entry["last_status"], entry["last_error"]) == (2, None, "no answer within 10 s")
    clock.advance(backoff(2, did, base=30, cap=6 * 3600))
    assert pump(app, stub) == 1  # 3: busy, come back in 900 s (longer than our back-off)
    (entry,) = log(http, tenant, hook)
    assert entry["next_attempt_at"] == pytest.approx(clock.seconds() + 900)

    # 4: the connection is refused (the CRM is down): recorded like any failure.
    refusing = use_crm(app, Crm())
    refusing.post = lambda *a, **k: defer.fail(error.ConnectionRefusedError())
    clock.advance(900)
    resolve(app.outbox.tick())
    (entry,) = log(http, tenant, hook)
    assert (entry["attempts"], entry["last_error"]) == (4, "connection refused")

    stub = use_crm(app, crm)  # 5: back, and answering
    clock.advance(backoff(4, did, base=30, cap=6 * 3600))
    assert pump(app, stub) == 1
    full = detail(http, tenant, hook, did)
    assert full["status"] == "delivered" and full["attempts"] == 5
    assert [(a["status_code"], a["error"]) for a in full["attempt_log"]] == [
        (500, "HTTP 500"), (None, "no answer within 10 s"), (503, "HTTP 503"), (None, "connection refused"), (200, None)
    ]
    assert full["attempt_log"][0]["response"] == "upstream exploded    <b>"  # printable text only
    # Every attempt sent the same bytes under the same id, each signed at its own time.
    bodies = {raw for _, raw in crm.got}
    assert len(bodies) == 1 and [h["x-ct-attempt"] for h, _ in crm.got] == ["1", "2", "3", "5"]
    assert len({h["x-ct-signature"] for h, _ in crm.got}) == 4


def test_attempts_run_out_then_a_resend_delivers(app, http, tenant, clock) -> None:
    hook = add_webhook(http, tenant)
    crm = Crm(*([500] * 18))
    stub = use_crm(app, crm)
    form(http, tenant, "cy@example.com")
    for _ in range(18):
        assert pump(app, stub) == 1
        clock.advance(7 * 3600)
    (entry,) = log(http, tenant, hook)
    assert (entry["status"], entry["attempts"], entry["next_attempt_at"]) == ("failed", 18, None)
    assert log(http, tenant, hook, status="failed") == [entry] and log(http, tenant, hook, status="pending") == []
    assert pump(app, stub) == 0  # failed for good: kept, not sent
    status, resent, _ = http.request("POST", f"/v1/lead-webhooks/{hook['id']}/deliveries/{entry['id']}/resend", key=tenant.key)
    assert status == 202 and resent["status"] == "pending"
    assert pump(app, stub) == 1
    full = detail(http, tenant, hook, entry["id"])
    assert full["status"] == "delivered" and len(full["attempt_log"]) == 19
    assert app.registry.get_sample_value("calltrack_lead_webhook_failed_total") == 1


def test_stage_moves_and_subscriptions(app, http, tenant) -> None:
    everything = add_webhook(http, tenant)
    qualified_only = add_webhook(http, tenant, ["lead.qualified"])
    crm = Crm()
    stub = use_crm(app, crm)
    a = form(http, tenant, "dee@example.com")
    assert patch(http, tenant, a, stage="mql")[0] == 200
    assert patch(http, tenant, a, stage="sql")[0] == 200
    assert patch(http, tenant, a, stage="new")[0] == 409  # not a move sales can make: nothing sent for it
    b = form(http, tenant, "eve@example.com")
    assert patch(http, tenant, b, stage="spam", spam_reason="misdial")[0] == 200
    while pump(app, stub):
        pass
    assert sorted(e for e in crm.events()) == sorted(
        [("lead.created", a), ("lead.stage_changed", a), ("lead.qualified", a), ("lead.qualified", a), ("lead.stage_changed", a),
         ("lead.created", b), ("lead.stage_changed", b)]
    )
    assert [d["event"] for d in log(http, tenant, qualified_only)] == ["lead.qualified"]
    changes = [d["change"] for d in log(http, tenant, everything) if d["event"] == "lead.stage_changed"]
    actor = "api:" + tenant.key[:10]
    assert changes == [{"field": "stage", "from": "new", "to": "spam", "by": actor}, {"field": "stage", "from": "mql", "to": "sql", "by": actor},
                       {"field": "stage", "from": "new", "to": "mql", "by": actor}]
    # The body tells the lead as it was when first sent, and the change it reports.
    sql_move = next(json.loads(raw) for h, raw in crm.got if json.loads(raw)["data"].get("change", {}).get("to") == "sql")
    assert sql_move["data"]["lead"]["stage"] == "sql" and sql_move["data"]["change"]["from"] == "mql"
    assert log(http, tenant, everything, lead_id=b, limit=1)[0]["event"] == "lead.stage_changed"


def test_spam_leads_are_not_announced_and_a_lead_turned_spam_is_a_stage_move(app, http, tenant) -> None:
    from calltrack.telephony.store import block_caller_txn
    from tests.telephony.helpers import STATIC_NUMBER, setup_phones, twilio_post, voice_params

    setup_phones(app, tenant)
    add_webhook(http, tenant)
    app.db.run_sync("block", block_caller_txn, tenant.account.id, "+14155550199", "robocaller", START)
    twilio_post(http, "/v1/webhooks/twilio/voice", voice_params("CA" + "4" * 32, caller="+14155550199", to=STATIC_NUMBER))
    assert rows(app, "SELECT stage FROM leads") == [("spam",)]
    assert rows(app, "SELECT count(*) FROM lead_webhook_deliveries") == [(0,)]  # a CRM wants no spam
    twilio_post(http, "/v1/webhooks/twilio/voice", voice_params("CA" + "5" * 32, caller="+14155550111", to=STATIC_NUMBER))
    app.db.run_sync("block", block_caller_txn, tenant.account.id, "+14155550111", "abusive", START)
    twilio_post(http, "/v1/webhooks/twilio/voice", voice_params("CA" + "6" * 32, caller="+14155550111", to=STATIC_NUMBER))
    got = rows(app, "SELECT event, detail FROM lead_webhook_deliveries ORDER BY id")
    assert [(e, json.loads(d) if d else None) for e, d in got] == [
        ("lead.created", None), ("lead.stage_changed", {"field": "stage", "from": "new", "to": "spam", "by": "system:blocklisted"})
    ]


def test_a_hanging_crm_holds_only_its_share_and_others_still_get_theirs(app, http, tenant, clock) -> None:
    slow = add_webhook(http, tenant, ["lead.created"])
    other_tenant = make_tenant(app, "Other Co", ("other.example",))
    fast = add_webhook(http, other_tenant, ["lead.created"])
    for i in range(10):
        form(http, tenant, f"p{i}@example.com")
    status, _, _ = http.request(
        "POST", "/v1/forms", json_body={"site": other_tenant.site.site_key, "fields": {"email": "q@example.com"}}, headers={"Origin": "https://other.example"}
    )
    assert status == 201
    class Router(Resource):
        isLeaf = True

        def __init__(self) -> None:
            super().__init__()
            self.hanging, self.ok = Crm(*["hang"] * 100), Crm()

        def render_POST(self, request: Any) -> Any:
            account = int(request.requestHeaders.getRawHeaders("x-ct-delivery")[0])
            target = self.ok if rows(app, "SELECT webhook_id FROM lead_webhook_deliveries WHERE id = :i", i=account)[0][0] == fast["id"] else self.hanging
            return target.render_POST(request)

    router = Router()
    stub = use_crm(app, router)
    assert pump(app, stub) == 5  # 4 to the hanging CRM (max_in_flight_per_endpoint), 1 to the other
    assert pump(app, stub) == 0  # the hanging one's share is taken; its other rows wait
    assert len(router.hanging.got) == 4 and len(router.ok.got) == 1
    assert app.outbox.in_flight == 4
    clock.advance(10)
    assert app.outbox.in_flight == 0
    assert [d["status"] for d in log(http, other_tenant, fast)] == ["delivered"]
    timed_out = [d for d in log(http, tenant, slow) if d["attempts"] == 1]
    assert len(timed_out) == 4 and all(d["last_error"] == "no answer within 10 s" for d in timed_out)


def test_a_dispatcher_that_dies_mid_attempt_leaves_the_delivery_to_another(app, http, tenant, clock) -> None:
    """Two processes: the first claims and dies before recording; the row is not sent by the
    second while the claim holds, and is once it lapses (at least once, never lost)."""
    from calltrack.leads import outbox_store
    from calltrack.leads.outbox_service import _lead_json

    add_webhook(http, tenant)
    form(http, tenant, "fay@example.com")
    claim = lambda: app.db.run_sync(  # noqa: E731
        "claim", outbox_store.claim_due_txn, clock.seconds(), 10, hold_seconds=70, per_webhook=4, in_flight={}, lead_json=_lead_json
    )
    (first,) = claim()  # process A, which then dies
    assert claim() == []  # process B: claimed by A
    clock.advance(69)
    assert claim() == []
    clock.advance(1)
    (again,) = claim()
    assert (again.delivery_id, again.body, again.attempt) == (first.delivery_id, first.body, 1)


def test_removing_a_webhook_cancels_what_it_had_pending(app, http, tenant) -> None:
    hook = add_webhook(http, tenant)
    crm = Crm()
    stub = use_crm(app, crm)
    form(http, tenant, "gus@example.com")
    status, body, _ = http.request("DELETE", f"/v1/lead-webhooks/{hook['id']}", key=tenant.key)
    assert (status, body) == (200, {"removed": True, "cancelled_deliveries": 1})
    form(http, tenant, "hal@example.com")
    assert pump(app, stub) == 0 and crm.got == []
    assert [d["status"] for d in log(http, tenant, hook)] == ["cancelled"]
    (entry,) = log(http, tenant, hook)
    status, body, _ = http.request("POST", f"/v1/lead-webhooks/{hook['id']}/deliveries/{entry['id']}/resend", key=tenant.key)
    assert status == 409 and body["error"]["code"] == "webhook_removed"
    assert http.request("GET", f"/v1/lead-webhooks/{hook['id']}", key=tenant.key)[1]["active"] is False


# -- bad input -------------------------------------------------------------------------------


def test_bad_registrations_and_other_tenants(app, http, tenant) -> None:
    def post(body: Any, key: str = tenant.key) -> tuple[int, Any]:
        status, answer, _ = http.request("POST", "/v1/lead-webhooks", json_body=body, key=key)
        return status, answer

    for body, code in (
        ({}, "invalid_webhook"), ({"url": "ftp://crm.example/"}, "invalid_webhook"), ({"url": "http://127.0.0.1:9/"}, "invalid_webhook"),
        ({"url": CRM, "events": ["lead.won"]}, "invalid_webhook"), ({"url": CRM, "secret": "mine"}, "invalid_parameter"),
        ({"url": CRM, "description": 5}, "invalid_parameter"), ([CRM], "malformed_json"),
    ):
        status, answer = post(body)
        assert status == 400 and answer["error"]["code"] == code, (body, answer)
    assert rows(app, "SELECT count(*) FROM lead_webhooks") == [(0,)]
    assert http.request("POST", "/v1/lead-webhooks", data=b"{not json", headers={"Content-Type": "application/json"}, key=tenant.key)[0] == 400
    assert http.request("POST", "/v1/lead-webhooks", json_body={"url": CRM})[0] == 401
    for _ in range(10):
        assert post({"url": CRM})[0] == 201
    status, answer = post({"url": CRM})
    assert status == 409 and "remove one" in answer["error"]["message"]

    hook = http.request("GET", "/v1/lead-webhooks", key=tenant.key)[1]["webhooks"][0]
    form(http, tenant, "ivy@example.com")
    (entry,) = log(http, tenant, hook)
    other = make_tenant(app, "Other Co", ("other.example",))
    base = f"/v1/lead-webhooks/{hook['id']}"
    for method, path in (("GET", base), ("DELETE", base), ("GET", base + "/deliveries"), ("GET", f"{base}/deliveries/{entry['id']}"),
                         ("POST", f"{base}/deliveries/{entry['id']}/resend"), ("GET", "/v1/lead-webhooks/99999999999999")):
        status, answer, _ = http.request(method, path, key=other.key)
        assert status == 404 and answer["error"]["code"] == "not_found", (method, path)
    assert http.request("GET", "/v1/lead-webhooks", key=other.key)[1] == {"webhooks": []}
    assert http.request("GET", base + "/deliveries?status=lost", key=tenant.key)[0] == 400
    assert http.request("GET", base + "/deliveries?limit=0", key=tenant.key)[0] == 400
    assert http.request("GET", base + "/deliveries/99999", key=tenant.key)[0] == 404
    assert http.request("GET", base, key=tenant.key)[1]["active"] is True  # another tenant's DELETE changed nothing


def test_the_secret_is_shown_once(app, http, tenant) -> None:
    hook = add_webhook(http, tenant)
    for path in ("/v1/lead-webhooks", f"/v1/lead-webhooks/{hook['id']}"):
        assert hook["secret"] not in json.dumps(http.request("GET", path, key=tenant.key)[1])


def test_a_call_lead_and_its_promotion_by_scoring_are_announced(app, http, tenant, clock) -> None:
    from tests.scoring.test_scoring_service import RULES
    from tests.telephony.helpers import STATIC_NUMBER, child_status, setup_phones, twilio_post, voice_params

    setup_phones(app, tenant)
    http.request("PUT", "/v1/scoring/rules", json_body=RULES, key=tenant.key)
    hook = add_webhook(http, tenant)
    crm = Crm()
    stub = use_crm(app, crm)
    sid = "CA" + "3" * 32
    twilio_post(http, "/v1/webhooks/twilio/voice", voice_params(sid, to=STATIC_NUMBER))
    twilio_post(http, "/v1/webhooks/twilio/status", child_status(sid, "completed", 2, duration=95))
    twilio_post(http, "/v1/webhooks/twilio/status", child_status(sid, "completed", 2, duration=95))  # a retry: no new event
    clock.advance(1.5)  # scored: 110 points, promoted to MQL
    while pump(app, stub):
        pass
    lead_id = rows(app, "SELECT id FROM leads")[0][0]
    assert sorted(crm.events()) == [("lead.created", lead_id), ("lead.qualified", lead_id), ("lead.stage_changed", lead_id)]
    created = next(json.loads(raw) for h, raw in crm.got if h["x-ct-event"] == "lead.created")
    assert created["data"]["lead"]["kind"] == "call" and created["data"]["lead"]["source"]["match_method"] == "static"
    move = next(d for d in log(http, tenant, hook) if d["event"] == "lead.qualified")["change"]
    assert move == {"field": "stage", "from": "new", "to": "mql", "by": "system:scoring:v1"}


def test_the_cli_adds_lists_shows_resends_and_removes(cli) -> None:
    cli("db", "upgrade")
    cli("account", "create", "Acme")
    assert "allow_private_targets" in cli("lead-webhooks", "add", "http://127.0.0.1:9/hook", ok=False)
    assert "unknown event 'lead.won'" in cli("lead-webhooks", "add", CRM, "--events", "lead.created,lead.won", ok=False)
    added = json.loads(cli("--json", "lead-webhooks", "add", CRM, "--events", "lead.created,lead.qualified", "--description", "HubSpot"))
    assert added["secret"].startswith("whsec_") and added["events"] == ["lead.created", "lead.qualified"]
    out = cli("lead-webhooks", "list")
    assert f"{added['id']}: {CRM}  lead.created, lead.qualified  no deliveries yet" in out and added["secret"] not in out
    assert cli("lead-webhooks", "deliveries", str(added["id"])).strip() == "no deliveries"
    assert "no such lead webhook" in cli("lead-webhooks", "deliveries", "99", ok=False)
    assert "no such delivery" in cli("lead-webhooks", "resend", str(added["id"]), "5", ok=False)
    assert "0 pending deliveries cancelled" in cli("lead-webhooks", "remove", str(added["id"]))
    assert "(removed)" in cli("lead-webhooks", "list")
    assert "was removed" in cli("lead-webhooks", "resend", str(added["id"]), "5", ok=False)


def test_a_failing_crm_rests_instead_of_being_tried_for_every_new_lead(app, http, tenant, clock) -> None:
    hook = add_webhook(http, tenant, ["lead.created"])
    crm = Crm(500, 500, 500, 500)  # then it recovers
    stub = use_crm(app, crm)
    for i in range(10):
        form(http, tenant, f"r{i}@example.com")
    assert pump(app, stub) == 4  # its share in flight; all four fail
    assert pump(app, stub) == 0  # three failures in a row: the endpoint rests, six events wait untried
    assert sorted(d["attempts"] for d in log(http, tenant, hook)) == [0] * 6 + [1] * 4
    clock.advance(backoff(2, hook["id"], base=30, cap=300) + 0.01)
    assert pump(app, stub) == 4  # back: delivered, and the rest follow at once
    while pump(app, stub):
        pass
    assert [d["status"] for d in log(http, tenant, hook)] == ["delivered"] * 10


def test_settled_deliveries_are_forgotten_after_keep_days(app, http, tenant, clock) -> None:
    hook = add_webhook(http, tenant)
    crm = Crm(*([500] * 18))
    stub = use_crm(app, crm)
    form(http, tenant, "old@example.com")  # will fail for good
    for _ in range(18):
        pump(app, stub)
        clock.advance(7 * 3600)
    clock.advance(10 * 86400)
    form(http, tenant, "new@example.com")  # delivered
    pump(app, stub)
    clock.advance(25 * 86400)
    form(http, tenant, "pending@example.com")
    assert resolve(app.outbox.prune(clock.seconds())) == 1  # the failed one, settled 30+ days ago
    assert [d["status"] for d in log(http, tenant, hook)] == ["pending", "delivered"]
    assert rows(app, "SELECT count(*) FROM lead_webhook_attempts") == [(1,)]
