"""Sales outcomes: the lifecycle's allowed moves, BANT, conversion, history, speed to lead."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from calltrack.leads.outcomes import OutcomeProblem, OutcomeRow, read_outcome, read_outcomes_csv
from calltrack.scoring.stages import STAGES, TRANSITIONS, InvalidOutcome, InvalidTransition, bant_stage, check_transition
from tests.conftest import make_tenant
from tests.numbers.helpers import rows
from tests.telephony.helpers import STATIC_NUMBER, child_status, setup_phones, twilio_post, voice_params

ORIGIN = {"Origin": "https://acme.example"}


def new_lead(http, tenant, email="ann@example.com", **extra) -> int:
    _, body, _ = http.request("POST", "/v1/forms", json_body={"site": tenant.site.site_key, "fields": {"email": email}, **extra}, headers=ORIGIN)
    return int(body["lead_id"])


def patch(http, tenant, lead_id, body, key=None):
    return http.request("PATCH", f"/v1/leads/{lead_id}", json_body=body, key=key or tenant.key)


# -- the pure lifecycle -------------------------------------------------------------------------


def test_every_stage_has_its_moves_and_customer_is_final() -> None:
    assert set(TRANSITIONS) == set(STAGES)
    assert TRANSITIONS["customer"] == ()
    for stage, moves in TRANSITIONS.items():
        assert stage not in moves and set(moves) <= set(STAGES)
    with pytest.raises(InvalidTransition) as e:
        check_transition("customer", "new")
    assert e.value.allowed == ()
    check_transition("sql", "sql")  # staying is no move


@given(st.dictionaries(st.sampled_from(["budget", "authority", "need", "timing"]), st.booleans()))
def test_bant_decides_sql_only_when_every_check_passes(bant) -> None:
    decided = bant_stage(bant)
    if False in bant.values():
        assert decided == "nurturing"
    elif len(bant) == 4:
        assert decided == "sql"
    else:
        assert decided is None


@pytest.mark.parametrize(
    "body",
    [{}, {"stage": "won"}, {"value": -1}, {"value": "12"}, {"value": float("inf")}, {"currency": "dollars"}, {"bant": {"budget": "yes"}},
     {"bant": {"money": True}}, {"owner": 5}, {"notes": "x" * 5001}, {"color": "red"}],
)
def test_bad_outcomes_are_refused(body) -> None:
    with pytest.raises(InvalidOutcome):
        read_outcome(body)


# -- through the API ----------------------------------------------------------------------------


def test_the_road_to_customer_is_recorded(app, http, tenant, clock):
    lead_id = new_lead(http, tenant)
    clock.advance(120)
    status, lead, _ = patch(http, tenant, lead_id, {"stage": "contacted", "owner": "Maria"})
    assert status == 200 and lead["stage"] == "contacted" and lead["sales"]["owner"] == "Maria"
    assert lead["speed"]["response_seconds"] == 120 and lead["speed"]["status"] == "on_time"
    clock.advance(60)
    status, lead, _ = patch(http, tenant, lead_id, {"bant": {"budget": True, "authority": True}})
    assert status == 200 and lead["stage"] == "contacted"  # still asking
    status, lead, _ = patch(http, tenant, lead_id, {"bant": {"need": True, "timing": True}})
    assert lead["stage"] == "sql" and lead["sales"]["stage_set_by"] == "sales"
    clock.advance(86400)
    status, lead, _ = patch(http, tenant, lead_id, {"stage": "customer", "value": 1250.5, "currency": "usd"})
    assert status == 200 and lead["stage"] == "customer" and lead["sales"]["value"] == 1250.5 and lead["sales"]["currency"] == "USD"
    assert lead["sales"]["converted_at"] == clock.seconds()
    detail = http.request("GET", f"/v1/leads/{lead_id}", key=tenant.key)[1]
    assert [(h["field"], h["old"], h["new"]) for h in detail["history"] if h["field"] == "stage"] == [
        ("stage", "new", "contacted"), ("stage", "contacted", "sql"), ("stage", "sql", "customer"),
    ]
    assert all(h["actor"] == "api:" + tenant.key[:10] for h in detail["history"])
    status, err, _ = patch(http, tenant, lead_id, {"stage": "lost", "loss_reason": "changed mind"})
    assert status == 409 and err["error"]["code"] == "invalid_transition" and err["error"]["allowed"] == []


def test_failed_bant_sends_the_lead_to_nurturing_and_lost_needs_a_reason(http, tenant):
    lead_id = new_lead(http, tenant)
    assert patch(http, tenant, lead_id, {"bant": {"budget": False}})[1]["stage"] == "nurturing"
    status, err, _ = patch(http, tenant, lead_id, {"stage": "lost"})
    assert status == 400 and "loss_reason" in err["error"]["message"]
    assert patch(http, tenant, lead_id, {"stage": "lost", "loss_reason": "no budget"})[1]["sales"]["loss_reason"] == "no budget"
    assert patch(http, tenant, lead_id, {"value": 300})[1]["sales"]["currency"] == "USD"  # the account's own
    status, err, _ = patch(http, tenant, lead_id, {"stage": "sql"})
    assert status == 409 and set(err["error"]["allowed"]) == {"nurturing", "contacted"}


def test_spam_by_hand_needs_a_reason_and_can_be_undone(http, tenant):
    lead_id = new_lead(http, tenant)
    assert patch(http, tenant, lead_id, {"stage": "spam"})[0] == 400
    assert patch(http, tenant, lead_id, {"stage": "spam", "spam_reason": "competitor"})[1]["spam_reason"] == "competitor"
    assert http.request("GET", "/v1/leads", key=tenant.key)[1]["leads"] == []
    lead = patch(http, tenant, lead_id, {"stage": "new"})[1]
    assert lead["stage"] == "new" and lead["spam_reason"] is None


def test_a_sales_stage_is_not_overridden_by_spam_rules(app, http, tenant, clock):
    setup_phones(app, tenant)
    twilio_post(http, "/v1/webhooks/twilio/voice", voice_params("CA" + "0" * 32, to=STATIC_NUMBER))
    lead_id = rows(app, "SELECT id FROM leads")[0][0]
    patch(http, tenant, lead_id, {"stage": "mql"})
    for i in range(1, 4):
        sid = f"CA{i:032d}"
        twilio_post(http, "/v1/webhooks/twilio/voice", voice_params(sid, to=STATIC_NUMBER))
        twilio_post(http, "/v1/webhooks/twilio/status", child_status(sid, "completed", 2, duration=2))
        clock.advance(60)
    assert rows(app, "SELECT stage FROM leads")[0][0] == "mql"


def test_an_answered_call_is_the_first_response_and_a_missed_one_is_not(app, http, tenant, clock):
    setup_phones(app, tenant)
    twilio_post(http, "/v1/webhooks/twilio/voice", voice_params("CA" + "0" * 32, to=STATIC_NUMBER))
    twilio_post(http, "/v1/webhooks/twilio/status", child_status("CA" + "0" * 32, "no-answer", 2))
    lead_id = rows(app, "SELECT id FROM leads")[0][0]
    clock.advance(3 * 3600)
    detail = http.request("GET", f"/v1/leads/{lead_id}", key=tenant.key)[1]
    assert detail["speed"]["status"] == "overdue" and detail["speed"]["missed_not_called_back"] is True
    sid = "CA" + "1" * 32
    twilio_post(http, "/v1/webhooks/twilio/voice", voice_params(sid, to=STATIC_NUMBER))
    twilio_post(http, "/v1/webhooks/twilio/status", child_status(sid, "in-progress", 1) | {"Timestamp": "Thu, 01 Jan 2026 03:00:40 +0000"})
    detail = http.request("GET", f"/v1/leads/{lead_id}", key=tenant.key)[1]
    assert detail["speed"]["status"] == "too_late" and detail["speed"]["missed_not_called_back"] is False


def test_outcomes_for_another_account_or_nothing_are_refused(app, http, tenant):
    lead_id = new_lead(http, tenant)
    other = make_tenant(app, "Other", ("other.example",))
    assert patch(http, tenant, lead_id, {"stage": "mql"}, key=other.key)[0] == 404
    assert patch(http, tenant, 999999, {"stage": "mql"})[0] == 404
    assert http.request("PATCH", f"/v1/leads/{lead_id}", data=b"{nope", headers={"Content-Type": "application/json"}, key=tenant.key)[0] == 400
    assert http.request("PATCH", f"/v1/leads/{lead_id}", json_body={"stage": "mql"})[0] == 401
    assert rows(app, "SELECT stage FROM leads")[0][0] == "new"


# -- CRM exports --------------------------------------------------------------------------------


def test_outcome_csv_rows_and_problems() -> None:
    lines = [
        "lead_id,email,stage,value,currency,loss_reason,budget,authority,need,timing\n",
        "1,,customer,\"1,200.00\",eur,,,,,\n",
        ",bo@example.com,,,,,yes,yes,yes,yes\n",
        "x,,mql,,,,,,,\n",
        "2,,lost,,,,,,,maybe\n",
        ",,mql,,,,,,,\n",
    ]
    out = list(read_outcomes_csv(lines))
    assert out[0] == OutcomeRow(2, 1, None, None, {"stage": "customer", "value": 1200.0, "currency": "EUR"})
    assert out[1] == OutcomeRow(3, None, None, "bo@example.com", {"bant": {"budget": True, "authority": True, "need": True, "timing": True}})
    assert [p.line for p in out[2:]] == [4, 5, 6] and all(isinstance(p, OutcomeProblem) for p in out[2:])


def test_leads_import_outcomes_cli(cli, tmp_path: Path) -> None:  # noqa: F811
    cli("db", "upgrade")
    cli("account", "create", "Acme", "--timezone", "UTC", "--currency", "usd", "--region", "US")
    cli("site", "add", "--name", "Acme", "--domain", "acme.example", "--number", "415 555 0100", "--forward-to", "415 555 0101")
    cli("numbers", "add", "+14155550150", "--source", "radio", "--forward-to", "+14155550101")
    (tmp_path / "Master.csv").write_text('"","4155550177","4155550150","c","","","","","","2026-11-20 10:00:00","2026-11-20 10:00:05","2026-11-20 10:02:05",125,120,"ANSWERED","","1.1",""\n')
    cli("calls", "import", "Master.csv")
    (tmp_path / "crm.csv").write_text("phone,stage,value,currency\n(415) 555-0177,customer,900,usd\n4155550999,mql,,\n")
    result = json.loads(cli("--json", "leads", "import-outcomes", "crm.csv"))
    assert result["applied"] == 1 and result["refused"] == 1 and "no lead" in result["problems"][0]["message"]
    again = json.loads(cli("--json", "leads", "import-outcomes", "crm.csv"))
    assert again["applied"] == 1  # the same outcome again changes nothing, and is no error


def test_bad_input_files_are_one_clean_error_each(cli, tmp_path: Path) -> None:  # noqa: F811
    cli("db", "upgrade")
    cli("account", "create", "Acme", "--timezone", "UTC", "--currency", "usd", "--region", "US")
    (tmp_path / "latin1.csv").write_bytes("lead_id,notes\n1,Jos\xe9\n".encode("latin-1"))
    (tmp_path / "huge.csv").write_text("lead_id,notes\n1,\"" + "x" * 200_000 + "\"\n")
    (tmp_path / "rules.json").write_bytes(b"\xff\xfe{")
    for command in (("leads", "import-outcomes"), ("calls", "import"), ("numbers", "import")):
        assert "not UTF-8" in cli(*command, "latin1.csv", ok=False)
        assert "cannot read" in cli(*command, "missing.csv", ok=False)
    assert "not a readable CSV" in cli("leads", "import-outcomes", "huge.csv", ok=False)
    assert "unreadable CSV" in cli("calls", "import", "huge.csv")  # the CDR reader reports it as a rejected row
    assert "not UTF-8" in cli("scoring", "set", "rules.json", ok=False)
    (tmp_path / "rules.json").write_text("{not json")
    assert "not JSON" in cli("scoring", "set", "rules.json", ok=False)
