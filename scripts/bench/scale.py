#!/usr/bin/env python3
"""Scale-out: several ``calltrack serve`` processes on one PostgreSQL database, under
concurrent number requests and call webhooks: throughput with 1 and 2 processes, and proof
that no number was ever held by two visitors at once over at least 100,000 leases.

    .venv/bin/python scripts/bench/scale.py [--processes 1,2] [--rounds 2] [--duration 20]
        [--leases 100000] [--mode workers|ports] [--pg-url postgresql+psycopg://postgres@127.0.0.1:5432/scale]

The load (wrk, one Lua script, ``-t1 -c64`` by default) mixes, per request:

- 70% ``GET /v1/number`` for a NEW visitor (a visitor id of wrk's own, so it can come back):
  each takes a lease on a pool number (or finds the pool exhausted);
- 15% ``GET /v1/number`` for a RETURNING visitor, one of the last 2,000 that wrk thread made:
  answered from the process's memory when that process confirmed the lease in the last
  second, else renewed in the database (through the visitor's advisory lock: the other
  process may hold it), or leased anew when the short hold has lapsed;
- 15% Twilio voice webhooks, each a CallSid of its own, signed in Python before the run
  (``calltrack.telephony.twilio.compute_signature`` over the public URL the processes share)
  and read from a file, each line sent once; calls to pool numbers are matched to whichever
  lease held the number, some go to the static number.

To make numbers change hands often, the pool (``--pool-size``, 3,000) is given a hold of
``--hold`` seconds (4) and a cool-down of 1 s, written into the database after the pool is
made (the API's minimum hold is 60 s); the processes renew in the database at most every
second and sweep expired leases every second. At ~1,000 new leases a second every number is
leased again every few seconds and the pool runs near empty, so processes compete for the
same least-recently-used numbers (``FOR UPDATE SKIP LOCKED``) all the time.

``--mode workers`` (default) runs ``calltrack serve --workers N`` (one socket, the kernel
hands connections to the N children); ``--mode ports`` runs N separate ``calltrack serve``
processes on N ports, as behind a load balancer, and one wrk per process with its share of
the connections. One process is plain ``calltrack serve`` in both modes. Sharing one socket,
``--workers`` processes take new connections as they come to accept them, and wrk opens all
its connections at once and keeps them: one process may end up with most of them (the report
says so, from the processes' CPU); ``--mode ports`` spreads them evenly by construction. Runs alternate
1, 2, … processes ``--rounds`` times; medians are shown. Then, if the leases table holds
fewer than ``--leases`` leases, the most processes run the same load until it does.

Checked at the end, over every lease of every run (the leases table):

- double leases: a lease whose [started_at, coalesce(ended_at, expires_at)) overlaps an
  earlier lease of the same number (a window over each number's leases in start order; any
  overlapping pair makes one) — must be 0; and numbers with two open leases (the unique
  partial index ``uq_leases_open_number`` forbids it) — must be 0;
- the lease and call consistency checks of crash.py (open leases' numbers point back to them,
  the lease log agrees, no dangling references);
- every response was 2xx, no socket errors; the calls stored equal the voice webhooks sent
  less at most those in flight when wrk stopped; each server stopped with status 0.

What limits the figures, honestly: this machine has few cores (``os.cpu_count()``), and wrk,
every calltrack process and PostgreSQL share them. The report shows the CPU each used (cores,
from /proc): wrk, the calltrack processes, PostgreSQL (every ``postgres`` process, other
databases' included) and everything else (``other``); when the machine is saturated, a second
process can only take CPU from PostgreSQL and wrk, and the ratio says more about the core
count than about calltrack. The ratio that would show on bigger hardware is bounded by
PostgreSQL (one commit per batch per process) rather than by one reactor per process.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import resource
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import urllib.parse
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import sqlalchemy as sa  # noqa: E402

from crash import CORRUPTION_CHECKS, ensure_pg_database, fresh_database  # noqa: E402 - shared with the crash bench
from number_endpoint import calltrack_cmd, cpu_seconds, free_port, http_get, machine_cpu, ms, say  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
DEFAULT_PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/scale"
PUBLIC = "https://calls.scale.example"  # the URL providers sign: the load balancer's, shared by all processes
VOICE = "/v1/webhooks/twilio/voice"
SITE_DOMAIN = "scale.example"
SITE_NUMBER = "+14155550100"
FORWARD_TO = "+14155550199"
STATIC_NUMBER = "+14155550150"
STATIC_FORWARD = "+14155550177"
UA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36"


# -- setting up ---------------------------------------------------------------------------------


@dataclass
class Tenant:
    account_id: int
    site_key: str
    pool: list[str]
    account_sid: str
    token: str


def seed(url: str, pool_size: int, hold: int, cooldown: int) -> Tenant:
    from calltrack.app import build_app
    from calltrack.cli import WallClock, run_now
    from calltrack.config import load_config
    from calltrack.numbers.rules import parse_rules
    from calltrack.numbers.store import NewNumber

    config = load_config(environ={"CALLTRACK_DATABASE_URL": url, "CALLTRACK_LOGGING_FORMAT": "text"})
    app = build_app(config, reactor=None, clock=WallClock(), synchronous_db=True)
    try:
        account, _ = run_now(app.accounts.create_account("Scale Plumbing", timezone="UTC", currency="USD"))
        site = run_now(app.accounts.add_site(account, name="scale", allowed_domains=[SITE_DOMAIN], own_number=SITE_NUMBER, forward_to=FORWARD_TO))
        pool = run_now(app.numbers.create_pool(account.id, site, name="web", rules=parse_rules({"all": True})))
        numbers = [f"+1415{3000000 + i:07d}" for i in range(pool_size)]
        run_now(app.numbers.add_numbers(account.id, [NewNumber(n, FORWARD_TO, "pool", pool_id=pool.id) for n in numbers]
                                        + [NewNumber(STATIC_NUMBER, STATIC_FORWARD, "static", source="billboard", medium="offline")]))
        account_sid, token = "AC" + secrets.token_hex(16), secrets.token_hex(16)
        run_now(app.telephony.add_credential(account.id, "twilio", provider_account=account_sid, secret=token))
        with app.engine.begin() as conn:  # below the API's 60 s minimum, on purpose (see the docstring)
            conn.execute(sa.text("UPDATE pools SET hold_seconds = :h, cooldown_seconds = :c WHERE id = :p"),
                         {"h": hold, "c": cooldown, "p": pool.id})
        return Tenant(account.id, site.site_key, numbers, account_sid, token)
    finally:
        app.stop()


# -- servers ------------------------------------------------------------------------------------


def process_tree(pid: int) -> list[int]:
    """``pid`` and its descendants, from /proc."""
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        parents.setdefault(ppid, []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(parents.get(p, []))
    return out


def postgres_pids() -> list[int]:
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/comm") as f:
                    if f.read().strip() == "postgres":
                        pids.append(int(entry))
            except OSError:
                pass
    return pids


def cpu_of(pids: list[int]) -> dict[int, float]:
    return {p: c for p in pids if not math.isnan(c := cpu_seconds(p)[0])}


class Calltrack:
    """N processes: ``serve --workers N`` on one port, or N ``serve`` on N ports."""

    def __init__(self, n: int, mode: str, env: dict[str, str], log_dir: Path) -> None:
        self.n, self.mode, self.env, self.log_dir = n, mode, env, log_dir
        self.procs: list[subprocess.Popen[bytes]] = []
        self.ports: list[int] = []

    def start(self) -> None:
        if self.mode == "workers" or self.n == 1:
            self.ports = [free_port()]
            extra = ["--workers", str(self.n)] if self.n > 1 else []
            cmds = [[*calltrack_cmd(), "serve", "--port", str(self.ports[0]), *extra]]
        else:
            self.ports = [free_port() for _ in range(self.n)]
            cmds = [[*calltrack_cmd(), "serve", "--port", str(p)] for p in self.ports]
        for i, cmd in enumerate(cmds):
            log = open(self.log_dir / f"serve-{self.n}-{i}.log", "ab")  # noqa: SIM115 - the child holds it
            self.procs.append(subprocess.Popen(cmd, env=self.env, stdout=log, stderr=subprocess.STDOUT, cwd=REPO))
        deadline = time.monotonic() + 120
        for port, proc in zip(self.ports, self.procs, strict=True):
            while True:
                if proc.poll() is not None:
                    raise RuntimeError(f"calltrack serve exited with {proc.returncode}: see {self.log_dir}")
                try:
                    if http_get(port, "/healthz", timeout=2)[0] == 200:
                        break
                except OSError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(f"calltrack serve on {port} did not become healthy: see {self.log_dir}")
                time.sleep(0.1)
        if self.mode == "workers" and self.n > 1:
            # /healthz answers once the first worker listens; wait for the others too, or wrk's
            # connections all go to the first (a worker still starting accepts nothing). Each
            # logs "serving on … (pid N)" once it listens.
            log_path = self.log_dir / f"serve-{self.n}-0.log"
            while True:
                pids = self.worker_pids()
                text = log_path.read_text(errors="replace") if log_path.exists() else ""
                if len(pids) == self.n and all(f"(pid {p})" in text for p in pids):
                    break
                if time.monotonic() > deadline:
                    raise RuntimeError("the workers did not all start")
                time.sleep(0.1)

    def pids(self) -> list[int]:
        return [p for proc in self.procs for p in process_tree(proc.pid)]

    def worker_pids(self) -> list[int]:
        if self.mode == "workers" and self.n > 1:
            return [p for p in process_tree(self.procs[0].pid) if p != self.procs[0].pid]
        return [proc.pid for proc in self.procs]

    def stop(self) -> list[int | None]:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        codes: list[int | None] = []
        for proc in self.procs:
            try:
                codes.append(proc.wait(40))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                codes.append(None)
        return codes


# -- the load -----------------------------------------------------------------------------------


def voice_file(path: Path, t: Tenant, count: int, run_tag: str, rng: random.Random) -> Path:
    from calltrack.telephony.twilio import compute_signature

    with open(path, "w", encoding="ascii") as f:
        for i in range(count):
            to = STATIC_NUMBER if rng.random() < 0.1 else rng.choice(t.pool)
            caller = f"+1312{2000000 + rng.randrange(7_000_000):07d}"
            params = {
                "AccountSid": t.account_sid, "ApiVersion": "2010-04-01", "CallSid": f"CA{run_tag}{i:024x}", "CallStatus": "ringing",
                "Direction": "inbound", "From": caller, "Caller": caller, "To": to, "Called": to, "FromCountry": "US", "ToCountry": "US",
            }
            f.write(f"{compute_signature(PUBLIC + VOICE, params, t.token)}\t{urllib.parse.urlencode(params)}\n")
    return path


def lua_script(path: Path, *, site_key: str, voice: Path, run_tag: str, shares: tuple[float, float], nthreads: int, offset: int) -> Path:
    voice_share, returning_share = shares
    url = urllib.parse.quote(f"https://{SITE_DOMAIN}/landing", safe="")
    body = textwrap.dedent(
        f"""
        local FILE = {json.dumps(str(voice))}
        local SITE = {json.dumps(site_key)}
        local TAG = {json.dumps(run_tag)}
        local URL = {json.dumps(url)}
        local NTHREADS = {nthreads}
        local OFFSET = {offset}
        local P_VOICE = {voice_share}
        local P_RETURN = {voice_share + returning_share}
        local threads = {{}}
        local counter = 0

        setup = function(thread)
          thread:set("tid", counter + OFFSET)  -- unique across the wrk processes of a run
          counter = counter + 1
          table.insert(threads, thread)
        end

        init = function(args)
          items = {{}}
          local f = assert(io.open(FILE, "r"))
          local n = 0
          for line in f:lines() do
            if n % NTHREADS == tid then
              local tab = string.find(line, "\\t", 1, true)
              items[#items + 1] = {{ string.sub(line, 1, tab - 1), string.sub(line, tab + 1) }}
            end
            n = n + 1
          end
          f:close()
          pos = 1
          made = 0
          n_new, n_ret, n_voice, n_short = 0, 0, 0, 0
          math.randomseed(7919 * (tid + 1))
        end

        local function number(vid)
          return wrk.format("GET", "/v1/number?site=" .. SITE .. "&vid=" .. vid .. "&sid=s" .. vid .. "&url=" .. URL)
        end

        request = function()
          local r = math.random()
          if r < P_VOICE then
            if pos <= #items then
              local item = items[pos]
              pos = pos + 1
              n_voice = n_voice + 1
              return wrk.format("POST", "{VOICE}", {{
                ["Content-Type"] = "application/x-www-form-urlencoded",
                ["X-Twilio-Signature"] = item[1],
              }}, item[2])
            end
            n_short = n_short + 1
          elseif r < P_RETURN and made > 0 then
            n_ret = n_ret + 1
            local back = math.random(math.max(1, made - 1999), made)
            return number(TAG .. "t" .. tid .. "v" .. back)
          end
          made = made + 1
          n_new = n_new + 1
          return number(TAG .. "t" .. tid .. "v" .. made)
        end

        done = function(summary, latency, requests)
          local e = summary.errors
          local nn, nr, nv, ns = 0, 0, 0, 0
          for _, t in ipairs(threads) do
            nn = nn + t:get("n_new")
            nr = nr + t:get("n_ret")
            nv = nv + t:get("n_voice")
            ns = ns + t:get("n_short")
          end
          io.write(string.format(
            'BENCH_JSON {{"requests":%.0f,"duration_us":%.0f,"connect":%.0f,"read":%.0f,"write":%.0f,"status":%.0f,' ..
            '"timeout":%.0f,"p50":%.0f,"p90":%.0f,"p99":%.0f,"max":%.0f,"new":%.0f,"returning":%.0f,"voice":%.0f,"voice_short":%.0f}}\\n',
            summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
            latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, nn, nr, nv, ns))
        end
        """
    )
    path.write_text(body)
    return path


@dataclass
class Run:
    label: str
    processes: int
    seconds: float = 0.0
    requests: int = 0
    non_2xx: int = 0
    errors: int = 0
    new: int = 0
    returning: int = 0
    voice: int = 0
    voice_short: int = 0
    p50_ms: float = float("nan")
    p99_ms: float = float("nan")
    leases: int = 0  # made during the run (the leases table)
    calls: int = 0  # stored during the run (the calls table)
    cpu: dict[str, float] = field(default_factory=dict)  # cores: calltrack, per worker, postgres, wrk, other
    exit_codes: list[int | None] = field(default_factory=list)

    @property
    def rps(self) -> float:
        return (self.requests - self.non_2xx) / self.seconds if self.seconds else float("nan")

    @property
    def leases_per_s(self) -> float:
        return self.leases / self.seconds if self.seconds else float("nan")


def run_wrk(port: int, script: Path, *, seconds: float, connections: int, threads: int) -> dict[str, Any]:
    cmd = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds:.0f}s", "--timeout", "10s", "--latency",
           "-H", f"User-Agent: {UA}", "-s", str(script), f"http://127.0.0.1:{port}/"]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"wrk failed ({proc.returncode}): {proc.stderr.strip() or proc.stdout.strip()}")
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("BENCH_JSON ")), None)
    if line is None:
        raise RuntimeError(f"no BENCH_JSON line in wrk's output:\n{proc.stdout}\n{proc.stderr}")
    return json.loads(line[len("BENCH_JSON "):])


class Bench:
    def __init__(self, a: argparse.Namespace) -> None:
        self.a = a
        self.tmp = Path(tempfile.mkdtemp(prefix="calltrack-bench-scale-"))
        self.url = a.pg_url
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("CALLTRACK_")} | {
            "CALLTRACK_DATABASE_URL": self.url,
            "CALLTRACK_HTTP_PUBLIC_BASE_URL": PUBLIC,
            "CALLTRACK_LOGGING_FORMAT": "json",
            # INFO: the start-up lines (each worker says when it listens) and requests slower
            # than 0.5 s, a few a second at most here.
            "CALLTRACK_LOGGING_LEVEL": "INFO",
            "CALLTRACK_RATELIMIT_PER_IP_PER_MINUTE": "1000000000",
            "CALLTRACK_RATELIMIT_NEW_LEASES_PER_IP_PER_MINUTE": "1000000000",
            "CALLTRACK_RATELIMIT_PER_SITE_PER_MINUTE": "1000000000",
            "CALLTRACK_NUMBERS_RENEW_WRITE_INTERVAL_SECONDS": "1",
            "CALLTRACK_NUMBERS_SWEEP_INTERVAL_SECONDS": "1",
            "CALLTRACK_DATABASE_POOL_SIZE": str(a.pool_connections),
            "CALLTRACK_DATABASE_MAX_OVERFLOW": "2",
        }
        self.engine = sa.create_engine(self.url)
        self.tenant: Tenant | None = None
        self.runs: list[Run] = []
        self.churn: list[Run] = []
        self.checks: list[str] = []
        self.rng = random.Random(a.seed)
        self.files = 0
        self.rate_guess = 1500.0

    def scalar(self, sql: str, **params: Any) -> Any:
        with self.engine.connect() as conn:
            return conn.execute(sa.text(sql), params).scalar()

    def setup(self) -> None:
        a = self.a
        say(f"PostgreSQL: {self.url.split('@')[-1]} (a fresh schema)")
        ensure_pg_database(self.url)
        fresh_database(self.url)
        self.tenant = seed(self.url, a.pool_size, a.hold, 1)
        say(f"  a pool of {a.pool_size} numbers (hold {a.hold}s, cool-down 1s), a static number, a Twilio credential")

    def one(self, n: int, label: str, seconds: float, *, warmup: float) -> Run:
        """Start n processes, warm up, measure ``seconds``, stop them."""
        a, t = self.a, self.tenant
        assert t is not None
        servers = Calltrack(n, a.mode, self.env, self.tmp)
        say(f"{label}: starting {n} process{'es' if n > 1 else ''} ({a.mode if n > 1 else 'serve'})")
        servers.start()
        run = Run(label, n)
        try:
            targets = servers.ports
            per = [a.connections // len(targets) + (1 if i < a.connections % len(targets) else 0) for i in range(len(targets))]
            if warmup:
                got = self.load(servers, targets, per, warmup, f"{label}-warm")
                self.rate_guess = max(200.0, (got["requests"] - got["status"]) / max(1e-9, got["duration_us"] / 1e6))
                self.settle(targets)
            lease0 = self.scalar("SELECT coalesce(max(id), 0) FROM leases")
            calls0 = self.scalar("SELECT count(*) FROM calls")
            pg = postgres_pids()
            ours = servers.pids()
            cpu0 = cpu_of(ours + pg)
            busy0, _ = machine_cpu()
            kids0 = resource.getrusage(resource.RUSAGE_CHILDREN)
            t0 = time.monotonic()
            got = self.load(servers, targets, per, seconds, label)
            wall = time.monotonic() - t0
            kids1 = resource.getrusage(resource.RUSAGE_CHILDREN)
            busy1, _ = machine_cpu()
            cpu1 = cpu_of(ours + postgres_pids())
            self.settle(targets)  # requests wrk left in flight finish
            run.seconds = got["duration_us"] / 1e6
            run.requests, run.non_2xx = int(got["requests"]), int(got["status"])
            run.errors = int(got["connect"] + got["read"] + got["write"] + got["timeout"])
            run.new, run.returning, run.voice, run.voice_short = int(got["new"]), int(got["returning"]), int(got["voice"]), int(got["voice_short"])
            run.p50_ms, run.p99_ms = got["p50"] / 1000, got["p99"] / 1000
            run.leases = int(self.scalar("SELECT count(*) FROM leases WHERE id > :i", i=lease0))
            run.calls = int(self.scalar("SELECT count(*) FROM calls")) - int(calls0)

            def used(pids: list[int]) -> float:
                return sum(cpu1.get(p, cpu0.get(p, 0.0)) - cpu0.get(p, 0.0) for p in pids if p in cpu0 or p in cpu1) / wall

            run.cpu["calltrack"] = used(ours)
            for i, w in enumerate(servers.worker_pids()):
                run.cpu[f"worker {i + 1}"] = used([w])
            run.cpu["postgres"] = used(sorted(set(pg) | set(cpu1) - set(ours)))
            run.cpu["wrk"] = (kids1.ru_utime + kids1.ru_stime - kids0.ru_utime - kids0.ru_stime) / wall
            run.cpu["busy"] = (busy1 - busy0) / wall
            run.cpu["other"] = max(0.0, run.cpu["busy"] - run.cpu["calltrack"] - run.cpu["postgres"] - run.cpu["wrk"])
        finally:
            run.exit_codes = servers.stop()
        say(f"  {run.rps:.0f} 2xx/s ({run.leases_per_s:.0f} new leases/s, {run.calls} calls), p99 {ms(run.p99_ms)} ms; CPU cores: "
            + ", ".join(f"{k} {v:.2f}" for k, v in run.cpu.items()))
        return run

    def settle(self, ports: list[int]) -> None:
        """Wait until the requests wrk left in flight have been answered: every process's
        group-commit queue empty (a few asks per port: another worker may answer)."""
        time.sleep(0.3)
        deadline = time.monotonic() + 15
        quiet = 0
        while quiet < 6 and time.monotonic() < deadline:
            for port in ports:
                try:
                    status, body = http_get(port, "/healthz", timeout=5)
                    quiet = quiet + 1 if status == 200 and json.loads(body).get("db_queue", 1) == 0 else 0
                except (OSError, ValueError):
                    quiet = 0
            time.sleep(0.05)

    def load(self, servers: Calltrack, targets: list[int], per: list[int], seconds: float, label: str) -> dict[str, Any]:
        """wrk against each target at once (one per process in 'ports' mode), results summed."""
        a, t = self.a, self.tenant
        assert t is not None
        self.files += 1
        tag = f"r{self.files}"
        need = math.ceil(self.rate_guess * 1.6 * a.voice_share * seconds) + 500
        vf = voice_file(self.tmp / f"voice-{self.files}.txt", t, need, f"{self.files:08x}", self.rng)
        results: list[dict[str, Any] | BaseException] = [None] * len(targets)  # type: ignore[list-item]

        def go(i: int, port: int) -> None:
            try:
                script = lua_script(self.tmp / f"{label}-{i}.lua", site_key=t.site_key, voice=vf, run_tag=tag,
                                    shares=(a.voice_share, a.returning_share), nthreads=a.threads * len(targets), offset=i * a.threads)
                results[i] = run_wrk(port, script, seconds=seconds, connections=max(a.threads, per[i]), threads=a.threads)
            except BaseException as e:  # noqa: BLE001 - re-raised below
                results[i] = e

        workers = [threading.Thread(target=go, args=(i, p)) for i, p in enumerate(targets)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        for r in results:
            if isinstance(r, BaseException):
                raise r
        out: dict[str, Any] = {}
        for key in ("requests", "connect", "read", "write", "status", "timeout", "new", "returning", "voice", "voice_short"):
            out[key] = sum(r[key] for r in results)  # type: ignore[index]
        out["duration_us"] = max(r["duration_us"] for r in results)  # type: ignore[index]
        for key in ("p50", "p90", "p99", "max"):
            out[key] = max(r[key] for r in results)  # type: ignore[index]
        return out

    def run(self) -> None:
        a = self.a
        self.setup()
        for rnd in range(a.rounds):
            for n in a.processes:
                label = f"{n}p" + (f" round {rnd + 1}" if a.rounds > 1 else "")
                self.runs.append(self.one(n, label, a.duration, warmup=a.warmup))
        have = int(self.scalar("SELECT count(*) FROM leases"))
        n = max(a.processes)
        while have < a.leases:
            last = (self.churn or self.runs)[-1]
            rate = max(50.0, last.leases_per_s)
            seconds = min(600.0, max(10.0, (a.leases - have) / rate * 1.15 + 2))
            say(f"leases so far: {have}; {n} processes for another {seconds:.0f}s to pass {a.leases}")
            self.churn.append(self.one(n, f"{n}p more leases", seconds, warmup=0))
            have = int(self.scalar("SELECT count(*) FROM leases"))

    def verify(self) -> dict[str, Any]:
        a = self.a
        with self.engine.connect() as conn:
            leases = int(conn.execute(sa.text("SELECT count(*) FROM leases")).scalar_one())
            numbers_used = int(conn.execute(sa.text("SELECT count(DISTINCT number_id) FROM leases")).scalar_one())
            reuse = conn.execute(sa.text("SELECT max(n), avg(n) FROM (SELECT count(*) AS n FROM leases GROUP BY number_id) s")).one()
            exhausted = int(conn.execute(sa.text("SELECT count(*) FROM pool_exhaustions")).scalar_one())
            renewals = int(conn.execute(sa.text("SELECT count(*) FROM lease_events WHERE kind = 'renew'")).scalar_one())
            corruption = {name: int(conn.execute(sa.text(sql)).scalar_one()) for name, sql in CORRUPTION_CHECKS}
            # The same overlap, pair by pair (the slow, obvious form), as a second opinion.
            pairs = int(conn.execute(sa.text(
                "SELECT count(*) FROM leases a JOIN leases b ON a.number_id = b.number_id AND a.id < b.id "
                "AND a.started_at < coalesce(b.ended_at, b.expires_at) AND b.started_at < coalesce(a.ended_at, a.expires_at)"
            )).scalar_one())
            has_index = bool(conn.execute(sa.text(
                "SELECT indisunique FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid WHERE c.relname = 'uq_leases_open_number'"
            )).scalar())
        errors: list[str] = []
        warnings = 0
        for log in sorted(self.tmp.glob("serve-*.log")):
            for line in log.read_text(errors="replace").splitlines():
                try:
                    record = json.loads(line)
                except ValueError:
                    if "Traceback" in line:
                        errors.append(f"{log.name}: a traceback")
                    continue
                if record.get("level") in ("error", "critical"):
                    errors.append(f"{log.name}: {str(record.get('msg', ''))[:160]}")
                warnings += record.get("level") == "warning"
        self.checks.append(("FAIL " if errors else "OK   ") + f"the servers logged {len(errors)} errors and {warnings} warnings "
                           "(database retries are warnings)" + (f": {errors[:3]}" if errors else ""))
        double = corruption["leases overlapping an earlier lease of their number"]
        two_open = corruption["numbers held by two open leases"]
        self.checks.append(("OK   " if leases >= a.leases else "FAIL ") + f"{leases} leases in the leases table (at least {a.leases} wanted), "
                           f"on {numbers_used} numbers: each leased {reuse[1]:.0f} times on average, at most {reuse[0]}; "
                           f"{renewals} renewals written; {exhausted} requests found the pool exhausted")
        self.checks.append(("OK   " if double == 0 and pairs == 0 else "FAIL ")
                           + f"double leases: {double} leases overlap an earlier lease of their number "
                           f"([started_at, coalesce(ended_at, expires_at)), window check); {pairs} overlapping pairs (pairwise check)")
        self.checks.append(("OK   " if two_open == 0 and has_index else "FAIL ")
                           + f"numbers with two open leases: {two_open}; the unique partial index uq_leases_open_number is "
                           + ("in place" if has_index else "MISSING"))
        rest = {k: v for k, v in corruption.items() if v and k not in ("leases overlapping an earlier lease of their number", "numbers held by two open leases")}
        self.checks.append(("OK   " if not rest else "FAIL ") + "lease and call consistency (crash.py's checks): "
                           + (", ".join(f"{k} {v}" for k, v in rest.items()) if rest else "all 0"))
        for r in self.runs + self.churn:
            problems = []
            if r.non_2xx or r.errors:
                problems.append(f"{r.non_2xx} non-2xx, {r.errors} socket errors/timeouts")
            if not r.voice - self.a.connections <= r.calls <= r.voice:
                problems.append(f"{r.calls} calls stored for {r.voice} voice webhooks sent")
            if r.voice_short:
                problems.append(f"the voice file ran out {r.voice_short} times (number requests sent instead)")
            if any(c != 0 for c in r.exit_codes):
                problems.append(f"exit statuses {r.exit_codes}")
            self.checks.append(("FAIL " if problems else "OK   ") + f"{r.label}: {r.requests} requests all 2xx, {r.calls} calls stored "
                               f"for {r.voice} voice webhooks sent (at most {self.a.connections} in flight at wrk's stop), "
                               f"processes stopped with {r.exit_codes}" + (": " + "; ".join(problems) if problems else ""))
        return {"leases": leases, "numbers_used": numbers_used, "double_leases": double, "overlapping_pairs": pairs,
                "two_open": two_open, "renewals": renewals, "exhausted": exhausted, "corruption": corruption}

    def report(self, facts: dict[str, Any]) -> dict[str, Any]:
        a = self.a
        print()
        print(f"calltrack scale-out — {time.strftime('%Y-%m-%d %H:%M')}, {os.cpu_count()} CPUs, PostgreSQL {self.pg_version()}, "
              f"mode {a.mode}, wrk -t{a.threads} -c{a.connections} per run ({a.duration:.0f}s after {a.warmup:.0f}s warm-up), "
              f"mix {1 - a.voice_share - a.returning_share:.0%} new visitors / {a.returning_share:.0%} returning / {a.voice_share:.0%} voice webhooks")
        head = (f"{'':<18}{'2xx/s':>7}{'leases/s':>9}{'calls':>7}{'p50 ms':>8}{'p99 ms':>8}  |{'calltrack':>10}{'workers':>14}"
                f"{'postgres':>9}{'wrk':>6}{'other':>6}{'busy':>6}")
        print(head)
        print("-" * len(head))
        for r in self.runs + self.churn:
            workers = "/".join(f"{v:.2f}" for k, v in r.cpu.items() if k.startswith("worker"))
            print(f"{r.label:<18}{r.rps:>7.0f}{r.leases_per_s:>9.0f}{r.calls:>7}{ms(r.p50_ms):>8}{ms(r.p99_ms):>8}  |"
                  f"{r.cpu['calltrack']:>10.2f}{workers:>14}{r.cpu['postgres']:>9.2f}{r.cpu['wrk']:>6.2f}{r.cpu['other']:>6.2f}{r.cpu['busy']:>6.2f}")
        print(f"CPU in cores of {os.cpu_count()}: calltrack = all its processes (workers: each serving process); postgres = every "
              "postgres process on the machine; busy = the whole machine; other = busy less the rest.")
        med: dict[int, Run] = {}
        for n in a.processes:
            rs = sorted((r for r in self.runs if r.processes == n), key=lambda r: r.rps)
            med[n] = rs[len(rs) // 2]
        base = med[min(a.processes)]
        ratios = {}
        for n in a.processes:
            if n != base.processes:
                ratios[n] = med[n].rps / base.rps if base.rps else float("nan")
                print(f"throughput: {n} processes {med[n].rps:.0f} 2xx/s vs {base.processes} process {base.rps:.0f} 2xx/s: "
                      f"ratio {ratios[n]:.2f} (median of {a.rounds} round{'s' if a.rounds > 1 else ''}; new leases/s "
                      f"{med[n].leases_per_s:.0f} vs {base.leases_per_s:.0f})")
        saturated = [r.label for r in self.runs if r.cpu.get("busy", 0) > 0.9 * (os.cpu_count() or 1)]
        if saturated:
            print(f"the machine was saturated (busy > 90% of its cores) during: {', '.join(saturated)} — the ratio is bounded by "
                  "the cores, not by calltrack")
        uneven = []
        for r in self.runs + self.churn:
            shares = [v for k, v in r.cpu.items() if k.startswith("worker")]
            if len(shares) > 1 and min(shares) < 0.25 * (sum(shares) / len(shares)):
                uneven.append(r.label)
        if uneven:
            print(f"NOTE: the connections were not spread evenly over the processes during: {', '.join(uneven)} (see the "
                  "workers column). With --workers the processes share one socket and whichever accepts first takes the new "
                  "connections; wrk opens its 64 at once and keeps them, so one process may get most of them.")
        disturbed = [r.label for r in self.runs if r.cpu.get("other", 0) > 0.15]
        if disturbed:
            print(f"WARNING: other processes used CPU during: {', '.join(disturbed)}; those figures are disturbed")
        print()
        print("checks:")
        for c in self.checks:
            print(f"  {c}")
        return {"settings": {k: v for k, v in vars(a).items()}, "runs": [asdict(r) | {"rps": r.rps} for r in self.runs],
                "churn": [asdict(r) | {"rps": r.rps} for r in self.churn], "ratios": ratios, "facts": facts, "checks": self.checks}

    def pg_version(self) -> str:
        v = str(self.scalar("SHOW server_version"))
        return v.split()[0]

    def cleanup(self) -> None:
        self.engine.dispose()
        if self.a.keep:
            say(f"kept {self.tmp}")
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--pg-url", default=DEFAULT_PG_URL, help=f"a PostgreSQL database of its own, emptied (default {DEFAULT_PG_URL})")
    p.add_argument("--processes", default="1,2", help="process counts to compare (default 1,2)")
    p.add_argument("--mode", choices=["workers", "ports"], default="workers",
                   help="serve --workers N on one port, or N serve processes on N ports with a wrk each (default workers)")
    p.add_argument("--duration", type=float, default=20, help="seconds per measured run (default 20)")
    p.add_argument("--warmup", type=float, default=3, help="seconds of warm-up before each run (default 3)")
    p.add_argument("--rounds", type=int, default=2, help="runs per process count, alternating; medians shown (default 2)")
    p.add_argument("--connections", type=int, default=64, help="open connections in all (default 64)")
    p.add_argument("--threads", type=int, default=1, help="wrk threads per wrk (default 1)")
    p.add_argument("--leases", type=int, default=100_000, help="leases the table must hold at the end (default 100000)")
    p.add_argument("--pool-size", type=int, default=1500, help="pool numbers (default 1500)")
    p.add_argument("--hold", type=int, default=4, help="seconds a lease holds its number (default 4)")
    p.add_argument("--pool-connections", type=int, default=8, help="[database] pool_size per process (default 8; max_overflow 2)")
    p.add_argument("--voice-share", type=float, default=0.15, help="share of voice webhooks (default 0.15)")
    p.add_argument("--returning-share", type=float, default=0.15, help="share of returning visitors (default 0.15)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--json-out", metavar="FILE")
    p.add_argument("--keep", action="store_true", help="keep the temp directory (server logs, Lua scripts, request files)")
    a = p.parse_args(argv)
    try:
        a.processes = sorted({int(x) for x in a.processes.split(",")})
    except ValueError:
        p.error("--processes: comma-separated counts, e.g. 1,2")
    if not a.processes or min(a.processes) < 1 or a.rounds < 1 or a.duration < 1 or a.connections < a.threads * max(a.processes):
        p.error("process counts and --rounds at least 1, --duration at least 1, --connections at least --threads × processes")
    if shutil.which("wrk") is None:
        say("scale.py needs wrk: apt-get install -y wrk")
        return 1
    bench = Bench(a)
    try:
        bench.run()
        facts = bench.verify()
        summary = bench.report(facts)
        if a.json_out:
            Path(a.json_out).write_text(json.dumps(summary, indent=2, default=str))
    except KeyboardInterrupt:
        say("interrupted")
        return 130
    except RuntimeError as e:
        say(f"scale.py: {e}")
        return 1
    finally:
        bench.cleanup()
    return 1 if any(c.startswith("FAIL") for c in bench.checks) else 0


if __name__ == "__main__":
    sys.exit(main())
