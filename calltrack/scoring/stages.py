"""A lead's lifecycle: stages, the moves allowed between them, and what BANT answers decide. Pure.

new → contacted → MQL → SQL → customer is the road; nurturing (not ready yet, back to
marketing, may reopen), lost (with a reason) and spam (with a reason) are the side states.
A customer stays a customer. Spam can be undone (a person marked by mistake goes back to new).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

STAGES = ("new", "contacted", "mql", "sql", "customer", "nurturing", "lost", "spam")
OPEN_STAGES = ("new", "contacted", "mql", "sql", "nurturing")
# Stages reached only after somebody got hold of the person: the first move into one of them
# is the lead's first response when no answered call came earlier.
RESPONDED_STAGES = ("contacted", "mql", "sql", "customer")

TRANSITIONS: dict[str, tuple[str, ...]] = {
    "new": ("contacted", "mql", "sql", "customer", "nurturing", "lost", "spam"),
    "contacted": ("mql", "sql", "customer", "nurturing", "lost", "spam"),
    "mql": ("contacted", "sql", "customer", "nurturing", "lost", "spam"),
    "sql": ("customer", "nurturing", "lost"),
    "customer": (),
    "nurturing": ("contacted", "mql", "sql", "customer", "lost"),
    "lost": ("nurturing", "contacted"),
    "spam": ("new",),
}
BANT_KEYS = ("budget", "authority", "need", "timing")


class InvalidTransition(ValueError):
    """The move is not allowed from the lead's stage; ``allowed`` lists the ones that are."""

    def __init__(self, current: str, wanted: str) -> None:
        self.current = current
        self.wanted = wanted
        self.allowed = TRANSITIONS.get(current, ())
        super().__init__(f"a lead in stage {current!r} cannot move to {wanted!r}")


class InvalidOutcome(ValueError):
    """A sales outcome that does not make sense; the message names the field."""


def check_transition(current: str, wanted: str) -> None:
    if wanted not in STAGES:
        raise InvalidOutcome(f"stage must be one of {', '.join(STAGES)}")
    if wanted != current and wanted not in TRANSITIONS[current]:
        raise InvalidTransition(current, wanted)


def read_bant(raw: Any) -> dict[str, bool]:
    """BANT answers: an object of budget/authority/need/timing to true or false (some may be
    missing while sales is still asking)."""
    if not isinstance(raw, Mapping) or not raw:
        raise InvalidOutcome("bant must be an object of budget, authority, need, timing to true or false")
    out: dict[str, bool] = {}
    for key, value in raw.items():
        if key not in BANT_KEYS:
            raise InvalidOutcome(f"bant.{str(key)[:40]} is not one of {', '.join(BANT_KEYS)}")
        if not isinstance(value, bool):
            raise InvalidOutcome(f"bant.{key} must be true or false")
        out[key] = value
    return out


def bant_stage(bant: Mapping[str, bool]) -> str | None:
    """What the answers decide: every check passed → SQL; any failed → nurturing; some still
    unanswered (and none failed) → nothing yet."""
    if any(bant.get(k) is False for k in BANT_KEYS):
        return "nurturing"
    if all(bant.get(k) is True for k in BANT_KEYS):
        return "sql"
    return None
