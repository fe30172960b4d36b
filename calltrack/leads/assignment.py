"""Who gets a new lead: the first matching rule's owner, else the next manager in turn. Pure.

A rule is a priority and conditions on what is known when the lead appears: its channel,
source, medium, campaign, kind (call, callback, form), form type, and the caller's region and
country. Each condition lists the values it accepts (any of them, case-insensitive); a rule
matches when all its conditions do.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

CONDITION_KEYS = ("channel", "source", "medium", "campaign", "kind", "form_type", "region", "country")
MAX_VALUES = 50


class InvalidRule(ValueError):
    """An assignment rule that does not parse; the message names the fault."""


@dataclass(frozen=True)
class OwnerRule:
    id: int
    priority: int
    conditions: tuple[tuple[str, frozenset[str]], ...]
    owner_id: int

    def to_json(self, owner_name: str | None = None) -> dict[str, Any]:
        return {
            "id": self.id,
            "priority": self.priority,
            "when": {k: sorted(v) for k, v in self.conditions},
            "owner_id": self.owner_id,
            "owner": owner_name,
        }


def parse_conditions(raw: Any) -> tuple[tuple[str, frozenset[str]], ...]:
    """``{"source": "google", "channel": ["paid_search", "display"]}`` → sorted conditions."""
    if not isinstance(raw, Mapping) or not raw:
        raise InvalidRule(f"'when' must be a non-empty object of {', '.join(CONDITION_KEYS)}")
    out = []
    for key, value in raw.items():
        if key not in CONDITION_KEYS:
            raise InvalidRule(f"'{str(key)[:40]}' is not a condition (known: {', '.join(CONDITION_KEYS)})")
        values = [value] if isinstance(value, str) else value
        if not isinstance(values, list) or not values or len(values) > MAX_VALUES:
            raise InvalidRule(f"'{key}' must be a string or a list of 1-{MAX_VALUES} strings")
        if not all(isinstance(v, str) and 0 < len(v.strip()) <= 200 for v in values):
            raise InvalidRule(f"'{key}' values must be 1-200 characters")
        out.append((key, frozenset(v.strip().lower() for v in values)))
    return tuple(sorted(out))


def matches(conditions: Sequence[tuple[str, frozenset[str]]], facts: Mapping[str, Any]) -> bool:
    for key, accepted in conditions:
        value = facts.get(key)
        if value is None or str(value).strip().lower() not in accepted:
            return False
    return True


def rule_owner(rules: Sequence[OwnerRule], facts: Mapping[str, Any], active: set[int]) -> OwnerRule | None:
    """The first rule (by priority, then id) that matches and whose owner is still active."""
    for rule in sorted(rules, key=lambda r: (r.priority, r.id)):
        if rule.owner_id in active and matches(rule.conditions, facts):
            return rule
    return None
