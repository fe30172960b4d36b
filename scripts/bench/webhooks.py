#!/usr/bin/env python3
"""Benchmark: Twilio voice webhooks (signature, commit, TwiML) against a bare twisted.web resource.

    .venv/bin/python scripts/bench/webhooks.py [--duration 10] [--connections 32] [--rounds 3]

Prints, for one run on this machine:

1. the maximum throughput of a bare twisted.web leaf resource (its own process, no access
   log) answering a fixed TwiML ``<Dial>`` to a POST of the same bodies: no signature, no
   database. The yardstick of DESIGN.md, "The reactor";
2. the maximum throughput of ``POST /v1/webhooks/twilio/voice`` on one ``calltrack serve``
   process with a SQLite file (WAL): every request a distinct, correctly signed voice webhook
   (a CallSid of its own, else it would be a duplicate answered from the stored call), each
   answered with its TwiML only after its call row has committed;
3. the ratio of the two (2xx per second) against the target, 0.25;
4. calltrack's latency (p50/p90/p99) at half the throughput it reached, against the target
   p99 < 50 ms.

Both throughput runs use wrk with the same threads, connections and duration (default
``-t1 -c32``, 10 s after a 2 s warm-up); ``--rounds N`` runs bare and calltrack in turn N times
and shows medians. The requests are made in Python before each run (signed with
``calltrack.telephony.twilio.compute_signature`` over the server's public URL, as Twilio signs)
and written to a file, one ``signature<TAB>body`` line each; a wrk Lua script reads it in
``init`` and sends each line once (the file is sized from the warm-up's rate; a run that
would wrap round and send a CallSid twice is reported as FAIL). The called numbers mix pool
numbers held by a visitor (leased before the runs with ``/v1/number``: matched by lease), pool
numbers nobody holds, and a static number; callers are mostly new, some ring again.

The latency run paces each connection with wrk's Lua ``delay()`` (exponentially distributed
pauses, so the merged arrivals are roughly Poisson), calibrated in a paced warm-up to reach
half the measured throughput. This is closed-loop pacing: a connection waits for its answer
before its pause starts, so a stalled server is sent less work (wrk2's constant-rate mode does
not do that, and would show higher tail latencies under stalls). The achieved rate is printed
beside the offered one.

What was measured is checked after each calltrack run, from the server's ``/metrics`` and the
database: the new call rows equal the voice webhooks the server answered 200 (each a
distinct CallSid: no duplicate, bad-signature or invalid deliveries), and wrk's own 2xx count
is within the connections in flight at its stop. Failures print as FAIL lines. The CPU used
by other processes during each run is shown (``other``): on a busy machine, rerun.

``--crm hanging|failing`` subscribes a lead webhook for every lead event at a local CRM
endpoint that never answers (each attempt waits out the 10 s timeout) or answers 500 at once
(every new lead's event is attempted straight away and retried with back-off): the figures
then show what a broken CRM costs ingestion, and the report adds the outbox's counts.

``--profile DIR`` samples the calltrack server with py-spy during the first measured throughput
run, keeping only the samples of the thread that holds the GIL (the reactor and the database
writer share it, so that is where the CPU goes; without ``--gil`` a thread waiting for the GIL is
sampled too, at whatever line it stopped), and prints where the time went per thread (collapsed
stacks kept in DIR; a flame graph too when a flamegraph tool is installed). py-spy costs the
machine some CPU: compare figures from runs without it.

Other options: ``--threads`` (wrk threads), ``--warmup`` seconds, ``--pool-size`` and
``--leased`` (pool numbers, and how many visitors hold one), ``--json-out FILE``, ``--keep``
(keep the temp directory: database, server logs, request files, Lua scripts).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import http.client
import json
import math
import os
import random
import re
import resource
import secrets
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.parse
from dataclasses import asdict
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from number_endpoint import (  # noqa: E402 - the helpers both benchmarks share
    RunResult,
    Server,
    calltrack_cmd,
    cpu_seconds,
    free_port,
    http_get,
    machine_cpu,
    median_run,
    metric_delta,
    ms,
    say,
    scrape,
    settle,
    summarize_profile,
)

VOICE = "/v1/webhooks/twilio/voice"
TARGET_RATIO = 0.25
TARGET_P99_MS = 50.0
SITE_DOMAIN = "bench.example"
SITE_NUMBER = "+14155550100"
FORWARD_TO = "+14155550199"
STATIC_NUMBER = "+14155550150"
STATIC_FORWARD = "+14155550177"
UA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36"
CALLER_CITIES = (("NEW YORK", "NY", "10001"), ("CHICAGO", "IL", "60601"), ("OAKLAND", "CA", "94607"), ("AUSTIN", "TX", "78701"))


# -- the bare server ---------------------------------------------------------------------------


def serve_bare(port: int, public: str) -> None:
    """A leaf resource: fixed TwiML to any POST (the body is read, not parsed); GET for readiness.
    The TwiML is calltrack's own answer to a call it forwards, byte for byte (made once)."""
    from twisted.internet import reactor
    from twisted.web import resource as tw_resource
    from twisted.web import server

    from calltrack.telephony.twilio import dial_twiml

    twiml = dial_twiml(FORWARD_TO, status_callback=public + "/v1/webhooks/twilio/status", recording_callback=None, record=False)

    class Bare(tw_resource.Resource):
        isLeaf = True

        def render_POST(self, request: Any) -> bytes:  # noqa: N802 - Twisted's name
            request.content.read()
            request.setHeader(b"content-type", b"text/xml; charset=utf-8")
            return twiml

        def render_GET(self, request: Any) -> bytes:  # noqa: N802
            return b"ok"

    class QuietSite(server.Site):
        def log(self, request: Any) -> None:  # calltrack's site keeps no access log either
            return

    reactor.listenTCP(port, QuietSite(Bare()), interface="127.0.0.1", backlog=1024)  # type: ignore[attr-defined]
    reactor.run()  # type: ignore[attr-defined]


# -- the requests --------------------------------------------------------------------------------


class VoiceCalls:
    """Distinct signed voice webhooks: a CallSid each, numbers from the mix, callers mostly new."""

    def __init__(self, url: str, account_sid: str, token: str, *, leased: list[str], idle: list[str], seed: int = 1) -> None:
        self.url = url
        self.account_sid = account_sid
        self.token = token
        self.leased = leased
        self.idle = idle
        self.rng = random.Random(seed)
        self.nonce = secrets.token_hex(4)
        self.made = 0
        self.regulars = [f"+1312{2000000 + i:07d}" for i in range(300)]

    def params(self) -> dict[str, str]:
        rng = self.rng
        self.made += 1
        roll = rng.random()
        # 60% dial a number a visitor holds, 25% a pool number nobody holds, 15% the static one.
        to = rng.choice(self.leased) if roll < 0.60 else rng.choice(self.idle) if roll < 0.85 else STATIC_NUMBER
        # Most callers are new (212 2xx-xxxx upwards); one in five is a regular ringing again.
        caller = rng.choice(self.regulars) if rng.random() < 0.2 else f"+1212{2000000 + self.made:07d}"
        city, state, zip_code = rng.choice(CALLER_CITIES)
        return {
            "AccountSid": self.account_sid, "ApiVersion": "2010-04-01", "CallSid": f"CA{self.nonce}{self.made:024x}",
            "CallStatus": "ringing", "Called": to, "CalledCity": "SAN FRANCISCO", "CalledCountry": "US", "CalledState": "CA",
            "CalledZip": "94103", "Caller": caller, "CallerCity": city, "CallerCountry": "US", "CallerState": state,
            "CallerZip": zip_code, "Direction": "inbound", "From": caller, "FromCity": city, "FromCountry": "US",
            "FromState": state, "FromZip": zip_code, "StirVerstat": "TN-Validation-Passed-A", "To": to,
            "ToCity": "SAN FRANCISCO", "ToCountry": "US", "ToState": "CA", "ToZip": "94103",
        }

    def signed(self, params: dict[str, str]) -> tuple[str, str]:
        from calltrack.telephony.twilio import compute_signature

        return compute_signature(self.url, params, self.token), urllib.parse.urlencode(params)

    def write(self, path: Path, count: int) -> Path:
        t0 = time.monotonic()
        with open(path, "w", encoding="ascii") as f:
            for _ in range(count):
                signature, body = self.signed(self.params())
                f.write(f"{signature}\t{body}\n")
        say(f"  wrote {count} signed voice webhooks to {path.name} in {time.monotonic() - t0:.1f}s")
        return path


def wrk_script(requests_file: Path, path: Path, *, threads: int, mean_delay_ms: float | None) -> Path:
    """Each thread sends its share of the file's lines once, in order; ``sent``/``wraps`` say
    whether a line was sent twice. With ``mean_delay_ms``, each connection pauses an
    exponentially distributed time after each answer (closed-loop pacing)."""
    pacing = ""
    if mean_delay_ms is not None:
        pacing = textwrap.dedent(
            f"""
            delay = function()
              return -math.log(1 - math.random()) * {mean_delay_ms:.6f}
            end
            """
        )
    body = textwrap.dedent(
        f"""
        local FILE = {json.dumps(str(requests_file))}
        local PATH = {json.dumps(VOICE)}
        local NTHREADS = {threads}
        local threads = {{}}
        local counter = 0

        setup = function(thread)
          thread:set("tid", counter)
          counter = counter + 1
          table.insert(threads, thread)
        end

        init = function(args)
          items = {{}}
          local f = assert(io.open(FILE, "r"))
          for line in f:lines() do
            local tab = string.find(line, "\\t", 1, true)
            items[#items + 1] = {{ string.sub(line, 1, tab - 1), string.sub(line, tab + 1) }}
          end
          f:close()
          pos = tid + 1
          sent = 0
          wraps = 0
          math.randomseed(7919 * (tid + 1))
        end

        request = function()
          local item = items[pos]
          pos = pos + NTHREADS
          if pos > #items then
            pos = tid + 1
            wraps = wraps + 1
          end
          sent = sent + 1
          return wrk.format("POST", PATH, {{
            ["Content-Type"] = "application/x-www-form-urlencoded",
            ["X-Twilio-Signature"] = item[1],
            ["User-Agent"] = "TwilioProxy/1.1",
          }}, item[2])
        end
        {pacing}
        done = function(summary, latency, requests)
          local e = summary.errors
          local sent, wraps = {{}}, 0
          for _, t in ipairs(threads) do
            sent[t:get("tid") + 1] = string.format("%.0f", t:get("sent"))
            wraps = wraps + t:get("wraps")
          end
          io.write(string.format(
            'BENCH_JSON {{"requests":%.0f,"duration_us":%.0f,"connect":%.0f,"read":%.0f,"write":%.0f,' ..
            '"status":%.0f,"timeout":%.0f,"p50":%.0f,"p90":%.0f,"p99":%.0f,"max":%.0f,"mean":%.1f,' ..
            '"sent":[%s],"wraps":%.0f}}\\n',
            summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
            latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, latency.mean,
            table.concat(sent, ","), wraps))
        end
        """
    )
    path.write_text(body)
    return path


def run_wrk(port: int, requests_file: Path, *, seconds: int, connections: int, threads: int, script_dir: Path, label: str,
            mean_delay_ms: float | None = None) -> tuple[RunResult, dict[str, Any]]:
    name = re.sub(r"[^A-Za-z0-9.-]+", "_", label).strip("_")
    script = wrk_script(requests_file, script_dir / f"{name}.lua", threads=threads, mean_delay_ms=mean_delay_ms)
    cmd = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--timeout", "10s", "--latency", "-s", str(script),
           f"http://127.0.0.1:{port}{VOICE}"]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = subprocess.run(cmd, capture_output=True, text=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise RuntimeError(f"wrk failed ({proc.returncode}): {proc.stderr.strip() or proc.stdout.strip()}")
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("BENCH_JSON ")), None)
    if line is None:
        raise RuntimeError(f"no BENCH_JSON line in wrk's output:\n{proc.stdout}\n{proc.stderr}")
    s = json.loads(line[len("BENCH_JSON "):])
    if not s["requests"]:
        s.update({k: float("nan") for k in ("p50", "p90", "p99", "max", "mean")})
    dur = s["duration_us"] / 1e6
    result = RunResult(
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
        loadgen_cpu_cores=(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime) / dur,
    )
    return result, {"sent": s["sent"], "wraps": s["wraps"], "mean_ms": s["mean"] / 1000}


def sent_call_sids(requests_file: Path, sent_per_thread: list[int]) -> set[str]:
    """The CallSids wrk sent: thread k sends lines k, k+T, k+2T… in order (T threads)."""
    threads = len(sent_per_thread)
    out: set[str] = set()
    with open(requests_file, encoding="ascii") as f:
        for i, line in enumerate(f):
            k, nth = i % threads, i // threads
            if nth < sent_per_thread[k]:
                out.add(urllib.parse.parse_qs(line.split("\t", 1)[1])["CallSid"][0])
    return out


# -- a broken CRM (--crm) -----------------------------------------------------------------------


def start_crm(mode: str) -> Any:
    """A lead webhook endpoint in a thread of this process: 'hanging' holds each request a
    minute without answering; 'failing' answers 500 at once."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - the http.server API
            self.rfile.read(int(self.headers.get("Content-Length", "0")))
            if mode == "hanging":
                time.sleep(60)
                return
            self.send_response(500)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    server.url = f"http://127.0.0.1:{server.server_address[1]}/hook"  # type: ignore[attr-defined]
    return server


# -- the benchmark -------------------------------------------------------------------------------


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.tmp = Path(tempfile.mkdtemp(prefix="calltrack-bench-webhooks-"))
        self.db_path = self.tmp / "bench.db"
        self.port = free_port()
        self.public = f"http://127.0.0.1:{self.port}"
        self.servers: list[Server] = []
        self.results: dict[str, list[RunResult]] = {"bare": [], "voice": []}
        self.latency: RunResult | None = None
        self.latency_target = 0.0
        self.checks: list[str] = []
        self.files = 0
        self.account_sid = "AC" + secrets.token_hex(16)
        self.token = secrets.token_hex(16)
        self.calls: VoiceCalls | None = None
        self.crm: Any = None
        self.profile_report = ""
        self.env = dict(
            os.environ,
            CALLTRACK_DATABASE_URL=f"sqlite:///{self.db_path}",
            CALLTRACK_HTTP_PUBLIC_BASE_URL=self.public,
            CALLTRACK_LOGGING_FORMAT="json",
            CALLTRACK_LOGGING_LEVEL="ERROR",  # an unmatched call logs a warning; errors only
            CALLTRACK_RATELIMIT_PER_IP_PER_MINUTE="100000000",
            CALLTRACK_RATELIMIT_NEW_LEASES_PER_IP_PER_MINUTE="100000000",
            CALLTRACK_RATELIMIT_PER_SITE_PER_MINUTE="100000000",
        )
        self.env.pop("CALLTRACK_CONFIG", None)

    # -- plumbing

    def ctl(self, *argv: str) -> Any:
        proc = subprocess.run([*calltrack_cmd(), "--json", *argv], env=self.env, capture_output=True, text=True, cwd=self.tmp)
        if proc.returncode != 0:
            raise RuntimeError(f"calltrack {' '.join(argv)} failed: {proc.stderr.strip() or proc.stdout.strip()}")
        return json.loads(proc.stdout) if proc.stdout.strip().startswith(("{", "[")) else proc.stdout

    def requests_file(self, count: int) -> Path:
        assert self.calls is not None
        self.files += 1
        return self.calls.write(self.tmp / f"voice-{self.files}.txt", count)

    def post_voice(self, params: dict[str, str], signature: str | None = None) -> tuple[int, bytes]:
        assert self.calls is not None
        sig, body = self.calls.signed(params)
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            conn.request("POST", VOICE, body=body, headers={
                "Content-Type": "application/x-www-form-urlencoded", "X-Twilio-Signature": signature or sig,
            })
            resp = conn.getresponse()
            return resp.status, resp.read()
        finally:
            conn.close()

    # -- setting up

    def setup(self) -> tuple[Server, Server]:
        a = self.args
        say(f"calltrack: database {self.db_path}")
        self.ctl("db", "upgrade")
        account = self.ctl("account", "create", "Bench", "--timezone", "UTC")
        site = self.ctl("site", "add", "--name", "bench", "--domain", SITE_DOMAIN, "--number", SITE_NUMBER, "--forward-to", FORWARD_TO)
        self.ctl("pools", "create", "--site", str(site["id"]), "--name", "bench")
        pool = [f"+1415{3000000 + i:07d}" for i in range(a.pool_size)]
        csv_path = self.tmp / "numbers.csv"
        csv_path.write_text("number,pool\n" + "".join(f"{n},bench\n" for n in pool))
        self.ctl("numbers", "import", "--site", str(site["id"]), str(csv_path))
        self.ctl("numbers", "add", "--site", str(site["id"]), STATIC_NUMBER, "--forward-to", STATIC_FORWARD,
                 "--source", "billboard", "--medium", "offline", "--placement", "Highway 101")
        self.ctl("telephony", "add", "twilio", "--account-sid", self.account_sid, "--secret", self.token)
        say(f"  account {account['id']}, site {site['id']}, pool of {len(pool)} numbers, a static number, "
            f"a Twilio credential ({self.account_sid})")
        if a.crm != "none":
            self.crm = start_crm(a.crm)
            self.env["CALLTRACK_OUTBOX_ALLOW_PRIVATE_TARGETS"] = "true"
            self.ctl("lead-webhooks", "add", self.crm.url)
            say(f"  a lead webhook for every event at a {a.crm} CRM ({self.crm.url})")

        bare_port = free_port()
        bare = Server("bare", [sys.executable, __file__, "--serve-bare", str(bare_port), "--public-url", self.public],
                      bare_port, dict(os.environ), self.tmp / "bare.log", "/")
        calltrack = Server("calltrack", [*calltrack_cmd(), "serve", "--port", str(self.port)], self.port, self.env,
                           self.tmp / "calltrack.log", "/healthz")
        for server in (bare, calltrack):
            self.servers.append(server)
            say(f"{server.name}: starting on port {server.port}")
            server.start()

        leased = self.lease(site["site_key"], a.leased)
        idle = sorted(set(pool) - set(leased))
        if not leased or not idle:
            raise RuntimeError(f"need both held and idle pool numbers: {len(leased)} held, {len(idle)} idle (see --leased, --pool-size)")
        say(f"  {len(leased)} visitors hold a pool number (leased with /v1/number); {len(idle)} pool numbers are idle")
        self.calls = VoiceCalls(self.public + VOICE, self.account_sid, self.token, leased=leased, idle=idle)
        self.spot_check(leased[0], idle[0])
        return bare, calltrack

    def lease(self, site_key: str, count: int) -> list[str]:
        path = f"/v1/number?site={site_key}&url=" + urllib.parse.quote(f"https://{SITE_DOMAIN}/landing", safe="")

        def worker(n: int) -> list[str]:
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
            got = []
            for _ in range(n):
                conn.request("GET", path, headers={"User-Agent": UA})
                resp = conn.getresponse()
                body = json.loads(resp.read())
                if resp.status != 200 or not body.get("lease"):
                    raise RuntimeError(f"leasing a pool number: {resp.status} {body}")
                got.append(body["phoneNumber"])
            conn.close()
            return got

        with concurrent.futures.ThreadPoolExecutor(8) as ex:
            parts = ex.map(worker, [count // 8 + (1 if i < count % 8 else 0) for i in range(8)])
            return [n for part in parts for n in part]

    def spot_check(self, held: str, idle: str) -> None:
        """Before the load: each kind of number is answered as it should, a forgery is refused."""
        assert self.calls is not None
        expect = {held: ("lease", FORWARD_TO), idle: ("unmatched", FORWARD_TO), STATIC_NUMBER: ("static", STATIC_FORWARD)}
        problems = []
        for number, (method, target) in expect.items():
            params = self.calls.params() | {"To": number, "Called": number, "CallSid": "CAspot" + secrets.token_hex(14)}
            status, body = self.post_voice(params)
            if status != 200 or "<Number" not in body.decode() or target not in body.decode():
                problems.append(f"{number}: {status} {body[:200]!r}")
                continue
            with sqlite3.connect(f"file:{self.db_path}?mode=ro", uri=True, timeout=30) as db:
                got = db.execute("SELECT match_method FROM calls WHERE call_ref = ?", (params["CallSid"],)).fetchone()
            if got is None or got[0] != method:
                problems.append(f"{number}: matched {got[0] if got else 'nothing'}, expected {method}")
        forged = self.post_voice(self.calls.params(), signature="0/KCTR6DLpKmkAf8muzZqo1nDgQ=")[0]
        if forged != 403:
            problems.append(f"a forged signature answered {forged}, not 403")
        self.checks.append(
            ("FAIL " + "; ".join(problems)) if problems else
            "OK   spot check: a held pool number is matched by its lease, an idle one is unmatched and forwarded to the site, "
            "the static number to its own target; a forged signature is refused (403)"
        )

    # -- runs

    def measured(self, server: Server, label: str, requests_file: Path, *, seconds: int, mean_delay_ms: float | None = None,
                 profile: bool = False) -> tuple[RunResult, dict[str, Any]]:
        a = self.args
        spy = self.start_profiler(server, label, seconds) if profile else None
        cpu0, threads0 = cpu_seconds(server.pid)
        busy0, steal0 = machine_cpu()
        t0 = time.monotonic()
        try:
            result, extra = run_wrk(server.port, requests_file, seconds=seconds, connections=a.connections, threads=a.threads,
                                    script_dir=self.tmp, label=label, mean_delay_ms=mean_delay_ms)
            wall = time.monotonic() - t0
            cpu1, threads1 = cpu_seconds(server.pid)
            busy1, steal1 = machine_cpu()
        finally:
            if spy is not None:
                self.finish_profiler(spy)
        result.server_cpu_cores = (cpu1 - cpu0) / wall
        result.server_main_thread_cores = (threads1.get(server.pid, 0.0) - threads0.get(server.pid, 0.0)) / wall
        result.server_other_threads_cores = sum(v - threads0.get(t, 0.0) for t, v in threads1.items() if t != server.pid) / wall
        result.machine_busy_cores = (busy1 - busy0) / wall
        result.steal_cores = (steal1 - steal0) / wall
        return result, extra

    def calltrack_run(self, server: Server, label: str, requests_file: Path, lines: int, *, seconds: int,
                      mean_delay_ms: float | None = None, check: bool = True, profile: bool = False) -> tuple[RunResult, dict[str, Any]]:
        """A run against calltrack, and the proof that what it counted was committed work."""
        before = scrape(server.port)
        last_id = self.last_call_id()
        result, extra = self.measured(server, label, requests_file, seconds=seconds, mean_delay_ms=mean_delay_ms, profile=profile)
        settle(server)
        after = scrape(server.port)
        result.server_statuses = metric_delta(before, after, "calltrack_http_requests_total", "status", route=VOICE)
        result.outcomes = metric_delta(before, after, "calltrack_webhook_deliveries_total", "outcome", provider="twilio")
        if check:
            self.check_committed(label, result, extra, requests_file, lines, last_id)
        return result, extra

    def last_call_id(self) -> int:
        with sqlite3.connect(f"file:{self.db_path}?mode=ro", uri=True, timeout=30) as db:
            return int(db.execute("SELECT coalesce(max(id), 0) FROM calls").fetchone()[0])

    def check_committed(self, label: str, r: RunResult, extra: dict[str, Any], requests_file: Path, lines: int, last_id: int) -> None:
        """Every 2xx wrk counted is a distinct CallSid, and the database holds a call row for at
        least each of them: the rows made during the run are all CallSids wrk sent, one row each,
        and they exceed the acknowledged ones by no more than the requests in flight when wrk
        stopped (committed, but their answer never read)."""
        with sqlite3.connect(f"file:{self.db_path}?mode=ro", uri=True, timeout=30) as db:
            refs = [row[0] for row in db.execute("SELECT call_ref FROM calls WHERE id > ?", (last_id,))]
        sent = sent_call_sids(requests_file, extra["sent"])
        acked = r.requests - r.non_2xx  # wrk's 2xx: each a distinct CallSid (no line is sent twice)
        rows, in_flight = len(refs), len(refs) - acked
        problems = []
        if extra["wraps"] or sum(extra["sent"]) > lines:
            problems.append(f"the request file wrapped round ({sum(extra['sent'])} sent, {lines} lines): CallSids sent twice")
        if len(set(refs)) != rows or not set(refs) <= sent:
            problems.append(f"{len(set(refs) - sent)} rows are not CallSids of this run, {rows - len(set(refs))} doubles")
        if not 0 <= in_flight <= self.args.connections:
            problems.append(f"{rows} rows for {acked} acknowledged: {'fewer' if in_flight < 0 else 'more than the connections allow'}")
        if set(r.outcomes) - {"stored"} or r.outcomes.get("stored", 0) != rows:
            problems.append(f"server deliveries {r.outcomes}: expected {rows} 'stored' and nothing else")
        if set(r.server_statuses) - {"200"}:
            problems.append(f"server status codes {r.server_statuses}")
        self.checks.append(
            ("FAIL " if problems or not acked else "OK   ")
            + f"{label}: {acked} distinct CallSids acknowledged with 200; the database has {rows} new call rows, one per "
            f"CallSid sent, all of this run: the {acked} and {in_flight} more that wrk left in flight at its stop "
            f"(committed, answer unread; at most {self.args.connections})"
            + (": " + "; ".join(problems) if problems else "")
        )

    def run_bare(self, bare: Server, rnd: str, requests_file: Path) -> None:
        a = self.args
        say(f"bare{rnd}: warm-up {a.warmup}s, measuring {a.duration}s")
        if a.warmup:
            run_wrk(bare.port, requests_file, seconds=a.warmup, connections=a.connections, threads=a.threads,
                    script_dir=self.tmp, label="bare warm-up")
        self.results["bare"].append(self.measured(bare, "bare", requests_file, seconds=a.duration)[0])

    def run_voice(self, calltrack: Server, rnd: str, guess_rps: float, *, profile: bool = False) -> float:
        a = self.args
        say(f"voice webhooks{rnd}: warm-up {a.warmup}s, measuring {a.duration}s")
        rate = guess_rps
        if a.warmup:
            lines = math.ceil(rate * a.warmup * 2) + 2000
            warm, _ = self.calltrack_run(calltrack, f"voice warm-up{rnd}", self.requests_file(lines), lines, seconds=a.warmup, check=False)
            rate = warm.rps
            say(f"  warm-up: {warm.rps:.0f} requests/s")
        lines = math.ceil(max(rate, 200) * a.duration * 1.6) + 3000
        result, _ = self.calltrack_run(calltrack, f"voice webhooks{rnd}", self.requests_file(lines), lines, seconds=a.duration,
                                       profile=profile)
        self.results["voice"].append(result)
        return result.rps

    def run_latency(self, calltrack: Server, target: float) -> None:
        """At ``target`` requests/s: a paced warm-up calibrates the pause, then the measured run."""
        a = self.args
        c = a.connections
        self.latency_target = target
        pause = c / target * 1000  # ms per connection between requests, were answers instant
        calib = max(3, a.warmup)
        say(f"latency at {target:.0f} requests/s (half the measured throughput): calibrating for {calib}s")
        lines = math.ceil(target * calib * 1.5) + 2000
        warm, _ = self.calltrack_run(calltrack, "latency calibration", self.requests_file(lines), lines, seconds=calib,
                                     mean_delay_ms=pause, check=False)
        # Closed loop: a connection sends every (pause + latency); correct the pause by what it reached.
        if warm.rps > 0:
            pause = max(0.0, pause - (c / warm.rps * 1000 - pause))
        say(f"  calibration reached {warm.rps:.0f}/s; mean pause per connection now {pause:.2f} ms; measuring {a.duration}s")
        lines = math.ceil(target * a.duration * 1.5) + 3000
        self.latency, _ = self.calltrack_run(calltrack, "latency run", self.requests_file(lines), lines, seconds=a.duration,
                                             mean_delay_ms=pause)

    # -- profiling

    def start_profiler(self, server: Server, label: str, seconds: int) -> tuple[subprocess.Popen[bytes], Path, Path] | None:
        spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
        if not Path(spy).exists():
            say("  --profile: py-spy not found (.venv/bin/pip install py-spy); not profiling")
            return None
        out_dir = Path(self.args.profile)
        out_dir.mkdir(parents=True, exist_ok=True)
        stem = re.sub(r"[^A-Za-z0-9.-]+", "_", label).strip("_")
        raw = out_dir / f"{stem}.collapsed.txt"
        cmd = [spy, "record", "--pid", str(server.pid), "--duration", str(seconds), "--rate", "200", "--nonblocking", "--gil",
               "--threads", "--function", "--format", "raw", "-o", str(raw)]
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        say(f"  py-spy is sampling pid {server.pid} (--nonblocking --gil, 200 Hz) into {raw}")
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
        if fg:
            with open(svg, "wb") as f:
                if subprocess.run([fg, str(raw)], stdout=f, check=False).returncode == 0:
                    self.profile_report += f"\n  flame graph: {svg}"

    def run(self) -> None:
        a = self.args
        bare, calltrack = self.setup()
        bare_file = self.requests_file(60_000)  # cycled in the bare runs: the bare server stores nothing
        guess = 2000.0
        for i in range(a.rounds):
            rnd = f" [round {i + 1}/{a.rounds}]" if a.rounds > 1 else ""
            self.run_bare(bare, rnd, bare_file)
            guess = self.run_voice(calltrack, rnd, guess, profile=bool(a.profile) and i == 0)
        voice = median_run(self.results["voice"])
        self.run_latency(calltrack, voice.ok_rps / 2)
        for server in (bare, calltrack):
            server.stop()
        log = calltrack.log_tail(500)
        if '"ERROR"' in log or '"CRITICAL"' in log or "Traceback" in log:
            self.checks.append(f"FAIL the calltrack server logged errors (see {calltrack.log_path}; --keep keeps it)")

    # -- report

    def report(self) -> dict[str, Any]:
        a = self.args
        bare = median_run(self.results["bare"])
        voice = median_run(self.results["voice"])
        ratio = voice.ok_rps / bare.ok_rps if bare.ok_rps else float("nan")
        lat = self.latency
        print()
        print(f"calltrack Twilio voice webhook benchmark — {time.strftime('%Y-%m-%d %H:%M')}, {os.cpu_count()} CPUs, "
              f"Python {sys.version.split()[0]}, SQLite file database (WAL), one `calltrack serve` process")
        print(f"load: wrk -t{a.threads} -c{a.connections}, {a.duration}s per run after a {a.warmup}s warm-up"
              + (f"; {a.rounds} rounds (bare, calltrack in turn), medians shown" if a.rounds > 1 else ""))
        print()
        head = (f"{'':<24}{'req/s':>7}{'p50 ms':>8}{'p90 ms':>8}{'p99 ms':>8}{'non2xx':>7}{'errors':>7}  |"
                f"{'server':>7}{'(main+db)':>12}{'µs/req':>7}  |{'load':>5}{'other':>6}{'steal':>6}  |{'vs bare':>8}")
        print(head)
        print("-" * len(head))

        def row(title: str, r: RunResult, vs: float | None) -> str:
            split = f"({r.server_main_thread_cores:.2f}+{r.server_other_threads_cores:.2f})"
            return (f"{title:<24}{r.rps:>7.0f}{ms(r.p50_ms):>8}{ms(r.p90_ms):>8}{ms(r.p99_ms):>8}{r.non_2xx:>7}"
                    f"{r.socket_errors + r.timeouts:>7}  |{r.server_cpu_cores:>7.2f}{split:>12}{r.cpu_us_per_request:>7.0f}  |"
                    f"{r.loadgen_cpu_cores:>5.2f}{r.other_cores:>6.2f}{r.steal_cores:>6.2f}  |"
                    + (f"{vs:>8.2f}" if vs is not None else f"{'':>8}"))

        print(row("bare twisted.web", bare, 1.0))
        print(row("voice webhooks (max)", voice, ratio))
        if lat is not None:
            print(row(f"voice at {self.latency_target:.0f}/s (paced)", lat, None))
        if a.rounds > 1:
            print()
            print("each round (ratios against that round's bare run):")
            for i, (b, v) in enumerate(zip(self.results["bare"], self.results["voice"], strict=False)):
                print(row(f"  {i + 1}: bare", b, 1.0))
                print(row(f"  {i + 1}: voice webhooks", v, v.ok_rps / b.ok_rps if b.ok_rps else float("nan")))
        print()
        print(textwrap.dedent(f"""\
            req/s counts every response (the ratio counts 2xx only); errors = socket errors + timeouts.
            CPU in cores (of {os.cpu_count()}): server = the server process, split into its main (reactor) thread and its
            other threads (the SQLite writer); µs/req = server CPU per response; load = wrk; other = every other
            process on the machine; steal = time the hypervisor took from this VM."""))
        cost = bare.cpu_us_per_request / voice.cpu_us_per_request if voice.rps and bare.rps else float("nan")
        print(f"CPU cost ratio (bare µs/req ÷ voice µs/req; the ratio were both CPU-bound): {cost:.2f}")
        disturbed = [f"{k} {i + 1}" for k, rs in self.results.items() for i, r in enumerate(rs) if r.other_cores > 0.15]
        if disturbed:
            print(f"WARNING: other processes used CPU during: {', '.join(disturbed)}; those figures are disturbed.")
        for key, rs in self.results.items():
            for r in rs:
                if r.non_2xx or r.socket_errors or r.timeouts:
                    self.checks.append(f"FAIL {key}: {r.non_2xx} non-2xx, {r.socket_errors} socket errors, {r.timeouts} timeouts")
        if self.profile_report:
            print()
            print(self.profile_report)
        print()
        print("checks:")
        for c in self.checks:
            print(f"  {c}")
        print()
        ratio_ok = ratio >= TARGET_RATIO
        print(f"throughput: {voice.ok_rps:.0f} voice webhooks/s committed vs {bare.ok_rps:.0f}/s bare: ratio {ratio:.2f} "
              f"({'met' if ratio_ok else 'NOT met'}, target ≥ {TARGET_RATIO:.2f})")
        outbox = None
        if a.crm != "none":
            with sqlite3.connect(self.db_path) as db:
                outbox = dict(db.execute("SELECT status, count(*) FROM lead_webhook_deliveries GROUP BY status").fetchall())
                outbox["attempts"] = db.execute("SELECT count(*) FROM lead_webhook_attempts").fetchone()[0]
            print(f"outbox with a {a.crm} CRM: {outbox.get('pending', 0)} deliveries pending, {outbox.get('delivered', 0)} delivered, "
                  f"{outbox['attempts']} attempts made during the runs (none can succeed)")
        lat_ok = None
        if lat is not None:
            lat_ok = lat.p99_ms < TARGET_P99_MS
            print(f"latency at half that load: offered {self.latency_target:.0f}/s (closed-loop pacing with wrk's delay()), "
                  f"reached {lat.ok_rps:.0f}/s: p50 {ms(lat.p50_ms)} ms, p90 {ms(lat.p90_ms)} ms, p99 {ms(lat.p99_ms)} ms, "
                  f"max {ms(lat.max_ms)} ms ({'met' if lat_ok else 'NOT met'}, target p99 < {TARGET_P99_MS:.0f} ms)")
        return {
            "settings": {k: v for k, v in vars(a).items() if k not in ("serve_bare", "public_url")},
            "runs": {k: [asdict(r) for r in rs] for k, rs in self.results.items()},
            "medians": {"bare": asdict(bare), "voice": asdict(voice)},
            "ratio": ratio,
            "ratio_target": TARGET_RATIO,
            "ratio_met": ratio_ok,
            "latency": asdict(lat) if lat is not None else None,
            "latency_offered_rps": self.latency_target,
            "latency_p99_target_ms": TARGET_P99_MS,
            "latency_met": lat_ok,
            "checks": self.checks,
            "outbox": outbox,
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


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--duration", type=int, default=10, help="seconds per measured run (default 10)")
    p.add_argument("--warmup", type=int, default=2, help="seconds of warm-up before each run (default 2)")
    p.add_argument("--connections", type=int, default=32, help="open connections (default 32)")
    p.add_argument("--threads", type=int, default=1, help="wrk threads (default 1)")
    p.add_argument("--rounds", type=int, default=1, help="bare and calltrack in turn N times; medians shown (default 1)")
    p.add_argument("--pool-size", type=int, default=2000, help="pool numbers (default 2000)")
    p.add_argument("--leased", type=int, default=1000, help="visitors holding a pool number during the runs (default 1000)")
    p.add_argument("--crm", choices=["none", "hanging", "failing"], default="none",
                   help="subscribe a lead webhook at a local CRM that hangs or fails (default none)")
    p.add_argument("--profile", metavar="DIR", help="py-spy the server during the first measured throughput run")
    p.add_argument("--json-out", metavar="FILE", help="also write the figures as JSON")
    p.add_argument("--keep", action="store_true", help="keep the temp directory (database, logs, request files, Lua scripts)")
    p.add_argument("--serve-bare", type=int, metavar="PORT", help=argparse.SUPPRESS)
    p.add_argument("--public-url", default="http://127.0.0.1:8080", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.serve_bare:
        serve_bare(args.serve_bare, args.public_url)
        return 0
    if args.duration < 1 or args.rounds < 1 or args.warmup < 0 or args.connections < args.threads or args.threads < 1:
        p.error("--duration, --rounds and --threads must be at least 1, --warmup at least 0, --connections at least --threads")
    if not 0 < args.leased < args.pool_size:
        p.error("--leased must be between 1 and --pool-size - 1 (calls go to held and to idle pool numbers)")
    if shutil.which("wrk") is None:
        say("webhooks.py needs wrk: apt-get install -y wrk")
        return 1
    bench = Bench(args)
    try:
        bench.run()
        summary = bench.report()
        if args.json_out:
            Path(args.json_out).write_text(json.dumps(summary, indent=2, default=str))
    except KeyboardInterrupt:
        say("interrupted")
        return 130
    except RuntimeError as e:
        say(f"webhooks.py: {e}")
        return 1
    finally:
        bench.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
