"""The outbox of outbound lead webhooks: endpoints, deliveries and their attempts (``*_txn``).

Events are written by the transaction that made them (``enqueue_txn`` from lead creation,
``enqueue_stage_txn`` from every stage move): one INSERT … SELECT over the account's
subscribed endpoints, which inserts nothing when there are none. The dispatcher claims due
rows by moving their ``next_attempt_at`` past the attempt's timeout (a conditional UPDATE,
so two processes never send one row at once, and a process that dies mid-attempt leaves the
row due again once the claim lapses), and records each attempt.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from calltrack.db.schema import lead_webhook_attempts, lead_webhook_deliveries, lead_webhooks
from calltrack.leads.outbox import CREATED, build_body, events_column, events_from_column, like_pattern, stage_events

D = lead_webhook_deliveries
W = lead_webhooks


class OutboxError(LookupError):
    """No such endpoint or delivery in this account."""


class OutboxConflict(Exception):
    """The request cannot be done in the endpoint's state (no room for another, removed)."""


@dataclass(frozen=True)
class Webhook:
    id: int
    account_id: int
    url: str
    events: list[str]
    description: str
    active: bool
    created_at: float
    disabled_at: float | None
    counts: dict[str, int]

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id, "url": self.url, "events": self.events, "description": self.description, "active": self.active,
            "created_at": self.created_at, "disabled_at": self.disabled_at, "deliveries": self.counts,
        }


@dataclass(frozen=True)
class Claim:
    """One delivery claimed for one attempt."""

    delivery_id: int
    webhook_id: int
    url: str
    secret: str
    event: str
    attempt: int
    body: bytes


# -- endpoints ---------------------------------------------------------------------------------


def add_webhook_txn(
    conn: Connection, account_id: int, *, url: str, events: Iterable[str], description: str, secret: str, now: float, limit: int
) -> Webhook:
    active = conn.execute(sa.select(sa.func.count()).where(W.c.account_id == account_id, W.c.active == sa.true())).scalar_one()
    if active >= limit:
        raise OutboxConflict(f"this account has {active} active lead webhooks, the most allowed; remove one first")
    webhook_id = conn.execute(
        W.insert().returning(W.c.id),
        dict(account_id=account_id, url=url, secret=secret, events=events_column(events), description=description, active=True, created_at=now),
    ).scalar_one()
    found = get_webhook_txn(conn, account_id, int(webhook_id))
    assert found is not None
    return found


def _counts(conn: Connection, ids: list[int]) -> dict[int, dict[str, int]]:
    out: dict[int, dict[str, int]] = {i: {} for i in ids}
    if ids:
        rows = conn.execute(sa.select(D.c.webhook_id, D.c.status, sa.func.count()).where(D.c.webhook_id.in_(ids)).group_by(D.c.webhook_id, D.c.status))
        for webhook_id, status, n in rows:
            out[webhook_id][status] = int(n)
    return out


def _webhook(r: Any, counts: dict[str, int]) -> Webhook:
    return Webhook(r.id, r.account_id, r.url, events_from_column(r.events), r.description, bool(r.active), r.created_at, r.disabled_at, counts)


def list_webhooks_txn(conn: Connection, account_id: int) -> list[Webhook]:
    rows = conn.execute(sa.select(W).where(W.c.account_id == account_id).order_by(W.c.id)).all()
    counts = _counts(conn, [r.id for r in rows])
    return [_webhook(r, counts[r.id]) for r in rows]


def get_webhook_txn(conn: Connection, account_id: int, webhook_id: int) -> Webhook | None:
    r = conn.execute(sa.select(W).where(W.c.id == webhook_id, W.c.account_id == account_id)).one_or_none()
    return None if r is None else _webhook(r, _counts(conn, [r.id])[r.id])


def disable_webhook_txn(conn: Connection, account_id: int, webhook_id: int, now: float) -> int:
    """Stop sending to an endpoint; what it still had pending is cancelled (kept in the log).
    Returns the number of cancelled deliveries; raises OutboxError when there is no such one."""
    found = conn.execute(W.update().where(W.c.id == webhook_id, W.c.account_id == account_id).values(active=False, disabled_at=sa.func.coalesce(W.c.disabled_at, now)))
    if not found.rowcount:
        raise OutboxError("no such lead webhook in this account")
    cancelled = conn.execute(D.update().where(D.c.webhook_id == webhook_id, D.c.status == "pending").values(status="cancelled", next_attempt_at=None))
    return int(cancelled.rowcount or 0)


# -- events (called inside the transaction that made them) ---------------------------------------

# Built once; the SELECT yields one row per subscribed active endpoint of the account.
_ENQUEUE = D.insert().from_select(
    ["webhook_id", "account_id", "lead_id", "event", "occurred_at", "detail", "status", "attempts", "next_attempt_at", "created_at"],
    sa.select(
        W.c.id,
        W.c.account_id,
        sa.bindparam("e_lead", type_=sa.Integer),
        sa.bindparam("e_event", type_=sa.String),
        sa.bindparam("e_at", type_=sa.Float),
        sa.bindparam("e_detail", type_=sa.Text),
        sa.literal("pending", sa.String),
        sa.literal(0, sa.Integer),
        sa.bindparam("e_due", type_=sa.Float),
        sa.bindparam("e_due", type_=sa.Float),
    ).where(W.c.account_id == sa.bindparam("e_account"), W.c.active == sa.true(), W.c.events.like(sa.bindparam("e_pattern"))),
)


def _params(account_id: int, lead_id: int, event: str, at: float, detail: dict[str, Any] | None, now: float | None) -> dict[str, Any]:
    return {
        "e_account": account_id, "e_lead": lead_id, "e_event": event, "e_at": at,
        "e_detail": json.dumps(detail, sort_keys=True) if detail else None,
        # Due now; an event dated later (a PBX clock ahead of ours) is not held back.
        "e_due": at if now is None else min(at, now), "e_pattern": like_pattern(event),
    }


def enqueue_txn(conn: Connection, account_id: int, lead_id: int, event: str, at: float, detail: dict[str, Any] | None = None, *, now: float | None = None) -> None:
    conn.execute(_ENQUEUE, _params(account_id, lead_id, event, at, detail, now))


def lead_created_txn(conn: Connection, account_id: int, lead_id: int, at: float) -> None:
    enqueue_txn(conn, account_id, lead_id, CREATED, at)


def stage_moves_txn(conn: Connection, moves: list[tuple[int, int, str | None, str]], *, at: float, actor: str) -> None:
    """Stage moves (account id, lead id, old stage, new stage) made by ``actor`` at ``at``:
    ``lead.stage_changed`` for each, ``lead.qualified`` when one enters the qualified stages."""
    accounts = {m[0] for m in moves}
    if len(moves) > 1:  # a scoring run promotes thousands: skip the accounts nobody listens to
        accounts = set(conn.execute(sa.select(W.c.account_id).where(W.c.account_id.in_(accounts), W.c.active == sa.true()).distinct()).scalars())
    params = [
        _params(account_id, lead_id, event, at, {"field": "stage", "from": old, "to": new, "by": actor}, None)
        for account_id, lead_id, old, new in moves
        if account_id in accounts
        for event in stage_events(old, new)
    ]
    if params:
        conn.execute(_ENQUEUE, params)


# -- the dispatcher ----------------------------------------------------------------------------


def claim_due_txn(
    conn: Connection,
    now: float,
    limit: int,
    *,
    hold_seconds: float,
    per_webhook: int,
    in_flight: Mapping[int, int],
    resting: Iterable[int] = (),
    lead_json: Callable[[Connection, int, int], dict[str, Any] | None],
) -> list[Claim]:
    """Claim up to ``limit`` due deliveries, oldest due first, at most ``per_webhook`` in
    flight to one endpoint counting the ``in_flight`` attempts this process already has (a
    hanging endpoint keeps its share busy, not every slot, and its due rows are not even read)
    and none for the ``resting`` endpoints (failing in a row; the dispatcher decides).

    A claimed row is due again ``hold_seconds`` later unless its attempt is recorded first;
    its body is fixed now if this is its first attempt (``lead_json`` renders the lead)."""
    q = (
        sa.select(D.c.id, D.c.webhook_id, D.c.account_id, D.c.lead_id, D.c.event, D.c.occurred_at, D.c.detail, D.c.attempts,
                  D.c.next_attempt_at, D.c.body, W.c.url, W.c.secret)
        .join(W, W.c.id == D.c.webhook_id)
        .where(D.c.status == "pending", D.c.next_attempt_at <= now, W.c.active == sa.true())
        .order_by(D.c.next_attempt_at, D.c.id)
        .limit(limit * 4)
    )
    skip = sorted({w for w, n in in_flight.items() if n >= per_webhook} | set(resting))
    if skip:
        q = q.where(D.c.webhook_id.not_in(skip))
    claims: list[Claim] = []
    taken: dict[int, int] = dict(in_flight)
    for r in conn.execute(q).all():
        if len(claims) >= limit:
            break
        if taken.get(r.webhook_id, 0) >= per_webhook:
            continue
        won = conn.execute(
            D.update()
            .where(D.c.id == r.id, D.c.status == "pending", D.c.next_attempt_at == r.next_attempt_at)
            .values(next_attempt_at=now + hold_seconds)
        ).rowcount
        if not won:
            continue  # another process claimed it between our read and our update
        body = r.body
        if body is None:
            lead = lead_json(conn, r.account_id, r.lead_id)
            if lead is None:  # pragma: no cover - leads are never deleted
                conn.execute(D.update().where(D.c.id == r.id).values(status="cancelled", next_attempt_at=None, last_error="lead not found"))
                continue
            body = build_body(r._mapping, lead).decode("utf-8")
            conn.execute(D.update().where(D.c.id == r.id).values(body=body))
        taken[r.webhook_id] = taken.get(r.webhook_id, 0) + 1
        claims.append(Claim(r.id, r.webhook_id, r.url, r.secret, r.event, int(r.attempts) + 1, body.encode("utf-8")))
    return claims


def record_attempt_txn(
    conn: Connection,
    delivery_id: int,
    *,
    at: float,
    status_code: int | None,
    error: str | None,
    duration_ms: int,
    response_excerpt: str | None,
    delivered: bool,
    retry_at: float | None,
) -> str:
    """Log one attempt and move the delivery on: delivered, due again at ``retry_at``, or
    failed for good when ``retry_at`` is None. Returns the new status."""
    conn.execute(
        lead_webhook_attempts.insert(),
        dict(delivery_id=delivery_id, at=at, status_code=status_code, error=error and error[:300], duration_ms=duration_ms,
             response_excerpt=response_excerpt and response_excerpt[:500]),
    )
    status = "delivered" if delivered else ("pending" if retry_at is not None else "failed")
    conn.execute(
        D.update()
        .where(D.c.id == delivery_id, D.c.status == "pending")
        .values(
            attempts=D.c.attempts + 1, status=status, next_attempt_at=None if delivered else retry_at, last_status=status_code,
            last_error=error and error[:300], delivered_at=at if delivered else None,
        )
    )
    return status


def backlog_txn(conn: Connection, now: float) -> tuple[int, float]:
    """(pending deliveries, age in seconds of the longest-waiting due one) for the metrics."""
    pending, oldest = conn.execute(
        sa.select(sa.func.count(), sa.func.min(sa.case((D.c.next_attempt_at <= now, D.c.created_at)))).where(D.c.status == "pending")
    ).one()
    return int(pending), max(0.0, now - oldest) if oldest is not None else 0.0


def prune_txn(conn: Connection, before: float, *, limit: int = 5000) -> int:
    """Delete up to ``limit`` settled deliveries last touched before ``before``, with their
    attempts; returns how many (the caller repeats while it gets a full batch)."""
    ids = conn.execute(
        sa.select(D.c.id)
        .where(D.c.status != "pending", D.c.created_at < before, sa.or_(D.c.delivered_at.is_(None), D.c.delivered_at < before))
        .order_by(D.c.id)
        .limit(limit)
    ).scalars().all()
    if ids:
        conn.execute(lead_webhook_attempts.delete().where(lead_webhook_attempts.c.delivery_id.in_(ids)))
        conn.execute(D.delete().where(D.c.id.in_(ids)))
    return len(ids)


# -- the delivery log --------------------------------------------------------------------------


def _delivery_json(r: Any) -> dict[str, Any]:
    return {
        "id": r.id, "webhook_id": r.webhook_id, "lead_id": r.lead_id, "event": r.event, "occurred_at": r.occurred_at,
        "change": json.loads(r.detail) if r.detail else None, "status": r.status, "attempts": r.attempts,
        "next_attempt_at": r.next_attempt_at if r.status == "pending" else None, "last_status": r.last_status,
        "last_error": r.last_error, "delivered_at": r.delivered_at, "created_at": r.created_at,
    }


def deliveries_txn(
    conn: Connection, account_id: int, webhook_id: int, *, status: str | None, lead_id: int | None, before_id: int | None, limit: int
) -> list[dict[str, Any]]:
    """Newest first; raises OutboxError for another account's endpoint."""
    if get_webhook_txn(conn, account_id, webhook_id) is None:
        raise OutboxError("no such lead webhook in this account")
    q = sa.select(D).where(D.c.webhook_id == webhook_id, D.c.account_id == account_id)
    if status is not None:
        q = q.where(D.c.status == status)
    if lead_id is not None:
        q = q.where(D.c.lead_id == lead_id)
    if before_id is not None:
        q = q.where(D.c.id < before_id)
    return [_delivery_json(r) for r in conn.execute(q.order_by(D.c.id.desc()).limit(limit)).all()]


def delivery_txn(conn: Connection, account_id: int, webhook_id: int, delivery_id: int) -> dict[str, Any] | None:
    """One delivery with the body sent and every attempt."""
    r = conn.execute(sa.select(D).where(D.c.id == delivery_id, D.c.webhook_id == webhook_id, D.c.account_id == account_id)).one_or_none()
    if r is None:
        return None
    attempts = conn.execute(sa.select(lead_webhook_attempts).where(lead_webhook_attempts.c.delivery_id == delivery_id).order_by(lead_webhook_attempts.c.id)).all()
    return _delivery_json(r) | {
        "body": json.loads(r.body) if r.body else None,
        "attempt_log": [
            {"at": a.at, "status_code": a.status_code, "error": a.error, "duration_ms": a.duration_ms, "response": a.response_excerpt}
            for a in attempts
        ],
    }


def resend_txn(conn: Connection, account_id: int, webhook_id: int, delivery_id: int, now: float) -> dict[str, Any]:
    """Send a failed, cancelled or delivered event again, with a fresh run of attempts (the
    log keeps the old ones; the body stays the same, so the receiver sees the same id)."""
    webhook = get_webhook_txn(conn, account_id, webhook_id)
    if webhook is None:
        raise OutboxError("no such lead webhook in this account")
    if not webhook.active:
        raise OutboxConflict("this lead webhook was removed; add it again to send to it")
    conn.execute(
        D.update()
        .where(D.c.id == delivery_id, D.c.webhook_id == webhook_id, D.c.account_id == account_id, D.c.status != "pending")
        .values(status="pending", attempts=0, next_attempt_at=now, delivered_at=None)
    )
    found = delivery_txn(conn, account_id, webhook_id, delivery_id)
    if found is None:
        raise OutboxError("no such delivery for this lead webhook")
    return found
