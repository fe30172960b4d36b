"""Secrets never reach the logs: API keys (good and wrong ones), Twilio auth tokens, PBX and lead
webhook signing secrets, report link tokens — carried by requests through the app with every
request logged at DEBUG, through a failing SQL statement whose parameters hold a secret, and
through a real `calltrack serve` at DEBUG writing its log file."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from twilio.request_validator import RequestValidator

from calltrack.db.schema import lead_webhooks
from calltrack.telephony import pbx
from calltrack.web.resource import Response, loggable_path
from tests.conftest import make_tenant, resolve
from tests.leads.helpers import Crm, pump, use_crm
from tests.numbers.helpers import visit
from tests.numbers.test_concurrency_pg import free_port
from tests.telephony.helpers import STATIC_NUMBER, TWILIO_SID, pbx_post, setup_phones, twilio_post, voice_params

ROOT = Path(__file__).resolve().parents[2]
TWILIO_TOKEN = "tw0ken5ecret0f7a9c3e1b2d4f6a8c0e1"


def test_logged_paths_keep_no_secret() -> None:
    assert loggable_path(b"/r/rpt_AbC-dEf_123456789012345678?level=campaign") == "/r/rpt_…"
    assert loggable_path(b"/v1/leads/ctk_pasted-key/x?key=ctk_q") == "/v1/leads/ctk_…/x"
    assert loggable_path(b"/v1/leads/42") == "/v1/leads/42"


def test_requests_with_secrets_leave_none_in_the_logs(app, http, tenant, clock, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    app.router._access_log = True  # every request logged, not only the slow and the failed
    phones = setup_phones(app, tenant)
    resolve(app.telephony.add_credential(tenant.account.id, "twilio", provider_account="AC" + "9" * 32, secret=TWILIO_TOKEN))
    other = make_tenant(app, "Other Co", ("other.example",))
    status, hook, _ = http.request("POST", "/v1/lead-webhooks", json_body={"url": "https://crm.example/hook?token=crm-side-token"}, key=tenant.key)
    assert status == 201
    link = app.reports.add_link_sync(tenant.account.id, label="board", now=clock.seconds(), days=30)
    wrong = "ctk_" + "W" * 32
    secrets = {"api key": tenant.key, "other api key": other.key, "wrong api key": wrong, "twilio token": TWILIO_TOKEN,
               "pbx secret": phones.pbx_secret, "lead webhook secret": hook["secret"], "report link": link}

    number = visit(app, tenant, "v-1", utm_source="google").phone_number
    params = voice_params("CA" + "c" * 32, to=number) | {"AccountSid": "AC" + "9" * 32}
    assert twilio_post(http, "/v1/webhooks/twilio/voice", params, token=TWILIO_TOKEN)[0] == 200
    assert twilio_post(http, "/v1/webhooks/twilio/voice", params, token="not-the-token")[0] == 403
    assert twilio_post(http, "/v1/webhooks/twilio/voice", voice_params("CA" + "d" * 32, to=STATIC_NUMBER), signature=TWILIO_TOKEN)[0] == 403
    call = {"event": "call.completed", "call_id": "p-1", "from": "+14155550100", "to": STATIC_NUMBER, "started_at": clock.seconds(), "billsec": 9}
    assert pbx_post(http, phones.pbx_secret, call, now=clock.seconds())[0] == 200
    raw = json.dumps(call).encode()
    bad = http.request("POST", "/v1/webhooks/calls", data=raw, headers={"Content-Type": "application/json", "X-CT-Signature": phones.pbx_secret})
    assert bad[0] in (400, 403)
    for key in (tenant.key, other.key, wrong):
        for method, path, body in (("GET", "/v1/leads", None), ("GET", "/v1/lead-webhooks", None), ("PATCH", "/v1/account/retention", {"forms_days": 400}),
                                   ("POST", "/v1/contacts/erase", {"email": "nobody@example.com"}), ("GET", f"/v1/calls?key={key}", None)):
            http.request(method, path, json_body=body, key=key)
    http.request("GET", f"/v1/leads?api_key={tenant.key}", headers={"Authorization": f"Basic {tenant.key}"})
    assert http.request("GET", f"/r/{link}?level=campaign")[0] == 200
    assert http.request("GET", f"/r/{link[:-2]}xx")[0] == 404
    crm = Crm(500, 200)
    stub = use_crm(app, crm)
    assert http.request("POST", "/v1/forms", json_body={"site": tenant.site.site_key, "fields": {"email": "a@example.com"}},
                        headers={"Origin": "https://acme.example"})[0] == 201
    pump(app, stub)
    clock.advance(120)
    pump(app, stub)
    assert crm.got and all(pbx.verify_signature(h["x-ct-signature"], b, [hook["secret"]], now=clock.seconds()) == 0 for h, b in crm.got)

    # A statement that fails with a secret among its parameters: the traceback goes to the log.
    async def boom(request):  # type: ignore[no-untyped-def]
        await app.db.run("boom", lambda conn: conn.execute(
            lead_webhooks.insert().values(account_id=424242, url="https://x.example", secret=hook["secret"], events=",", created_at=0.0)))
        return Response(200)

    app.router.add("GET", r"/boom", boom, name="/boom")
    assert http.request("GET", "/boom")[0] == 500

    text = caplog.text + "\n".join(repr(vars(r)) for r in caplog.records)
    assert "unhandled error in GET /boom" in text and "IntegrityError" in text and "/r/rpt_…" in text and "db " in text
    assert [what for what, secret in secrets.items() if secret in text] == []


@pytest.mark.integration
def test_a_real_server_at_debug_writes_no_secret_to_its_log(tmp_path: Path) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log_file = tmp_path / "serve.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("CALLTRACK_")} | {
        "CALLTRACK_DATABASE_URL": f"sqlite:///{tmp_path / 'calltrack.db'}", "CALLTRACK_LOGGING_LEVEL": "DEBUG",
        "CALLTRACK_OUTBOX_ALLOW_PRIVATE_TARGETS": "true", "CALLTRACK_OUTBOX_POLL_SECONDS": "0.1", "CALLTRACK_OUTBOX_BACKOFF_BASE_SECONDS": "0.1",
    }

    def cli(*argv: str) -> str:
        return subprocess.run([sys.executable, "-m", "calltrack", *argv], cwd=ROOT, env=env, check=True, capture_output=True, text=True).stdout

    cli("db", "upgrade")
    seeded = json.loads(cli("--json", "demo", "seed"))
    key = seeded["api_key"]
    cli("telephony", "add", "twilio", "--account-sid", TWILIO_SID, "--secret", TWILIO_TOKEN)
    pbx_secret = json.loads(cli("--json", "telephony", "add", "pbx"))["secret"]
    link = json.loads(cli("--json", "report-link"))["url"].rsplit("/", 1)[1]
    with open(log_file, "wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "calltrack", "serve", "--port", str(port)], cwd=ROOT, env=env, stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 20
        while True:
            assert proc.poll() is None, log_file.read_text()
            try:
                if requests.get(base + "/healthz", timeout=1).status_code == 200:
                    break
            except requests.RequestException:
                pass
            assert time.monotonic() < deadline, "calltrack serve did not start"
            time.sleep(0.05)
        auth = {"Authorization": f"Bearer {key}"}
        hook = requests.post(base + "/v1/lead-webhooks", json={"url": f"http://127.0.0.1:{free_port()}/refused"}, headers=auth, timeout=5).json()
        wrong = "ctk_" + "Q" * 32
        for headers in (auth, {"Authorization": f"Bearer {wrong}"}):
            assert requests.get(base + "/v1/leads", headers=headers, timeout=5).status_code in (200, 401)
            requests.patch(base + "/v1/account/retention", json={"recordings_days": 30}, headers=headers, timeout=5)
            requests.post(base + "/v1/contacts/erase", json={"phone": "+14155550100"}, headers=headers, timeout=5)
        r = requests.post(base + "/v1/forms", json={"site": seeded["site_key"], "fields": {"email": "p@example.com"}}, headers=auth, timeout=5)
        assert r.status_code == 201, r.text
        params = voice_params("CA" + "e" * 32, to="+14155550142")
        signature = RequestValidator(TWILIO_TOKEN).compute_signature("http://127.0.0.1:8080/v1/webhooks/twilio/voice", params)
        r = requests.post(base + "/v1/webhooks/twilio/voice", data=params, headers={"X-Twilio-Signature": signature}, timeout=5)
        assert r.status_code == 200, r.text
        assert requests.post(base + "/v1/webhooks/twilio/voice", data=params, headers={"X-Twilio-Signature": TWILIO_TOKEN}, timeout=5).status_code == 403
        body = json.dumps({"event": "call.started", "call_id": "p-1", "from": "+14155550100", "to": "+14155550142"}).encode()
        r = requests.post(base + "/v1/webhooks/calls", data=body, headers={"Content-Type": "application/json", "X-CT-Signature": pbx.sign(pbx_secret, body, timestamp=int(time.time()))}, timeout=5)
        assert r.status_code == 200, r.text
        requests.post(base + "/v1/webhooks/calls", data=body, headers={"Content-Type": "application/json", "X-CT-Signature": pbx_secret}, timeout=5)
        assert requests.get(f"{base}/r/{link}", timeout=60).status_code == 200
        requests.get(f"{base}/nowhere/{key}?key={key}", timeout=5)
        time.sleep(1.0)  # the dispatcher tries the refused CRM a few times meanwhile
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=20)
    text = log_file.read_text()
    assert "serving on" in text and "db " in text  # DEBUG was on
    secrets = {"api key": key, "wrong api key": wrong, "twilio token": TWILIO_TOKEN, "pbx secret": pbx_secret, "lead webhook secret": hook["secret"], "report link": link}
    assert [what for what, secret in secrets.items() if secret in text] == []
