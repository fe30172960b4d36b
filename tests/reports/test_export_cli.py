"""`calltrack export …` end to end on a SQLite file: leads made through the app on that file
(a visit with a gclid, a form with a GA client id, stage moves), then every export command,
GA4 against a local server, and bad input as one clear error each (exit status 2)."""

from __future__ import annotations

import csv
import io
import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from twisted.internet import task

from calltrack.app import build_app
from calltrack.db.engine import create_engine
from calltrack.reports import exports
from tests.conftest import Http, make_config, make_tenant
from tests.numbers.helpers import make_pool, visit
from tests.reports.test_ga4 import MID, SECRET, Google

ORIGIN = {"Origin": "https://acme.example"}
JANE = "d6117306485ed0e50afab3ac871e98f81699151f30281527d63ff5f233656c69"


@pytest.fixture
def google() -> Iterator[Google]:
    g = Google()
    yield g
    g.close()


@pytest.fixture
def seeded(cli, tmp_path: Path) -> dict[str, float]:  # noqa: F811
    """Two hours ago: Jane clicks an ad and sends a form; an hour ago she becomes an MQL.
    Bob comes by himself and leaves his email (no click, no GA id)."""
    cli("db", "upgrade")
    url = f"sqlite:///{tmp_path / 'ct.db'}"
    clock = task.Clock()
    t0 = float(int(time.time()) - 2 * 3600)
    clock.advance(t0)
    app = build_app(make_config(CALLTRACK_DATABASE_URL=url), reactor=clock, clock=clock, engine=create_engine(url), synchronous_db=True)
    try:
        tenant = make_tenant(app)
        http = Http(app)
        make_pool(app, tenant, "web", 3)
        visit(app, tenant, "jane", gclid="Cj0KCQjw-jane", msclkid="f894f652ea334e739002f7167ab8f8e3", utm_source="google", utm_medium="cpc", utm_campaign="=HYPERLINK(\"x\")")
        visit(app, tenant, "bob", utm_source="newsletter", utm_medium="email")
        for vid, fields in (("jane", {"email": " Jane.Doe@Gmail.com ", "name": "Jane", "ga_client_id": "GA1.1.987.654"}), ("bob", {"email": "bob@example.com"})):
            status, body, _ = http.request("POST", "/v1/forms", json_body={"site": tenant.site.site_key, "vid": vid, "sid": f"s-{vid}", "fields": fields}, headers=ORIGIN)
            assert status == 201, body
        clock.advance(3600)
        status, body, _ = http.request("PATCH", "/v1/leads/1", json_body={"stage": "mql", "value": 80}, key=tenant.key)
        assert status == 200, body
    finally:
        app.numbers.stop()
        app.engine.dispose()
    return {"t0": t0, "mql": t0 + 3600}


def local(ts: float) -> str:
    from datetime import datetime
    from zoneinfo import ZoneInfo

    return datetime.fromtimestamp(ts, ZoneInfo("America/New_York")).strftime("%Y-%m-%d %H:%M:%S")


def test_each_export_command_writes_its_file(cli, seeded, tmp_path: Path) -> None:  # noqa: F811
    t0, mql = seeded["t0"], seeded["mql"]
    period = ("--from", f"{t0:.0f}", "--to", f"{mql + 60:.0f}")
    out = cli("export", "google-ads", "--conversion-name", "Qualified lead", *period, "--out", "g.csv")
    assert out.startswith("wrote g.csv: 1 Google Ads click conversions from 1 mql conversions")
    assert (tmp_path / "g.csv").read_text().split("\n") == [
        "Parameters:TimeZone=America/New_York",
        ",".join(exports.GOOGLE_ADS_HEADER),
        f"Cj0KCQjw-jane,,,Qualified lead,{local(mql)},80.00,USD",
        "",
    ]
    summary = json.loads(cli("--json", "export", "google-ads", "--conversion-name", "Lead", "--stage", "lead", *period, "--out", "g2.csv"))
    assert summary["rows"] == 1 and summary["conversions"] == 2 and summary["stage"] == "lead" and summary["file"] == "g2.csv"
    assert list(summary["left_out"].values()) == [1]

    stdout = cli("export", "enhanced-conversions", "--conversion-name", "Lead", "--stage", "lead", *period)
    ec = list(csv.reader(io.StringIO(stdout)))
    assert ec[0] == ["Parameters:TimeZone=America/New_York"] and ec[1] == list(exports.ENHANCED_HEADER)
    assert ec[2] == [JANE, "", "Lead", local(t0), "80.00", "USD", "Cj0KCQjw-jane"]
    assert ec[3][0] == exports.sha256_hex("bob@example.com") and len(ec) == 4

    ms = cli("export", "microsoft-ads", "--conversion-name", "Qualified lead", *period, "--value", "25")
    assert ms.split("\n")[2] == f"Offline Conversion,,,,lead-1,,USD,Qualified lead,{exports.microsoft_time(mql)},25.00,f894f652ea334e739002f7167ab8f8e3"

    assert "wrote leads.csv: 2 leads created" in cli("export", "leads", *period, "--out", "leads.csv")
    table = list(csv.DictReader(io.StringIO((tmp_path / "leads.csv").read_text())))
    assert [(r["id"], r["stage"], r["contact_email"], r["gclid"]) for r in table] == [("1", "mql", "jane.doe@gmail.com", "Cj0KCQjw-jane"), ("2", "new", "bob@example.com", "")]
    assert table[0]["campaign"] == "'=HYPERLINK(\"x\")" and table[0]["value"] == "80.00" and table[0]["contact_name"] == "Jane"
    document = json.loads(cli("export", "leads", "--format", "json", *period))
    assert document["count"] == 2 and document["leads"][0]["campaign"] == "=HYPERLINK(\"x\")" and document["timezone"] == "America/New_York"


def test_ga4_sends_validates_and_dry_runs(cli, seeded, google: Google) -> None:  # noqa: F811
    dry = cli("export", "ga4", "--stage", "lead", "--dry-run")
    (body,) = [json.loads(line) for line in dry.splitlines()]
    assert body["client_id"] == "987.654" and body["events"][0]["name"] == "generate_lead"
    assert body["timestamp_micros"] == int(seeded["t0"]) * 1_000_000 and google.got == []

    out = cli("export", "ga4", "--measurement-id", MID, "--api-secret", SECRET, "--base-url", google.url, "--validate")
    assert "validated 1 of 1" in out and "recorded nothing" in out and SECRET not in out
    assert [g["path"] for g in google.got] == ["/debug/mp/collect"]
    assert google.got[0]["body"]["events"][0] == {"name": "qualify_lead", "params": {
        "currency": "USD", "value": 80.0, "lead_source": "form", "engagement_time_msec": 100, "calltrack_lead_id": "1",
    }}
    result = json.loads(cli("--json", "export", "ga4", "--measurement-id", MID, "--api-secret", SECRET, "--base-url", google.url, "--stage", "lead", "--event-name", "phone_call_lead"))
    assert [g["path"] for g in google.got[1:]] == ["/mp/collect"] and result["results"] == [{"lead_id": 1, "ok": True, "status": 204, "error": None, "validation_messages": []}]
    assert result["conversions"] == 2 and result["rows"] == 1 and list(result["left_out"].values()) == [1]
    google.fail = 403
    assert "1 of 1 events were not accepted" in cli("export", "ga4", "--measurement-id", MID, "--api-secret", SECRET, "--base-url", google.url, ok=False)


def test_bad_input_is_one_clear_error_each(cli, seeded, tmp_path: Path) -> None:  # noqa: F811
    g = ("export", "google-ads", "--conversion-name", "Lead")
    for args, fault in (
        (("export", "google-ads"), "--conversion-name is required: the name of the conversion action in Google Ads"),
        (("export", "microsoft-ads"), "conversion goal in Microsoft Advertising"),
        (("export", "enhanced-conversions", "--conversion-name", "=cmd"), "formula"),
        ((*g, "--stage", "won"), "unknown stage 'won': one of lead, mql, sql, customer"),
        ((*g, "--from", "yesterday"), "--from 'yesterday' is not a date"),
        ((*g, "--to", "2026-02-30"), "--to '2026-02-30' is not a date"),
        ((*g, "--from", "2026-02-01", "--to", "2026-01-01"), "--from must be before --to"),
        ((*g, "--value", "lots"), "--value 'lots' is not a number"),
        ((*g, "--out", str(tmp_path / "missing" / "x.csv")), "cannot write"),
        ((*g, "--account", "7"), "no account 7"),
        (("export", "ga4"), "--measurement-id is required"),
        (("export", "ga4", "--measurement-id", MID), "--api-secret is required"),
        (("export", "ga4", "--measurement-id", "UA-1-1", "--api-secret", "x"), "not a GA4 measurement id"),
        (("export", "ga4", "--dry-run", "--event-name", "bad name"), "event name"),
        (("export", "leads", "--format", "xml"), "--format 'xml': csv or json"),
        (("export", "leads", "--from", "31/01/2026"), "is not a date"),
    ):
        err = cli(*args, ok=False)
        assert err.startswith("calltrack: ") and fault in err, (args, err)
    assert not (tmp_path / "missing").exists()


def test_exports_need_an_upgraded_database(cli) -> None:  # noqa: F811
    assert "calltrack db upgrade" in cli("export", "leads", ok=False)
