"""Real headless Chromium (Playwright, sync API) against a real `calltrack serve` on loopback.

- `ct_template` (session): one SQLite file, migrated and seeded with the demo account
  (`calltrack db upgrade`, `calltrack --json demo seed`), built while Chromium starts.
- `ct_server` (module): `python -m calltrack serve` on a free port, on a copy of that file
  (started while the previous module runs). Each
  module gets its own server and database because the demo pools are small (4 paid-search
  numbers, 8 for everyone else) and every fresh browser context is a new visitor who holds a
  number for 30 minutes: a module must not use more than that.
- `site_pages` (module): a tiny HTTP server on another port, reached as `http://localhost:…`
  (the demo site allows both `localhost` and `127.0.0.1`), serving pages a test writes, each
  embedding `<script src="http://127.0.0.1:PORT/ct.js" data-site=… async>`: ct.js runs as a
  third-party script, as on a customer's site.
- `browser` (session), `context`/`page` (per test: fresh storage, so a new visitor).

Chromium: $CALLTRACK_CHROMIUM, else /usr/bin/chromium (or `chromium` on the PATH); the tests fail
without one (scripts/test installs it).
Run: `.venv/bin/python -m pytest -q tests/browser` (all marked `browser`: `-m 'not browser'` skips them).
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.browser.helpers import free_port

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_CHROMIUM = "/usr/bin/chromium"


def _child_env(db_path: Path) -> dict[str, str]:
    # Hermetic: none of the developer's CALLTRACK_* settings (a config file, a PostgreSQL URL).
    env = {k: v for k, v in os.environ.items() if not k.startswith("CALLTRACK_")}
    env.update(
        {
            "CALLTRACK_DATABASE_URL": f"sqlite:///{db_path}",
            "CALLTRACK_LOGGING_LEVEL": "WARNING",
            "CALLTRACK_RATELIMIT_PER_IP_PER_MINUTE": "1000000",
            "CALLTRACK_RATELIMIT_NEW_LEASES_PER_IP_PER_MINUTE": "1000000",
            "CALLTRACK_RATELIMIT_PER_SITE_PER_MINUTE": "1000000",
        }
    )
    return env


def _calltrack(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "calltrack", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"calltrack {' '.join(args)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return done.stdout


@dataclass(frozen=True)
class Template:
    db_path: Path
    api_key: str
    site_key: str


class _Background:
    """The template database, built on a thread (two `calltrack` processes, ~3 s) while
    Chromium starts."""

    def __init__(self, db_path: Path) -> None:
        self._db_path = db_path
        self._result: Template | Exception | None = None
        self._thread = threading.Thread(target=self._build, name="ct-template", daemon=True)
        self._thread.start()

    def _build(self) -> None:
        try:
            env = _child_env(self._db_path)
            _calltrack(env, "db", "upgrade")
            seeded = json.loads(_calltrack(env, "--json", "demo", "seed"))
            assert seeded["created"], seeded
            self._result = Template(self._db_path, seeded["api_key"], seeded["site_key"])
        except Exception as e:  # noqa: BLE001 - handed to the tests that need it
            self._result = e

    def get(self) -> Template:
        self._thread.join(timeout=120)
        if isinstance(self._result, Template):
            return self._result
        raise RuntimeError(f"could not build the template database: {self._result!r}")


@pytest.fixture(scope="session")
def ct_template(tmp_path_factory: pytest.TempPathFactory) -> _Background:
    """A migrated SQLite file with the demo account (`calltrack db upgrade`, `demo seed`)."""
    return _Background(tmp_path_factory.mktemp("ct-template") / "calltrack.db")


@dataclass
class Calltrack:
    """A running `calltrack serve` and ways to look at what it stored."""

    base: str
    api_key: str
    site_key: str
    db_path: Path
    log_path: Path

    def get(self, path: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
        req = urllib.request.Request(self.base + path, headers=headers or {})
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return r.status, {k.lower(): v for k, v in r.headers.items()}, r.read()
        except urllib.error.HTTPError as e:
            return e.code, {k.lower(): v for k, v in e.headers.items()}, e.read()

    def api(self, path: str) -> Any:
        status, _, body = self.get(path, {"Authorization": f"Bearer {self.api_key}"})
        assert status == 200, (path, status, body)
        return json.loads(body)

    def leases(self) -> list[dict[str, Any]]:
        return list(self.api("/v1/leases?limit=1000")["leases"])

    def leases_of(self, vid: str) -> list[dict[str, Any]]:
        return [lease for lease in self.leases() if lease["vid"] == vid]

    def forms(self) -> list[dict[str, Any]]:
        return list(self.api("/v1/forms")["forms"])

    def query(self, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        """Read the server's SQLite file (read-only; WAL lets us read while it writes)."""
        conn = sqlite3.connect(f"file:{self.db_path}?mode=ro", uri=True, timeout=5)
        try:
            return conn.execute(sql, args).fetchall()
        finally:
            conn.close()

    def requests_served(self, method: str, route: str, status: str = "200") -> float:
        """calltrack_http_requests_total for one route, from /metrics."""
        _, _, body = self.get("/metrics")
        prefix = f'calltrack_http_requests_total{{method="{method}",route="{route}",status="{status}"}} '
        for line in body.decode().splitlines():
            if line.startswith(prefix):
                return float(line[len(prefix) :])
        return 0.0


class _Serve:
    """One `calltrack serve` process on its own copy of the template database."""

    def __init__(self, template: Template, work: Path) -> None:
        db_path = work / "calltrack.db"
        shutil.copyfile(template.db_path, db_path)
        port = free_port()
        self.log_path = work / "serve.log"
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "calltrack", "serve", "--port", str(port), "--bind", "127.0.0.1"],
                cwd=ROOT,
                env=_child_env(db_path),
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self.server = Calltrack(f"http://127.0.0.1:{port}", template.api_key, template.site_key, db_path, self.log_path)

    def ready(self) -> Calltrack:
        deadline = time.monotonic() + 60  # a loaded CI machine starts Python slowly
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"calltrack serve exited ({self.proc.returncode}):\n{self.log_path.read_text()}")
            try:
                if self.server.get("/healthz")[0] == 200:
                    return self.server
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"calltrack serve did not answer /healthz:\n{self.log_path.read_text()}")
            time.sleep(0.05)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture(scope="session")
def _servers(ct_template: _Background, tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[_Serve]]:
    """Servers started one module ahead (a start takes about a second); the spare is stopped
    at the end."""
    spare: list[_Serve] = []
    yield spare
    for s in spare:
        s.stop()


@pytest.fixture(scope="module")
def ct_server(
    ct_template: _Background, _servers: list[_Serve], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Calltrack]:
    template = ct_template.get()
    serve = _servers.pop() if _servers else _Serve(template, tmp_path_factory.mktemp("ct-server"))
    _servers.append(_Serve(template, tmp_path_factory.mktemp("ct-server")))  # the next module's
    try:
        yield serve.ready()
    finally:
        serve.stop()


class SitePages:
    """Pages of a 'customer site' on http://localhost:PORT, each written by a test."""

    def __init__(self, calltrack: Calltrack) -> None:
        self._calltrack = calltrack
        self._pages: dict[str, bytes] = {}
        self.posts: list[tuple[str, bytes]] = []
        pages, posts = self._pages, self.posts

        class Handler(BaseHTTPRequestHandler):
            def _send(self, status: int, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                body = pages.get(self.path.split("?")[0])
                self._send(200, body) if body is not None else self._send(404, b"not found")

            def do_POST(self) -> None:  # a form's target
                length = int(self.headers.get("Content-Length") or 0)
                posts.append((self.path, self.rfile.read(length)))
                self._send(200, b'<!doctype html><link rel="icon" href="data:,"><p id="thanks">Thanks, we got it.</p>')

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.origin = f"http://localhost:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, name="site-pages", daemon=True)
        self._thread.start()

    def add(self, path: str, body: str, *, attrs: str = "", head: str = "", script: bool = True) -> str:
        """Serve `body` at `path` with the ct.js tag (plus `attrs`); returns the page's URL."""
        tag = (
            f'<script src="{self._calltrack.base}/ct.js" data-site="{self._calltrack.site_key}" {attrs} async></script>'
            if script
            else ""
        )
        html = (
            '<!doctype html><html lang="en"><head><meta charset="utf-8"><link rel="icon" href="data:,">'
            f"<title>{path}</title>{tag}{head}</head><body>{body}</body></html>"
        )
        self._pages[path] = html.encode("utf-8")
        return self.origin + path

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture(scope="module")
def site_pages(ct_server: Calltrack) -> Iterator[SitePages]:
    pages = SitePages(ct_server)
    yield pages
    pages.close()


@pytest.fixture(scope="session")
def browser(ct_template: _Background) -> Iterator[Any]:  # the template builds meanwhile
    path = os.environ.get("CALLTRACK_CHROMIUM") or DEFAULT_CHROMIUM
    if not os.path.exists(path) and not os.environ.get("CALLTRACK_CHROMIUM"):
        path = shutil.which("chromium") or path
    if not os.path.exists(path):
        # Fail rather than skip: CI must not pass without having run these.
        pytest.fail(f"no Chromium at {path}: install Debian's chromium or set CALLTRACK_CHROMIUM")
    from playwright.sync_api import sync_playwright

    pw = sync_playwright().start()
    args = ["--no-sandbox"] if hasattr(os, "geteuid") and os.geteuid() == 0 else []
    b = pw.chromium.launch(executable_path=path, headless=True, args=args)
    try:
        yield b
    finally:
        b.close()
        pw.stop()


@pytest.fixture
def context(browser: Any) -> Iterator[Any]:
    """A fresh browser profile: no cookies, no localStorage, i.e. a new visitor."""
    ctx = browser.new_context()
    ctx.set_default_timeout(10_000)
    yield ctx
    ctx.close()


@pytest.fixture
def page(context: Any) -> Any:
    return context.new_page()
