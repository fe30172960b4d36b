"""The campaign report through the API and a report link: counts from real visits, calls,
forms and leads, costs joined by source/medium/campaign, the renderings, bad input, tenants."""

from __future__ import annotations

import csv
import io
import re

from tests.leads.helpers import DAY, journeys, visitor_form as form
from tests.conftest import START, make_tenant
from tests.numbers.helpers import rows

PERIOD = "from=2025-12-31&to=2026-01-30"  # the account is in New York: START is 31 December there
COSTS = """date,source,medium,campaign,clicks,impressions,cost,currency
2026-01-01,google,cpc,"=HYPERLINK(""http://x"")",40,1000,120.00,USD
2026-01-02,facebook,paid_social,spring,50,4000,80.00,USD
"""


def report(http, tenant, query=""):
    status, body, _ = http.request("GET", f"/v1/reports/campaigns?{PERIOD}&{query}", key=tenant.key)
    assert status == 200, body
    return body


def test_the_report_counts_what_happened_and_what_it_cost(app, http, tenant, clock) -> None:
    journeys(app, http, tenant, clock)
    assert http.request("POST", "/v1/costs", data=COSTS.encode(), headers={"Content-Type": "text/csv"}, key=tenant.key)[0] == 201
    body = report(http, tenant, "level=source_medium&models=last_touch,linear")
    by = {r["source_medium"]: r for r in body["rows"]}
    fb, google, billboard = by["facebook / paid_social"], by["google / cpc"], by["billboard / outdoor"]
    assert (fb["visits"], fb["forms"], fb["leads"], fb["qualified"], fb["clicks"], fb["cost"]) == (2, 2, 2, 1, 50, 80.0)
    assert (fb["cpl"], fb["cost_per_qualified"], fb["lead_rate"]) == (40.0, 80.0, 0.04)
    assert (google["visits"], google["leads"], google["cost"], google["cpl"]) == (2, 0, 120.0, None)
    assert (billboard["calls"], billboard["unique_callers"], billboard["first_time_callers"], billboard["leads"]) == (1, 1, 1, 1)
    assert list(by)[0] == "facebook / paid_social"  # the only qualified lead ranks it first
    assert fb["attributed_last_touch"] == 1.0 and google["attributed_linear"] == 0.5
    total = body["totals"]
    assert (total["leads"], total["qualified"], total["cost"], total["calls"], total["forms"]) == (3, 1, 200.0, 1, 2)
    assert [f["count"] for f in body["funnel"]] == [4, 3, 1, 0, 0]
    per_channel: dict[str, int] = {}
    for point in body["series"]:
        per_channel[point["channel"]] = per_channel.get(point["channel"], 0) + point["leads"]
    assert per_channel == {"paid_social": 2, billboard_channel(app): 1}
    assert sum(w["leads"] for w in body["weekly"]) == 3 and all(w["week"] <= "2026-01-05" for w in body["weekly"])
    assert all(isinstance(total[k], int) for k in ("visits", "leads", "calls"))


def billboard_channel(app):
    return rows(app, "SELECT channel FROM leads WHERE kind = 'call'")[0][0]


def test_renderings_are_inert_and_self_contained(app, http, tenant, clock) -> None:
    journeys(app, http, tenant, clock)
    from tests.numbers.helpers import visit

    visit(app, tenant, "eve", utm_source="news", utm_medium="email", utm_campaign="<img src=x onerror=alert(1)> $5 off")
    form(http, tenant, "eve", "eve@example.com")
    http.request("POST", "/v1/costs", data=COSTS.encode(), headers={"Content-Type": "text/csv"}, key=tenant.key)
    status, raw, headers = http.request("GET", f"/v1/reports/campaigns.csv?{PERIOD}", key=tenant.key)
    assert status == 200 and headers.getRawHeaders("content-type")[0].startswith("text/csv")
    table = list(csv.reader(io.StringIO(raw.decode())))
    assert table[0][0] == "campaign" and table[-1][0] == "(total)"
    assert "'=HYPERLINK(\"http://x\")" in [r[0] for r in table]
    status, html, headers = http.request("GET", f"/v1/reports/campaigns.html?{PERIOD}", key=tenant.key)
    assert status == 200 and headers.getRawHeaders("content-type")[0].startswith("text/html")
    page = html.decode()
    assert "default-src 'none'" in headers.getRawHeaders("content-security-policy")[0]
    assert page.count("<svg") == 3 and "<script" not in page.lower() and "http://x" in page
    assert not re.search(r"""(src|href)=["']?https?://""", page)  # nothing fetched from anywhere
    assert '<table id="campaigns">' in page and "=HYPERLINK(&#34;http://x&#34;)" in page
    assert "<img" not in page and "&lt;img src=x onerror=alert(1)&gt; $5 off" in page  # table and chart labels alike


def test_a_report_link_shows_the_page_without_the_key(app, http, tenant, clock) -> None:
    journeys(app, http, tenant, clock)
    token = app.reports.add_link_sync(tenant.account.id, label="boss", now=START, days=30)
    status, html, _ = http.request("GET", f"/r/{token}?{PERIOD}")
    assert status == 200 and b"<table" in html
    assert http.request("GET", "/r/rpt_" + "x" * 32)[0] == 404
    clock.advance(31 * DAY)
    assert http.request("GET", f"/r/{token}?{PERIOD}")[0] == 404  # expired
    assert rows(app, "SELECT token_hash FROM report_links")[0][0] != token  # stored hashed


def test_bad_queries_and_other_tenants(app, http, tenant, clock) -> None:
    journeys(app, http, tenant, clock)
    for query, fault in (
        ("from=2026-02-01&to=2026-01-01", "on or before"), ("from=2020-01-01&to=2026-01-01", "at most 731 days"),
        ("level=colour", "'level'"), ("models=magic", "unknown model"), ("stage=won", "'stage'"), ("margin=2", "'margin'"),
        ("from=last-week", "'from'"), ("format=pdf", "'format'"), ("models=" + ",".join(["linear", "markov", "shapley", "first_touch", "last_touch", "w_shaped", "time_decay"]), "at most 6"),
    ):
        status, body, _ = http.request("GET", f"/v1/reports/campaigns?{query}", key=tenant.key)
        assert status == 400 and fault in body["error"]["message"], (query, body)
    assert http.request("GET", f"/v1/reports/campaigns?{PERIOD}")[0] == 401
    other = make_tenant(app, "Other Co", ("other.example",))
    body = report(http, other)
    assert body["rows"] == [] and body["totals"]["leads"] == 0


def test_the_cli_writes_each_rendering_and_a_link(cli, tmp_path) -> None:
    cli("db", "upgrade")
    cli("demo", "seed")
    out = tmp_path / "r.html"
    assert "wrote" in cli("report", "--out", str(out), "--level", "channel")
    assert out.read_text().startswith("<!doctype html>")
    assert cli("report", "--format", "csv").startswith("campaign,visits,clicks")
    assert '"funnel"' in cli("report", "--format", "json")
    assert "'level'" in cli("report", "--level", "colour", ok=False)
    assert "/r/rpt_" in cli("report-link", "--days", "7")
