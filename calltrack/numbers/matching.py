"""Matching a call to the source that brought it. Pure: the store gathers the candidates.

The order of evidence, strongest first:

1. a **static** number carries its source itself;
2. a **repeat caller**: the same caller rang the same pool number within the repeat window
   and was matched then; people save and redial numbers, so the earlier match stands even if
   another visitor holds the number now;
3. the **lease** that held the pool number at call time;
4. an **expired lease**: no lease held the number, but one ended shortly before. A number is
   not handed out again during its pool's cool-down, so within it the last holder is the only
   visitor who can have seen it; confidence falls as the gap grows;
5. the pool's **overflow** number: the pool's channel, no visitor;
6. otherwise **unmatched**.

Every match lists the other visitors who held the number around the call, so a person
reading ``/v1/calls/{id}/explain`` can see how crowded the number was.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

LEASE_CONFIDENCE = 0.95
EXPIRED_CONFIDENCE_MAX = 0.8
EXPIRED_CONFIDENCE_MIN = 0.3
OVERFLOW_CONFIDENCE = 0.5
# Leases this close to the call (either side) are listed as "others around that time".
NEIGHBOUR_SECONDS = 3600.0


@dataclass(frozen=True)
class LeaseSpan:
    """A lease of the number called, as the matcher needs it."""

    id: int
    vid: str
    touchpoint_id: int | None
    started_at: float
    # When it stopped holding the number: ended_at, or expires_at while still open.
    until: float
    open: bool


@dataclass(frozen=True)
class PriorMatch:
    """The caller's earlier matched call to the same number."""

    call_id: int
    started_at: float
    method: str
    confidence: float
    lease_id: int | None
    vid: str | None
    touchpoint_id: int | None


@dataclass(frozen=True)
class Match:
    method: str
    confidence: float
    lease_id: int | None = None
    vid: str | None = None
    touchpoint_id: int | None = None
    # Source columns straight from a static number (placement…) or the pool's channel.
    source: dict[str, str | None] = field(default_factory=dict)
    explain: dict[str, Any] = field(default_factory=dict)


def match_call(
    *,
    call_at: float,
    number_kind: str | None,
    static_source: dict[str, str | None] | None = None,
    pool_cooldown: float = 0.0,
    spans: list[LeaseSpan] | None = None,
    prior: PriorMatch | None = None,
    overflow_channel: str | None = None,
    overflow_pool_id: int | None = None,
) -> Match:
    """Decide how the call at ``call_at`` is matched.

    Args:
        number_kind: 'static', 'pool', 'overflow' (the number is a pool's overflow number)
            or None (not one of ours).
        static_source: a static number's source, medium, campaign, keyword, placement.
        pool_cooldown: the pool's cool-down, which bounds the expired-lease match.
        spans: the leases of the number around the call.
        prior: the caller's earlier matched call to this number within the repeat window.
    """
    spans = spans or []
    others = [
        {"lease_id": s.id, "vid": s.vid, "started_at": s.started_at, "until": s.until, "open": s.open}
        for s in sorted(spans, key=lambda s: s.started_at)
        if s.started_at - NEIGHBOUR_SECONDS <= call_at <= s.until + NEIGHBOUR_SECONDS
    ]
    story: dict[str, Any] = {"call_at": call_at, "number_kind": number_kind}

    if number_kind == "static":
        return Match("static", 1.0, source=dict(static_source or {}), explain=story | {"reason": "a static number carries its own source"})
    if number_kind == "overflow":
        return Match(
            "overflow",
            OVERFLOW_CONFIDENCE,
            source={"channel": overflow_channel},
            explain=story | {"pool_id": overflow_pool_id, "reason": "the pool was full; its overflow number tells the channel, not the visitor"},
        )
    if number_kind != "pool":
        return Match("unmatched", 0.0, explain=story | {"reason": "the number dialled is not a tracking number of this account"})

    def with_others(m: Match, exclude: int | None) -> Match:
        m.explain["others"] = [o for o in others if o["lease_id"] != exclude]
        return m

    if prior is not None and prior.vid is not None:
        return with_others(
            Match(
                "repeat_caller",
                prior.confidence,
                lease_id=prior.lease_id,
                vid=prior.vid,
                touchpoint_id=prior.touchpoint_id,
                explain=story | {
                    "prior_call_id": prior.call_id,
                    "prior_method": prior.method,
                    "reason": "the caller rang this number before and was matched then",
                },
            ),
            prior.lease_id,
        )
    holding = [s for s in spans if s.started_at <= call_at <= s.until]
    if holding:
        # Two holders cannot overlap (the database refuses a second open lease on a number);
        # the latest start wins should clocks disagree at a hand-over.
        lease = max(holding, key=lambda s: s.started_at)
        return with_others(
            Match(
                "lease",
                LEASE_CONFIDENCE,
                lease_id=lease.id,
                vid=lease.vid,
                touchpoint_id=lease.touchpoint_id,
                explain=story | {"reason": "a visitor held this number when the call came in"},
            ),
            lease.id,
        )
    before = [s for s in spans if s.until < call_at]
    if before and pool_cooldown > 0:
        last = max(before, key=lambda s: s.until)
        gap = call_at - last.until
        if gap <= pool_cooldown:
            confidence = EXPIRED_CONFIDENCE_MAX - (EXPIRED_CONFIDENCE_MAX - EXPIRED_CONFIDENCE_MIN) * (gap / pool_cooldown)
            return with_others(
                Match(
                    "expired_lease",
                    round(confidence, 3),
                    lease_id=last.id,
                    vid=last.vid,
                    touchpoint_id=last.touchpoint_id,
                    explain=story | {
                        "gap_seconds": round(gap, 3),
                        "cooldown_seconds": pool_cooldown,
                        "reason": "the last visitor's lease had just ended; no one else could have been shown the number since",
                    },
                ),
                last.id,
            )
    return with_others(
        Match("unmatched", 0.0, explain=story | {"reason": "no visitor held this pool number at or shortly before the call"}),
        None,
    )
