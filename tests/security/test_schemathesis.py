"""Schemathesis against a live `calltrack serve`: requests generated from GET /openapi.json,
valid and invalid, for every operation; no answer is a 5xx, and every answer's status, content
type and body are the ones the document declares.

The run is seeded and derandomised (the same cases every time, so CI is deterministic) and
bounded in examples per operation. The account's objects exist before the run (a lead, a
call, a lease, a lead webhook with a delivery, an owner, a rule, a price, a report link) and
the document's path parameters are pinned to their ids, so that the generated requests reach
the handlers' real work instead of stopping at 404. Webhooks are not signed here: they answer
403 for every generated request (the signed paths are fuzzed by
tests/telephony/test_webhook_properties.py).
"""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import requests

from calltrack.signatures import sign
from tests.conftest import BACKENDS
from tests.security.live import LiveServer, live_server

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

# Deeper runs by hand: CALLTRACK_SCHEMATHESIS_EXAMPLES=200 CALLTRACK_SCHEMATHESIS_SEED=7 pytest tests/security/test_schemathesis.py -s
MAX_EXAMPLES = int(os.environ.get("CALLTRACK_SCHEMATHESIS_EXAMPLES", "8"))
SEED = int(os.environ.get("CALLTRACK_SCHEMATHESIS_SEED", "20260101"))
# Values people and scripts really send, mixed into generated strings and numbers: NUL (which
# PostgreSQL text refuses; twice, to come up often), markup, a formula, right-to-left and astral
# characters, the limits of 32- and 64-bit integers and of doubles. Not in headers (the webhooks'
# signature headers): there a NUL is refused by Twisted before any handler, as it should be.
ABUSE = {
    "strings": {"values": ["\u0000", "a\u0000b", "<script>alert(1)</script>", "=HYPERLINK(\"http://x\")", "\u202e", "😀", " "]},
    "integers": {"values": [0, -1, 2147483647, 2147483648, -2147483649, 9223372036854775807, 9223372036854775808]},
    "numbers": {"values": [0, -0.0, 1e308, -1e308, 5e-324, 2147483648.5]},
    "plain": {"values": ["x"]},
}
ABUSE_TYPES = {t: {"dictionary": d, "probability": 0.5} for t, d in (("string", "strings"), ("integer", "integers"), ("number", "numbers"))}
PLAIN_TYPES = {"string": {"dictionary": "plain", "probability": 0.01}}


def body_string_fields(doc: dict[str, Any]) -> list[str]:
    """``body.<field>`` (and ``body.<field>.<field>``, ``body.<field>[*]``) for every string in a
    JSON request body the document describes: where the abuse strings go."""

    def resolve(node: Any) -> Any:
        while isinstance(node, dict) and "$ref" in node:
            node = doc["components"]["schemas"][node["$ref"].rsplit("/", 1)[1]]
        return node

    def is_string(node: Any) -> bool:
        node = resolve(node)
        kinds = node.get("type") if isinstance(node, dict) else None
        return kinds == "string" or (isinstance(kinds, list) and "string" in kinds) or any(is_string(b) for b in node.get("anyOf", []))

    keys: set[str] = set()

    def walk(node: Any, prefix: str, depth: int) -> None:
        for name, prop in (resolve(node).get("properties") or {}).items():
            if not all(c.isalnum() or c in "_-" for c in name):
                continue
            prop = resolve(prop)
            if is_string(prop):
                keys.add(f"{prefix}.{name}")
            elif prop.get("type") == "array" and is_string(prop.get("items", {})):
                keys.add(f"{prefix}.{name}[*]")
            elif depth < 2 and prop.get("properties"):
                walk(prop, f"{prefix}.{name}", depth + 1)

    for path, ops in doc["paths"].items():
        for op in ops.values():
            media = (op.get("requestBody") or {}).get("content", {}).get("application/json")
            if media and not path.startswith("/v1/webhooks/"):
                walk(media["schema"], "body", 1)
    return sorted(keys)

CHECKS = ("not_a_server_error", "status_code_conformance", "content_type_conformance", "response_schema_conformance")


def seed_objects(srv: LiveServer) -> dict[str, Any]:
    """One of each object the account API can name by id; returns their ids."""
    pbx_secret = srv.cli("telephony", "add", "pbx", "--account", str(srv.account_id))["secret"]
    token = srv.cli("report-link", "--account", str(srv.account_id))["url"].rsplit("/", 1)[1]
    webhook = srv.api("POST", "/v1/lead-webhooks", json={"url": "http://127.0.0.1:9/crm", "description": "CRM"}).json()
    owner = srv.api("POST", "/v1/owners", json={"name": "Dana Scully", "email": "dana@example.com"}).json()
    rule = srv.api("POST", "/v1/owner-rules", json={"when": {"channel": "email"}, "owner": "Dana Scully"}).json()
    price = srv.api("POST", "/v1/pricing-models", json={"source": "leadgen", "model": "per_lead", "price": 25}).json()
    srv.api("POST", "/v1/costs", data="date,source,medium,campaign,cost\n2026-01-01,google,cpc,brand,12.50\n", headers={"Content-Type": "text/csv"})
    number = requests.get(
        srv.base + "/v1/number",
        params={"site": srv.site_key, "vid": "visitor-1", "utm_source": "google", "utm_medium": "cpc", "utm_campaign": "brand"},
        headers={"User-Agent": "Mozilla/5.0 (X11; Linux x86_64) Chrome/131.0 Safari/537.36"},
        timeout=10,
    ).json()
    form = {"site": srv.site_key, "vid": "visitor-1", "id": "f-1", "fields": {"email": "fox@example.com", "phone": "+14155550100", "name": "Fox"}}
    assert requests.post(srv.base + "/v1/forms", json=form, timeout=10).status_code == 201
    body = json.dumps({"event": "call.started", "call_id": "pbx-1", "from": "+14155550100", "to": number["phoneNumber"]}).encode()
    call = requests.post(
        srv.base + "/v1/webhooks/calls", data=body,
        headers={"Content-Type": "application/json", "X-CT-Signature": sign(pbx_secret, body, timestamp=int(time.time()))}, timeout=10,
    )
    assert call.status_code == 200, call.text
    ids = {
        "site": srv.api("GET", "/v1/sites").json()["sites"][0]["id"],
        "pool": srv.api("GET", "/v1/pools").json()["pools"][0]["id"],
        "number": srv.api("GET", "/v1/numbers").json()["numbers"][-1]["id"],
        "lease": srv.api("GET", "/v1/leases").json()["leases"][0]["id"],
        "lead": srv.api("GET", "/v1/leads").json()["leads"][0]["id"],
        "call": call.json()["call_id"],
        "webhook": webhook["id"],
        "owner": owner["id"],
        "rule": rule["id"],
        "price": price["id"],
        "token": token,
    }
    ids["delivery"] = srv.api("GET", f"/v1/lead-webhooks/{ids['webhook']}/deliveries").json()["deliveries"][0]["id"]
    return ids


def pinned_parameters(ids: dict[str, Any], site_key: str) -> list[dict[str, Any]]:
    """Per-operation parameter values: the seeded objects' ids, the demo site's key."""
    by_path = {
        "/v1/sites/{id}": {"id": ids["site"]},
        "/v1/pools/{id}": {"id": ids["pool"]},
        "/v1/pools/{id}/health": {"id": ids["pool"]},
        "/v1/pools/{id}/simulate": {"id": ids["pool"]},
        "/v1/numbers/{id}/retire": {"id": ids["number"]},
        "/v1/leases/{id}/events": {"id": ids["lease"]},
        "/v1/leads/{id}": {"id": ids["lead"]},
        "/v1/calls/{id}": {"id": ids["call"]},
        "/v1/calls/{id}/explain": {"id": ids["call"]},
        "/v1/owners/{id}": {"id": ids["owner"]},
        "/v1/owner-rules/{id}": {"id": ids["rule"]},
        "/v1/pricing-models/{id}": {"id": ids["price"]},
        "/v1/lead-webhooks/{id}": {"id": ids["webhook"]},
        "/v1/lead-webhooks/{id}/deliveries": {"id": ids["webhook"]},
        "/v1/lead-webhooks/{id}/deliveries/{delivery}": {"id": ids["webhook"], "delivery": ids["delivery"]},
        "/v1/lead-webhooks/{id}/deliveries/{delivery}/resend": {"id": ids["webhook"], "delivery": ids["delivery"]},
        "/r/{token}": {"token": ids["token"]},
        "/v1/number": {"site": site_key},
        "/v1/ping": {"site": site_key},
        "/v1/forms": {"site": site_key},
    }
    return [{"include-path": path, "parameters": values} for path, values in by_path.items()]


def run_schemathesis(srv: LiveServer, ids: dict[str, Any]) -> dict[str, Any]:
    import schemathesis
    from schemathesis import engine
    from schemathesis.config import SchemathesisConfig
    from schemathesis.engine import Status, events

    body_fields = body_string_fields(requests.get(srv.base + "/openapi.json", timeout=10).json())
    assert "body.name" in body_fields and "body.when.channel" in body_fields, body_fields
    config = SchemathesisConfig.from_dict(
        {
            "seed": SEED,
            "headers": {"Authorization": f"Bearer {srv.api_key}"},
            "workers": 1,
            "continue-on-failure": True,
            "request-timeout": 30,
            "dictionaries": ABUSE,
            "generation": {
                "max-examples": MAX_EXAMPLES, "deterministic": True, "database": "none", "no-shrink": True,
                "dictionaries": ABUSE_TYPES,
            },
            "phases": {"examples": {"enabled": False}},
            "checks": {"enabled": False, **{name: {"enabled": True} for name in CHECKS}},
            "parameters": {key: {"dictionary": "strings", "probability": 0.5} for key in body_fields},
            "operations": [*pinned_parameters(ids, srv.site_key), {"include-path-regex": "^/v1/webhooks/", "generation": {"dictionaries": PLAIN_TYPES}}],
            "warnings": False,
        }
    )
    schema = schemathesis.openapi.from_url(srv.base + "/openapi.json", config=config)
    statuses: Counter[str] = Counter()
    checked: Counter[str] = Counter()
    failures: dict[tuple[str, str, str], list[Any]] = {}  # (operation, check, title) → [count, first example]
    cases = 0
    operations: set[str] = set()
    finished = None
    for event in engine.from_schema(schema).execute():
        if isinstance(event, events.ScenarioFinished):
            recorder = event.recorder
            cases += len(recorder.cases)
            for case_id, node in recorder.cases.items():
                operations.add(node.value.operation.label)
                interaction = recorder.interactions.get(case_id)
                if interaction is not None and interaction.response is not None:
                    statuses[f"{interaction.response.status_code // 100}xx"] += 1
                for check in recorder.checks.get(case_id, []):
                    checked[check.name] += 1
                    if check.status == Status.FAILURE and check.failure_info is not None:
                        f = check.failure_info.failure
                        example = f"{f.message[:400]}\n    {check.failure_info.code_sample[:600]}"
                        failures.setdefault((node.value.operation.label, check.name, f.title), [0, example])[0] += 1
        elif isinstance(event, events.NonFatalError):
            failures.setdefault((event.label, "error", type(event.value).__name__), [0, repr(event.value)[:1000]])[0] += 1
        elif isinstance(event, events.FatalError):
            raise AssertionError(f"schemathesis could not run: {event.exception!r}")
        elif isinstance(event, events.EngineFinished):
            finished = event
    return {"cases": cases, "operations": operations, "statuses": statuses, "failures": failures, "checked": checked, "finished": finished}


@pytest.mark.parametrize("backend", BACKENDS)
def test_generated_requests_never_5xx_and_answers_match_the_document(tmp_path: Path, backend: str) -> None:
    with live_server(tmp_path, backend) as srv:
        ids = seed_objects(srv)
        result = run_schemathesis(srv, ids)
        log = srv.log.read_text(errors="replace")
    failures = result["failures"]
    print(f"\nschemathesis: {result['cases']} cases over {len(result['operations'])} operations, "
          f"{sum(n for n, _ in failures.values())} failing checks in {len(failures)} kinds; answers {dict(sorted(result['statuses'].items()))}; "
          f"checks run {dict(result['checked'])}")
    assert result["finished"] is not None
    assert len(result["operations"]) >= 60, sorted(result["operations"])
    assert not failures, "\n".join(f"{op}: {check}: {title} ({n}×) — {example}" for (op, check, title), (n, example) in sorted(failures.items()))
    assert "Traceback" not in log, log[-5000:]


def test_every_answer_and_input_has_a_schema() -> None:
    """What the run can check: every success with a body declares its media type and schema,
    every parameter and request body its schema (a route added later is held to the same)."""
    from calltrack.app import build_app
    from calltrack.web.openapi import openapi_document
    from tests.conftest import make_config

    app = build_app(make_config(), reactor=None, synchronous_db=True)
    try:
        doc = openapi_document(app.router, base_url="http://calltrack.test")
    finally:
        app.engine.dispose()
    missing = []
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            where = f"{method.upper()} {path}"
            for code, answer in op["responses"].items():
                if "$ref" in answer or code in ("204", "304") or not code.startswith("2"):
                    continue
                content = answer.get("content") or {}
                if not content or not all("schema" in media for media in content.values()):
                    missing.append(f"{where} {code}: no media type and schema")
            missing += [f"{where}: parameter {p['name']} has no schema" for p in op.get("parameters", []) if "schema" not in p]
            body = op.get("requestBody")
            if body is not None and not all("schema" in media for media in body["content"].values()):
                missing.append(f"{where}: request body without a schema")
    assert not missing, "\n".join(missing)
