"""Lead webhooks through a real `calltrack serve` and a real CRM endpoint on a socket: the
CRM fails, hangs, calltrack is killed (SIGKILL) in the middle, started again, the CRM
recovers — and every event is delivered, signed, with the same body under the same id."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests
import sqlalchemy as sa

from calltrack.telephony import pbx
from tests.numbers.test_concurrency_pg import free_port

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


class Crm:
    """A CRM endpoint on 127.0.0.1: ``mode`` is 'fail' (500), 'hang' (answers after 3 s,
    past calltrack's 1 s timeout) or 'ok'. Every request is kept."""

    def __init__(self) -> None:
        self.mode = "fail"
        self.got: list[tuple[dict[str, str], bytes, int]] = []
        self.lock = threading.Lock()
        self.hung = threading.Event()
        crm = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the http.server API
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                mode = crm.mode
                if mode == "hang":
                    crm.hung.set()
                    time.sleep(3)
                code = 200 if mode == "ok" else 500
                with crm.lock:
                    crm.got.append(({k.lower(): v for k, v in self.headers.items()}, body, code))
                try:
                    self.send_response(code)
                    self.send_header("Content-Length", "2")
                    self.end_headers()
                    self.wfile.write(b"{}")
                except (BrokenPipeError, ConnectionResetError):
                    pass  # calltrack gave up waiting

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/calltrack"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def delivered(self) -> dict[int, list[bytes]]:
        with self.lock:
            out: dict[int, list[bytes]] = {}
            for headers, body, code in self.got:
                if code == 200:
                    out.setdefault(int(headers["x-ct-delivery"]), []).append(body)
            return out


class Server:
    def __init__(self, work: Path) -> None:
        self.work = work
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("CALLTRACK_")} | {
            "CALLTRACK_DATABASE_URL": f"sqlite:///{work / 'calltrack.db'}",
            "CALLTRACK_LOGGING_LEVEL": "ERROR",
            "CALLTRACK_OUTBOX_ALLOW_PRIVATE_TARGETS": "true",
            "CALLTRACK_OUTBOX_TIMEOUT_SECONDS": "1",
            "CALLTRACK_OUTBOX_BACKOFF_BASE_SECONDS": "0.2",
            "CALLTRACK_OUTBOX_BACKOFF_MAX_SECONDS": "0.5",
            "CALLTRACK_OUTBOX_POLL_SECONDS": "0.1",
            "CALLTRACK_OUTBOX_MAX_ATTEMPTS": "1000",
        }
        self.proc: subprocess.Popen[bytes] | None = None
        self.engine = sa.create_engine(self.env["CALLTRACK_DATABASE_URL"])

    def cli(self, *argv: str) -> str:
        return subprocess.run([sys.executable, "-m", "calltrack", *argv], cwd=ROOT, env=self.env, check=True, capture_output=True, text=True).stdout

    def start(self) -> None:
        log = open(self.work / "serve.log", "ab")  # noqa: SIM115 - the child holds it
        self.proc = subprocess.Popen([sys.executable, "-m", "calltrack", "serve", "--port", str(self.port)], cwd=ROOT, env=self.env, stdout=log, stderr=log)
        deadline = time.monotonic() + 20
        while True:
            assert self.proc.poll() is None, (self.work / "serve.log").read_text()
            try:
                if requests.get(self.base + "/healthz", timeout=1).status_code == 200:
                    return
            except requests.RequestException:
                pass
            assert time.monotonic() < deadline, "calltrack serve did not start"
            time.sleep(0.05)

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def scalar(self, sql: str) -> Any:
        with self.engine.connect() as conn:
            return conn.execute(sa.text(sql)).scalar()

    def wait_for(self, sql: str, what: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while not self.scalar(sql):
            assert time.monotonic() < deadline, f"timed out waiting for {what}"
            time.sleep(0.05)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    s = Server(tmp_path)
    s.cli("db", "upgrade")
    yield s
    if s.proc is not None and s.proc.poll() is None:
        s.proc.terminate()
        s.proc.wait(timeout=15)


def test_every_event_is_delivered_through_failures_a_hang_and_a_crash(server: Server) -> None:
    seeded = json.loads(server.cli("--json", "demo", "seed"))
    auth = {"Authorization": f"Bearer {seeded['api_key']}"}
    crm = Crm()
    server.start()
    r = requests.post(server.base + "/v1/lead-webhooks", json={"url": crm.url}, headers=auth, timeout=5)
    assert r.status_code == 201, r.text
    secret = r.json()["secret"]

    lead_ids = []
    for i in range(20):
        r = requests.post(server.base + "/v1/forms", json={"site": seeded["site_key"], "fields": {"email": f"p{i}@example.com"}}, headers=auth, timeout=5)
        assert r.status_code == 201, r.text
        lead_ids.append(r.json()["lead_id"])
    for lead_id in lead_ids[:5]:
        r = requests.patch(f"{server.base}/v1/leads/{lead_id}", json={"stage": "mql"}, headers=auth, timeout=5)
        assert r.status_code == 200, r.text
    expected = 20 + 5 * 2  # created each; stage_changed and qualified for the five
    assert server.scalar("SELECT count(*) FROM lead_webhook_deliveries") == expected

    # The CRM fails: every event is tried at least twice, then it hangs past our timeout…
    server.wait_for("SELECT min(attempts) >= 2 FROM lead_webhook_deliveries", "two failed attempts each")
    crm.mode = "hang"
    server.wait_for("SELECT count(*) FROM lead_webhook_attempts WHERE error LIKE 'no answer%'", "a timed-out attempt")
    # …and calltrack dies in the middle of it, attempts in flight (their claims lapse after
    # the timeout and a margin; the new process sends them then).
    crm.hung.clear()
    assert crm.hung.wait(10)
    server.kill()
    in_flight = server.scalar(f"SELECT count(*) FROM lead_webhook_deliveries WHERE next_attempt_at > {time.time() + 5}")
    assert in_flight >= 1
    assert server.scalar("SELECT count(*) FROM lead_webhook_deliveries WHERE status = 'delivered'") == 0
    crm.mode = "ok"
    server.start()
    server.wait_for(f"SELECT count(*) = {expected} FROM lead_webhook_deliveries WHERE status = 'delivered'", "every delivery", timeout=40)

    delivered = crm.delivered()
    with server.engine.connect() as conn:
        ids = {row[0] for row in conn.execute(sa.text("SELECT id FROM lead_webhook_deliveries"))}
        attempts = dict(conn.execute(sa.text("SELECT delivery_id, count(*) FROM lead_webhook_attempts GROUP BY delivery_id")).all())
    assert set(delivered) == ids  # none lost
    for delivery_id, bodies in delivered.items():
        assert len(set(bodies)) == 1  # a repeat (at least once) is the same bytes
        assert attempts[delivery_id] >= 3  # two failures, then the one that worked
    for headers, body, _ in crm.got:
        assert json.loads(body)["id"] == int(headers["x-ct-delivery"])
        # Signed at sending time: a receiver with a 5-minute window accepts every one.
        pbx.verify_signature(headers["x-ct-signature"], body, [secret], now=time.time())
    kinds = sorted(json.loads(bodies[0])["type"] for bodies in delivered.values())
    assert kinds == ["lead.created"] * 20 + ["lead.qualified"] * 5 + ["lead.stage_changed"] * 5
