"""Rule versions, lead facts and scores in the database: ``*_txn`` functions."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from calltrack.db.schema import accounts, calls, contact_visitors, form_submissions, lead_events, leads, scoring_rules, touchpoints, tracking_numbers
from calltrack.leads import outbox_store

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
    """What the rules look at, one tuple per lead (FACT_QUERY_COLUMNS), by id order.

    A chunk of leads first, then one grouped query each for their calls, forms and the
    touchpoints of their people, bounded by the chunk's id range (indexed), joined here: a
    correlated sub-query per lead and fact would read the tables once per lead."""
    l2 = leads.alias("earlier")
    q = (
        sa.select(
            leads.c.id, leads.c.created_at, leads.c.kind, leads.c.channel, leads.c.source, leads.c.medium, leads.c.campaign,
            leads.c.form_type, tracking_numbers.c.e164, leads.c.contact_id,
            ~sa.exists().where(l2.c.contact_id == leads.c.contact_id, l2.c.created_at < leads.c.created_at),
        )
        .outerjoin(tracking_numbers, tracking_numbers.c.id == leads.c.number_id)
        # account_id + 0: walk the primary key from after_id; SQLite would otherwise pick the
        # (account_id, created_at) index, read every lead of the account and sort each chunk.
        .where((leads.c.account_id + 0) == account_id, leads.c.id > after_id)
        .order_by(leads.c.id)
        .limit(limit)
    )
    if lead_ids is not None:
        q = q.where(leads.c.id.in_(list(lead_ids)))
    chunk = _fetch(conn, q)
    if not chunk:
        return []
    lo, hi = chunk[0][0], chunk[-1][0]
    in_chunk = lambda col: sa.and_(col >= lo, col <= hi)  # noqa: E731
    call_facts = {
        r[0]: (r[1], bool(r[2]))
        for r in _fetch(conn, 
            sa.select(
                calls.c.lead_id,
                sa.func.max(sa.func.coalesce(calls.c.duration, 0)).label("duration"),
                sa.func.max(sa.case((sa.or_(calls.c.answered_at.is_not(None), calls.c.duration > 0), 1), else_=0)).label("answered"),
            )
            .where(in_chunk(calls.c.lead_id))
            .group_by(calls.c.lead_id)
        )
    }
    f = form_submissions.c
    present = lambda col: sa.func.max(sa.case((col.is_not(None), 1), else_=0))  # noqa: E731
    form_facts = {
        r[0]: tuple(bool(v) for v in r[1:])
        for r in _fetch(conn, 
            sa.select(f.lead_id, present(f.phone), present(f.email), present(f.name), present(f.company), present(f.message))
            .where(in_chunk(f.lead_id))
            .group_by(f.lead_id)
        )
    }
    chunk_contacts = sa.select(leads.c.contact_id).where(in_chunk(leads.c.id), (leads.c.account_id + 0) == account_id)
    touch_facts = {
        r[0]: (int(r[1]), int(r[2]), bool(r[3]))
        for r in _fetch(conn, 
            sa.select(
                contact_visitors.c.contact_id,
                sa.func.count().label("touches"),
                sa.func.count(sa.distinct(touchpoints.c.url)).label("pages"),
                sa.func.max(sa.case((touchpoints.c.url.like("%pricing%"), 1), else_=0)).label("pricing"),
            )
            .join(touchpoints, sa.and_(touchpoints.c.site_id == contact_visitors.c.site_id, touchpoints.c.vid == contact_visitors.c.vid))
            .where(contact_visitors.c.contact_id.in_(chunk_contacts))
            .group_by(contact_visitors.c.contact_id)
        )
    }
    no_call, no_touch, no_form = (0, False), (0, 0, False), (False,) * 5
    return [
        (*r[:9], *(call_facts.get(r[0]) or no_call), bool(r[10]), *(touch_facts.get(r[9]) or no_touch), *(form_facts.get(r[0]) or no_form))
        for r in chunk
    ]


def _fetch(conn: Connection, stmt: Any) -> list[tuple[Any, ...]]:
    """Rows as plain tuples straight from the driver: a backfill reads a million rows, and
    SQLAlchemy's Row objects cost more than the query. Safe only for statements whose bound
    values are our own integers (ids, limits), which become literals here."""
    sql = str(stmt.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True}))
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(sql)
        return cursor.fetchall()
    finally:
        cursor.close()


def unscored_leads_txn(conn: Connection, since: float) -> list[tuple[int, int]]:
    """(account id, lead id) of the leads created since ``since`` that were never scored."""
    q = (
        sa.select(leads.c.account_id, leads.c.id)
        .where(leads.c.scored_at.is_(None), leads.c.created_at >= since)
        .order_by(leads.c.account_id, leads.c.id)
    )
    return [(int(a), int(i)) for a, i in conn.execute(q)]


def apply_scores_txn(conn: Connection, version: int, scored: Sequence[tuple[int, int, str, str, bool]], now: float) -> int:
    """Store (lead id, score, temperature, flags, mql) and promote MQLs: a lead new or
    contacted whose score reached the threshold moves to MQL, unless sales set its stage.
    Returns how many were promoted."""
    if not scored:
        return 0
    # The driver's executemany straight away: SQLAlchemy's per-row parameter processing
    # would cost more than the updates themselves on a million leads.
    mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.executemany(
            f"UPDATE leads SET score = {mark}, temperature = {mark}, score_flags = {mark}, scored_version = {mark}, scored_at = {mark} WHERE id = {mark}",
            [(int(s), t, f or None, version, now, int(i)) for i, s, t, f, _ in scored],
        )
    finally:
        cursor.close()
    candidates = [i for i, _, _, _, mql in scored if mql]
    promoted = 0
    for start in range(0, len(candidates), 500):
        ids = candidates[start : start + 500]
        rows = conn.execute(
            sa.select(leads.c.id, leads.c.account_id, leads.c.stage).where(
                leads.c.id.in_(ids), leads.c.stage.in_(("new", "contacted")), leads.c.stage_set_by != "sales"
            )
        ).all()
        if rows:
            conn.execute(leads.update().where(leads.c.id.in_([r.id for r in rows])).values(stage="mql", stage_changed_at=now))
            conn.execute(
                lead_events.insert(),
                [{"lead_id": r.id, "ts": now, "field": "stage", "old": r.stage, "new": "mql", "actor": f"system:scoring:v{version}"} for r in rows],
            )
            outbox_store.stage_moves_txn(conn, [(r.account_id, r.id, r.stage, "mql") for r in rows], at=now, actor=f"system:scoring:v{version}")
            promoted += len(rows)
    return promoted
