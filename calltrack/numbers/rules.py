"""Pool match rules: which visits a pool serves, and the first matching pool by precedence. Pure.

A rule set is a JSON object. ``{}`` (or ``{"all": true}``) matches every visit of the site.
Otherwise every key given must match (AND); a key's value is a string or a list of strings
(OR), compared case-insensitively:

    {"channel": "paid_search", "utm_source": ["google", "bing"]}

Keys: ``channel`` (see numbers/channels.py), ``utm_source``, ``utm_medium``, ``utm_campaign``,
``keyword`` (utm_term), ``referrer_domain`` (the referrer's host or a parent domain).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from calltrack.numbers.channels import CHANNELS
from calltrack.text import has_control

RULE_KEYS = ("channel", "utm_source", "utm_medium", "utm_campaign", "keyword", "referrer_domain")


class RuleError(ValueError):
    """The rules do not parse; the message names the fault."""


@dataclass(frozen=True)
class PoolRules:
    conditions: tuple[tuple[str, frozenset[str]], ...] = ()

    @property
    def matches_all(self) -> bool:
        return not self.conditions

    def to_json(self) -> dict[str, Any]:
        if not self.conditions:
            return {"all": True}
        return {k: sorted(v) if len(v) > 1 else next(iter(v)) for k, v in self.conditions}


@dataclass(frozen=True)
class VisitFacts:
    """What rules look at: the visit's channel, tags and referrer host (all lower case)."""

    channel: str
    utm_source: str = ""
    utm_medium: str = ""
    utm_campaign: str = ""
    keyword: str = ""
    referrer_domain: str = ""


def parse_rules(raw: Mapping[str, Any] | None) -> PoolRules:
    """Validate a rule object; raises RuleError naming the bad key or value."""
    if raw is None:
        return PoolRules()
    if not isinstance(raw, Mapping):
        raise RuleError("rules must be a JSON object")
    conditions: list[tuple[str, frozenset[str]]] = []
    for key, value in raw.items():
        if key == "all":
            if value is not True:
                raise RuleError("'all' may only be true")
            continue
        if key not in RULE_KEYS:
            raise RuleError(f"unknown rule key {key!r} (known: {', '.join(RULE_KEYS)}, all)")
        values = [value] if isinstance(value, str) else value
        if not isinstance(values, list) or not values or not all(isinstance(v, str) and v.strip() for v in values):
            raise RuleError(f"rule {key!r} needs a non-empty string or list of strings")
        if any(has_control(v) for v in values):
            raise RuleError(f"rule {key!r} contains control characters")  # stored as JSON, which PostgreSQL refuses with NUL
        normalised = frozenset(v.strip().lower() for v in values)
        if key == "referrer_domain":
            # Visits' referrer hosts are compared without "www." (channels.referrer_host).
            normalised = frozenset(v.removeprefix("www.") for v in normalised)
        if key == "channel":
            unknown = sorted(normalised - set(CHANNELS))
            if unknown:
                raise RuleError(f"unknown channel {unknown[0]!r} (known: {', '.join(CHANNELS)})")
        conditions.append((key, normalised))
    return PoolRules(tuple(sorted(conditions)))


def _condition_holds(key: str, allowed: frozenset[str], facts: VisitFacts) -> bool:
    value: str = getattr(facts, key)
    if key == "referrer_domain":
        return any(value == d or value.endswith("." + d) for d in allowed)
    return value in allowed


def rules_match(rules: PoolRules, facts: VisitFacts) -> bool:
    return all(_condition_holds(k, v, facts) for k, v in rules.conditions)


class RankedPool(Protocol):
    priority: int
    id: int
    rules: PoolRules


P = TypeVar("P", bound=RankedPool)


def choose_pool(pools: Sequence[P], facts: VisitFacts) -> P | None:
    """The first pool (lowest priority number, then lowest id) whose rules match."""
    for pool in sorted(pools, key=lambda p: (p.priority, p.id)):
        if rules_match(pool.rules, facts):
            return pool
    return None


class StaticSource(Protocol):
    id: int
    source: str | None
    medium: str | None


S = TypeVar("S", bound=StaticSource)


def choose_static(numbers: Sequence[S], facts: VisitFacts) -> S | None:
    """The static number that best stands for a visit's source, for visitors we may not
    track (no consent): utm_source and utm_medium both match, then utm_source alone (a
    number without a medium), then a number whose medium names the visit's channel (one
    without a source). Offline numbers (no source, no medium) never match."""
    best: tuple[int, int] | None = None
    chosen: S | None = None
    for n in numbers:
        source = (n.source or "").lower()
        medium = (n.medium or "").lower()
        score = 0
        if source and source == facts.utm_source:
            if medium and medium == facts.utm_medium:
                score = 3
            elif not medium:
                score = 2
        elif not source and medium and medium == facts.channel:
            score = 1
        if score and (best is None or (score, -n.id) > best):
            best, chosen = (score, -n.id), n
    return chosen
