"""The HTML campaign report in real Chromium: the table and the three charts are there, the
page asks for nothing from anywhere (its Content-Security-Policy would block it and log it),
it reads on a phone without the page scrolling sideways, and a screenshot is kept."""

from __future__ import annotations

import json
import os
import urllib.request
from pathlib import Path

from tests.browser.conftest import ROOT, Calltrack

ARTEFACTS = Path(os.environ.get("CALLTRACK_TEST_ARTEFACTS", ROOT / "test-artefacts"))


def _post(ct: Calltrack, path: str, body: dict[str, object]) -> dict[str, object]:
    req = urllib.request.Request(
        ct.base + path, data=json.dumps(body).encode(), method="POST",
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {ct.api_key}"},
    )
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())


def test_the_report_page_shows_its_table_and_charts_on_a_desktop_and_a_phone(ct_server: Calltrack, page) -> None:  # type: ignore[no-untyped-def]
    for i, campaign in enumerate(("spring-sale", "<b>bold</b> & $5 off", "spring-sale")):
        vid = f"report-visitor-{i}"
        with urllib.request.urlopen(
            f"{ct_server.base}/v1/number?site={ct_server.site_key}&vid={vid}&sid=s-{vid}&utm_source=google&utm_medium=cpc&utm_campaign={urllib.request.quote(campaign)}",
            timeout=10,
        ):
            pass
        _post(ct_server, "/v1/forms", {"site": ct_server.site_key, "vid": vid, "sid": f"s-{vid}", "fields": {"email": f"r{i}@example.com"}})
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("request", lambda r: problems.append("fetched " + r.url) if not r.url.startswith(ct_server.base + "/v1/reports") else None)
    page.set_extra_http_headers({"Authorization": f"Bearer {ct_server.api_key}"})
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(ct_server.base + "/v1/reports/campaigns.html?models=last_touch,linear&level=campaign")
    # Our two campaigns, and the demo's paid campaigns with a month of spend and no lead yet.
    assert page.locator("table#campaigns tbody tr").count() >= 3
    assert page.locator("table#campaigns tbody tr").first.locator("td").first.inner_text() == "spring-sale"  # two leads rank first
    assert page.locator("text=<b>bold</b> & $5 off").count() >= 1  # shown as typed, not as markup
    assert page.locator("main b >> text=bold").count() == 0
    assert page.locator("section .chart svg").count() == 3
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTEFACTS / "report-desktop.png"), full_page=True)
    page.set_viewport_size({"width": 390, "height": 844})
    assert page.evaluate("document.documentElement.scrollWidth") <= 390  # the table scrolls in its box, not the page
    page.screenshot(path=str(ARTEFACTS / "report-phone.png"), full_page=True)
    assert problems == []
