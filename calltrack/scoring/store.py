"""Rule versions, lead facts and scores in the database: ``*_txn`` functions."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from calltrack.db.schema import accounts, calls, contact_visitors, form_submissions, lead_events, leads, scoring_rules, touchpoints, tracking_numbers

FACT_QUERY_COLUMNS = (
    "id", "created_at", "kind", "channel", "source", "medium", "campaign", "form_type", "tracking_number",
    "duration", "answered", "first_time_caller", "touchpoints", "pages_viewed", "pricing_page",
    "has_phone", "has_email", "has_name", "has_company", "has_message",
)


def active_rules_txn(conn: Connection, account_id: int) -> tuple[int, dict[str, Any] | None, str]:
    """(version, rule document or None for the built-in defaults, account time zone)."""
    row = conn.execute(
        sa.select(scoring_rules.c.version, scoring_rules.c.rules)
        .where(scoring_rules.c.account_id == account_id)
        .order_by(scoring_rules.c.version.desc())
        .limit(1)
    ).one_or_none()
    tz = conn.execute(sa.select(accounts.c.timezone).where(accounts.c.id == account_id)).scalar_one()
    return (0, None, tz) if row is None else (int(row.version), json.loads(row.rules), tz)


def add_rules_txn(conn: Connection, account_id: int, document: str, now: float) -> int:
    version = (conn.execute(sa.select(sa.func.max(scoring_rules.c.version)).where(scoring_rules.c.account_id == account_id)).scalar_one() or 0) + 1
    conn.execute(scoring_rules.insert().values(account_id=account_id, version=version, rules=document, created_at=now))
    return int(version)


def lead_facts_txn(conn: Connection, account_id: int, *, lead_ids: Sequence[int] | None = None, after_id: int = 0, limit: int = 50_000) -> list[tuple[Any, ...]]:
    """What the rules look at, one tuple per lead (FACT_QUERY_COLUMNS), by id order."""
    l2 = leads.alias("earlier")
    lead_calls = sa.and_(calls.c.lead_id == leads.c.id)
    visitor_touches = (
        sa.select(touchpoints.c.url)
        .join(contact_visitors, sa.and_(contact_visitors.c.site_id == touchpoints.c.site_id, contact_visitors.c.vid == touchpoints.c.vid))
        .where(contact_visitors.c.contact_id == leads.c.contact_id)
    )
    forms = form_submissions.c
    has = lambda col: sa.select(sa.func.count()).where(forms.lead_id == leads.c.id, col.is_not(None)).scalar_subquery() > 0  # noqa: E731
    q = (
        sa.select(
            leads.c.id, leads.c.created_at, leads.c.kind, leads.c.channel, leads.c.source, leads.c.medium, leads.c.campaign,
            leads.c.form_type, tracking_numbers.c.e164,
            sa.select(sa.func.max(sa.func.coalesce(calls.c.duration, 0))).where(lead_calls).scalar_subquery(),
            sa.exists().where(lead_calls, sa.or_(calls.c.answered_at.is_not(None), calls.c.duration > 0)),
            ~sa.exists().where(l2.c.contact_id == leads.c.contact_id, l2.c.created_at < leads.c.created_at),
            sa.select(sa.func.count()).select_from(visitor_touches.subquery()).scalar_subquery(),
            sa.select(sa.func.count(sa.distinct(visitor_touches.subquery().c.url))).scalar_subquery(),
            sa.exists(visitor_touches.where(touchpoints.c.url.like("%pricing%"))),
            has(forms.phone), has(forms.email), has(forms.name), has(forms.company), has(forms.message),
        )
        .outerjoin(tracking_numbers, tracking_numbers.c.id == leads.c.number_id)
        .where(leads.c.account_id == account_id, leads.c.id > after_id)
        .order_by(leads.c.id)
        .limit(limit)
    )
    if lead_ids is not None:
        q = q.where(leads.c.id.in_(list(lead_ids)))
    return [tuple(r) for r in conn.execute(q).all()]


def apply_scores_txn(conn: Connection, version: int, scored: Sequence[tuple[int, int, str, str, bool]], now: float) -> int:
    """Store (lead id, score, temperature, flags, mql) and promote MQLs: a lead new or
    contacted whose score reached the threshold moves to MQL, unless sales set its stage.
    Returns how many were promoted."""
    if not scored:
        return 0
    conn.execute(
        leads.update().where(leads.c.id == sa.bindparam("b_id")).values(
            score=sa.bindparam("b_score"), temperature=sa.bindparam("b_temp"), score_flags=sa.bindparam("b_flags"),
            scored_version=sa.bindparam("b_version"), scored_at=sa.bindparam("b_at"),
        ),
        [{"b_id": i, "b_score": s, "b_temp": t, "b_flags": f or None, "b_version": version, "b_at": now} for i, s, t, f, _ in scored],
    )
    candidates = [i for i, _, _, _, mql in scored if mql]
    promoted = 0
    for start in range(0, len(candidates), 500):
        ids = candidates[start : start + 500]
        rows = conn.execute(
            sa.select(leads.c.id, leads.c.stage).where(
                leads.c.id.in_(ids), leads.c.stage.in_(("new", "contacted")), leads.c.stage_set_by != "sales"
            )
        ).all()
        if rows:
            conn.execute(leads.update().where(leads.c.id.in_([r.id for r in rows])).values(stage="mql", stage_changed_at=now))
            conn.execute(
                lead_events.insert(),
                [{"lead_id": r.id, "ts": now, "field": "stage", "old": r.stage, "new": "mql", "actor": f"system:scoring:v{version}"} for r in rows],
            )
            promoted += len(rows)
    return promoted
