#!/usr/bin/env python3
"""Benchmark: calltrack's ``GET /v1/number`` against a bare twisted.web resource.

    .venv/bin/python scripts/bench/number_endpoint.py [--duration 10] [--connections 32] [--rounds 3]

Prints, for one run on this machine, requests/s and p50/p90/p99 latency of

1. a bare twisted.web leaf resource answering a fixed ~150-byte JSON body on ``/`` (its own
   process, access log off as in calltrack): the yardstick of DESIGN.md, "The reactor";
2. ``GET /v1/number`` for NEW visitors: no ``vid``, so every request takes a new durable lease
   (each with a landing URL of its own, built by a wrk Lua script);
3. ``GET /v1/number`` for RETURNING visitors: ``--returning-visitors`` visitors (1000) leased just
   before the run, each request carrying one of them's ``vid`` and ``sid`` (the in-memory fast
   path while this process confirmed the lease less than 60 s ago);
4. the ratios new/bare and returning/bare (2xx responses per second) against the targets, 0.30
   and 0.60, and the CPU each server used (per thread, and per request).

calltrack runs as one ``calltrack serve`` process on a SQLite file database (WAL) in a temp
directory, logging at WARNING, rate limits raised out of the way. Numbers are added with
``calltrack numbers import`` (+1 415 200-0000 upwards): enough for the first warm-up, then
topped up from the rate each warm-up showed, so that no measured request finds the pool
exhausted (``--pool-size N``: a fixed pool imported up front instead).

What was measured is checked: wrk's non-2xx/3xx count and socket errors; the server's status
codes and outcomes (``/metrics``: leased / cached / renewed / exhausted / bot …); after a
new-visitor run, that the open leases in the database grew by the number of 2xx answers (plus
at most one in flight per connection when wrk stopped); after a returning run, that no lease
was opened. Failures are printed as FAIL lines. The CPU used by other processes during each
run is shown too (``other``): a busy machine disturbs the figures; ``--rounds N`` runs bare,
new and returning in turn N times and shows medians (and each round against its own bare run).

Load generator: ``wrk`` (``apt-get install -y wrk``), with the same threads, connections and
duration for all runs, each after a warm-up. Without wrk a Python asyncio load generator is
used and the output says so: its figures are bounded by the load generator itself.

Other options: ``--threads`` (wrk threads, default 1: the load generator shares the machine's
cores with the server), ``--warmup`` seconds, ``--only bare,new,returning``, ``--profile DIR``
(py-spy, ``.venv/bin/pip install py-spy``, samples the server during the first measured
new-visitor and returning-visitor runs; the busiest functions per thread are printed and the
collapsed stacks kept in DIR), ``--json-out FILE``, ``--keep`` (keep the temp directory: the
database, the server log, the Lua scripts).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import concurrent.futures
import http.client
import json
import math
import os
import re
import resource
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.parse
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
UA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36"
SITE_DOMAIN = "bench.example"
LANDING = f"https://{SITE_DOMAIN}/landing"
TARGETS = {"new": 0.30, "returning": 0.60}
IMPORT_CHUNK = 20_000  # rows per `calltrack numbers import` (SQLite allows ~32k bound variables)
BARE_BODY = json.dumps(
    {
        "phoneNumber": "+14155550142",
        "formattedPhoneNumber": "(415) 555-0142",
        "ttl": 1800,
        "sid": "Zk3vQm9bX1cYp2Lr",
        "vid": "Ht7wNa0sE4uJd8Kq",
        "lease": True,
    },
    separators=(",", ":"),
).encode()


# -- small helpers -----------------------------------------------------------------------------


def say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def calltrack_cmd() -> list[str]:
    exe = Path(sys.executable).with_name("calltrack")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "calltrack"]


def cpu_seconds(pid: int) -> tuple[float, dict[int, float]]:
    """Process CPU time (user+system, all threads) and per thread, from /proc."""
    tick = os.sysconf("SC_CLK_TCK")

    def read(path: str) -> float:
        with open(path) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / tick  # utime, stime (fields 14, 15)

    try:
        total = read(f"/proc/{pid}/stat")
        per_thread = {}
        for tid in os.listdir(f"/proc/{pid}/task"):
            try:
                per_thread[int(tid)] = read(f"/proc/{pid}/task/{tid}/stat")
            except OSError:
                pass
        return total, per_thread
    except OSError:
        return float("nan"), {}


def machine_cpu() -> tuple[float, float]:
    """Seconds all CPUs were busy (user, nice, system, irq, softirq) and stolen, from /proc/stat."""
    tick = os.sysconf("SC_CLK_TCK")
    try:
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
    except (OSError, ValueError):
        return float("nan"), float("nan")
    # user nice system idle iowait irq softirq steal ...
    return (v[0] + v[1] + v[2] + v[5] + v[6]) / tick, (v[7] if len(v) > 7 else 0) / tick


def http_get(port: int, path: str, timeout: float = 5.0) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path, headers={"User-Agent": UA})
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


_METRIC_RE = re.compile(r'^(?P<name>[a-zA-Z_:][\w:]*)(?:\{(?P<labels>[^}]*)\})?\s+(?P<value>\S+)$')
_LABEL_RE = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    try:
        status, body = http_get(port, "/metrics", timeout=15.0)
    except OSError as e:
        say(f"  /metrics did not answer ({e}); outcome counts will be missing")
        return {}
    if status != 200:
        return {}
    out = {}
    for line in body.decode().splitlines():
        m = _METRIC_RE.match(line)
        if m and not line.startswith("#"):
            labels = tuple(sorted(_LABEL_RE.findall(m["labels"] or "")))
            try:
                out[(m["name"], labels)] = float(m["value"])
            except ValueError:
                pass
    return out


def metric_delta(before: dict, after: dict, name: str, label: str, **match: str) -> dict[str, int]:
    """Increase of counter ``name`` between two scrapes, summed by the value of ``label``."""
    out: dict[str, int] = collections.Counter()
    for (n, labels), v in after.items():
        if n != name:
            continue
        d = dict(labels)
        if any(d.get(k) != val for k, val in match.items()):
            continue
        out[d.get(label, "")] += int(round(v - before.get((n, labels), 0.0)))
    return {k: v for k, v in out.items() if v}


def settle(server: Server, timeout: float = 10.0) -> None:
    """Wait until requests the load generator left in flight have been answered and committed."""
    time.sleep(0.2)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            status, body = http_get(server.port, "/healthz")
            if status == 200 and json.loads(body).get("db_queue", 0) == 0:
                time.sleep(0.05)
                return
        except (OSError, ValueError):
            pass
        time.sleep(0.1)


# -- servers -----------------------------------------------------------------------------------


def serve_bare(port: int) -> None:
    """The yardstick: a leaf Resource with a fixed JSON body, nothing else (runs in a child)."""
    from twisted.internet import reactor
    from twisted.web import resource as tw_resource
    from twisted.web import server

    class Bare(tw_resource.Resource):
        isLeaf = True

        def render_GET(self, request: Any) -> bytes:  # noqa: N802 - Twisted's name
            request.setHeader(b"content-type", b"application/json")
            return BARE_BODY

    class QuietSite(server.Site):
        def log(self, request: Any) -> None:  # calltrack's site keeps no access log either
            return

    reactor.listenTCP(port, QuietSite(Bare()), interface="127.0.0.1", backlog=1024)  # type: ignore[attr-defined]
    reactor.run()  # type: ignore[attr-defined]


class Server:
    def __init__(self, name: str, cmd: list[str], port: int, env: dict[str, str], log_path: Path, ready_path: str) -> None:
        self.name, self.cmd, self.port, self.env, self.log_path, self.ready_path = name, cmd, port, env, log_path, ready_path
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30.0) -> None:
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.cmd, env=self.env, stdout=self._log, stderr=subprocess.STDOUT, cwd=REPO)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with status {self.proc.returncode}:\n{self.log_tail()}")
            try:
                if http_get(self.port, self.ready_path, timeout=1.0)[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"{self.name} did not answer on port {self.port} within {timeout:.0f}s:\n{self.log_tail()}")

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def log_tail(self, n: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
        self.proc = None


# -- load generation ---------------------------------------------------------------------------


@dataclass
class Workload:
    """What one run asks: a fixed path, or paths built per request."""

    kind: str  # 'static' | 'new' | 'returning'
    path: str = "/"
    site_key: str = ""
    visitors: list[tuple[str, str]] = field(default_factory=list)  # returning: (vid, sid)
    tag: str = "w"  # makes new-visitor URLs unique across runs


@dataclass
class RunResult:
    label: str
    generator: str
    requests: int  # completed responses (any status)
    seconds: float
    rps: float  # completed responses per second
    ok_rps: float  # 2xx responses per second
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    non_2xx: int  # wrk: non-2xx-or-3xx
    socket_errors: int
    timeouts: int
    server_cpu_cores: float = float("nan")
    server_main_thread_cores: float = float("nan")
    server_other_threads_cores: float = float("nan")
    loadgen_cpu_cores: float = float("nan")
    machine_busy_cores: float = float("nan")  # every process, from /proc/stat
    steal_cores: float = float("nan")  # the hypervisor's share taken from this VM
    server_statuses: dict[str, int] = field(default_factory=dict)
    outcomes: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def other_cores(self) -> float:
        return max(0.0, self.machine_busy_cores - self.server_cpu_cores - self.loadgen_cpu_cores)

    @property
    def cpu_us_per_request(self) -> float:
        return self.server_cpu_cores / self.rps * 1e6 if self.rps else float("nan")


def _lua(s: str) -> str:
    return json.dumps(s)  # a JSON string is a valid Lua string literal for our ASCII paths


def wrk_script(w: Workload, path: Path) -> Path:
    done = textwrap.dedent(
        """
        done = function(summary, latency, requests)
          local e = summary.errors
          io.write(string.format(
            'BENCH_JSON {"requests":%.0f,"duration_us":%.0f,"bytes":%.0f,"connect":%.0f,"read":%.0f,' ..
            '"write":%.0f,"status":%.0f,"timeout":%.0f,"p50":%.0f,"p90":%.0f,"p99":%.0f,"max":%.0f,"mean":%.1f}\\n',
            summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status, e.timeout,
            latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, latency.mean))
        end
        """
    )
    if w.kind == "static":
        body = done
    elif w.kind == "new":
        prefix = f"/v1/number?site={w.site_key}&url=" + urllib.parse.quote(LANDING + "?n=", safe="") + w.tag + "-"
        body = textwrap.dedent(
            f"""
            local prefix = {_lua(prefix)}
            local nthreads = 0
            setup = function(thread)
              thread:set("tid", nthreads)
              nthreads = nthreads + 1
            end
            local counter = 0
            request = function()
              counter = counter + 1
              -- no vid, no sid: a new visitor each time, with a landing URL of its own
              return wrk.format("GET", prefix .. tid .. "-" .. counter)
            end
            """
        ) + done
    else:
        url = urllib.parse.quote(LANDING, safe="")
        paths = ",\n".join(_lua(f"/v1/number?site={w.site_key}&vid={v}&sid={s}&url={url}") for v, s in w.visitors)
        body = textwrap.dedent(
            """
            local nthreads = 0
            setup = function(thread)
              thread:set("tid", nthreads)
              nthreads = nthreads + 1
            end
            local i = nil
            request = function()
              if i == nil then i = (tid * 7919) % #paths end
              i = (i % #paths) + 1
              return wrk.format("GET", paths[i])
            end
            """
        )
        body = f"paths = {{\n{paths}\n}}\n" + body + done
    path.write_text(body)
    return path


def run_wrk(w: Workload, port: int, *, seconds: int, connections: int, threads: int, script_dir: Path, label: str) -> RunResult:
    script = wrk_script(w, script_dir / f"{label.replace(' ', '_')}.lua")
    path = w.path if w.kind == "static" else "/"
    cmd = [
        "wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--timeout", "10s", "--latency",
        "-H", f"User-Agent: {UA}", "-s", str(script), f"http://127.0.0.1:{port}{path}",
    ]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = subprocess.run(cmd, capture_output=True, text=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise RuntimeError(f"wrk failed ({proc.returncode}): {proc.stderr.strip() or proc.stdout.strip()}")
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("BENCH_JSON ")), None)
    if line is None:
        raise RuntimeError(f"no BENCH_JSON line in wrk's output:\n{proc.stdout}\n{proc.stderr}")
    s = json.loads(line[len("BENCH_JSON ") :])
    if not s["requests"]:  # no latency was recorded: show none rather than zeros
        s.update({k: float("nan") for k in ("p50", "p90", "p99", "max")})
    dur = s["duration_us"] / 1e6
    loadgen = (after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime) / dur
    return RunResult(
        label=label,
        generator=f"wrk -t{threads} -c{connections}",
        requests=int(s["requests"]),
        seconds=dur,
        rps=s["requests"] / dur,
        ok_rps=(s["requests"] - s["status"]) / dur,
        p50_ms=s["p50"] / 1000,
        p90_ms=s["p90"] / 1000,
        p99_ms=s["p99"] / 1000,
        max_ms=s["max"] / 1000,
        non_2xx=int(s["status"]),
        socket_errors=int(s["connect"] + s["read"] + s["write"]),
        timeouts=int(s["timeout"]),
        loadgen_cpu_cores=loadgen,
    )


def run_python_loadgen(w: Workload, port: int, *, seconds: int, connections: int, label: str) -> RunResult:
    """Fallback when wrk is absent: keep-alive HTTP/1.1 over asyncio streams, one process."""
    counter = [0]

    def next_path(conn_no: int) -> str:
        counter[0] += 1
        if w.kind == "static":
            return w.path
        if w.kind == "new":
            return f"/v1/number?site={w.site_key}&url=" + urllib.parse.quote(f"{LANDING}?n={w.tag}-{counter[0]}", safe="")
        v, s = w.visitors[(counter[0] + conn_no * 7919) % len(w.visitors)]
        return f"/v1/number?site={w.site_key}&vid={v}&sid={s}&url=" + urllib.parse.quote(LANDING, safe="")

    latencies: list[float] = []
    statuses: collections.Counter[int] = collections.Counter()
    errors = [0]

    async def one_connection(conn_no: int, stop_at: float) -> None:
        while time.monotonic() < stop_at:
            try:
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
            except OSError:
                errors[0] += 1
                await asyncio.sleep(0.01)
                continue
            try:
                while time.monotonic() < stop_at:
                    req = (
                        f"GET {next_path(conn_no)} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUser-Agent: {UA}\r\n\r\n"
                    ).encode()
                    t0 = time.perf_counter()
                    writer.write(req)
                    head = await reader.readuntil(b"\r\n\r\n")
                    lines = head.decode("latin-1").split("\r\n")
                    status = int(lines[0].split()[1])
                    length, chunked = 0, False
                    for h in lines[1:]:
                        name, _, value = h.partition(":")
                        if name.lower() == "content-length":
                            length = int(value)
                        elif name.lower() == "transfer-encoding" and "chunked" in value.lower():
                            chunked = True
                    if chunked:  # twisted.web chunks a body written without a Content-Length
                        while True:
                            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
                            await reader.readexactly(size + 2)
                            if size == 0:
                                break
                    elif length:
                        await reader.readexactly(length)
                    latencies.append(time.perf_counter() - t0)
                    statuses[status] += 1
            except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError, IndexError):
                errors[0] += 1
            finally:
                writer.close()

    async def main() -> float:
        start = time.monotonic()
        await asyncio.gather(*(one_connection(i, start + seconds) for i in range(connections)))
        return time.monotonic() - start

    before = resource.getrusage(resource.RUSAGE_SELF)
    dur = asyncio.run(main())
    after = resource.getrusage(resource.RUSAGE_SELF)
    latencies.sort()

    def pct(p: float) -> float:
        return latencies[min(len(latencies) - 1, int(p / 100 * len(latencies)))] * 1000 if latencies else float("nan")

    n = len(latencies)
    bad = sum(c for st, c in statuses.items() if not 200 <= st < 400)
    return RunResult(
        label=label,
        generator=f"python asyncio -c{connections} (wrk absent: load-generator-bound figures)",
        requests=n,
        seconds=dur,
        rps=n / dur,
        ok_rps=(n - bad) / dur,
        p50_ms=pct(50),
        p90_ms=pct(90),
        p99_ms=pct(99),
        max_ms=latencies[-1] * 1000 if latencies else float("nan"),
        non_2xx=bad,
        socket_errors=errors[0],
        timeouts=0,
        loadgen_cpu_cores=(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime) / dur,
    )


# -- the benchmark -----------------------------------------------------------------------------


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.tmp = Path(tempfile.mkdtemp(prefix="calltrack-bench-"))
        self.db_path = self.tmp / "bench.db"
        self.use_wrk = shutil.which("wrk") is not None and not args.python_loadgen
        self.servers: list[Server] = []
        self.results: dict[str, list[RunResult]] = {"bare": [], "new": [], "returning": []}
        self.checks: list[str] = []
        self.numbers_imported = 0
        self.site_key = ""
        self.profile_report = ""
        self.env = dict(
            os.environ,
            CALLTRACK_DATABASE_URL=f"sqlite:///{self.db_path}",
            CALLTRACK_LOGGING_FORMAT="json",
            CALLTRACK_LOGGING_LEVEL="WARNING",
            CALLTRACK_RATELIMIT_PER_IP_PER_MINUTE="100000000",
            CALLTRACK_RATELIMIT_NEW_LEASES_PER_IP_PER_MINUTE="100000000",
            CALLTRACK_RATELIMIT_PER_SITE_PER_MINUTE="100000000",
        )
        self.env.pop("CALLTRACK_CONFIG", None)

    # -- plumbing

    def load(self, w: Workload, port: int, seconds: int, label: str) -> RunResult:
        a = self.args
        if self.use_wrk:
            return run_wrk(
                w, port, seconds=seconds, connections=a.connections, threads=a.threads, script_dir=self.tmp, label=label
            )
        return run_python_loadgen(w, port, seconds=seconds, connections=a.connections, label=label)

    def measured(self, w: Workload, server: Server, label: str, *, profile: bool = False) -> RunResult:
        """The measured run, with the server's CPU use and (calltrack) its own counters."""
        before_metrics = scrape(server.port) if server.name == "calltrack" else {}
        cpu0, threads0 = cpu_seconds(server.pid)
        busy0, steal0 = machine_cpu()
        t0 = time.monotonic()
        spy = self.start_profiler(server, label) if profile else None
        result = self.load(w, server.port, self.args.duration, label)
        wall = time.monotonic() - t0
        cpu1, threads1 = cpu_seconds(server.pid)
        busy1, steal1 = machine_cpu()
        result.machine_busy_cores = (busy1 - busy0) / wall
        result.steal_cores = (steal1 - steal0) / wall
        if spy is not None:
            self.finish_profiler(spy)
        result.server_cpu_cores = (cpu1 - cpu0) / wall
        main_delta = threads1.get(server.pid, 0.0) - threads0.get(server.pid, 0.0)
        others = sum(v - threads0.get(t, 0.0) for t, v in threads1.items() if t != server.pid)
        result.server_main_thread_cores = main_delta / wall
        result.server_other_threads_cores = others / wall
        if server.name == "calltrack":
            settle(server)
            after_metrics = scrape(server.port)
            result.server_statuses = metric_delta(
                before_metrics, after_metrics, "calltrack_http_requests_total", "status", route="/v1/number"
            )
            result.outcomes = metric_delta(before_metrics, after_metrics, "calltrack_number_requests_total", "outcome")
        return result

    def warm_up(self, w: Workload, server: Server, label: str, seconds: int | None = None) -> RunResult | None:
        seconds = self.args.warmup if seconds is None else seconds
        if seconds <= 0:
            return None
        result = self.load(w, server.port, seconds, label + " (warm-up)")
        if server.name == "calltrack":
            settle(server)
        return result

    def ctl(self, *argv: str) -> Any:
        proc = subprocess.run([*calltrack_cmd(), "--json", *argv], env=self.env, capture_output=True, text=True, cwd=self.tmp)
        if proc.returncode != 0:
            raise RuntimeError(f"calltrack {' '.join(argv)} failed: {proc.stderr.strip() or proc.stdout.strip()}")
        return json.loads(proc.stdout) if proc.stdout.strip().startswith(("{", "[")) else proc.stdout

    def _query(self, sql: str, *params: Any) -> int:
        with sqlite3.connect(f"file:{self.db_path}?mode=ro", uri=True, timeout=30) as db:
            return int(db.execute(sql, params).fetchone()[0])

    def open_leases(self) -> int:
        return self._query("SELECT count(*) FROM leases WHERE ended_at IS NULL")

    def free_numbers(self) -> int:
        return self._query(
            "SELECT count(*) FROM tracking_numbers WHERE pool_id IS NOT NULL AND status = 'active' AND free_at <= ?",
            time.time(),
        )

    def import_numbers(self, count: int) -> None:
        """Add ``count`` pool numbers, +1 415 2xx xxxx, continuing where the last import ended."""
        from calltrack.phones import to_e164

        start = self.numbers_imported
        if start + count > 800 * 10_000:
            raise RuntimeError("more numbers than the +1 415 200-999 exchanges hold")
        t0 = time.monotonic()
        for lo in range(start, start + count, IMPORT_CHUNK):
            hi = min(lo + IMPORT_CHUNK, start + count)
            rows = [f"+1415{200 + i // 10_000}{i % 10_000:04d}" for i in range(lo, hi)]
            for sample in (rows[0], rows[-1]):  # the CLI checks every row; fail early and clearly
                to_e164(sample)
            csv_path = self.tmp / f"numbers-{lo}.csv"
            csv_path.write_text("number,pool\n" + "".join(f"{r},bench\n" for r in rows))
            self.ctl("numbers", "import", "--site", "1", str(csv_path))
            csv_path.unlink()
            self.numbers_imported = hi
        say(f"  imported {count} numbers with `calltrack numbers import` in {time.monotonic() - t0:.1f}s "
            f"(pool now {self.numbers_imported})")

    def ensure_free(self, need: int) -> bool:
        """Top the pool up to ``need`` free numbers (never with --pool-size); True if it imported."""
        if self.args.pool_size:
            return False
        free = self.free_numbers()
        if free >= need:
            return False
        self.import_numbers(need - free)
        return True

    # -- profiling

    def start_profiler(self, server: Server, label: str) -> tuple[subprocess.Popen[bytes], Path, Path] | None:
        spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
        if not Path(spy).exists():
            say("  --profile: py-spy not found (.venv/bin/pip install py-spy); not profiling")
            return None
        out_dir = Path(self.args.profile)
        out_dir.mkdir(parents=True, exist_ok=True)
        stem = label.replace(" ", "_")
        raw = out_dir / f"{stem}.collapsed.txt"
        base = [spy, "record", "--pid", str(server.pid), "--duration", str(self.args.duration), "--rate", "200",
                "--nonblocking", "--threads", "--function"]
        proc = subprocess.Popen([*base, "--format", "raw", "-o", str(raw)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        say(f"  py-spy is sampling pid {server.pid} (--nonblocking, 200 Hz) into {raw}")
        return proc, raw, out_dir / f"{stem}.svg"

    def finish_profiler(self, spy: tuple[subprocess.Popen[bytes], Path, Path]) -> None:
        proc, raw, svg = spy
        try:
            _, err = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, err = proc.communicate()
        if not raw.exists() or not raw.stat().st_size:
            say(f"  py-spy wrote nothing: {err.decode(errors='replace').strip()[-500:]}")
            return
        label = raw.name.removesuffix(".collapsed.txt").replace("_", " ")
        self.profile_report += ("\n\n" if self.profile_report else "") + summarize_profile(raw, label)
        self.profile_report += f"\n  collapsed stacks: {raw}"
        fg = shutil.which("flamegraph.pl") or shutil.which("inferno-flamegraph")
        if fg:  # a flame graph from the same samples, when a flamegraph tool is around
            with open(svg, "wb") as f:
                if subprocess.run([fg, str(raw)], stdout=f, check=False).returncode == 0:
                    self.profile_report += f"\n  flame graph: {svg}"

    # -- servers

    def start_bare(self) -> Server:
        port = free_port()
        server = Server("bare", [sys.executable, __file__, "--serve-bare", str(port)], port, dict(os.environ),
                        self.tmp / "bare.log", "/")
        self.servers.append(server)
        say(f"bare twisted.web resource: starting on port {port}")
        server.start()
        return server

    def start_calltrack(self, only: set[str]) -> Server:
        a = self.args
        say(f"calltrack: database {self.db_path}")
        self.ctl("db", "upgrade")
        self.ctl("account", "create", "Bench", "--timezone", "UTC")
        site = self.ctl("site", "add", "--name", "bench", "--domain", SITE_DOMAIN, "--number", "(415) 555-0100",
                        "--forward-to", "(415) 555-0199")
        self.site_key = site["site_key"]
        self.ctl("pools", "create", "--site", str(site["id"]), "--name", "bench", "--hold-seconds", "1800")
        if a.pool_size:
            self.import_numbers(a.pool_size)
        else:
            # Enough for the first warm-up at any plausible rate; topped up before each measured run.
            first = (IMPORT_CHUNK if "new" in only else 0) + (a.returning_visitors + 1000 if "returning" in only else 0)
            self.import_numbers(first)
        port = free_port()
        server = Server("calltrack", [*calltrack_cmd(), "serve", "--port", str(port)], port, self.env,
                        self.tmp / "calltrack.log", "/healthz")
        self.servers.append(server)
        say(f"calltrack: starting `calltrack serve --port {port}`")
        server.start()
        return server

    # -- the runs

    def run_bare(self, server: Server, rnd: str) -> None:
        say(f"bare{rnd}: warm-up {self.args.warmup}s, measuring {self.args.duration}s")
        w = Workload("static", path="/")
        self.warm_up(w, server, "bare")
        self.results["bare"].append(self.measured(w, server, "bare"))

    def run_new(self, server: Server, rnd: str, *, profile: bool) -> None:
        a = self.args
        say(f"new visitors{rnd} (no vid: a new lease per request)")
        before = scrape(server.port)
        tag = f"r{len(self.results['new'])}"
        warm = self.warm_up(Workload("new", site_key=self.site_key, tag=tag + "w"), server, "new visitors")
        if warm is not None:
            outcomes = metric_delta(before, scrape(server.port), "calltrack_number_requests_total", "outcome")
            say(f"  warm-up: {warm.rps:.0f} requests/s, outcomes {outcomes}")
            # Enough for the measured run at 1.6x the warm-up's rate, and the returning visitors.
            need = math.ceil(max(warm.rps, 100) * a.duration * 1.6) + a.returning_visitors + 2000
            if self.ensure_free(need):
                self.warm_up(Workload("new", site_key=self.site_key, tag=tag + "v"), server, "new visitors", seconds=1)
        leases0 = self.open_leases()
        say(f"  measuring {a.duration}s ({self.free_numbers()} free numbers, {leases0} open leases)")
        r = self.measured(Workload("new", site_key=self.site_key, tag=tag), server, "new visitors", profile=profile)
        opened = self.open_leases() - leases0
        leased = r.outcomes.get("leased", 0)
        ok_2xx = r.requests - r.non_2xx
        # wrk stops counting at its deadline: up to one request per connection is still in flight.
        good = ok_2xx > 0 and ok_2xx <= opened <= ok_2xx + a.connections + 5 and leased == opened
        self.checks.append(
            ("OK   " if good else "FAIL ")
            + f"new visitors{rnd}: {opened} leases opened in the DB, {leased} 'leased' outcomes in /metrics, "
            f"{ok_2xx} 2xx responses counted by the load generator (+ up to {a.connections} in flight at its stop)"
        )
        others = {k: v for k, v in r.outcomes.items() if k != "leased"}
        if others:
            r.notes.append(f"outcomes other than 'leased': {others}")
        self.results["new"].append(r)

    def prime_returning(self, server: Server) -> list[tuple[str, str]]:
        """Ask once per visitor (as its first page view would) and keep its vid and sid."""
        url = urllib.parse.quote(LANDING, safe="")
        path = f"/v1/number?site={self.site_key}&url={url}"
        n = self.args.returning_visitors

        def worker(count: int) -> list[tuple[str, str]]:
            conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
            got = []
            for _ in range(count):
                conn.request("GET", path, headers={"User-Agent": UA})
                resp = conn.getresponse()
                body = json.loads(resp.read())
                if resp.status != 200 or not body.get("lease"):
                    raise RuntimeError(f"priming a returning visitor: {resp.status} {body}")
                got.append((body["vid"], body["sid"]))
            conn.close()
            return got

        workers = 16
        with concurrent.futures.ThreadPoolExecutor(workers) as ex:
            parts = ex.map(worker, [n // workers + (1 if i < n % workers else 0) for i in range(workers)])
            return [p for part in parts for p in part]

    def run_returning(self, server: Server, rnd: str, *, profile: bool) -> None:
        a = self.args
        say(f"returning visitors{rnd} ({a.returning_visitors} visitors holding leases, each request with their vid+sid)")
        self.ensure_free(a.returning_visitors + 100)
        t0 = time.monotonic()
        visitors = self.prime_returning(server)
        say(f"  leased {len(visitors)} visitors in {time.monotonic() - t0:.1f}s")
        w = Workload("returning", site_key=self.site_key, visitors=visitors)
        self.warm_up(w, server, "returning visitors")
        leases0 = self.open_leases()
        say(f"  measuring {a.duration}s")
        r = self.measured(w, server, "returning visitors", profile=profile)
        opened = self.open_leases() - leases0
        total = sum(r.outcomes.values())
        good = total > 0 and opened == 0 and set(r.outcomes) <= {"cached", "renewed"}
        self.checks.append(
            ("OK   " if good else "FAIL ")
            + f"returning visitors{rnd}: {r.outcomes.get('cached', 0)} of {total} answered from memory ('cached'), "
            f"{r.outcomes.get('renewed', 0)} renewed in the DB, {opened} new leases opened"
        )
        self.results["returning"].append(r)

    def run(self, only: set[str]) -> None:
        a = self.args
        bare = self.start_bare() if "bare" in only else None
        calltrack = self.start_calltrack(only) if only & {"new", "returning"} else None
        for i in range(a.rounds):
            rnd = f" [round {i + 1}/{a.rounds}]" if a.rounds > 1 else ""
            if bare is not None:
                self.run_bare(bare, rnd)
            if calltrack is not None and "new" in only:
                self.run_new(calltrack, rnd, profile=bool(a.profile) and i == 0)
            if calltrack is not None and "returning" in only:
                self.run_returning(calltrack, rnd, profile=bool(a.profile) and i == 0)
        for server in (bare, calltrack):
            if server is not None:
                server.stop()
        log = calltrack.log_tail(500) if calltrack is not None else ""
        if '"ERROR"' in log or '"CRITICAL"' in log or "Traceback" in log:
            self.checks.append(f"FAIL the calltrack server logged errors (see {calltrack.log_path}; --keep keeps it)")

    # -- report

    def report(self) -> dict[str, Any]:
        a = self.args
        runs = [r for rs in self.results.values() for r in rs]
        gen = runs[0].generator if runs else "-"
        med = {k: median_run(rs) for k, rs in self.results.items() if rs}
        bare = med.get("bare")
        print()
        print(f"calltrack GET /v1/number benchmark — {time.strftime('%Y-%m-%d %H:%M')}, {os.cpu_count()} CPUs, "
              f"Python {sys.version.split()[0]}, SQLite file database (WAL), one `calltrack serve` process")
        print(f"load: {gen}, {a.duration}s per run after a {a.warmup}s warm-up"
              + (f"; {a.rounds} rounds (bare, new, returning in turn), medians shown" if a.rounds > 1 else ""))
        if not self.use_wrk:
            print("NOTE: " + ("--python-loadgen" if a.python_loadgen else "wrk is not installed (apt-get install -y wrk)")
                  + "; a Python load generator was used instead:")
            print("      it cannot saturate the servers, so the bare figure and the ratios below are not comparable.")
        print()
        head = (f"{'':<19}{'req/s':>7}{'p50 ms':>8}{'p90 ms':>8}{'p99 ms':>8}{'non2xx':>7}{'errors':>7}  |"
                f"{'server':>7}{'(main+db)':>12}{'µs/req':>7}  |{'load':>5}{'other':>6}{'steal':>6}  |"
                f"{'vs bare':>8}{'target':>11}")
        print(head)
        print("-" * len(head))
        verdicts: dict[str, bool] = {}
        ratios: dict[str, float] = {}

        def row(title: str, r: RunResult, ratio: float, target: float | None) -> str:
            tstr = ""
            if target is not None and not math.isnan(ratio):
                tstr = f"≥{target:.2f} " + ("yes" if ratio >= target else "NO")
            split = f"({r.server_main_thread_cores:.2f}+{r.server_other_threads_cores:.2f})"
            return (f"{title:<19}{r.rps:>7.0f}{ms(r.p50_ms):>8}{ms(r.p90_ms):>8}{ms(r.p99_ms):>8}"
                    f"{r.non_2xx:>7}{r.socket_errors + r.timeouts:>7}  |{r.server_cpu_cores:>7.2f}{split:>12}"
                    f"{r.cpu_us_per_request:>7.0f}  |{r.loadgen_cpu_cores:>5.2f}{r.other_cores:>6.2f}{r.steal_cores:>6.2f}  |"
                    f"{ratio:>8.2f}{tstr:>11}")

        titles = {"bare": "bare twisted.web", "new": "new visitors", "returning": "returning visitors"}
        for key, r in med.items():
            ratio = 1.0 if key == "bare" else (r.ok_rps / bare.ok_rps if bare and bare.ok_rps else float("nan"))
            if key != "bare" and not math.isnan(ratio):
                ratios[key] = ratio
                verdicts[key] = ratio >= TARGETS[key]
            print(row(titles[key], r, ratio, TARGETS.get(key)))
        if a.rounds > 1:
            print()
            print("each round (ratios against that round's bare run):")
            for i in range(a.rounds):
                for key, rs in self.results.items():
                    if i >= len(rs):
                        continue
                    b = self.results["bare"][i] if i < len(self.results["bare"]) else None
                    ratio = 1.0 if key == "bare" else (rs[i].ok_rps / b.ok_rps if b and b.ok_rps else float("nan"))
                    print(row(f"  {i + 1}: {key}", rs[i], ratio, TARGETS.get(key)))
        print()
        print(textwrap.dedent(f"""\
            req/s counts every response (the ratios count 2xx only); errors = socket errors + timeouts.
            CPU in cores (of {os.cpu_count()}) during the measured run: server = the server process, split into its main
            (reactor) thread and its other threads (the SQLite writer); µs/req = server CPU per response;
            load = the load generator; other = every other process on the machine{' (py-spy included)' if a.profile else ''};
            steal = time the hypervisor took from this VM."""))
        cost: dict[str, float] = {}
        if bare is not None and len(med) > 1:
            cost = {k: bare.cpu_us_per_request / r.cpu_us_per_request for k, r in med.items() if k != "bare" and r.rps}
            if cost:
                print("CPU cost ratios (bare µs/req ÷ µs/req; what the ratios would be if every server were CPU-bound, and")
                print("less sensitive to other load): " + ", ".join(f"{k} {v:.2f}" for k, v in cost.items()))
        disturbed = [f"{k} {i + 1}" for k, rs in self.results.items() for i, r in enumerate(rs) if r.other_cores > 0.15]
        if disturbed and not a.profile:
            print(f"WARNING: other processes used CPU during: {', '.join(disturbed)}; those figures are disturbed.")
        for key, rs in self.results.items():
            for r in rs:
                if r.requests == 0:
                    self.checks.append(f"FAIL {key}: no response at all within the {a.duration}s run")
                elif r.non_2xx or r.socket_errors or r.timeouts:
                    self.checks.append(f"FAIL {key}: {r.non_2xx} non-2xx responses, {r.socket_errors} socket errors, "
                                       f"{r.timeouts} timeouts: the figures include failures")
        if self.results["new"] or self.results["returning"]:
            print()
            print("checks:")
            for key in ("new", "returning"):
                for r in self.results[key]:
                    print(f"  {key}: server status codes {r.server_statuses or '-'}, outcomes {r.outcomes or '-'}"
                          + "".join(f"; {n}" for n in r.notes))
            for c in self.checks:
                print(f"  {c}")
        if verdicts:
            print()
            print("targets: " + ", ".join(
                f"{k}/bare = {ratios[k]:.2f} ({'met' if ok else 'NOT met'}, target {TARGETS[k]:.2f})"
                for k, ok in verdicts.items()
            ))
        if self.profile_report:
            print()
            print(self.profile_report)
        return {
            "settings": {k: v for k, v in vars(a).items() if k != "serve_bare"},
            "generator": gen,
            "runs": {k: [asdict(r) for r in rs] for k, rs in self.results.items()},
            "medians": {k: asdict(r) for k, r in med.items()},
            "ratios": ratios,
            "cpu_cost_ratios": cost,
            "targets": TARGETS,
            "checks": self.checks,
            "numbers_imported": self.numbers_imported,
        }

    def cleanup(self) -> None:
        for s in self.servers:
            try:
                s.stop()
            except Exception as e:  # noqa: BLE001 - best effort
                say(f"stopping {s.name}: {e}")
        if self.args.keep:
            say(f"kept {self.tmp}")
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)


def ms(v: float) -> str:
    return "-" if math.isnan(v) else f"{v:.2f}" if v < 100 else f"{v:.0f}"


def median_run(runs: list[RunResult]) -> RunResult:
    """One run's worth of medians (each figure's own median; counts summed)."""
    if len(runs) == 1:
        return runs[0]

    def m(attr: str) -> float:
        vals = sorted(getattr(r, attr) for r in runs)
        n = len(vals)
        return vals[n // 2] if n % 2 else (vals[n // 2 - 1] + vals[n // 2]) / 2

    out = RunResult(**{**asdict(runs[0]), "label": runs[0].label + " (median)"})
    for f in ("rps", "ok_rps", "p50_ms", "p90_ms", "p99_ms", "max_ms", "seconds", "server_cpu_cores",
              "server_main_thread_cores", "server_other_threads_cores", "loadgen_cpu_cores", "machine_busy_cores", "steal_cores"):
        setattr(out, f, m(f))
    for f in ("requests", "non_2xx", "socket_errors", "timeouts"):
        setattr(out, f, sum(getattr(r, f) for r in runs))
    out.server_statuses = dict(sum((collections.Counter(r.server_statuses) for r in runs), collections.Counter()))
    out.outcomes = dict(sum((collections.Counter(r.outcomes) for r in runs), collections.Counter()))
    out.notes = [n for r in runs for n in r.notes]
    return out


def summarize_profile(raw: Path, label: str, top: int = 18) -> str:
    """Where the server's time goes, per thread, from py-spy's collapsed stacks (idle excluded)."""
    threads: dict[str, tuple[collections.Counter[str], collections.Counter[str]]] = {}
    totals: collections.Counter[str] = collections.Counter()
    for line in raw.read_text(errors="replace").splitlines():
        stack, _, n = line.rpartition(" ")
        if not n.isdigit():
            continue
        frames = stack.split(";")
        thread = next((f for f in frames if f.startswith("thread ")), "thread ?")
        thread = re.sub(r"^thread \([^)]*\):?\s*", "", thread) or thread
        frames = [f for f in frames if not f.startswith(("thread ", "process "))]
        count = int(n)
        totals[thread] += count
        self_c, incl = threads.setdefault(thread, (collections.Counter(), collections.Counter()))
        if frames:
            self_c[frames[-1]] += count
        for f in set(frames):
            incl[f] += count
    total = sum(totals.values())
    if not total:
        return "profile: no samples"
    out = [f"profile of the calltrack server during the measured {label} run: {total} busy samples "
           "(py-spy, idle threads excluded); shares are of all busy samples"]
    out.append("  busy samples by thread: " + ", ".join(f"{t} {c / total:.0%}" for t, c in totals.most_common()))
    for thread, n in totals.most_common(3):
        self_c, incl = threads[thread]
        out.append(f"  [{thread}] top functions by self time:")
        out.extend(f"    {c / total:6.1%}  {f}" for f, c in self_c.most_common(top))
        # Inclusive time, leaving out the frames every sample of the thread goes through.
        shown = [(f, c) for f, c in incl.most_common() if c < 0.9 * n][: top + 6]
        out.append(f"  [{thread}] top functions by inclusive time (below the thread's common root):")
        out.extend(f"    {c / total:6.1%}  {f}" for f, c in shown)
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--duration", type=int, default=10, help="seconds per measured run (default 10)")
    p.add_argument("--warmup", type=int, default=2, help="seconds of warm-up before each run (default 2)")
    p.add_argument("--connections", type=int, default=32, help="open connections (default 32)")
    p.add_argument("--threads", type=int, default=1, help="wrk threads (default 1)")
    p.add_argument("--rounds", type=int, default=1, help="repeat bare/new/returning in turn N times; medians shown (default 1)")
    p.add_argument("--returning-visitors", type=int, default=1000, help="visitors cycled through in the returning run")
    p.add_argument("--pool-size", type=int, default=0, help="import this many numbers up front (default: sized from the warm-up)")
    p.add_argument("--only", default="bare,new,returning", help="comma-separated subset of bare,new,returning")
    p.add_argument("--profile", metavar="DIR", help="py-spy the server in the first new/returning runs")
    p.add_argument("--json-out", metavar="FILE", help="also write the figures as JSON")
    p.add_argument("--python-loadgen", action="store_true", help="use the Python load generator even when wrk is there")
    p.add_argument("--keep", action="store_true", help="keep the temp directory (database, logs, Lua scripts)")
    p.add_argument("--serve-bare", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.serve_bare:
        serve_bare(args.serve_bare)
        return 0
    only = {s.strip() for s in args.only.split(",") if s.strip()}
    if not only <= {"bare", "new", "returning"}:
        p.error("--only takes bare, new, returning")
    if args.duration < 1 or args.rounds < 1 or args.warmup < 0 or args.returning_visitors < 1:
        p.error("--duration, --rounds and --returning-visitors must be at least 1, --warmup at least 0")
    if args.connections < args.threads:
        p.error("--connections must be at least --threads")
    bench = Bench(args)
    if not bench.use_wrk and not args.python_loadgen:
        say("wrk not found: install it (`apt-get install -y wrk`) for comparable figures; using a Python load generator")
    try:
        bench.run(only)
        summary = bench.report()
        if args.json_out:
            Path(args.json_out).write_text(json.dumps(summary, indent=2, default=str))
    except KeyboardInterrupt:
        say("interrupted")
        return 130
    except RuntimeError as e:
        say(f"number_endpoint.py: {e}")
        return 1
    finally:
        bench.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
