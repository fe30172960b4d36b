"""The operations report (speed to lead, missed calls not called back, reasons, source quality,
pools) and planning (the domain reference's worked examples), through the API and the CLI."""

from __future__ import annotations

import json


from calltrack.reports.planning import history_rates, plan
from tests.leads.helpers import DAY, journeys
from tests.conftest import make_tenant
from tests.telephony.helpers import STATIC_NUMBER, twilio_post, voice_params

PERIOD = "from=2025-12-31&to=2026-01-30"


def test_planning_follows_the_worked_examples() -> None:
    # 200 clicks × 100 = 20,000 spent, 10 leads: a budget of 20,000 at CPC 100 and 5 % brings 10.
    out = plan({"cpc": 100.0, "lead_rate": 0.05, "qualified_rate": 0.5, "customer_rate": 0.1}, budget=20_000)
    assert out["budget"] == {"budget": 20_000, "clicks": 200.0, "leads": 10.0, "qualified": 5.0, "customers": 1.0, "cpl": 2000.0}
    # 50,000 visitors → 5,000 leads (10 %) → 500 customers (10 %), turned around.
    out = plan({"cpc": 2.0, "lead_rate": 0.1, "qualified_rate": None, "customer_rate": 0.1}, target_customers=500)
    assert out["target"] == {"customers": 500, "clicks": 50_000.0, "leads": 5_000.0, "budget": 100_000.0}
    assert out["missing"] == ["qualified_rate"]
    rates = history_rates({"clicks": 110, "cost": 22_000, "leads": 60, "qualified": 30, "customers": 6})
    assert (rates["cpc"], round(rates["lead_rate"], 3), rates["qualified_rate"], rates["customer_rate"]) == (200.0, 0.545, 0.5, 0.1)
    assert history_rates({"clicks": 0, "cost": 0, "leads": 0, "qualified": 0, "customers": 0}) == dict.fromkeys(("cpc", "lead_rate", "qualified_rate", "customer_rate"))


def test_the_operations_report(app, http, tenant, clock) -> None:
    ann, bob = journeys(app, http, tenant, clock)  # Ann went to MQL by PATCH (a first response)
    assert http.request("POST", "/v1/owners", json_body={"name": "Maria"}, key=tenant.key)[0] == 201
    assert http.request("PATCH", f"/v1/leads/{bob}", json_body={"stage": "lost", "loss_reason": "too expensive"}, key=tenant.key)[0] == 200
    twilio_post(http, "/v1/webhooks/twilio/voice", voice_params("CA" + "8" * 32, caller="+14155550188", to=STATIC_NUMBER))
    twilio_post(http, "/v1/webhooks/twilio/status", voice_params("CA" + "8" * 32, caller="+14155550188", to=STATIC_NUMBER, CallStatus="no-answer"))
    clock.advance(3 * DAY)
    status, body, _ = http.request("GET", f"/v1/reports/operations?{PERIOD}", key=tenant.key)
    assert status == 200, body
    by_channel = {r["channel"]: r for r in body["speed_to_lead"]["by_channel"]}
    assert by_channel["paid_social"]["leads"] == 2 and by_channel["paid_social"]["answered"] >= 1
    assert body["missed_calls"]["not_called_back"] == 1 and body["missed_calls"]["calls"][0]["caller"] == "+14155550188"
    assert body["loss_reasons"] == [{"reason": "too expensive", "leads": 1, "share": 1.0}]
    assert {p["name"] for p in body["pools"]} >= {"web"}
    assert any(q["source"] == "facebook" for q in body["source_quality"])
    other = make_tenant(app, "Other Co", ("other.example",))
    assert http.request("GET", f"/v1/reports/operations?{PERIOD}", key=other.key)[1]["missed_calls"]["missed"] == 0


def test_plan_from_the_paid_history_and_bad_input(app, http, tenant, clock) -> None:
    journeys(app, http, tenant, clock)
    costs = "date,source,medium,campaign,clicks,cost\n2026-01-01,facebook,paid_social,spring,40,200\n"
    assert http.request("POST", "/v1/costs", data=costs.encode(), headers={"Content-Type": "text/csv"}, key=tenant.key)[0] == 201
    status, body, _ = http.request("GET", f"/v1/reports/plan?budget=1000&{PERIOD}", key=tenant.key)
    assert status == 200, body
    assert body["rates"]["cpc"] == 5.0 and body["rates"]["lead_rate"] == 2 / 40 and body["budget"]["leads"] == 10.0
    for query in ("", "budget=-5", "budget=abc", "lead_rate=2&budget=5", "from=2026-02-01&to=2026-01-01&budget=1"):
        assert http.request("GET", f"/v1/reports/plan?{query}", key=tenant.key)[0] == 400, query


def test_the_cli(cli) -> None:
    cli("db", "upgrade")
    cli("demo", "seed")
    assert "missed calls: 0" in cli("report-ops")
    out = cli("plan", "--budget", "1000")
    assert "1,000.00 USD" in out and "unknown (no paid history; give them)" in out
    body = json.loads(cli("--json", "plan", "--target-customers", "10", "--cpc", "2", "--lead-rate", "0.1", "--customer-rate", "0.2"))
    assert body["target"]["budget"] == 1000.0
    assert "give --budget" in cli("plan", ok=False)
    assert "above 0" in cli("plan", "--budget", "-1", ok=False)
