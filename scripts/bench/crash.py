#!/usr/bin/env python3
"""Crash safety: a real ``calltrack serve`` killed with SIGKILL under load loses no acknowledged
delivery, stores none twice, and leaves no lease corrupt.

    .venv/bin/python scripts/bench/crash.py [--db sqlite|postgresql|both] [--kills 5] [--seed 1]
        [--journeys 1500] [--senders 48] [--workers N] [--pg-url postgresql+psycopg://postgres@127.0.0.1:5432/crash]

What is driven: visitors' journeys, planned from ``--seed`` (journey *i* from ``Random(f"{seed}/{i}")``):

- ``GET /v1/number`` with a visitor id of the sender's own (as ct.js keeps one in the browser),
  so that a retry is the same visitor asking again; three in ten visitors view a second page
  (the same number must come back, from the same lease);
- half of the visitors call the number they were shown (one in seven calls the static number
  instead): a Twilio call (the signed voice webhook, then the forwarded leg's status callbacks
  ``initiated``, ``ringing``, ``in-progress``, ``completed`` or ``no-answer``, with
  ``ParentCallSid`` and ``SequenceNumber``) or a PBX call (our signed JSON: ``call.started``,
  ``call.ringing``, ``call.answered``, ``call.completed``). Signatures are made as the
  providers make them (``calltrack.telephony.twilio.compute_signature`` over the public URL;
  ``calltrack.telephony.pbx.sign`` at each attempt, so a retry carries a fresh timestamp over
  the same body);
- one acknowledged webhook in twenty is delivered again anyway (providers do that).

``--senders`` threads send the journeys, each step after the previous one was acknowledged.
A delivery is *acknowledged* when a 2xx answer has been read whole. Anything else (connection
refused or reset, a timeout, a 5xx, a 429) is retried, the same delivery again, until it is
acknowledged; a 4xx other than 429 is a harness error and fails the run.

The kills: a thread waits until the server answers ``/healthz``, lets it work a random time
(``--kill-after MIN MAX`` seconds, drawn from the seed), sends it SIGKILL, waits a random
pause (0-0.5 s, during which senders find the port closed) and starts it again; ``--kills``
times. The senders go on with new journeys until every kill has happened and at least
``--journeys`` journeys have been sent. The plan and the kill delays come from the seed; which
request a kill lands on depends on timing and is not reproducible.

``--workers N`` (PostgreSQL): the server is ``calltrack serve --workers N`` and each kill takes
one worker at random (SIGKILL); its parent starts another while the others keep answering.
The deliveries in flight on the killed worker's connections are retried and land on another.

What is checked, in the database, once the server started after the last kill has stopped on
SIGTERM (exit status 0 expected):

- every acknowledged call webhook is stored exactly once: its call (``calls`` by provider and
  call ref) once, its event (``call_events`` by call and event ref) once; every call ended in
  the status its events say (completed with its talk time, or no-answer) and was matched to
  the visitor who was shown the number (or to the static number);
- every acknowledged number request is in the database exactly once: one lease for the
  visitor, on the number it was shown, and one touchpoint;
- no lease is corrupt: no number with two open leases or two overlapping lease intervals
  ``[started_at, coalesce(ended_at, expires_at))``, every open lease's number points back to
  it (``current_lease_id``) and is not free before the lease ends, every lease has its start
  (and, once closed, its end) in the lease log and an open lease's deadline matches the log's
  last entry, no lease or call points at a row that is not there, no call without an event.

And every lead was scored: scoring runs a second after a call touches a lead, from a set in the
process's memory; what a kill leaves pending is scored by the next process at its start, and a
SIGTERM scores it before the exit (before, both were lost: this bench found it).

Figures, per database: deliveries sent (distinct; attempts including retries), acknowledged,
stored (exactly once), duplicated (more than once), lost (acknowledged, not stored: must be 0);
deliveries *in doubt* (an attempt went unanswered, e.g. in flight at a kill) and how many of
those had in fact committed before their answer was lost (their row is older than the attempt
that was acknowledged: the retry found it); the time from each kill to the restarted server's
first healthy answer. Checks print as OK/FAIL lines; the exit status is 1 on any FAIL.

PostgreSQL uses a database of its own (``--pg-url``, default ``crash`` on the local server,
created when missing; its ``public`` schema is dropped and migrated afresh each run). Never
point it at a database whose data you want.

The suite runs a short version of this (tests/test_crash_safety.py, marked ``integration``).
"""

from __future__ import annotations

import argparse
import email.utils
import http.client
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa

REPO = Path(__file__).resolve().parents[2]
SITE_DOMAIN = "crash.example"
SITE_NUMBER = "+14155550100"
FORWARD_TO = "+14155550199"
STATIC_NUMBER = "+14155550150"
STATIC_FORWARD = "+14155550177"
TWILIO_SID = "AC" + "c7" * 16
TWILIO_TOKEN = "crash-test-twilio-token"
UA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36"
DEFAULT_PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/crash"
HTTP_TIMEOUT = 15.0
GIVE_UP_SECONDS = 120.0  # a delivery failing this long: the server is not coming back
SOURCES = (
    {"utm_source": "google", "utm_medium": "cpc", "utm_campaign": "emergency", "utm_term": "plumber near me"},
    {"utm_source": "bing", "utm_medium": "cpc", "utm_campaign": "drains"},
    {"utm_source": "facebook", "utm_medium": "paid_social", "utm_campaign": "spring"},
    {"utm_source": "newsletter", "utm_medium": "email", "utm_campaign": "march"},
    {},
)


def say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# -- the database -------------------------------------------------------------------------------


def ensure_pg_database(url: str) -> None:
    """Create the URL's database on its server when it is missing."""
    from calltrack.db.engine import normalise_url

    u = sa.make_url(normalise_url(url))
    admin = sa.create_engine(u.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            if not conn.execute(sa.text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": u.database}).scalar():
                conn.exec_driver_sql(f'CREATE DATABASE "{u.database}"')
    finally:
        admin.dispose()


def fresh_database(url: str) -> None:
    """An empty database at the newest migration (PostgreSQL: its public schema dropped first)."""
    from calltrack.db.engine import create_engine
    from calltrack.db.migrate import upgrade

    if url.startswith("postgresql"):
        ensure_pg_database(url)
    engine = create_engine(url)
    try:
        if engine.dialect.name == "postgresql":
            with engine.begin() as conn:
                conn.exec_driver_sql("DROP SCHEMA public CASCADE")
                conn.exec_driver_sql("CREATE SCHEMA public")
        upgrade(engine)
    finally:
        engine.dispose()


@dataclass
class Setup:
    account_id: int
    site_id: int
    site_key: str
    pbx_secret: str


def seed_tenant(url: str, pool_size: int) -> Setup:
    """An account with a site, a pool of ``pool_size`` numbers (hold 30 min), a static number,
    a Twilio credential and a PBX signing secret: through the services, in this process."""
    from calltrack.app import build_app
    from calltrack.cli import WallClock, run_now
    from calltrack.config import load_config
    from calltrack.numbers.rules import parse_rules
    from calltrack.numbers.store import NewNumber

    config = load_config(environ={"CALLTRACK_DATABASE_URL": url, "CALLTRACK_LOGGING_FORMAT": "text"})
    app = build_app(config, reactor=None, clock=WallClock(), synchronous_db=True)
    try:
        account, _key = run_now(app.accounts.create_account("Crash Plumbing", timezone="UTC", currency="USD"))
        site = run_now(app.accounts.add_site(account, name="crash", allowed_domains=[SITE_DOMAIN], own_number=SITE_NUMBER, forward_to=FORWARD_TO))
        pool = run_now(app.numbers.create_pool(account.id, site, name="web", rules=parse_rules({"all": True}), hold_seconds=1800))
        numbers = [NewNumber(f"+1415{3000000 + i:07d}", FORWARD_TO, "pool", pool_id=pool.id) for i in range(pool_size)]
        numbers.append(NewNumber(STATIC_NUMBER, STATIC_FORWARD, "static", source="billboard", medium="offline", placement="Highway 101"))
        run_now(app.numbers.add_numbers(account.id, numbers))
        run_now(app.telephony.add_credential(account.id, "twilio", provider_account=TWILIO_SID, secret=TWILIO_TOKEN))
        pbx = run_now(app.telephony.add_credential(account.id, "pbx"))
        return Setup(account.id, site.id, site.site_key, pbx.secret)
    finally:
        app.stop()


# -- the server ---------------------------------------------------------------------------------


def _stat(pid: int) -> list[str]:
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()


def children_of(pid: int) -> list[int]:
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if int(_stat(int(entry))[1]) == pid:
                    out.append(int(entry))
            except (OSError, ValueError, IndexError):
                pass
    return sorted(out)


def age_of(pid: int) -> float:
    """Seconds since a process started (from /proc)."""
    with open("/proc/uptime") as f:
        uptime = float(f.read().split()[0])
    return uptime - int(_stat(pid)[19]) / os.sysconf("SC_CLK_TCK")


class Server:
    """``calltrack serve`` on a fixed port, started again after each kill; with ``workers`` > 1,
    ``serve --workers N``, whose parent replaces a worker that dies."""

    def __init__(self, url: str, work: Path, port: int, workers: int = 1) -> None:
        self.workers = workers
        self.port = port
        self.base = f"http://127.0.0.1:{port}"
        self.log_path = work / "serve.log"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("CALLTRACK_")} | {
            "CALLTRACK_DATABASE_URL": url,
            "CALLTRACK_HTTP_PUBLIC_BASE_URL": self.base,
            "CALLTRACK_LOGGING_FORMAT": "json",
            # INFO: start-up lines (a worker says when it listens) and requests slower than 0.5 s;
            # the runs make no warnings (no unmatched call, no exhausted pool).
            "CALLTRACK_LOGGING_LEVEL": "INFO",
            "CALLTRACK_RATELIMIT_PER_IP_PER_MINUTE": "100000000",
            "CALLTRACK_RATELIMIT_NEW_LEASES_PER_IP_PER_MINUTE": "100000000",
            "CALLTRACK_RATELIMIT_PER_SITE_PER_MINUTE": "100000000",
        }
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self, timeout: float = 90.0) -> float:
        """Start and wait for ``/healthz``; returns the seconds that took."""
        t0 = time.monotonic()
        with open(self.log_path, "ab") as log:
            log.write(f"--- start {self.starts + 1} at {time.time():.3f}\n".encode())
            log.flush()
            extra = ["--workers", str(self.workers)] if self.workers > 1 else []
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "calltrack", "serve", "--port", str(self.port), *extra], cwd=REPO, env=self.env, stdout=log, stderr=log
            )
        self.starts += 1
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"calltrack serve exited with status {self.proc.returncode}:\n{self.log_tail()}")
            if self.healthy():
                if self.workers > 1:
                    self.wait_workers(t0 + timeout)
                return time.monotonic() - t0
            if time.monotonic() - t0 > timeout:
                raise RuntimeError(f"calltrack serve did not answer /healthz within {timeout:.0f}s:\n{self.log_tail()}")
            time.sleep(0.02)

    def healthy(self) -> bool:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
        try:
            conn.request("GET", "/healthz")
            return conn.getresponse().status == 200
        except (OSError, http.client.HTTPException):
            return False
        finally:
            conn.close()

    def wait_workers(self, deadline: float) -> None:
        """Until every worker listens: each logs "serving on … (pid N)" once it does (a worker
        still starting accepts nothing, while /healthz answers as soon as the first one listens)."""
        assert self.proc is not None
        while True:
            pids = children_of(self.proc.pid)
            try:
                log = self.log_path.read_text(errors="replace")
            except OSError:
                log = ""
            if len(pids) == self.workers and all(f"(pid {pid})" in log for pid in pids):
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"the {self.workers} workers did not all start:\n{self.log_tail()}")
            time.sleep(0.05)

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)

    def kill_worker(self, rng: random.Random) -> tuple[int, float]:
        """SIGKILL one worker (one that has lived 6 s or more: the parent gives up on workers
        that keep dying at start); the parent starts another. Returns the pid and the seconds
        until the replacement sits ready."""
        assert self.proc is not None
        while True:
            old = [p for p in children_of(self.proc.pid) if age_of(p) >= 6.0]
            if old:
                break
            time.sleep(0.1)
        victim = rng.choice(old)
        t0 = time.monotonic()
        os.kill(victim, signal.SIGKILL)
        while victim in children_of(self.proc.pid):
            time.sleep(0.02)
        self.wait_workers(time.monotonic() + 90)
        return victim, time.monotonic() - t0

    def stop(self) -> int | None:
        """SIGTERM (a clean stop); returns the exit status."""
        if self.proc is None or self.proc.poll() is not None:
            return None if self.proc is None else self.proc.returncode
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            return None

    def log_tail(self, n: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""


# -- deliveries ---------------------------------------------------------------------------------


class Refused(Exception):
    """A 4xx answer (not 429): the harness sent something wrong."""


class GaveUp(Exception):
    """A delivery failed for GIVE_UP_SECONDS: the server is not coming back."""


@dataclass
class Delivery:
    kind: str  # 'number', 'view', 'twilio', 'pbx'
    ident: tuple[str, ...]  # ('number', vid) | ('call', provider, call_ref, event_ref)
    method: str
    path: str
    query: dict[str, str] | None = None  # number requests
    form: dict[str, str] | None = None  # Twilio
    body: bytes | None = None  # PBX (signed at each attempt)
    redelivery: bool = False
    attempts: int = 0
    unanswered: int = 0  # attempts that got no answer at all (refused, reset, timed out)
    retry_statuses: Counter[int] = field(default_factory=Counter)
    acked_attempt_at: float | None = None  # wall clock when the acknowledged attempt started
    answer: bytes = b""


@dataclass
class CallPlan:
    provider: str
    call_ref: str
    to: str
    vid: str | None  # the visitor the call must be matched to (None: the static number)
    answered: bool
    talk: int


@dataclass
class Journey:
    index: int
    vid: str
    number: str | None = None
    leased: bool = False
    view_number: str | None = None
    call: CallPlan | None = None
    done: bool = False


class Harness:
    def __init__(self, server: Server, setup: Setup, *, seed: int, senders: int, journeys: int, max_journeys: int,
                 kills: int, kill_after: tuple[float, float], progress: bool = True) -> None:
        self.server = server
        self.setup = setup
        self.seed = seed
        self.senders = senders
        self.min_journeys = journeys
        self.max_journeys = max_journeys
        self.kills_wanted = kills
        self.kill_after = kill_after
        self.progress = progress
        self.lock = threading.Lock()
        self.next_journey = 0
        self.deliveries: list[Delivery] = []
        self.journeys: list[Journey] = []
        self.errors: list[str] = []
        self.in_flight = 0
        self.kills: list[dict[str, float]] = []
        self.kills_done = threading.Event()
        self.stop = threading.Event()
        self.local = threading.local()
        self.started = time.monotonic()

    # -- HTTP, one keep-alive connection per sender thread

    def _conn(self) -> http.client.HTTPConnection:
        conn = getattr(self.local, "conn", None)
        if conn is None:
            conn = self.local.conn = http.client.HTTPConnection("127.0.0.1", self.server.port, timeout=HTTP_TIMEOUT)
        return conn

    def _drop_conn(self) -> None:
        conn = getattr(self.local, "conn", None)
        if conn is not None:
            conn.close()
            self.local.conn = None

    def _attempt(self, d: Delivery) -> tuple[int, bytes]:
        headers = {"User-Agent": UA}
        if d.kind in ("number", "view"):
            path = d.path + "?" + urllib.parse.urlencode(d.query or {})
            body = None
            headers["Origin"] = f"https://{SITE_DOMAIN}"
        elif d.kind == "twilio":
            from calltrack.telephony.twilio import compute_signature

            path = d.path
            body = urllib.parse.urlencode(d.form or {}).encode()
            headers |= {
                "Content-Type": "application/x-www-form-urlencoded",
                "X-Twilio-Signature": compute_signature(self.server.base + d.path, d.form or {}, TWILIO_TOKEN),
                "User-Agent": "TwilioProxy/1.1",
            }
        else:
            from calltrack.telephony import pbx

            path = d.path
            body = d.body
            headers |= {"Content-Type": "application/json", pbx.HEADER: pbx.sign(self.setup.pbx_secret, body or b"", timestamp=int(time.time()))}
        conn = self._conn()
        conn.request(d.method, path, body=body, headers=headers)
        resp = conn.getresponse()
        data = resp.read()
        if resp.getheader("connection", "").lower() == "close":
            self._drop_conn()
        return resp.status, data

    def deliver(self, d: Delivery) -> bytes:
        """Send ``d`` until a 2xx answer is read; the answer's body."""
        with self.lock:
            self.deliveries.append(d)
        backoff = 0.02
        failing_since: float | None = None
        while True:
            d.attempts += 1
            started = time.time()
            with self.lock:
                self.in_flight += 1
            try:
                status, data = self._attempt(d)
            except (OSError, http.client.HTTPException):
                status, data = None, b""
                self._drop_conn()
            finally:
                with self.lock:
                    self.in_flight -= 1
            if status is not None and 200 <= status < 300:
                d.acked_attempt_at = started
                d.answer = data
                return data
            if status is None:
                d.unanswered += 1
            elif status in (429, 500, 502, 503, 504):
                d.retry_statuses[status] += 1
            else:
                raise Refused(f"{d.kind} {d.ident}: {status} {data[:300]!r}")
            failing_since = failing_since or time.monotonic()
            if time.monotonic() - failing_since > GIVE_UP_SECONDS:
                raise GaveUp(f"{d.kind} {d.ident}: no answer for {GIVE_UP_SECONDS:.0f}s")
            time.sleep(backoff)
            backoff = min(backoff * 2, 0.25)

    # -- journeys

    def journey(self, i: int) -> None:
        rng = random.Random(f"{self.seed}/{i}")
        j = Journey(i, vid=f"cv{self.seed}x{i}")
        with self.lock:
            self.journeys.append(j)
        sid = f"cs{self.seed}x{i}"
        query = {"site": self.setup.site_key, "vid": j.vid, "sid": sid, "url": f"https://{SITE_DOMAIN}/landing?j={i}", **rng.choice(SOURCES)}
        answer = json.loads(self.deliver(Delivery("number", ("number", j.vid), "GET", "/v1/number", query=dict(query))))
        j.number, j.leased = answer["phoneNumber"], bool(answer.get("lease"))
        if rng.random() < 0.3:
            again = json.loads(self.deliver(Delivery("view", ("view", j.vid), "GET", "/v1/number", query=dict(query))))
            j.view_number = again["phoneNumber"]
        if rng.random() < 0.5:
            static = rng.random() < 1 / 7
            to = STATIC_NUMBER if static else j.number
            answered = rng.random() < 0.75
            talk = rng.randint(20, 600) if answered else 0
            caller = f"+1212{2000000 + i:07d}"
            if rng.random() < 0.5:
                j.call = CallPlan("twilio", f"CA{self.seed % 2**32:08x}{i:024x}", to, None if static else j.vid, answered, talk)
                self.twilio_call(rng, j.call, caller)
            else:
                j.call = CallPlan("pbx", f"{1767225600 + self.seed}.{i}", to, None if static else j.vid, answered, talk)
                self.pbx_call(rng, j.call, caller)
        j.done = True

    def _webhook(self, rng: random.Random, d: Delivery) -> bytes:
        answer = self.deliver(d)
        if rng.random() < 0.05:  # the provider delivers it again anyway
            again = Delivery(d.kind, d.ident, d.method, d.path, query=d.query, form=d.form, body=d.body, redelivery=True)
            second = self.deliver(again)
            if d.kind == "pbx" and not json.loads(second).get("duplicate"):
                with self.lock:
                    self.errors.append(f"a PBX event delivered twice was not answered as a duplicate: {d.ident}")
        return answer

    def twilio_call(self, rng: random.Random, c: CallPlan, caller: str) -> None:
        voice = {
            "AccountSid": TWILIO_SID, "ApiVersion": "2010-04-01", "CallSid": c.call_ref, "CallStatus": "ringing",
            "Direction": "inbound", "From": caller, "Caller": caller, "To": c.to, "Called": c.to,
            "FromCity": "NEW YORK", "FromState": "NY", "FromZip": "10001", "FromCountry": "US", "ToCountry": "US",
        }
        self._webhook(rng, Delivery("twilio", ("call", "twilio", c.call_ref, "voice"), "POST", "/v1/webhooks/twilio/voice", form=voice))
        child = "CA" + f"{c.call_ref[2:]}"[::-1]
        steps = ["initiated", "ringing"] + (["in-progress", "completed"] if c.answered else ["no-answer"])
        for seq, status in enumerate(steps):
            params = {
                "AccountSid": TWILIO_SID, "ApiVersion": "2010-04-01", "CallSid": child, "ParentCallSid": c.call_ref,
                "CallStatus": status, "Direction": "outbound-dial", "From": caller,
                "To": STATIC_FORWARD if c.vid is None else FORWARD_TO, "CallbackSource": "call-progress-events",
                "SequenceNumber": str(seq), "Timestamp": email.utils.formatdate(time.time(), usegmt=True),
            }
            if status in ("completed", "no-answer"):
                params["CallDuration"] = str(c.talk)
            ref = f"status:child:{child}:{status}:{seq}"
            self._webhook(rng, Delivery("twilio", ("call", "twilio", c.call_ref, ref), "POST", "/v1/webhooks/twilio/status", form=params))

    def pbx_call(self, rng: random.Random, c: CallPlan, caller: str) -> None:
        base = {"call_id": c.call_ref, "from": caller, "to": c.to}
        events: list[dict[str, Any]] = [{**base, "event": "call.started", "started_at": time.time()}, {**base, "event": "call.ringing"}]
        if c.answered:
            events.append({**base, "event": "call.answered", "answered_at": time.time()})
            events.append({**base, "event": "call.completed", "ended_at": time.time() + c.talk, "disposition": "ANSWERED",
                           "billsec": c.talk, "duration": c.talk + 5})
        else:
            events.append({**base, "event": "call.completed", "ended_at": time.time() + 20, "disposition": "NO ANSWER", "billsec": 0, "duration": 20})
        for ev in events:
            body = json.dumps(ev, separators=(",", ":")).encode()
            self._webhook(rng, Delivery("pbx", ("call", "pbx", c.call_ref, ev["event"]), "POST", "/v1/webhooks/calls", body=body))

    # -- threads

    def sender(self) -> None:
        while not self.stop.is_set():
            with self.lock:
                i = self.next_journey
                enough = i >= self.min_journeys and self.kills_done.is_set()
                if enough or i >= self.max_journeys:
                    return
                self.next_journey += 1
            try:
                self.journey(i)
            except (Refused, GaveUp) as e:
                with self.lock:
                    self.errors.append(str(e))
                self.stop.set()
                return
            except Exception as e:  # noqa: BLE001 - reported, and the run fails
                with self.lock:
                    self.errors.append(f"journey {i}: {type(e).__name__}: {e}")
                self.stop.set()
                return

    def killer(self) -> None:
        rng = random.Random(f"{self.seed}/kills")
        try:
            for k in range(self.kills_wanted):
                wait = rng.uniform(*self.kill_after)
                pause = rng.uniform(0.0, 0.5)
                deadline = time.monotonic() + wait
                while time.monotonic() < deadline:
                    if self.stop.is_set():
                        return
                    time.sleep(0.01)
                with self.lock:
                    in_flight = self.in_flight
                    sent = len(self.deliveries)
                t_kill = time.monotonic()
                if self.server.workers > 1:  # one worker dies; the others keep answering
                    victim, up = self.server.kill_worker(rng)
                    what = f"worker {victim}"
                else:
                    self.server.kill()
                    time.sleep(pause)
                    up = self.server.start()
                    what = "the server"
                self.kills.append({"after": wait, "in_flight": in_flight, "down": time.monotonic() - t_kill, "start": up, "sent": sent})
                if self.progress:
                    say(f"  kill {k + 1}/{self.kills_wanted} ({what}): after {wait:.2f}s of work, {in_flight} requests in flight, "
                        f"{sent} deliveries sent so far; {'replaced' if self.server.workers > 1 else 'back'} after "
                        f"{time.monotonic() - t_kill:.1f}s")
        except Exception as e:  # noqa: BLE001 - reported, and the run fails
            with self.lock:
                self.errors.append(f"killer: {type(e).__name__}: {e}")
            self.stop.set()
        finally:
            self.kills_done.set()

    def run(self) -> float:
        t0 = time.monotonic()
        threads = [threading.Thread(target=self.sender, name=f"sender-{n}", daemon=True) for n in range(self.senders)]
        killer = threading.Thread(target=self.killer, name="killer", daemon=True)
        for t in threads:
            t.start()
        killer.start()
        killer.join()
        for t in threads:
            t.join()
        return time.monotonic() - t0


# -- the checks ---------------------------------------------------------------------------------

CORRUPTION_CHECKS: tuple[tuple[str, str], ...] = (
    ("numbers held by two open leases",
     "SELECT count(*) FROM (SELECT number_id FROM leases WHERE ended_at IS NULL GROUP BY number_id HAVING count(*) > 1) s"),
    ("leases overlapping an earlier lease of their number",
     "SELECT count(*) FROM (SELECT started_at, max(coalesce(ended_at, expires_at)) OVER (PARTITION BY number_id "
     "ORDER BY started_at, id ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS prev_end FROM leases) s "
     "WHERE prev_end > started_at"),
    ("open leases whose number does not point back to them",
     "SELECT count(*) FROM leases l JOIN tracking_numbers n ON n.id = l.number_id "
     "WHERE l.ended_at IS NULL AND (n.current_lease_id IS NULL OR n.current_lease_id <> l.id)"),
    ("numbers pointing at a closed or missing lease",
     "SELECT count(*) FROM tracking_numbers n LEFT JOIN leases l ON l.id = n.current_lease_id "
     "WHERE n.current_lease_id IS NOT NULL AND (l.id IS NULL OR l.ended_at IS NOT NULL)"),
    ("open leases whose number is free before the lease ends",
     "SELECT count(*) FROM leases l JOIN tracking_numbers n ON n.id = l.number_id WHERE l.ended_at IS NULL AND n.free_at < l.expires_at"),
    ("leases without their start in the lease log",
     "SELECT count(*) FROM leases l WHERE NOT EXISTS (SELECT 1 FROM lease_events e WHERE e.lease_id = l.id AND e.kind = 'start')"),
    ("closed leases without their end in the lease log",
     "SELECT count(*) FROM leases l WHERE l.ended_at IS NOT NULL AND NOT EXISTS "
     "(SELECT 1 FROM lease_events e WHERE e.lease_id = l.id AND e.kind IN ('expire', 'release', 'retire'))"),
    ("open leases whose deadline is not the lease log's last",
     "SELECT count(*) FROM leases l WHERE l.ended_at IS NULL AND l.expires_at <> "
     "(SELECT max(e.expires_at) FROM lease_events e WHERE e.lease_id = l.id)"),
    ("leases pointing at a missing touchpoint",
     "SELECT count(*) FROM leases l WHERE l.touchpoint_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM touchpoints t WHERE t.id = l.touchpoint_id)"),
    ("calls without an event", "SELECT count(*) FROM calls c WHERE NOT EXISTS (SELECT 1 FROM call_events e WHERE e.call_id = c.id)"),
    ("calls matched to a missing lease",
     "SELECT count(*) FROM calls c WHERE c.lease_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM leases l WHERE l.id = c.lease_id)"),
    ("calls tied to a missing lead",
     "SELECT count(*) FROM calls c WHERE c.lead_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM leads d WHERE d.id = c.lead_id)"),
)


@dataclass
class Tally:
    sent: int = 0  # distinct deliveries
    attempts: int = 0
    acknowledged: int = 0
    stored: int = 0  # acknowledged and in the database exactly once
    duplicated: int = 0
    lost: int = 0
    in_doubt: int = 0  # an attempt went unanswered before the acknowledgement
    committed_unanswered: int = 0  # of those: the row predates the acknowledged attempt
    redelivered: int = 0  # delivered again after an acknowledgement, on purpose


@dataclass
class Report:
    database: str
    seconds: float
    journeys: int
    kills: list[dict[str, float]]
    tallies: dict[str, Tally]
    corruption: dict[str, int]
    problems: list[str]
    checks: list[str]
    clean_exit: int | None
    unscored_leads: int = 0

    @property
    def total(self) -> Tally:
        t = Tally()
        for part in self.tallies.values():
            for k in vars(t):
                setattr(t, k, getattr(t, k) + getattr(part, k))
        return t

    @property
    def ok(self) -> bool:
        return not any(c.startswith("FAIL") for c in self.checks)


def check(h: Harness, engine: sa.Engine, database: str, seconds: float, clean_exit: int | None) -> Report:
    problems: list[str] = list(h.errors)
    account = h.setup.account_id
    with engine.connect() as conn:
        call_rows = conn.execute(
            sa.text("SELECT id, provider, call_ref, status, answered_at, duration, match_method, vid FROM calls WHERE account_id = :a"),
            {"a": account},
        ).all()
        event_rows = conn.execute(
            sa.text("SELECT c.provider, c.call_ref, e.event_ref, count(*) AS n, min(e.received_at) AS first "
                    "FROM call_events e JOIN calls c ON c.id = e.call_id WHERE c.account_id = :a "
                    "GROUP BY c.provider, c.call_ref, e.event_ref"),
            {"a": account},
        ).all()
        lease_rows = conn.execute(
            sa.text("SELECT l.vid, n.e164, l.started_at, l.ended_at FROM leases l JOIN tracking_numbers n ON n.id = l.number_id "
                    "WHERE l.site_id = :s"),
            {"s": h.setup.site_id},
        ).all()
        touch_rows = conn.execute(
            sa.text("SELECT vid, count(*) AS n FROM touchpoints WHERE site_id = :s GROUP BY vid"), {"s": h.setup.site_id}
        ).all()
        exhausted = conn.execute(sa.text("SELECT count(*) FROM pool_exhaustions")).scalar_one()
        leads_total, unscored = conn.execute(
            sa.text("SELECT count(*), count(*) - count(scored_at) FROM leads WHERE account_id = :a"), {"a": account}
        ).one()
        corruption = {name: int(conn.execute(sa.text(sql)).scalar_one()) for name, sql in CORRUPTION_CHECKS}

    calls_by_ref: dict[tuple[str, str], list[Any]] = {}
    for r in call_rows:
        calls_by_ref.setdefault((r.provider, r.call_ref), []).append(r)
    events: dict[tuple[str, str, str], tuple[int, float]] = {(r.provider, r.call_ref, r.event_ref): (int(r.n), float(r.first)) for r in event_rows}
    leases_of: dict[str, list[Any]] = {}
    for r in lease_rows:
        leases_of.setdefault(r.vid, []).append(r)
    touches = {r.vid: int(r.n) for r in touch_rows}

    tallies = {"number requests": Tally(), "call webhooks": Tally()}
    seen: set[tuple[str, ...]] = set()
    for d in h.deliveries:
        t = tallies["number requests" if d.kind in ("number", "view") else "call webhooks"]
        t.attempts += d.attempts
        if d.redelivery:
            t.redelivered += 1
            continue
        if d.ident in seen:
            problems.append(f"the harness sent {d.ident} as two deliveries")
        seen.add(d.ident)
        t.sent += 1
        acked = d.acked_attempt_at is not None
        t.acknowledged += acked
        if d.unanswered and acked:
            t.in_doubt += 1
        if not acked:
            continue
        # How many times is it in the database, and since when?
        if d.ident[0] == "call":
            _, provider, ref, event_ref = d.ident
            n_calls = len(calls_by_ref.get((provider, ref), []))
            n_events, first = events.get((provider, ref, event_ref), (0, float("inf")))
            copies = max(n_calls, n_events) if n_calls and n_events else 0
        elif d.ident[0] == "number":
            vid = d.ident[1]
            rows = leases_of.get(vid, [])
            answer = json.loads(d.answer)
            if answer.get("lease"):
                copies = len(rows) if all(r.e164 == answer["phoneNumber"] for r in rows) else 0
                if rows and copies == 0:
                    problems.append(f"visitor {vid} was shown {answer['phoneNumber']} but holds {[r.e164 for r in rows]}")
                first = min((float(r.started_at) for r in rows), default=float("inf"))
            else:
                problems.append(f"visitor {vid} got no lease ({answer['phoneNumber']}): the pool is too small for the run")
                copies, first = 1, float("inf")
            if touches.get(vid, 0) != 1:
                problems.append(f"visitor {vid} has {touches.get(vid, 0)} touchpoints, not 1")
        else:  # a second page view: the same lease, no second one (checked with the first request)
            copies, first = 1, float("inf")
        if copies == 0:
            t.lost += 1
            problems.append(f"LOST: acknowledged {d.kind} delivery {d.ident} is not in the database")
        elif copies > 1:
            t.duplicated += 1
            problems.append(f"DUPLICATED: {d.kind} delivery {d.ident} is in the database {copies} times")
        else:
            t.stored += 1
        if d.unanswered and first < d.acked_attempt_at:  # type: ignore[operator]
            t.committed_unanswered += 1

    # Every call ended as its events say, matched to who was shown the number.
    for j in h.journeys:
        if j.view_number is not None and j.view_number != j.number:
            problems.append(f"visitor {j.vid} was shown {j.number}, then {j.view_number} on the next page")
        c = j.call
        if c is None or not j.done:
            continue
        rows = calls_by_ref.get((c.provider, c.call_ref), [])
        if len(rows) != 1:
            continue  # counted above
        r = rows[0]
        want_status = "completed" if c.answered else "no-answer"
        if r.status != want_status or (c.answered and (r.answered_at is None or r.duration != c.talk)):
            problems.append(f"call {c.provider} {c.call_ref}: status {r.status}, answered_at {r.answered_at}, duration {r.duration}; "
                            f"expected {want_status}" + (f" with {c.talk}s of talk" if c.answered else ""))
        want_match = ("static", None) if c.vid is None else ("lease", c.vid)
        if (r.match_method, r.vid) != want_match:
            problems.append(f"call {c.provider} {c.call_ref} to {c.to}: matched {r.match_method} / {r.vid}, expected {want_match}")
    unfinished = sum(not j.done for j in h.journeys)
    if unfinished and not h.errors:
        problems.append(f"{unfinished} journeys did not finish")
    if exhausted:
        problems.append(f"{exhausted} number requests found the pool exhausted: make the pool larger (--pool-size)")

    total = Tally()
    for part in tallies.values():
        for k in vars(total):
            setattr(total, k, getattr(total, k) + getattr(part, k))
    checks = []
    killed = "a worker" if h.server.workers > 1 else "the server"
    checks.append(("OK   " if len(h.kills) == h.kills_wanted else "FAIL ") + f"{killed} was killed {len(h.kills)} times with SIGKILL "
                  f"(of {h.kills_wanted}) and {'replaced' if h.server.workers > 1 else 'started again'} each time")
    checks.append(("OK   " if total.lost == 0 and total.acknowledged == total.sent else "FAIL ")
                  + f"lost: {total.lost} of {total.acknowledged} acknowledged deliveries ({total.sent} sent, every one acknowledged in the end: "
                  f"{'yes' if total.acknowledged == total.sent else 'NO'})")
    checks.append(("OK   " if total.duplicated == 0 else "FAIL ") + f"duplicated: {total.duplicated} (including {total.redelivered} deliveries "
                  f"sent again after their acknowledgement, and {total.in_doubt} retried after an unanswered attempt)")
    bad = {k: v for k, v in corruption.items() if v}
    checks.append(("OK   no lease is corrupt: " + ", ".join(f"{k} 0" for k in corruption)) if not bad else
                  "FAIL corrupt: " + ", ".join(f"{k} {v}" for k, v in bad.items()))
    other = [p for p in problems if not p.startswith(("LOST", "DUPLICATED"))]
    checks.append(("OK   " if not other else "FAIL ") + "every call ended as its events say and was matched to the visitor shown the number; "
                  "every visitor kept one lease, one touchpoint and one number" + ("" if not other else f": {len(other)} problems"))
    checks.append(("OK   " if clean_exit == 0 else "FAIL ") + f"the server started after the last kill stops cleanly on SIGTERM: exit status {clean_exit}")
    # A lead is scored a second after a call touches it, from a set in the process's memory: a
    # kill in that second leaves it to the next process, which scores recent unscored leads at
    # its start; SIGTERM scores the set before exiting.
    checks.append(("FAIL " if unscored else "OK   ") + f"leads never scored: {unscored} of {leads_total} (scores pending at a kill "
                  "are made at the next start, at SIGTERM before the exit)")
    return Report(database, seconds, len(h.journeys), h.kills, tallies, corruption, problems, checks, clean_exit, int(unscored))


# -- one run ------------------------------------------------------------------------------------


def run_crash(url: str, *, work: Path, seed: int = 1, kills: int = 5, journeys: int = 1500, senders: int = 24,
              kill_after: tuple[float, float] = (1.0, 4.0), pool_size: int = 10_000, workers: int = 1,
              progress: bool = True) -> Report:
    """Set up a fresh database at ``url``, drive and kill a server on it, check, report."""
    from calltrack.db.engine import create_engine

    from calltrack.db.engine import normalise_url

    url = normalise_url(url)
    database = "postgresql" if url.startswith("postgresql") else "sqlite"
    if workers > 1 and database == "sqlite":
        raise RuntimeError("--workers needs PostgreSQL")
    fresh_database(url)
    if pool_size < journeys:
        raise RuntimeError(f"a pool of {pool_size} numbers cannot serve {journeys} journeys (--pool-size)")
    setup = seed_tenant(url, pool_size)
    server = Server(url, work, free_port(), workers=workers)
    if progress:
        say(f"{database}: serving on port {server.port} ({url.split('@')[-1] if '@' in url else url}); "
            f"{senders} senders, {kills} kills, at least {journeys} journeys")
    server.start()
    # Each journey takes at most one lease (held 30 min): new journeys stop when the pool would run out.
    harness = Harness(server, setup, seed=seed, senders=senders, journeys=journeys, max_journeys=pool_size,
                      kills=kills, kill_after=kill_after, progress=progress)
    try:
        seconds = harness.run()
        # The process that recovered from the last kill stops cleanly.
        clean_exit = server.stop()
    finally:
        if server.proc is not None and server.proc.poll() is None:
            server.proc.kill()
            server.proc.wait()
    engine = create_engine(url)
    try:
        report = check(harness, engine, database + (f", serve --workers {workers}" if workers > 1 else ""), seconds, clean_exit)
    finally:
        engine.dispose()
    levels: Counter[str] = Counter()
    errors: list[str] = []
    for line in server.log_path.read_text(errors="replace").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            levels["not json"] += "Traceback" in line
            continue
        levels[record.get("level", "?")] += 1
        if record.get("level") in ("error", "critical"):
            errors.append(str(record.get("msg", ""))[:200])
    report.checks.append(("FAIL " if errors or levels["not json"] else "OK   ") + f"the server logged {len(errors)} errors, "
                         f"{levels['warning']} warnings (database retries are warnings)"
                         + (f": {errors[:3]}" if errors else "") + (" and a traceback" if levels["not json"] else ""))
    return report


def print_report(r: Report) -> None:
    print()
    print(f"{r.database}: {len(r.kills)} SIGKILLs in {r.seconds:.1f}s, {r.journeys} journeys")
    if r.kills:
        starts = sorted(k["start"] for k in r.kills)  # restart, or a worker's replacement, to ready
        afters = ", ".join(f"{k['after']:.1f}" for k in r.kills)
        print(f"  kills after {afters} s of work; requests in flight at each: "
              f"{', '.join(str(int(k['in_flight'])) for k in r.kills)}; "
              f"{'a worker replaced and ready' if 'workers' in r.database else 'restart to healthy'}: median {starts[len(starts) // 2]:.1f}s, "
              f"max {starts[-1]:.1f}s")
    head = f"  {'':<18}{'sent':>7}{'attempts':>10}{'acked':>7}{'stored':>8}{'dup':>5}{'lost':>6}{'in doubt':>10}{'committed':>11}{'again':>7}"
    print(head)
    for name, t in [*r.tallies.items(), ("total", r.total)]:
        print(f"  {name:<18}{t.sent:>7}{t.attempts:>10}{t.acknowledged:>7}{t.stored:>8}{t.duplicated:>5}{t.lost:>6}"
              f"{t.in_doubt:>10}{t.committed_unanswered:>11}{t.redelivered:>7}")
    print("  sent = distinct deliveries; attempts include retries; in doubt = an attempt went unanswered (in flight at a kill,\n"
          "  or sent while the server was down); committed = of those, the row predates the acknowledged attempt (it had\n"
          "  committed, its answer was lost with the process; the retry found it); again = delivered twice on purpose.")
    for c in r.checks:
        print(f"  {c}")
    for p in r.problems[:20]:
        print(f"    {p}")
    if len(r.problems) > 20:
        print(f"    … and {len(r.problems) - 20} more")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="both", help="which databases (default both)")
    p.add_argument("--pg-url", default=DEFAULT_PG_URL, help=f"PostgreSQL database of its own (default {DEFAULT_PG_URL})")
    p.add_argument("--kills", type=int, default=5, help="SIGKILLs per database (default 5)")
    p.add_argument("--kill-after", type=float, nargs=2, default=(1.0, 4.0), metavar=("MIN", "MAX"),
                   help="seconds of work before each kill, drawn uniformly (default 1 4)")
    p.add_argument("--journeys", type=int, default=1500, help="at least this many visitor journeys (default 1500)")
    p.add_argument("--senders", type=int, default=48, help="concurrent sender threads (default 48)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--workers", type=int, default=1,
                   help="PostgreSQL: serve --workers N, and each kill takes one worker (the parent replaces it) (default 1)")
    p.add_argument("--pool-size", type=int, default=10_000,
                   help="pool numbers (default 10000); no more journeys than this are started, one lease each")
    p.add_argument("--json-out", metavar="FILE", help="also write the figures as JSON")
    p.add_argument("--keep", action="store_true", help="keep the temp directory (SQLite database, server log)")
    a = p.parse_args(argv)
    if a.kills < 1 or a.journeys < 1 or a.senders < 1 or not 0 < a.kill_after[0] <= a.kill_after[1]:
        p.error("--kills, --journeys and --senders must be at least 1, and 0 < MIN <= MAX for --kill-after")
    tmp = Path(tempfile.mkdtemp(prefix="calltrack-crash-"))
    reports = []
    try:
        for db in (["sqlite", "postgresql"] if a.db == "both" else [a.db]):
            url = f"sqlite:///{tmp / 'crash.db'}" if db == "sqlite" else a.pg_url
            work = tmp / db
            work.mkdir()
            reports.append(run_crash(url, work=work, seed=a.seed, kills=a.kills, journeys=a.journeys, senders=a.senders,
                                     kill_after=tuple(a.kill_after), pool_size=a.pool_size,
                                     workers=a.workers if db == "postgresql" else 1))
    except KeyboardInterrupt:
        say("interrupted")
        return 130
    except RuntimeError as e:
        say(f"crash.py: {e}")
        return 1
    finally:
        if a.keep:
            say(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    print(f"\ncalltrack crash safety — {time.strftime('%Y-%m-%d %H:%M')}, {os.cpu_count()} CPUs, seed {a.seed}, "
          f"{a.senders} senders, kills after {a.kill_after[0]:g}-{a.kill_after[1]:g}s of work")
    for r in reports:
        print_report(r)
    if a.json_out:
        Path(a.json_out).write_text(json.dumps([
            {"database": r.database, "seconds": r.seconds, "journeys": r.journeys, "kills": r.kills,
             "tallies": {k: vars(t) for k, t in r.tallies.items()}, "total": vars(r.total), "corruption": r.corruption,
             "unscored_leads": r.unscored_leads, "checks": r.checks, "problems": r.problems} for r in reports], indent=2))
    ok = all(r.ok for r in reports)
    print("\n" + ("OK: " if ok else "FAIL: ") + "; ".join(
        f"{r.database}: {r.total.sent} sent, {r.total.acknowledged} acknowledged, {r.total.stored} stored, "
        f"{r.total.duplicated} duplicated, {r.total.lost} lost, {len(r.kills)} kills" for r in reports))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
