"""Layering rules from DESIGN.md, checked on the source (ast) without importing anything heavy.

Pure modules import no twisted, sqlalchemy, requests, jinja2 or treq, read no clock (time comes
in as ``as_of``) and use no global randomness. Stores (``*_txn`` functions) never import twisted.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "calltrack"

PURE_MODULES = [
    "calltrack/numbers/rules.py",
    "calltrack/numbers/channels.py",
    "calltrack/numbers/bots.py",
    "calltrack/numbers/sizing.py",
    "calltrack/phones.py",
    "calltrack/config.py",
    "calltrack/numbers/matching.py",
    "calltrack/leads/contacts.py",
    "calltrack/leads/forms.py",
    "calltrack/telephony/events.py",
    "calltrack/telephony/twilio.py",
    "calltrack/telephony/telnyx.py",
    "calltrack/telephony/pbx.py",
    "calltrack/telephony/cdr.py",
    "calltrack/scoring/stages.py",
    "calltrack/leads/outcomes.py",
    "calltrack/leads/assignment.py",
    "calltrack/scoring/rules.py",
    "calltrack/leads/outbox.py",
    "calltrack/signatures.py",
    "calltrack/attribution/_scipy.py",
    "calltrack/attribution/levels.py",
    "calltrack/reports/campaigns.py",
    "calltrack/reports/series.py",
    "calltrack/reports/operations.py",
    "calltrack/reports/planning.py",
    "calltrack/reports/costs.py",
    "calltrack/reports/spreadsheet.py",
    "calltrack/reports/charts.py",
    "calltrack/attribution/__init__.py",
    "calltrack/attribution/journeys.py",
    "calltrack/attribution/heuristics.py",
    "calltrack/attribution/markov.py",
    "calltrack/attribution/shapley.py",
    "calltrack/attribution/engine.py",
    "calltrack/attribution/resampling.py",
]
# These must not even import the clock or randomness modules.
NO_TIME_OR_RANDOM_IMPORT = ["calltrack/numbers/rules.py", "calltrack/numbers/channels.py", "calltrack/numbers/sizing.py"]

HEAVY = {"twisted", "sqlalchemy", "requests", "jinja2", "treq"}
CLOCK_CALLS = {
    ("time", "time"),
    ("time", "time_ns"),
    ("time", "monotonic"),
    ("time", "monotonic_ns"),
    ("time", "perf_counter"),
    ("time", "localtime"),
    ("time", "gmtime"),
    ("datetime", "now"),
    ("datetime", "utcnow"),
    ("datetime", "today"),
    ("date", "today"),
}


def _parse(rel: str) -> ast.Module:
    return ast.parse((ROOT / rel).read_text(encoding="utf-8"), filename=rel)


def imported_modules(tree: ast.AST) -> list[tuple[str, int]]:
    """Every module an import statement anywhere in the tree names (function-level ones too)."""
    found: list[tuple[str, int]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.module, node.lineno))
            found += [(f"{node.module}.{alias.name}", node.lineno) for alias in node.names]
    # __import__("x") / importlib.import_module("x") with a literal name
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
            fn = node.func
            name = fn.id if isinstance(fn, ast.Name) else fn.attr if isinstance(fn, ast.Attribute) else ""
            if name in ("__import__", "import_module") and isinstance(node.args[0].value, str):
                found.append((node.args[0].value, node.lineno))
    return found


def heavy_imports(tree: ast.AST) -> list[str]:
    return [f"{mod} (line {line})" for mod, line in imported_modules(tree) if mod.split(".")[0] in HEAVY]


def clock_and_random_calls(tree: ast.AST) -> list[str]:
    """Calls like time.time(), datetime.now(), datetime.datetime.now(), random.random(), and names
    imported from time/random/datetime that are then called (``from time import time``)."""
    from_imports: dict[str, tuple[str, str]] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module in ("time", "random", "datetime", "secrets"):
            for alias in node.names:
                from_imports[alias.asname or alias.name] = (node.module, alias.name)
    bad: list[str] = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        fn = node.func
        if isinstance(fn, ast.Attribute):
            owner = fn.value
            owner_name = owner.id if isinstance(owner, ast.Name) else owner.attr if isinstance(owner, ast.Attribute) else ""
            if (owner_name, fn.attr) in CLOCK_CALLS:
                bad.append(f"{owner_name}.{fn.attr}() (line {node.lineno})")
            if owner_name in ("random", "secrets"):
                bad.append(f"{owner_name}.{fn.attr}() (line {node.lineno})")
        elif isinstance(fn, ast.Name) and fn.id in from_imports:
            module, name = from_imports[fn.id]
            if module in ("random", "secrets") or (module, name) in CLOCK_CALLS:
                bad.append(f"{module}.{name}() as {fn.id}() (line {node.lineno})")
    return bad


def module_level_imports_of(tree: ast.Module, names: set[str]) -> list[str]:
    bad: list[str] = []
    for node in tree.body:
        if isinstance(node, ast.Import):
            bad += [f"import {a.name} (line {node.lineno})" for a in node.names if a.name.split(".")[0] in names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] in names:
            bad.append(f"from {node.module} import … (line {node.lineno})")
    return bad


# --- the checkers themselves catch what they should -----------------------------------------------


def test_checkers_catch_violations() -> None:
    src = """
import time
import twisted.internet
from sqlalchemy import select
import datetime as dt
from time import time as now
from random import choice

def f():
    import jinja2
    __import__("requests")
    time.time()
    dt.datetime.now()
    datetime.now()
    now()
    choice([1])
    random.random()
"""
    tree = ast.parse(src)
    heavy = " ".join(heavy_imports(tree))
    for mod in ("twisted", "sqlalchemy", "jinja2", "requests"):
        assert mod in heavy
    calls = " ".join(clock_and_random_calls(tree))
    for call in ("time.time()", "datetime.now()", "time.time() as now()", "random.choice()", "random.random()"):
        assert call in calls
    assert module_level_imports_of(tree, {"time", "random"})


def test_checkers_accept_clean_code() -> None:
    tree = ast.parse("import math\nfrom dataclasses import dataclass\ndef f(as_of):\n    return math.floor(as_of)\n")
    assert heavy_imports(tree) == []
    assert clock_and_random_calls(tree) == []
    assert module_level_imports_of(tree, {"time", "random"}) == []


# --- the rules -------------------------------------------------------------------------------------


@pytest.mark.parametrize("rel", PURE_MODULES)
def test_pure_module_exists(rel: str) -> None:
    assert (ROOT / rel).is_file(), rel


@pytest.mark.parametrize("rel", PURE_MODULES)
def test_pure_modules_import_nothing_heavy(rel: str) -> None:
    assert heavy_imports(_parse(rel)) == [], rel


@pytest.mark.parametrize("rel", PURE_MODULES)
def test_pure_modules_read_no_clock_and_no_randomness(rel: str) -> None:
    assert clock_and_random_calls(_parse(rel)) == [], rel


@pytest.mark.parametrize("rel", NO_TIME_OR_RANDOM_IMPORT)
def test_rules_channels_sizing_do_not_import_time_or_random(rel: str) -> None:
    tree = _parse(rel)
    assert module_level_imports_of(tree, {"time", "random", "secrets"}) == [], rel
    # Not inside functions either.
    assert [m for m, _ in imported_modules(tree) if m.split(".")[0] in ("time", "random", "secrets")] == [], rel


def _store_modules() -> list[str]:
    return sorted(str(p.relative_to(ROOT)) for p in PKG.glob("*/store.py"))


def test_there_are_store_modules() -> None:
    assert _store_modules(), "expected calltrack/*/store.py files"


@pytest.mark.parametrize("rel", _store_modules())
def test_stores_do_not_import_twisted(rel: str) -> None:
    bad = [f"{m} (line {line})" for m, line in imported_modules(_parse(rel)) if m.split(".")[0] == "twisted"]
    assert bad == [], rel


def test_importing_the_pure_modules_loads_nothing_heavy() -> None:
    # Transitive check: a fresh interpreter imports them all and nothing heavy appears.
    mods = [rel.removesuffix(".py").replace("/", ".") for rel in PURE_MODULES]
    code = (
        "import sys\n"
        + "".join(f"import {m}\n" for m in mods)
        + f"print(','.join(sorted(m for m in {sorted(HEAVY)!r} if m in sys.modules)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == ""
