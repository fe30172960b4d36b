"""Several `calltrack serve` processes on one PostgreSQL database never hand one number to two
visitors at once (and stop cleanly on SIGTERM)."""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import sys
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests

from calltrack.app import build_app
from calltrack.cli import WallClock
from tests.conftest import PG_URL, _engine_for, clean_tables, make_config, make_tenant
from tests.numbers.helpers import make_pool, rows

pytestmark = [pytest.mark.integration, pytest.mark.skipif(not PG_URL, reason="needs CALLTRACK_TEST_DATABASE_URL")]

CHROME = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(port: int, *extra: str) -> subprocess.Popen[bytes]:
    env = dict(
        os.environ,
        CALLTRACK_DATABASE_URL=str(PG_URL),
        CALLTRACK_LOGGING_LEVEL="WARNING",
        CALLTRACK_RATELIMIT_PER_IP_PER_MINUTE="1000000",
        CALLTRACK_RATELIMIT_NEW_LEASES_PER_IP_PER_MINUTE="1000000",
        CALLTRACK_RATELIMIT_PER_SITE_PER_MINUTE="1000000",
    )
    return subprocess.Popen(
        [sys.executable, "-m", "calltrack", "serve", "--port", str(port), *extra], env=env, stderr=subprocess.PIPE
    )


def wait_healthy(port: int, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"server on {port} exited: {proc.stderr.read().decode()[-2000:] if proc.stderr else ''}")
        try:
            if requests.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.1)
    raise AssertionError(f"server on {port} did not become healthy")


def test_several_processes_never_hold_one_number_for_two_visitors() -> None:
    engine = _engine_for("postgresql")
    clean_tables(engine)
    app = build_app(make_config(), reactor=None, clock=WallClock(), engine=engine, synchronous_db=True)
    tenant = make_tenant(app)
    make_pool(app, tenant, "all", 30)

    ports = [free_port() for _ in range(3)]
    procs = [start_server(ports[0]), start_server(ports[1]), start_server(ports[2], "--workers", "2")]
    try:
        for port, proc in zip(ports, procs, strict=True):
            wait_healthy(port, proc)

        rng = random.Random(7)
        plan = [(f"visitor-{i}", [rng.choice(ports) for _ in range(3)]) for i in range(120)]

        def journey(vid: str, via: list[int]) -> list[dict[str, Any]]:
            session = requests.Session()
            answers = []
            for port in via:
                r = session.get(
                    f"http://127.0.0.1:{port}/v1/number",
                    params={"site": tenant.site.site_key, "vid": vid, "sid": "s-" + vid},
                    headers={"User-Agent": CHROME},
                    timeout=20,
                )
                assert r.status_code == 200, r.text
                answers.append(r.json())
            return answers

        with ThreadPoolExecutor(max_workers=24) as pool:
            journeys = list(pool.map(lambda p: journey(*p), plan))

        holders: dict[str, set[str]] = defaultdict(set)
        for (vid, _), answers in zip(plan, journeys, strict=True):
            for a in answers:
                if a["lease"]:
                    holders[a["phoneNumber"]].add(vid)
            leased = [a["phoneNumber"] for a in answers if a["lease"]]
            assert len(set(leased)) <= 1, f"{vid} was shown two tracking numbers: {leased}"
        assert len(holders) == 30, "every number of the pool should have been handed out"
        double = {n: v for n, v in holders.items() if len(v) > 1}
        assert not double, f"numbers held by two visitors at once: {double}"

        open_per_number = rows(app, "SELECT number_id, count(*) AS n FROM leases WHERE ended_at IS NULL GROUP BY number_id")
        assert len(open_per_number) == 30 and all(r.n == 1 for r in open_per_number)
        assert rows(app, "SELECT count(DISTINCT vid) AS n FROM pool_exhaustions")[0].n == 90
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        codes = [proc.wait(timeout=30) for proc in procs]
    assert codes == [0, 0, 0], "each server stops cleanly on SIGTERM"
