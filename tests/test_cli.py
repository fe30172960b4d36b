"""The `calltrack` command, end to end on a SQLite file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from calltrack.db.migrate import head_revision


def test_a_new_user_sets_up_an_account_site_pool_and_numbers(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    assert f"revision {head_revision()}" in cli("db", "upgrade")
    created = json.loads(cli("--json", "account", "create", "Acme", "--timezone", "Europe/Berlin", "--currency", "eur", "--region", "DE"))
    assert created["api_key"].startswith("ctk_")
    site = json.loads(cli("--json", "site", "add", "--name", "acme.de", "--domain", "acme.de", "--number", "030 1234567"))
    assert site["own_number"] == "+49301234567"
    out = cli("pools", "create", "--site", str(site["id"]), "--name", "Google", "--rule", "utm_source=google,bing", "--rule", "utm_medium=cpc")
    assert "pool 1 created" in out and '"utm_source": ["bing", "google"]' in out
    cli("pools", "create", "--site", str(site["id"]), "--name", "Rest", "--hold-seconds", "900")
    out = cli("numbers", "add", "--pool", "Google", "030 1234500", "030 1234501")
    assert "+49301234500 (pool)" in out
    csv = tmp_path / "n.csv"
    csv.write_text("number,pool,source,placement\n030 1234510,Rest,,\n030 1234511,,radio,Morning show\n", encoding="utf-8")
    assert "imported 2" in cli("numbers", "import", str(csv), "--site", str(site["id"]))
    listing = cli("numbers", "list")
    assert "+49301234511" in listing and "radio" in listing
    pools = json.loads(cli("--json", "pools", "list"))
    assert [p["name"] for p in pools] == ["Google", "Rest"] and pools[1]["rules"] == {"all": True}
    assert "retired +49301234501" in cli("numbers", "retire", "2")
    assert "+49301234501" not in cli("numbers", "list")
    status = cli("pools", "status")
    assert "pool 1 'Google': 1 numbers" in status
    sim = cli("pools", "simulate", "1", "--size", "1", "--size", "2")
    assert "size    1" in sim and "size    2" in sim
    assert "number" in cli("leases", "list")


def test_errors_name_the_problem_and_exit_2(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    assert "calltrack db upgrade" in cli("account", "create", "Acme", ok=False)
    cli("db", "upgrade")
    assert "time zone" in cli("account", "create", "Acme", "--timezone", "Mars/Olympus", ok=False)
    cli("account", "create", "Acme")
    cli("account", "create", "Second")
    assert "--account" in cli("numbers", "list", ok=False)
    assert "not a phone number" in cli("site", "add", "--account", "1", "--name", "x", "--domain", "x.example", "--number", "call me", ok=False)
    assert "no account 9" in cli("numbers", "list", "--account", "9", ok=False)
    bad = tmp_path / "bad.csv"
    bad.write_text("number\nnope\n", encoding="utf-8")
    assert "line 2" in cli("numbers", "import", str(bad), "--account", "1", "--forward-to", "415 555 0199", ok=False)
    assert "cannot read" in cli("numbers", "import", "missing.csv", "--account", "1", ok=False)
    assert "key=value" in cli("pools", "create", "--account", "1", "--site", "1", "--name", "p", "--rule", "google", ok=False)


def test_a_bad_config_key_is_named(cli, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("CALLTRACK_HTTP_PORT", "eighty")
    assert "http.port" in cli("db", "upgrade", ok=False)


def test_workers_need_postgresql(cli) -> None:  # type: ignore[no-untyped-def]
    cli("db", "upgrade")
    assert "PostgreSQL" in cli("serve", "--workers", "2", ok=False)


def test_demo_seed_once_then_a_fresh_key(cli) -> None:  # type: ignore[no-untyped-def]
    cli("db", "upgrade")
    first = json.loads(cli("--json", "demo", "seed"))
    assert first["created"] is True
    again = json.loads(cli("--json", "demo", "seed"))
    assert again["created"] is False and again["site_key"] == first["site_key"] and again["api_key"] != first["api_key"]
    assert len(json.loads(cli("--json", "numbers", "list"))) == 14
