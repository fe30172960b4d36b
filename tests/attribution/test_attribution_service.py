"""Attribution from the database: touches (visits of every visitor joined to a person, calls
to static numbers), conversions (leads reaching a stage, from their history), the API and the
CLI, on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import io
import json

import pytest

from calltrack import attribution
from tests.conftest import START, make_tenant
from tests.leads.helpers import DAY, journeys
from tests.numbers.helpers import rows

WINDOW = f"from={START:.0f}&to={START + 30 * DAY:.0f}"


def table(body, model):
    (result,) = [r for r in body["results"] if r["model"] == model]
    return {row[body["level"]]: round(row["conversions"], 6) for row in result["rows"] if row["conversions"]}


def test_leads_and_mqls_are_credited_by_their_journeys(app, http, tenant, clock) -> None:
    journeys(app, http, tenant, clock)
    status, body, _ = http.request("GET", f"/v1/attribution?model=first_touch,last_touch,linear,lead_creation&stage=lead&{WINDOW}", key=tenant.key)
    assert status == 200, body
    assert (body["conversions"], body["attributed"], body["unattributed"]) == (3, 3, 0)
    call_channel = rows(app, "SELECT channel FROM calls")[0][0] or "(none)"
    assert table(body, "first_touch") == {"paid_search": 1.0, "paid_social": 1.0, call_channel: 1.0}
    assert table(body, "last_touch") == {"paid_social": 2.0, call_channel: 1.0}
    assert table(body, "linear") == {"paid_search": 0.5, "paid_social": 1.5, call_channel: 1.0}
    assert body["persons"] == 4  # Ann, Bob, Cy and the anonymous Dee

    status, body, _ = http.request("GET", f"/v1/attribution?model=linear&{WINDOW}", key=tenant.key)  # stage mql by default
    assert status == 200 and body["stage"] == "mql" and body["conversions"] == 1
    assert table(body, "linear") == {"paid_search": 0.5, "paid_social": 0.5}

    status, body, _ = http.request("GET", f"/v1/attribution?model=linear&stage=lead&level=source_medium&{WINDOW}", key=tenant.key)
    assert table(body, "linear") == {"google / cpc": 0.5, "facebook / paid_social": 1.5, "billboard / outdoor": 1.0}


def test_csv_is_safe_in_a_spreadsheet_and_data_driven_models_give_intervals(app, http, tenant, clock) -> None:
    journeys(app, http, tenant, clock)
    status, raw, headers = http.request("GET", f"/v1/attribution?model=linear,markov&stage=lead&level=campaign&format=csv&{WINDOW}", key=tenant.key)
    assert status == 200 and headers.getRawHeaders("content-type")[0].startswith("text/csv")
    got = list(csv.reader(io.StringIO(raw.decode())))
    assert got[0] == ["model", "campaign", "conversions", "value"]
    campaigns = {row[1] for row in got[1:]}
    assert "'=HYPERLINK(\"http://x\")" in campaigns and "=HYPERLINK(\"http://x\")" not in campaigns
    status, body, _ = http.request("GET", f"/v1/attribution?model=markov&stage=lead&ci=true&samples=50&seed=3&{WINDOW}", key=tenant.key)
    assert status == 200
    (result,) = body["results"]
    assert len(result["rows"]) >= 2  # else the check below proves nothing
    assert all(r["low"] <= r["conversions"] + 1e-9 and r["conversions"] <= r["high"] + 1e-9 for r in result["rows"])
    again = http.request("GET", f"/v1/attribution?model=markov&stage=lead&ci=true&samples=50&seed=3&{WINDOW}", key=tenant.key)[1]
    assert again == body  # seeded: the same answer


def test_bad_queries_and_other_tenants(app, http, tenant, clock) -> None:
    journeys(app, http, tenant, clock)
    for query, fault in (
        ("", "'model' is required"), ("model=magic", "unknown model"), ("model=linear&stage=won", "'stage'"),
        ("model=linear&level=colour", "'level'"), (f"model=linear&from={START + DAY:.0f}&to={START:.0f}", "before"),
        (f"model=linear&from={START:.0f}&to={START + 800 * DAY:.0f}", "at most 731 days"), ("model=linear&lookback_days=0", "lookback_days"),
        ("model=time_decay&half_life_days=-1", "half_life_days"), ("model=position_based&first=0.7&last=0.7", "at most 1"),
        ("model=markov&order=9", "order"), ("model=shapley&variant=fancy", "variant"), ("model=linear&format=xml", "format"),
        ("model=linear&ci=maybe", "'ci'"), ("model=linear&from=yesterday", "'from'"),
        ("model=markov&ci=true&samples=abc", "'samples'"), ("model=markov&ci=true&samples=5", "'samples'"),
        ("model=markov&seed=-1", "'seed'"), ("model=markov&seed=x", "'seed'"), ("model=linear&lookback_days=abc", "lookback_days"),
        ("model=markov&order=abc", "'order'"), ("model=time_decay&half_life_days=abc", "must be a number"),
        ("model=time_decay&half_life_days=inf", "half_life_days"), ("model=time_decay&half_life_days=nan", "half_life_days"),
    ):
        status, body, _ = http.request("GET", f"/v1/attribution?{query}", key=tenant.key)
        assert status == 400 and fault in body["error"]["message"], (query, body)
    assert http.request("GET", "/v1/attribution?model=linear")[0] == 401
    # Every model at once, some named twice: each is computed once and counts once.
    every = ",".join(list(attribution.MODELS) + ["linear", "markov"])
    status, body, _ = http.request("GET", f"/v1/attribution?model={every}&stage=lead&{WINDOW}", key=tenant.key)
    assert status == 200, body
    assert [r["model"] for r in body["results"]] == list(attribution.MODELS)
    other = make_tenant(app, "Other Co", ("other.example",))
    status, body, _ = http.request("GET", f"/v1/attribution?model=linear&stage=lead&{WINDOW}", key=other.key)
    assert status == 200 and body["conversions"] == 0 and body["results"][0]["rows"] == [] and body["touches"] == 0


def test_the_cli_prints_a_table_csv_and_json(cli, tmp_path) -> None:
    cli("db", "upgrade")
    cli("demo", "seed")
    out = cli("attribute", "--model", "linear,first_touch", "--stage", "lead")
    assert "lead conversions" in out and "linear:" in out and "first_touch:" in out
    target = tmp_path / "a.csv"
    assert "wrote" in cli("attribute", "--model", "linear", "--stage", "lead", "--format", "csv", "--out", str(target))
    assert target.read_text().startswith("model,channel,conversions,value")
    body = json.loads(cli("--json", "attribute", "--model", "markov", "--stage", "lead", "--ci", "--samples", "20"))
    assert body["stage"] == "lead" and body["results"][0]["model"] == "markov"
    assert "unknown model" in cli("attribute", "--model", "magic", ok=False)
    assert "'level'" in cli("attribute", "--model", "linear", "--level", "colour", ok=False)


@pytest.mark.parametrize("stage", ["sql", "customer"])
def test_later_stages_count_from_when_the_lead_got_there(app, http, tenant, clock, stage) -> None:
    ann, bob = journeys(app, http, tenant, clock)
    clock.advance(DAY)
    assert http.request("PATCH", f"/v1/leads/{bob}", json_body={"stage": "sql"}, key=tenant.key)[0] == 200
    if stage == "customer":
        assert http.request("PATCH", f"/v1/leads/{bob}", json_body={"stage": "customer", "value": 1200}, key=tenant.key)[0] == 200
    status, body, _ = http.request("GET", f"/v1/attribution?model=last_touch&stage={stage}&{WINDOW}", key=tenant.key)
    assert status == 200 and body["conversions"] == 1
    assert table(body, "last_touch") == {"paid_social": 1.0}
    assert body["value"] == (1200.0 if stage == "customer" else 0.0)
    # Out of the period: nothing.
    status, body, _ = http.request("GET", f"/v1/attribution?model=last_touch&stage={stage}&from={START:.0f}&to={START + DAY:.0f}", key=tenant.key)
    assert body["conversions"] == 0
