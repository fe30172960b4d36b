"""Qualification rules: points and flags from what is known of a lead, a score, a temperature
and MQL promotion. Pure and vectorised: no I/O, no clock (times come in the facts).

Rules are versioned configuration (JSON through the API or the CLI)::

    {"rules": [
        {"name": "talked a minute", "when": {"answered": true, "min_duration": 60}, "points": 60},
        {"name": "first-time caller", "when": {"first_time_caller": true}, "points": 20},
        {"name": "in business hours", "when": {"business_hours": true}, "points": 10},
        {"name": "saw pricing", "when": {"pricing_page": true}, "points": 20},
        {"name": "every touch", "when": {}, "points": 1, "per": "touchpoint"},
        {"name": "estimate form", "when": {"form_type": ["estimate"], "fields_present": ["phone"]}, "points": 40},
        {"name": "big account", "when": {"campaign": ["enterprise"]}, "flag": "enterprise"}],
     "thresholds": {"warm": 40, "hot": 80, "mql": 100},
     "business_hours": {"days": [0, 1, 2, 3, 4], "start": "09:00", "end": "18:00"}}

A rule matches when every condition in ``when`` holds; it adds its ``points`` (times the
lead's touchpoints with ``"per": "touchpoint"``) and/or sets its ``flag``. The temperature is
hot from ``hot`` points, warm from ``warm``, else cold; ``mql`` points promote to MQL.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

# Conditions and what they test; the facts frame has one column per fact.
BOOL_FACTS = ("answered", "first_time_caller", "business_hours", "pricing_page")
MIN_FACTS = {"min_duration": "duration", "min_pages": "pages_viewed", "min_touchpoints": "touchpoints"}
IN_FACTS = ("kind", "channel", "source", "medium", "campaign", "tracking_number", "form_type")
# The contact details a lead's forms brought: fields_present tests these.
FIELD_NAMES = ("phone", "email", "name", "company", "message")
FACT_COLUMNS = (
    "answered", "duration", "first_time_caller", "created_at", "pricing_page", "pages_viewed", "touchpoints",
    "kind", "channel", "source", "medium", "campaign", "tracking_number", "form_type", *(f"has_{n}" for n in FIELD_NAMES),
)
MAX_RULES = 200
_TIME = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")


class InvalidRules(ValueError):
    """Rules that do not parse; the message names the fault (the active version stays)."""


@dataclass(frozen=True)
class Rule:
    name: str
    when: tuple[tuple[str, Any], ...]
    points: int = 0
    per_touchpoint: bool = False
    flag: str | None = None


@dataclass(frozen=True)
class RuleSet:
    rules: tuple[Rule, ...]
    warm: int = 40
    hot: int = 80
    mql: int = 100
    days: frozenset[int] = frozenset(range(5))
    start_minute: int = 9 * 60
    end_minute: int = 18 * 60
    raw: dict[str, Any] = field(default_factory=dict, compare=False)


DEFAULT_RULES: dict[str, Any] = {
    "rules": [
        {"name": "answered, a minute or more", "when": {"answered": True, "min_duration": 60}, "points": 60},
        {"name": "first-time caller", "when": {"first_time_caller": True, "kind": ["call"]}, "points": 20},
        {"name": "in business hours", "when": {"business_hours": True}, "points": 10},
        {"name": "visited the pricing page", "when": {"pricing_page": True}, "points": 20},
        {"name": "form with a phone number", "when": {"kind": ["form", "callback"], "fields_present": ["phone"]}, "points": 40},
        {"name": "each marketing touch", "when": {}, "points": 1, "per": "touchpoint"},
    ],
    "thresholds": {"warm": 40, "hot": 80, "mql": 100},
    "business_hours": {"days": [0, 1, 2, 3, 4], "start": "09:00", "end": "18:00"},
}


def parse_rules(raw: Any) -> RuleSet:
    """Check a rule document; raises InvalidRules naming the fault."""
    if not isinstance(raw, Mapping):
        raise InvalidRules("the rules must be a JSON object with 'rules', 'thresholds' and 'business_hours'")
    unknown = set(raw) - {"rules", "thresholds", "business_hours"}
    if unknown:
        raise InvalidRules(f"unknown key {sorted(unknown)[0]!r}")
    items = raw.get("rules")
    if not isinstance(items, list) or not 0 < len(items) <= MAX_RULES:
        raise InvalidRules(f"'rules' must be a list of 1-{MAX_RULES} rules")
    rules = tuple(_rule(i, item) for i, item in enumerate(items))
    thresholds = raw.get("thresholds", {})
    if not isinstance(thresholds, Mapping) or set(thresholds) - {"warm", "hot", "mql"}:
        raise InvalidRules("'thresholds' takes warm, hot and mql")
    values = {k: thresholds.get(k, d) for k, d in (("warm", 40), ("hot", 80), ("mql", 100))}
    for k, v in values.items():
        if isinstance(v, bool) or not isinstance(v, int) or not -10**6 <= v <= 10**6:
            raise InvalidRules(f"thresholds.{k} must be an integer")
    if not values["warm"] <= values["hot"]:
        raise InvalidRules("thresholds.warm must not be above thresholds.hot")
    hours = raw.get("business_hours", {})
    if not isinstance(hours, Mapping) or set(hours) - {"days", "start", "end"}:
        raise InvalidRules("'business_hours' takes days (0 = Monday … 6), start and end (HH:MM)")
    days = hours.get("days", [0, 1, 2, 3, 4])
    if not isinstance(days, list) or not all(isinstance(d, int) and not isinstance(d, bool) and 0 <= d <= 6 for d in days):
        raise InvalidRules("business_hours.days must list weekdays 0 (Monday) to 6 (Sunday)")
    minutes = []
    for key, default in (("start", "09:00"), ("end", "18:00")):
        m = _TIME.match(str(hours.get(key, default)))
        if m is None:
            raise InvalidRules(f"business_hours.{key} must be HH:MM")
        minutes.append(int(m.group(1)) * 60 + int(m.group(2)))
    if minutes[0] >= minutes[1]:
        raise InvalidRules("business_hours.start must be before end")
    return RuleSet(rules, values["warm"], values["hot"], values["mql"], frozenset(days), minutes[0], minutes[1], dict(raw))


def _rule(i: int, item: Any) -> Rule:
    where = f"rules[{i}]"
    if not isinstance(item, Mapping) or set(item) - {"name", "when", "points", "per", "flag"}:
        raise InvalidRules(f"{where} takes name, when, points, per and flag")
    name = item.get("name", f"rule {i + 1}")
    if not isinstance(name, str) or not 0 < len(name) <= 100:
        raise InvalidRules(f"{where}.name must be 1-100 characters")
    when = item.get("when", {})
    if not isinstance(when, Mapping):
        raise InvalidRules(f"{where}.when must be an object")
    conditions: list[tuple[str, Any]] = []
    for key, value in when.items():
        if key in BOOL_FACTS or key == "answered":
            if not isinstance(value, bool):
                raise InvalidRules(f"{where}.when.{key} must be true or false")
        elif key in MIN_FACTS:
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 10**7:
                raise InvalidRules(f"{where}.when.{key} must be a whole number ≥ 0")
        elif key in IN_FACTS or key == "fields_present":
            values = [value] if isinstance(value, str) else value
            if not isinstance(values, list) or not values or not all(isinstance(v, str) and 0 < len(v) <= 200 for v in values):
                raise InvalidRules(f"{where}.when.{key} must be a string or a list of strings")
            value = tuple(sorted(v.strip().lower() for v in values))
            if key == "fields_present" and set(value) - set(FIELD_NAMES):
                raise InvalidRules(f"{where}.when.fields_present takes {', '.join(FIELD_NAMES)}")
        else:
            known = ", ".join((*BOOL_FACTS, *MIN_FACTS, *IN_FACTS, "fields_present"))
            raise InvalidRules(f"{where}.when.{str(key)[:40]} is not a condition (known: {known})")
        conditions.append((key, value))
    points = item.get("points", 0)
    if isinstance(points, bool) or not isinstance(points, int) or not -1000 <= points <= 1000:
        raise InvalidRules(f"{where}.points must be an integer between -1000 and 1000")
    per = item.get("per")
    if per not in (None, "touchpoint"):
        raise InvalidRules(f"{where}.per can only be 'touchpoint'")
    flag = item.get("flag")
    if flag is not None and (not isinstance(flag, str) or not re.match(r"^[a-z0-9_\-]{1,40}$", flag)):
        raise InvalidRules(f"{where}.flag must be 1-40 lower-case letters, digits, '_' or '-'")
    if not points and flag is None:
        raise InvalidRules(f"{where} gives neither points nor a flag")
    return Rule(name, tuple(sorted(conditions)), points, per == "touchpoint", flag)


def rules_json(rules: RuleSet) -> str:
    return json.dumps(rules.raw, sort_keys=True, ensure_ascii=False)


def needed_facts(rules: RuleSet) -> frozenset[str]:
    """The columns of FACT_COLUMNS that :func:`score` reads under these rules: the store reads
    only these (a million leads' unused columns and sub-queries cost more than the scoring)."""
    needed: set[str] = set()
    for rule in rules.rules:
        if rule.points and rule.per_touchpoint:
            needed.add("touchpoints")
        for key, value in rule.when:
            if key == "business_hours":
                needed.add("created_at")
            elif key in MIN_FACTS:
                needed.add(MIN_FACTS[key])
            elif key == "fields_present":
                needed.update(f"has_{name}" for name in value)
            else:
                needed.add(key)
    return frozenset(needed)


def _in_business_hours(created_at: pd.Series, rules: RuleSet, timezone: str) -> np.ndarray:
    local = pd.to_datetime(created_at.astype("float64"), unit="s", utc=True).dt.tz_convert(timezone)
    minute = (local.dt.hour * 60 + local.dt.minute).to_numpy()
    return np.isin(local.dt.day_of_week.to_numpy(), sorted(rules.days)) & (minute >= rules.start_minute) & (minute < rules.end_minute)


def score(facts: pd.DataFrame, rules: RuleSet, *, timezone: str) -> pd.DataFrame:
    """Score every lead in ``facts`` (one row per lead, at least the columns :func:`needed_facts`
    names; index = lead id). Returns ``score``, ``temperature``, ``mql`` (bool) and ``flags``
    (comma-joined)."""
    n = len(facts)
    total = np.zeros(n, dtype=np.int64)
    flag_masks: list[tuple[str, np.ndarray]] = []
    in_hours: np.ndarray | None = None  # computed once, and only when a rule asks
    lowered: dict[str, np.ndarray] = {}  # lower-cased once, and only the columns a rule reads
    for rule in rules.rules:
        mask = np.ones(n, dtype=bool)
        for key, value in rule.when:
            if key == "business_hours":
                if in_hours is None:
                    in_hours = _in_business_hours(facts["created_at"], rules, timezone)
                column = in_hours
            elif key in BOOL_FACTS:
                column = facts[key].fillna(False).astype(bool).to_numpy()
            elif key in MIN_FACTS:
                mask &= facts[MIN_FACTS[key]].fillna(0).to_numpy() >= value
                continue
            elif key == "fields_present":
                for name in value:
                    mask &= facts[f"has_{name}"].fillna(False).astype(bool).to_numpy()
                continue
            else:
                if key not in lowered:
                    lowered[key] = facts[key].fillna("").astype(str).str.lower().to_numpy()
                mask &= np.isin(lowered[key], value)
                continue
            mask &= column == value
        if rule.points:
            weight = facts["touchpoints"].fillna(0).to_numpy().astype(np.int64) if rule.per_touchpoint else 1
            total += np.where(mask, rule.points * weight, 0)
        if rule.flag:
            flag_masks.append((rule.flag, mask))
    temperature = np.where(total >= rules.hot, "hot", np.where(total >= rules.warm, "warm", "cold"))
    flags = pd.Series("", index=facts.index)
    for flag, mask in flag_masks:
        flags = flags.where(~mask, flags + np.where(flags == "", "", ",") + flag)
    return pd.DataFrame({"score": total, "temperature": temperature, "mql": total >= rules.mql, "flags": flags.to_numpy()}, index=facts.index)
