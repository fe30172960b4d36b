"""Crash safety, the short version of scripts/bench/crash.py: a real `calltrack serve` takes
signed Twilio and PBX webhooks and number requests, is killed with SIGKILL twice at random
moments and started again; the senders retry what was not acknowledged. Every acknowledged
delivery is then in the database exactly once, and no lease is corrupt. SQLite always;
PostgreSQL too when CALLTRACK_TEST_DATABASE_URL is set (on that server, in a database of
this test's own: the suite's database is left alone)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest
import sqlalchemy as sa

from calltrack.db.engine import normalise_url
from tests.conftest import BACKENDS, PG_URL

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[1]
PG_DATABASE = "calltrack_crash_test"


def crash_bench() -> ModuleType:
    name = "calltrack_bench_crash"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / "bench" / "crash.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # dataclasses look their module up while the class is made
        spec.loader.exec_module(module)
    return sys.modules[name]


@pytest.mark.parametrize("backend", BACKENDS)
def test_acknowledged_deliveries_survive_sigkill_exactly_once(backend: str, tmp_path: Path) -> None:
    crash = crash_bench()
    if backend == "sqlite":
        url = f"sqlite:///{tmp_path / 'crash.db'}"
    else:
        url = sa.make_url(normalise_url(str(PG_URL))).set(database=PG_DATABASE).render_as_string(hide_password=False)
    report = crash.run_crash(
        url, work=tmp_path, seed=8, kills=2, journeys=100, senders=16, kill_after=(0.3, 1.0), pool_size=600, progress=False
    )
    t = report.total
    detail = "\n".join(report.checks + report.problems[:20])
    assert len(report.kills) == 2, detail
    assert t.sent > 250 and t.acknowledged == t.sent, detail
    assert (t.lost, t.duplicated) == (0, 0), detail
    assert t.stored == t.acknowledged, detail
    assert t.in_doubt > 0, "no delivery was caught by a kill: the kills missed the load"
    assert not any(report.corruption.values()), report.corruption
    assert report.problems == [], detail
    assert report.clean_exit == 0, detail
    assert report.ok, detail


def test_leads_whose_scoring_was_pending_are_scored_after_sigkill_and_on_sigterm(tmp_path: Path) -> None:
    """Scoring runs a second after a call touches a lead, from a set in the process's memory: a
    process killed within that second leaves the lead unscored until the next one starts, and
    a process stopped with SIGTERM scores it before it exits."""
    import random
    import time

    crash = crash_bench()
    url = f"sqlite:///{tmp_path / 'scores.db'}"
    crash.fresh_database(url)
    setup = crash.seed_tenant(url, 10)
    server = crash.Server(url, tmp_path, crash.free_port())
    engine = sa.create_engine(url)

    def counts() -> tuple[int, int]:
        with engine.connect() as conn:
            total, scored = conn.execute(sa.text("SELECT count(*), count(scored_at) FROM leads")).one()
        return int(total), int(scored)

    def calls(first: int) -> None:
        h = crash.Harness(server, setup, seed=5, senders=1, journeys=1, max_journeys=1, kills=0, kill_after=(1, 1), progress=False)
        for i in range(first, first + 3):
            plan = crash.CallPlan("twilio", f"CA{i:032x}", crash.STATIC_NUMBER, None, True, 60)
            h.twilio_call(random.Random(i), plan, f"+1212{2000000 + i:07d}")

    try:
        server.start()
        calls(1)
        server.kill()  # within the scoring second
        assert counts() == (3, 0)
        server.start()
        deadline = time.monotonic() + 20
        while counts() != (3, 3):
            assert time.monotonic() < deadline, f"the restarted server did not score the leads left pending: {counts()}"
            time.sleep(0.1)
        calls(4)
        assert server.stop() == 0  # at once: the scoring second is not up
        assert counts() == (6, 6)
    finally:
        if server.proc is not None and server.proc.poll() is None:
            server.proc.kill()
        engine.dispose()
