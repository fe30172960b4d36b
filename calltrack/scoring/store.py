"""Rule versions, lead facts and scores in the database: ``*_txn`` functions."""

from __future__ import annotations

import json
from collections.abc import Collection, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from calltrack.db.schema import accounts, calls, contact_visitors, form_submissions, lead_events, leads, scoring_rules, touchpoints, tracking_numbers
from calltrack.leads import outbox_store
from calltrack.scoring.frames import FactPart, FactRows, Scores
from calltrack.scoring.rules import FACT_COLUMNS

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


def lead_facts_txn(
    conn: Connection, account_id: int, facts: Collection[str] = FACT_COLUMNS, *, lead_ids: Sequence[int] | None = None, after_id: int = 0, limit: int = 50_000
) -> FactRows:
    """The ``facts`` (columns of FACT_COLUMNS) of a chunk of leads by id order: of ``lead_ids``,
    or of the first ``limit`` leads after ``after_id``.

    A chunk of leads first, then one grouped query each for their calls, forms and the
    touchpoints of their people, bounded by the chunk's id range (indexed) or its ids, and
    joined by frames.facts_frame: a correlated sub-query per lead and fact would read the tables
    once per lead. Only the facts asked for are read: a query nobody needs is not run."""
    wanted = set(facts)
    unknown = wanted - set(FACT_COLUMNS)
    if unknown:
        raise ValueError(f"unknown facts {sorted(unknown)}")
    earlier = leads.alias("earlier")
    lead_facts = {
        "created_at": leads.c.created_at,
        "kind": leads.c.kind, "channel": leads.c.channel, "source": leads.c.source, "medium": leads.c.medium,
        "campaign": leads.c.campaign, "form_type": leads.c.form_type, "tracking_number": tracking_numbers.c.e164,
        "first_time_caller": ~sa.exists().where(earlier.c.contact_id == leads.c.contact_id, earlier.c.created_at < leads.c.created_at),
    }
    columns = tuple(name for name in FACT_COLUMNS if name in wanted and name in lead_facts)
    q = (
        sa.select(leads.c.id, leads.c.contact_id, *(lead_facts[name] for name in columns))
        # account_id + 0: walk the primary key from after_id; SQLite would otherwise pick the
        # (account_id, created_at) index, read every lead of the account and sort each chunk.
        .where((leads.c.account_id + 0) == account_id, leads.c.id > after_id)
        .order_by(leads.c.id)
        .limit(limit)
    )
    if "tracking_number" in columns:
        q = q.outerjoin_from(leads, tracking_numbers, tracking_numbers.c.id == leads.c.number_id)
    if lead_ids is not None:
        q = q.where(leads.c.id.in_(list(lead_ids)))
    chunk = _fetch(conn, q)
    if not chunk:
        return FactRows(columns, [])
    if lead_ids is None:
        lo, hi = chunk[0][0], chunk[-1][0]
        in_chunk = lambda col: sa.and_(col >= lo, col <= hi)  # noqa: E731
    else:  # a few dirty leads may lie far apart: their ids, not the range between them
        chunk_ids = [r[0] for r in chunk]
        in_chunk = lambda col: col.in_(chunk_ids)  # noqa: E731
    flag = lambda condition: sa.func.max(sa.case((condition, 1), else_=0))  # noqa: E731
    parts = []
    call_facts = {
        "duration": sa.func.max(sa.func.coalesce(calls.c.duration, 0)),
        "answered": flag(sa.or_(calls.c.answered_at.is_not(None), calls.c.duration > 0)),
    }
    if names := tuple(n for n in FACT_COLUMNS if n in wanted and n in call_facts):
        rows = _fetch(conn, sa.select(calls.c.lead_id, *(call_facts[n] for n in names)).where(in_chunk(calls.c.lead_id)).group_by(calls.c.lead_id))
        parts.append(FactPart("id", names, rows))
    f = form_submissions.c
    form_facts = {"has_phone": flag(f.phone.is_not(None)), "has_email": flag(f.email.is_not(None)), "has_name": flag(f.name.is_not(None)),
                  "has_company": flag(f.company.is_not(None)), "has_message": flag(f.message.is_not(None))}
    if names := tuple(n for n in FACT_COLUMNS if n in wanted and n in form_facts):
        rows = _fetch(conn, sa.select(f.lead_id, *(form_facts[n] for n in names)).where(in_chunk(f.lead_id)).group_by(f.lead_id))
        parts.append(FactPart("id", names, rows))
    touch_facts = {
        "touchpoints": sa.func.count(),
        "pages_viewed": sa.func.count(sa.distinct(touchpoints.c.url)),
        "pricing_page": flag(touchpoints.c.url.like("%pricing%")),
    }
    if names := tuple(n for n in FACT_COLUMNS if n in wanted and n in touch_facts):
        chunk_contacts = sa.select(leads.c.contact_id).where(in_chunk(leads.c.id), (leads.c.account_id + 0) == account_id)
        rows = _fetch(conn,
            sa.select(contact_visitors.c.contact_id, *(touch_facts[n] for n in names))
            .join(touchpoints, sa.and_(touchpoints.c.site_id == contact_visitors.c.site_id, touchpoints.c.vid == contact_visitors.c.vid))
            .where(contact_visitors.c.contact_id.in_(chunk_contacts))
            .group_by(contact_visitors.c.contact_id)
        )
        parts.append(FactPart("contact_id", names, rows))
    return FactRows(columns, chunk, tuple(parts))


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


def apply_scores_txn(conn: Connection, version: int, scores: Scores, now: float) -> int:
    """Store the scores and promote MQLs: a lead new or contacted whose score reached the
    threshold moves to MQL, unless sales set its stage. Returns how many were promoted."""
    if not scores:
        return 0
    # The driver's executemany straight away: SQLAlchemy's per-row parameter processing
    # would cost more than the updates themselves on a million leads. The version and the time
    # are the same for every row, so they are literals (our own int and float), and the rows are
    # zipped from the score columns as they are: binding two more values per row and building
    # each row in Python took a quarter to a half of the writing on SQLite.
    mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.executemany(
            f"UPDATE leads SET score = {mark}, temperature = {mark}, score_flags = NULLIF({mark}, ''), "
            f"scored_version = {int(version)}, scored_at = {float(now)!r} WHERE id = {mark}",
            list(zip(scores.score, scores.temperature, scores.flags, scores.ids, strict=True)),
        )
    finally:
        cursor.close()
    candidates = [i for i, mql in zip(scores.ids, scores.mql, strict=True) if mql]
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
