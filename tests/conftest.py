"""Shared fixtures: every database test runs on SQLite, and on PostgreSQL too when
CALLTRACK_TEST_DATABASE_URL is set (CI sets it)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from twisted.internet import defer, task

from calltrack.app import App, build_app
from calltrack.cli import main as cli_main
from calltrack.config import load_config
from calltrack.db.engine import create_engine
from calltrack.db.migrate import upgrade
from calltrack.db.schema import metadata

PG_URL = os.environ.get("CALLTRACK_TEST_DATABASE_URL")
BACKENDS = ["sqlite"] + (["postgresql"] if PG_URL else [])
START = 1_767_225_600.0  # 2026-01-01T00:00:00Z: a fixed "now" for the fake clock

_engines: dict[str, sa.Engine] = {}


def backend_url(backend: str) -> str:
    return "sqlite://" if backend == "sqlite" else str(PG_URL)


def _engine_for(backend: str) -> sa.Engine:
    engine = _engines.get(backend)
    if engine is None:
        engine = create_engine(backend_url(backend))
        if backend == "postgresql":
            with engine.begin() as conn:  # a clean schema each run: migrations from scratch
                conn.exec_driver_sql("DROP SCHEMA public CASCADE")
                conn.exec_driver_sql("CREATE SCHEMA public")
        upgrade(engine)
        _engines[backend] = engine
    return engine


def clean_tables(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            names = ", ".join(t.name for t in metadata.sorted_tables)
            conn.exec_driver_sql(f"TRUNCATE {names} RESTART IDENTITY CASCADE")
        else:
            for table in reversed(metadata.sorted_tables):
                conn.execute(table.delete())


@pytest.fixture(params=BACKENDS)
def engine(request: pytest.FixtureRequest) -> Iterator[sa.Engine]:
    eng = _engine_for(request.param)
    clean_tables(eng)
    yield eng


@pytest.fixture
def clock() -> task.Clock:
    c = task.Clock()
    c.advance(START)
    return c


def make_config(**env: str) -> Any:
    base = {"CALLTRACK_DATABASE_URL": "sqlite://", "CALLTRACK_LOGGING_FORMAT": "text"}
    base.update(env)
    return load_config(environ=base)


@pytest.fixture
def app(engine: sa.Engine, clock: task.Clock) -> Iterator[App]:
    application = build_app(make_config(), reactor=clock, clock=clock, engine=engine, synchronous_db=True)
    yield application
    application.numbers.stop()


def resolve(d: Any) -> Any:
    """The result of a Deferred or coroutine that has already fired (synchronous DB)."""
    if not isinstance(d, defer.Deferred):
        d = defer.ensureDeferred(d)
    results: list[Any] = []
    d.addBoth(results.append)
    assert results, "the Deferred did not fire"
    if hasattr(results[0], "raiseException"):
        results[0].raiseException()
    return results[0]


@dataclass
class Tenant:
    account: Any
    key: str
    site: Any


def make_tenant(app: App, name: str = "Acme Plumbing", domains: tuple[str, ...] = ("acme.example",)) -> Tenant:
    account, key = resolve(app.accounts.create_account(name, timezone="America/New_York", currency="USD"))
    site = resolve(
        app.accounts.add_site(account, name=name, allowed_domains=list(domains), own_number="(415) 555-2671", forward_to="+14155552672")
    )
    return Tenant(account, key, site)


@pytest.fixture
def tenant(app: App) -> Tenant:
    return make_tenant(app)


class Http:
    """Requests against the app's resource tree through treq's in-memory StubTreq."""

    def __init__(self, app: App) -> None:
        from treq.testing import StubTreq

        self.stub = StubTreq(app.site.resource)

    def request(self, method: str, path: str, *, json_body: Any = None, data: bytes | None = None, headers: dict[str, str] | None = None, key: str | None = None) -> tuple[int, Any, Any]:
        hdrs = {k: [v] for k, v in (headers or {}).items()}
        if key is not None:
            hdrs["Authorization"] = [f"Bearer {key}"]
        body = data
        if json_body is not None:
            body = json.dumps(json_body).encode()
            hdrs.setdefault("Content-Type", ["application/json"])
        d = self.stub.request(method, "http://calltrack.test" + path, headers=hdrs, data=body)
        self.stub.flush()
        resp = resolve(d)
        content = resolve(resp.content())
        ctype = resp.headers.getRawHeaders("content-type", [""])[0]
        parsed = json.loads(content) if ctype.startswith("application/json") and content else content
        return resp.code, parsed, resp.headers


@pytest.fixture
def http(app: App) -> Http:
    return Http(app)


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]):  # type: ignore[no-untyped-def]
    """The `calltrack` command in-process, on a SQLite file of its own: ``cli(*args, ok=True)``
    returns stdout (stderr when ``ok=False``) and checks the exit status."""
    monkeypatch.setenv("CALLTRACK_DATABASE_URL", f"sqlite:///{tmp_path / 'ct.db'}")
    monkeypatch.chdir(tmp_path)

    def run(*args: str, ok: bool = True) -> str:
        code = cli_main(list(args))
        out, err = capsys.readouterr()
        assert (code == 0) == ok, (code, out, err)
        return out if ok else err

    return run
