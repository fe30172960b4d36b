"""`calltrack simulate`: its plan from the seed, and a real run against a live `calltrack serve`
(SQLite file, demo account) whose database must then agree with the printed summary."""

from __future__ import annotations

import argparse
import json
import os
import socket
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from calltrack.cli import CliError
from calltrack.config import CalltrackConfig, load_config
from calltrack.leads.contacts import read_caller
from calltrack.cli import build_parser
from calltrack.simulate import SOURCE_MIX, plan_visitors

ROOT = Path(__file__).resolve().parents[1]
ORIGIN = "https://acme.example"


def parse(argv: list[str]) -> argparse.Namespace:
    """The real `calltrack` command line."""
    return build_parser().parse_args(argv)


# -- the plan (pure) ------------------------------------------------------------------------------


def test_the_plan_comes_from_the_seed_alone() -> None:
    a = plan_visitors(7, 300, call_rate=0.3, form_rate=0.1, origin=ORIGIN)
    b = plan_visitors(7, 300, call_rate=0.3, form_rate=0.1, origin=ORIGIN)
    assert a == b
    assert a != plan_visitors(8, 300, call_rate=0.3, form_rate=0.1, origin=ORIGIN)


def test_the_plan_is_a_realistic_mix() -> None:
    own = ["+14155550120", "+12125550142"]
    plans = plan_visitors(11, 1000, call_rate=0.3, form_rate=0.1, origin=ORIGIN, exclude_numbers=own)
    sources = Counter(p.source for p in plans)
    assert set(sources) == {s for s, _ in SOURCE_MIX}
    for p in plans:
        assert p.params["url"].startswith(ORIGIN + "/")
        if p.source == "google_cpc":
            assert p.params["utm_medium"] == "cpc" and p.params["gclid"] and p.params["utm_term"]
        elif p.source == "bing_cpc":
            assert len(p.params["msclkid"]) == 32
        elif p.source == "facebook_paid":
            assert p.params["fbclid"].startswith("IwAR") and p.channel == "paid_social"
        elif p.source == "google_organic":
            assert p.params["ref"] == "https://www.google.com/" and "utm_source" not in p.params
        elif p.source == "direct":
            assert set(p.params) == {"url"}
    callers = [p for p in plans if p.calls]
    assert 0.25 < len(callers) / len(plans) < 0.35
    assert 0.07 < sum(1 for p in plans if p.form) / len(plans) < 0.13
    calls = [c for p in plans for c in p.calls]
    assert any(c.withheld for c in calls) and any(c.repeat for c in calls)
    assert any(not c.answered for c in calls) and any(c.answered and c.talk_seconds < 10 for c in calls)
    numbers = [p.calls[0].caller for p in callers if not p.calls[0].withheld]
    assert len(set(numbers)) == len(numbers), "each caller is a different person"
    for number in numbers:
        assert read_caller(number, "US").e164 == number and number[5:9] == "5550" and number not in own
    for c in calls:
        if c.withheld:
            assert read_caller(c.caller, "US").withheld
    for p in plans:  # a repeat call comes from the first call's number
        if len(p.calls) == 2:
            assert p.calls[1].repeat and p.calls[1].caller == p.calls[0].caller


def test_options() -> None:
    args = parse(["--json", "simulate", "--visitors", "5"])
    assert args.json and args.visitors == 5 and args.provider == "twilio" and args.concurrency == 8
    assert parse(["simulate", "--json"]).json
    assert not parse(["simulate"]).json
    with pytest.raises(SystemExit):
        parse(["simulate", "--call-rate", "1.5"])
    with pytest.raises(SystemExit):
        parse(["simulate", "--concurrency", "0"])


# -- against a live server ------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Live:
    url: str
    env: dict[str, str]
    db_path: Path

    @property
    def config(self) -> CalltrackConfig:
        return load_config(environ=self.env)

    def query(self, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        conn = sqlite3.connect(f"file:{self.db_path}?mode=ro", uri=True, timeout=5)
        try:
            return conn.execute(sql, args).fetchall()
        finally:
            conn.close()

    def scalar(self, sql: str, *args: Any) -> Any:
        return self.query(sql, *args)[0][0]


def _calltrack(env: dict[str, str], *args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "calltrack", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, (args, done.stdout, done.stderr)
    return done.stdout


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    """`calltrack serve` on a free port, on a SQLite file with the demo account plus 20 more
    numbers for everyone (so most simulated visitors hold one)."""
    work = tmp_path_factory.mktemp("simulate")
    db_path = work / "calltrack.db"
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CALLTRACK_")}
    env.update(
        {
            "CALLTRACK_DATABASE_URL": f"sqlite:///{db_path}",
            # What Twilio signs: the server checks signatures against its public URL.
            "CALLTRACK_HTTP_PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
            "CALLTRACK_LOGGING_LEVEL": "ERROR",
            "CALLTRACK_RATELIMIT_NEW_LEASES_PER_IP_PER_MINUTE": "1000",
        }
    )
    _calltrack(env, "db", "upgrade")
    assert json.loads(_calltrack(env, "--json", "demo", "seed"))["created"]
    _calltrack(env, "numbers", "add", "--pool", "All visitors", *[f"415-555-01{n}" for n in range(30, 50)])
    log = open(work / "serve.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [sys.executable, "-m", "calltrack", "serve", "--port", str(port)], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            assert proc.poll() is None, (work / "serve.log").read_text()
            try:
                if requests.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            except requests.RequestException:
                pass
            assert time.monotonic() < deadline, "calltrack serve did not start"
            time.sleep(0.05)
        yield Live(f"http://127.0.0.1:{port}", env, db_path)
    finally:
        proc.terminate()
        proc.wait(timeout=15)
        log.close()


def simulate(live: Live, capsys: pytest.CaptureFixture[str], *argv: str) -> dict[str, Any]:
    args = parse(["--json", "simulate", *argv])
    args.func(live.config, args)
    out, err = capsys.readouterr()
    return dict(json.loads(out), stderr=err)


def check_against_the_database(live: Live, s: dict[str, Any], provider: str) -> None:
    calls = s["calls"]
    by_provider = "WHERE provider = ?"
    assert s["errors"] == {"http": {}, "connection": {}}
    assert live.scalar(f"SELECT count(*) FROM calls {by_provider}", provider) == calls["placed"] == s["database"]["calls"]
    assert live.scalar(f"SELECT count(*) FROM calls {by_provider} AND status = 'completed'", provider) == calls["answered"]
    assert live.scalar(f"SELECT count(*) FROM calls {by_provider} AND status = 'no-answer'", provider) == calls["missed"]
    assert live.scalar(f"SELECT count(*) FROM calls {by_provider} AND caller_withheld", provider) == calls["withheld"]
    assert live.scalar(f"SELECT count(*) FROM calls {by_provider} AND duration < 10 AND status = 'completed'", provider) == calls["short"]
    methods = dict(live.query(f"SELECT match_method, count(*) FROM calls {by_provider} GROUP BY match_method", provider))
    assert methods == s["match_methods"]
    # Every webhook acknowledged is one stored event: none lost, none refused as a duplicate.
    events = live.scalar(f"SELECT count(*) FROM call_events JOIN calls ON calls.id = call_events.call_id {by_provider}", provider)
    assert events == s["webhooks"]


@pytest.mark.integration
def test_a_twilio_run_is_stored_as_the_summary_says(live: Live, capsys: pytest.CaptureFixture[str]) -> None:
    s = simulate(live, capsys, "--visitors", "20", "--seed", "3", "--call-rate", "0.6", "--form-rate", "0.3", "--concurrency", "4")
    assert "added a twilio credential" in s["stderr"] and s["notes"]
    sid = live.query("SELECT provider_account FROM telephony_credentials WHERE provider = 'twilio'")
    assert len(sid) == 1 and sid[0][0].startswith("AC") and len(sid[0][0]) == 34
    assert s["visits"] == 20 and s["leases"] >= 12  # 4 paid-search numbers, 28 for everyone else
    assert s["calls"]["placed"] >= 10 and s["calls"]["answered"] and s["forms"] >= 3
    check_against_the_database(live, s, "twilio")

    # Calls to leased numbers are matched to their visitor, with the visit's source.
    matched = live.query(
        "SELECT calls.vid, calls.channel, leases.vid FROM calls JOIN leases ON leases.id = calls.lease_id WHERE calls.match_method = 'lease'"
    )
    assert len(matched) >= 3 and all(vid == lease_vid and channel for vid, channel, lease_vid in matched)
    assert live.scalar("SELECT count(*) FROM form_submissions") == s["forms"] == s["database"]["forms"]
    assert live.scalar("SELECT count(*) FROM leads") == s["leads_created"] > 0
    assert live.scalar("SELECT count(*) FROM leads WHERE kind = 'form'") > 0
    assert live.scalar("SELECT count(*) FROM leads WHERE match_method = 'lease'") > 0


@pytest.mark.integration
def test_a_pbx_run_then_the_same_seed_again(live: Live, capsys: pytest.CaptureFixture[str]) -> None:
    leads_before = live.scalar("SELECT count(*) FROM leads")
    s = simulate(live, capsys, "--visitors", "10", "--seed", "4", "--call-rate", "0.6", "--provider", "pbx")
    assert s["provider"] == "pbx" and s["calls"]["placed"] >= 3
    check_against_the_database(live, s, "pbx")
    assert live.scalar("SELECT count(*) FROM leads") == leads_before + s["leads_created"]

    # The same seed again: new calls (fresh call ids), from the same people, so no new leads
    # from the calls; the credential made the first time is used again.
    again = simulate(live, capsys, "--visitors", "10", "--seed", "4", "--call-rate", "0.6", "--form-rate", "0", "--provider", "pbx")
    assert "credential" not in again["stderr"] and not again["notes"]
    assert again["calls"]["placed"] == s["calls"]["placed"]
    assert live.scalar("SELECT count(*) FROM calls WHERE provider = 'pbx'") == 2 * s["calls"]["placed"]
    assert again["leads_created"] == 0 and again["leads_joined"] > 0
    assert live.scalar("SELECT count(*) FROM telephony_credentials WHERE provider = 'pbx'") == 1


@pytest.mark.integration
def test_the_text_summary(live: Live, capsys: pytest.CaptureFixture[str]) -> None:
    args = parse(["simulate", "--visitors", "4", "--seed", "9", "--call-rate", "1", "--provider", "pbx"])
    args.func(live.config, args)
    out = capsys.readouterr().out
    assert out.startswith(f"simulated 4 visitors against {live.url}")
    for line in ("visits   4 (", "leases ", "calls ", "placed:", "forms ", "leads ", "matched ", "errors   none"):
        assert line in out, out


@pytest.mark.integration
def test_an_unreachable_server_is_a_clear_error(live: Live) -> None:
    args = parse(["simulate", "--url", f"http://127.0.0.1:{free_port()}", "--visitors", "1"])
    with pytest.raises(CliError, match="cannot reach calltrack at http://127.0.0.1:"):
        args.func(live.config, args)
