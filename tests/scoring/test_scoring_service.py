"""Scoring through the service: versions, scoring off the hot path, MQL promotion, backfill."""

from __future__ import annotations

import gc
import json
from pathlib import Path

import pytest

from calltrack.scoring import store
from tests.conftest import START, make_tenant
from tests.numbers.helpers import rows, visit
from tests.telephony.helpers import STATIC_NUMBER, child_status, setup_phones, twilio_post, voice_params

RULES = {
    "rules": [
        {"name": "talked", "when": {"answered": True, "min_duration": 60}, "points": 70},
        {"name": "first call", "when": {"first_time_caller": True}, "points": 40},
        {"name": "pricing", "when": {"pricing_page": True}, "points": 5, "flag": "pricing"},
    ],
    "thresholds": {"warm": 40, "hot": 80, "mql": 100},
    "business_hours": {"days": [0, 1, 2, 3, 4, 5, 6], "start": "00:00", "end": "23:59"},
}


def test_rules_are_versioned_and_bad_ones_leave_the_active_version(app, http, tenant):
    status, body, _ = http.request("GET", "/v1/scoring/rules", key=tenant.key)
    assert status == 200 and body["version"] == 0 and body["rules"]["rules"]
    assert http.request("PUT", "/v1/scoring/rules", json_body=RULES, key=tenant.key)[1]["version"] == 1
    status, err, _ = http.request("PUT", "/v1/scoring/rules", json_body={"rules": [{"when": {"colour": "red"}, "points": 1}]}, key=tenant.key)
    assert status == 400 and err["error"]["code"] == "invalid_rules" and "colour" in err["error"]["message"]
    assert http.request("GET", "/v1/scoring/rules", key=tenant.key)[1]["version"] == 1
    other = make_tenant(app, "Other", ("other.example",))
    assert http.request("GET", "/v1/scoring/rules", key=other.key)[1]["version"] == 0
    assert http.request("PUT", "/v1/scoring/rules", json_body=RULES)[0] == 401


def test_a_call_is_scored_after_it_is_answered_and_promoted_to_mql(app, http, tenant, clock):
    setup_phones(app, tenant)
    http.request("PUT", "/v1/scoring/rules", json_body=RULES, key=tenant.key)
    sid = "CA" + "1" * 32
    twilio_post(http, "/v1/webhooks/twilio/voice", voice_params(sid, to=STATIC_NUMBER))
    lead_id = rows(app, "SELECT id FROM leads")[0][0]
    assert rows(app, "SELECT score FROM leads")[0][0] is None  # the webhook did not wait for scoring
    clock.advance(1.5)
    assert tuple(rows(app, "SELECT score, temperature, stage, scored_version FROM leads")[0]) == (40, "warm", "new", 1)
    twilio_post(http, "/v1/webhooks/twilio/status", child_status(sid, "completed", 2, duration=95))
    clock.advance(1.5)
    lead = http.request("GET", f"/v1/leads/{lead_id}", key=tenant.key)[1]
    assert lead["qualification"]["score"] == 110 and lead["qualification"]["temperature"] == "hot" and lead["stage"] == "mql"
    assert [h for h in lead["history"] if h["field"] == "stage"][-1]["actor"] == "system:scoring:v1"


def test_a_stage_sales_set_is_not_promoted(app, http, tenant, clock):
    setup_phones(app, tenant)
    http.request("PUT", "/v1/scoring/rules", json_body=RULES, key=tenant.key)
    sid = "CA" + "2" * 32
    twilio_post(http, "/v1/webhooks/twilio/voice", voice_params(sid, to=STATIC_NUMBER))
    lead_id = rows(app, "SELECT id FROM leads")[0][0]
    http.request("PATCH", f"/v1/leads/{lead_id}", json_body={"stage": "contacted"}, key=tenant.key)
    twilio_post(http, "/v1/webhooks/twilio/status", child_status(sid, "completed", 2, duration=95))
    clock.advance(1.5)
    assert tuple(rows(app, "SELECT score, stage FROM leads")[0]) == (110, "contacted")


def test_form_leads_and_flags(app, http, tenant, clock):
    http.request("PUT", "/v1/scoring/rules", json_body=RULES, key=tenant.key)
    visit(app, tenant, "v1", url="https://acme.example/pricing")
    http.request("POST", "/v1/forms", json_body={"site": tenant.site.site_key, "vid": "v1", "sid": "s-v1", "fields": {"email": "a@b.example"}},
                 headers={"Origin": "https://acme.example"})
    clock.advance(1.5)
    assert tuple(rows(app, "SELECT score, score_flags FROM leads")[0]) == (45, "pricing")


def test_scoring_backfill_cli(cli, tmp_path: Path) -> None:  # noqa: F811
    cli("db", "upgrade")
    cli("account", "create", "Acme", "--timezone", "UTC", "--currency", "usd", "--region", "US")
    cli("site", "add", "--name", "Acme", "--domain", "acme.example", "--number", "415 555 0100", "--forward-to", "415 555 0101")
    cli("numbers", "add", "+14155550150", "--source", "radio", "--forward-to", "+14155550101")
    lines = "".join(
        f'"","41555501{70 + i}","4155550150","c","","","","","","2026-11-20 10:0{i}:00","2026-11-20 10:0{i}:05","2026-11-20 10:0{i}:55",55,{50 + 20 * i},"ANSWERED","","1.{i}",""\n'
        for i in range(3)
    )
    (tmp_path / "Master.csv").write_text(lines)
    cli("calls", "import", "Master.csv")
    (tmp_path / "rules.json").write_text(json.dumps(RULES))
    assert "version 1" in cli("scoring", "set", "rules.json")
    (tmp_path / "bad.json").write_text('{"rules": []}')
    assert "1-200" in cli("scoring", "set", "bad.json", ok=False)
    result = json.loads(cli("--json", "scoring", "backfill"))
    assert (result["version"], result["scored"], result["promoted"]) == (1, 3, 2)  # 70 s and 90 s talks: 110 points
    shown = json.loads(cli("--json", "scoring", "show"))
    assert shown["version"] == 1 and shown["rules"]["thresholds"]["mql"] == 100


def test_the_backfill_leaves_the_garbage_collector_as_it_found_it(app, http, tenant, monkeypatch) -> None:
    http.request("POST", "/v1/forms", json_body={"site": tenant.site.site_key, "vid": "v1", "sid": "s-v1", "fields": {"phone": "415 555 0199"}},
                 headers={"Origin": "https://acme.example"})
    assert gc.isenabled()
    assert app.scoring.backfill_sync(tenant.account.id, now=START + 0.25) == (0, 1, 0)
    assert gc.isenabled()
    # a form with a phone, at 19:00 in New York (out of hours); no flag is NULL, not ''
    assert tuple(rows(app, "SELECT score, temperature, score_flags, scored_version, scored_at FROM leads")[0]) == (40, "warm", None, 0, START + 0.25)

    def fails(*args, **kwargs):
        raise RuntimeError("database gone")

    monkeypatch.setattr(store, "lead_facts_txn", fails)
    with pytest.raises(RuntimeError):
        app.scoring.backfill_sync(tenant.account.id, now=0.0)
    assert gc.isenabled()  # re-enabled on the way out of a failed run too
    gc.disable()
    try:
        with pytest.raises(RuntimeError):
            app.scoring.backfill_sync(tenant.account.id, now=0.0)
        assert not gc.isenabled()  # a caller that had it off keeps it off
    finally:
        gc.enable()
