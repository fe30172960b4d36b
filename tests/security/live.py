"""A real `calltrack serve` on a SQLite file with the demo account, for tests that need sockets."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class LiveServer:
    base: str
    env: dict[str, str]
    api_key: str
    site_key: str
    account_id: int
    log: Path

    def cli(self, *args: str) -> Any:
        """`calltrack --json …` against the server's database; the parsed answer."""
        return json.loads(_run(self.env, "--json", *args))

    def api(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        headers = {"Authorization": f"Bearer {self.api_key}", **kwargs.pop("headers", {})}
        return requests.request(method, self.base + path, headers=headers, timeout=30, **kwargs)


def _run(env: dict[str, str], *args: str) -> bytes:
    out = subprocess.run([sys.executable, "-m", "calltrack", *args], env=env, capture_output=True, timeout=120)
    if out.returncode != 0:
        raise AssertionError(f"calltrack {' '.join(args)} exited {out.returncode}: {out.stderr.decode(errors='replace')[-2000:]}")
    return out.stdout


def database_url(backend: str, tmp: Path) -> str:
    """A fresh, empty database: a SQLite file, or a PostgreSQL schema of its own in the test
    database (the suite's own tables in ``public`` are left alone)."""
    if backend == "sqlite":
        return f"sqlite:///{tmp / 'calltrack.db'}"
    import sqlalchemy as sa

    from tests.conftest import PG_URL

    assert PG_URL, "CALLTRACK_TEST_DATABASE_URL is not set"
    engine = sa.create_engine(PG_URL)
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql(f"DROP SCHEMA IF EXISTS {LIVE_SCHEMA} CASCADE")
            conn.exec_driver_sql(f"CREATE SCHEMA {LIVE_SCHEMA}")
    finally:
        engine.dispose()
    url = sa.engine.make_url(PG_URL).update_query_dict({"options": f"-csearch_path={LIVE_SCHEMA}"})
    return url.render_as_string(hide_password=False)


LIVE_SCHEMA = "calltrack_live_test"


@contextmanager
def live_server(tmp: Path, backend: str = "sqlite", **settings: str) -> Iterator[LiveServer]:
    """Serve a fresh database (SQLite file or PostgreSQL schema) seeded by `calltrack demo seed` on a free port.

    Rate limits are lifted (each test that wants one sets it), the lead-webhook dispatcher
    does not wake within a test (its first poll is an hour away: no test should make calltrack
    call out to the addresses it was given), and the public URL is the real one so that
    webhook signatures over it verify.
    """
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = dict(
        os.environ,
        CALLTRACK_DATABASE_URL=database_url(backend, tmp),
        CALLTRACK_HTTP_PUBLIC_BASE_URL=base,
        CALLTRACK_LOGGING_LEVEL="WARNING",
        CALLTRACK_LOGGING_FORMAT="text",
        CALLTRACK_RATELIMIT_PER_IP_PER_MINUTE="10000000",
        CALLTRACK_RATELIMIT_NEW_LEASES_PER_IP_PER_MINUTE="10000000",
        CALLTRACK_RATELIMIT_PER_SITE_PER_MINUTE="10000000",
        CALLTRACK_OUTBOX_POLL_SECONDS="3600",
        CALLTRACK_OUTBOX_ALLOW_PRIVATE_TARGETS="true",
        **settings,
    )
    env.pop("CALLTRACK_CONFIG", None)
    _run(env, "db", "upgrade")
    seeded = json.loads(_run(env, "--json", "demo", "seed"))
    log = tmp / "server.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "calltrack", "serve", "--port", str(port)], env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise AssertionError(f"calltrack serve exited: {log.read_text()[-3000:]}")
            try:
                if requests.get(base + "/healthz", timeout=1).status_code == 200:
                    break
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                raise AssertionError("calltrack serve did not become healthy")
            time.sleep(0.1)
        yield LiveServer(base, env, seeded["api_key"], seeded["site_key"], int(seeded["account_id"]), log)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
