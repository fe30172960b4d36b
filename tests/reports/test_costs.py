"""Ad spend: a cost CSV is imported whole or not at all, replaces its period for its sources,
and bought-lead prices are kept per source/medium/campaign."""

from __future__ import annotations

import io
import json

import pytest

from calltrack.reports.costs import CostProblem, read_costs, read_pricing
from tests.conftest import make_tenant

GOOGLE = """date,source,medium,campaign,keyword,clicks,impressions,cost,currency
2026-01-01,Google,CPC,Spring,plumber,120,3000,240.50,USD
2026-01-02,google,cpc,Spring,,80,2000,"1,150.25",USD
"""


def test_reading_names_every_bad_line_and_takes_nothing() -> None:
    rows = read_costs(io.StringIO(GOOGLE), currency="usd")
    assert [(r.day, r.source, r.medium, r.campaign, r.keyword, r.clicks, r.cost) for r in rows] == [
        ("2026-01-01", "google", "cpc", "Spring", "plumber", 120, 240.5), ("2026-01-02", "google", "cpc", "Spring", "", 80, 1150.25)
    ]
    facebook = "Day,Campaign name,Amount spent,Link clicks,Network\n01/03/2026,Retarget,\"12,50\",7,facebook\n"
    (row,) = read_costs(io.StringIO(facebook), currency="USD")
    assert (row.day, row.campaign, row.cost, row.clicks, row.source, row.medium) == ("2026-01-03", "Retarget", 12.5, 7, "facebook", "")
    bad = GOOGLE + "2026-13-01,google,cpc,X,,1,1,1,USD\n2026-01-03,,cpc,X,,1,1,1,USD\n2026-01-03,google,cpc,X,,1.5,1,1,USD\n" \
        "2026-01-03,google,cpc,Y,,1,1,-4,USD\n2026-01-03,google,cpc,Z,,1,1,1,EUR\n2026-01-01,google,cpc,Spring,plumber,1,1,1,USD\n"
    with pytest.raises(CostProblem) as e:
        read_costs(io.StringIO(bad), currency="USD")
    assert [line for line, _ in e.value.problems] == [4, 5, 6, 7, 8, 9]
    messages = " | ".join(m for _, m in e.value.problems)
    for part in ("is not YYYY-MM-DD", "source is empty", "whole number", "at least 0", "convert before importing", "as line 2"):
        assert part in messages
    for text, fault in (("", "empty"), ("date,cost\n2026-01-01,1\n", "missing column 'source'"), ("date,source,cost\n", "no cost rows")):
        with pytest.raises(CostProblem, match=fault):
            read_costs(io.StringIO(text), currency="USD")


def test_pricing_models_are_checked() -> None:
    assert read_pricing({"source": "LeadVendor", "model": "per_lead", "price": 40}).source == "leadvendor"
    assert read_pricing({"source": "x", "model": "per_action", "stage": "sql", "price": 90.555}).price == 90.56
    for doc, fault in (
        ([], "JSON object"), ({"model": "per_lead", "price": 1}, "source"), ({"source": "x", "model": "per_view", "price": 1}, "model"),
        ({"source": "x", "model": "per_lead", "price": -1}, "price"), ({"source": "x", "model": "per_lead", "price": True}, "price"),
        ({"source": "x", "model": "per_action", "price": 1}, "stage"), ({"source": "x", "model": "per_lead", "price": 1, "stage": "sql"}, "per_action"),
        ({"source": "x", "model": "per_lead", "price": 1, "colour": "red"}, "unknown field"),
    ):
        with pytest.raises(ValueError, match=fault):
            read_pricing(doc)


def post_costs(http, tenant, text: str):
    return http.request("POST", "/v1/costs", data=text.encode(), headers={"Content-Type": "text/csv"}, key=tenant.key)


def test_import_replaces_its_period_for_its_sources(app, http, tenant) -> None:
    status, body, _ = post_costs(http, tenant, GOOGLE)
    assert status == 201 and body == {"imported": 2, "replaced": 0, "from": "2026-01-01", "to": "2026-01-02", "sources": ["google"]}
    facebook = "date,source,medium,campaign,clicks,cost\n2026-01-01,facebook,paid_social,Retarget,10,30\n"
    assert post_costs(http, tenant, facebook)[1]["replaced"] == 0
    status, body, _ = post_costs(http, tenant, GOOGLE)  # again: idempotent
    assert status == 201 and body["replaced"] == 2
    listed = http.request("GET", "/v1/costs?from=2026-01-01&to=2026-01-31", key=tenant.key)[1]
    assert listed["totals"] == {"clicks": 210, "impressions": 5000, "cost": 1420.75}
    assert [(c["date"], c["source"]) for c in listed["costs"]] == [("2026-01-01", "facebook"), ("2026-01-01", "google"), ("2026-01-02", "google")]
    # A bad file changes nothing and names its lines.
    status, body, _ = post_costs(http, tenant, GOOGLE.replace("240.50", "lots"))
    assert status == 400 and body["error"]["code"] == "invalid_costs" and body["error"]["problems"][0]["line"] == 2
    assert http.request("GET", "/v1/costs?from=2026-01-01&to=2026-01-31", key=tenant.key)[1]["totals"]["cost"] == 1420.75
    assert post_costs(http, tenant, "")[0] == 400
    assert http.request("POST", "/v1/costs", data=b"\xff\xfe", headers={"Content-Type": "text/csv"}, key=tenant.key)[0] == 400
    for query in ("from=2026-02-01&to=2026-01-01", "from=yesterday", "from=2020-01-01&to=2026-01-01"):
        assert http.request("GET", f"/v1/costs?{query}", key=tenant.key)[0] == 400
    other = make_tenant(app, "Other Co", ("other.example",))
    assert http.request("GET", "/v1/costs?from=2026-01-01&to=2026-01-31", key=other.key)[1]["costs"] == []
    assert http.request("POST", "/v1/costs", data=GOOGLE.encode())[0] == 401


def test_pricing_models_api(app, http, tenant) -> None:
    status, body, _ = http.request("POST", "/v1/pricing-models", json_body={"source": "LeadVendor", "model": "per_lead", "price": 40}, key=tenant.key)
    assert status == 201 and body["source"] == "leadvendor"
    status, again, _ = http.request("POST", "/v1/pricing-models", json_body={"source": "leadvendor", "model": "per_action", "stage": "sql", "price": 90}, key=tenant.key)
    assert status == 201
    (only,) = http.request("GET", "/v1/pricing-models", key=tenant.key)[1]["pricing_models"]
    assert (only["id"], only["model"], only["stage"], only["price"]) == (again["id"], "per_action", "sql", 90.0)
    assert http.request("POST", "/v1/pricing-models", json_body={"source": "x", "model": "per_view", "price": 1}, key=tenant.key)[0] == 400
    other = make_tenant(app, "Other Co", ("other.example",))
    assert http.request("DELETE", f"/v1/pricing-models/{only['id']}", key=other.key)[0] == 404
    assert http.request("DELETE", f"/v1/pricing-models/{only['id']}", key=tenant.key)[0] == 204
    assert http.request("GET", "/v1/pricing-models", key=tenant.key)[1]["pricing_models"] == []


def test_the_cli_imports_lists_and_prices(cli, tmp_path) -> None:
    cli("db", "upgrade")
    cli("account", "create", "Acme")
    path = tmp_path / "costs.csv"
    path.write_text(GOOGLE, encoding="utf-8")
    assert "imported 2 cost rows (2026-01-01 to 2026-01-02, google); 0 rows of that period replaced" in cli("costs", "import", str(path))
    assert "2 rows of that period replaced" in cli("costs", "import", str(path))
    out = cli("costs", "list", "--from", "2026-01-01", "--to", "2026-01-31")
    assert "total: 1,390.75 USD, 200 clicks" in out
    path.write_text(GOOGLE + "2026-01-05,google,cpc,X,,x,1,1,USD\n", encoding="utf-8")
    err = cli("costs", "import", str(path), ok=False)
    assert "1 rows refused, nothing imported" in err and "line 4: clicks 'x' is not a number" in err
    assert "per_lead 40.00" in cli("costs", "price", "LeadVendor", "--model", "per_lead", "--price", "40")
    assert "needs a stage" in cli("costs", "price", "x", "--model", "per_action", "--price", "1", ok=False)
    assert json.loads(cli("--json", "costs", "list", "--from", "2026-01-01", "--to", "2026-01-31"))["costs"][0]["cost"] == 240.5
