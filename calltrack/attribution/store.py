"""What attribution reads from the database: one account's touches and conversions (``*_txn``).

Touches:

- every touchpoint (a visit that brought something new: a session, tags, a click id, an outside
  referrer), whose person is the contact its visitor id is joined to, or else the anonymous
  visitor (a non-converting journey, which the data-driven models need);
- every call that is its own touch: to a static number (a billboard, a print ad — the number
  is the source), or one we could not tie to a visit (overflow, unmatched). A call matched to a
  visitor's lease is not a touch of its own: the visit that showed the number is.

Conversions: the account's leads (spam left out) reaching a stage — ``lead`` when created,
``mql``, ``sql`` or ``customer`` when the lead first entered that stage or a later one (from
the lead's history, so a lead now lost still counts as the MQL it was) — with the lead's value.

Rows are read straight from the driver in chunks (a year of history is millions of rows);
``on_rows`` hears each chunk's size, for a progress bar.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from calltrack.db.schema import calls, contact_visitors, lead_events, leads, touchpoints, tracking_numbers

STAGES = ("lead", "mql", "sql", "customer")
# Stages that count as having reached each conversion stage.
REACHED = {"mql": ("mql", "sql", "customer"), "sql": ("sql", "customer"), "customer": ("customer",)}

WEB_TOUCH_COLUMNS = ("touch_id", "site_id", "vid", "contact_id", "ts", "channel", "source", "medium", "campaign", "keyword", "url", "referrer")
CALL_TOUCH_COLUMNS = ("touch_id", "contact_id", "ts", "channel", "source", "medium", "campaign", "keyword", "tracking_number", "placement")
LEAD_COLUMNS = ("lead_id", "contact_id", "created_at", "value", "touchpoint_id", "converted_at", "channel")
STAGE_TIME_COLUMNS = ("lead_id", "stage", "first_at")

CHUNK = 100_000


def _stream(conn: Connection, stmt: Any, on_rows: Callable[[int], None] | None) -> list[tuple[Any, ...]]:
    """Plain tuples from the driver, fetched in chunks. The statement's bound values are our own
    numbers (ids, times), rendered as literals."""
    sql = str(stmt.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True}))
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    out: list[tuple[Any, ...]] = []
    try:
        cursor.execute(sql)
        while True:
            chunk = cursor.fetchmany(CHUNK)
            if not chunk:
                return out
            out.extend(chunk)
            if on_rows is not None:
                on_rows(len(chunk))
    finally:
        cursor.close()


def web_touches_txn(
    conn: Connection, account_id: int, since: float, until: float, *, on_rows: Callable[[int], None] | None = None
) -> list[tuple[Any, ...]]:
    t = touchpoints
    q = (
        sa.select(t.c.id, t.c.site_id, t.c.vid, contact_visitors.c.contact_id, t.c.ts, t.c.channel, t.c.utm_source, t.c.utm_medium,
                  t.c.utm_campaign, t.c.utm_term, t.c.url, t.c.referrer)
        .outerjoin(contact_visitors, sa.and_(contact_visitors.c.site_id == t.c.site_id, contact_visitors.c.vid == t.c.vid))
        .where(t.c.account_id == int(account_id), t.c.ts >= float(since), t.c.ts < float(until))
    )
    return _stream(conn, q, on_rows)


def call_touches_txn(
    conn: Connection, account_id: int, since: float, until: float, *, on_rows: Callable[[int], None] | None = None
) -> list[tuple[Any, ...]]:
    c = calls
    q = (
        sa.select(c.c.id, c.c.contact_id, c.c.started_at, c.c.channel, c.c.source, c.c.medium, c.c.campaign, c.c.keyword,
                  c.c.tracking_number, c.c.placement)
        .outerjoin(tracking_numbers, tracking_numbers.c.id == c.c.number_id)
        .where(
            c.c.account_id == int(account_id), c.c.started_at >= float(since), c.c.started_at < float(until),
            c.c.contact_id.is_not(None), c.c.spam_reason.is_(None),
            sa.or_(tracking_numbers.c.kind == "static", c.c.match_method.in_(("overflow", "unmatched")), c.c.number_id.is_(None)),
        )
    )
    return _stream(conn, q, on_rows)


def leads_txn(conn: Connection, account_id: int, until: float) -> list[tuple[Any, ...]]:
    """Leads created before ``until`` and not spam."""
    q = sa.select(
        leads.c.id, leads.c.contact_id, leads.c.created_at, leads.c.value, leads.c.touchpoint_id, leads.c.converted_at, leads.c.channel
    ).where(leads.c.account_id == int(account_id), leads.c.created_at < float(until), leads.c.stage != "spam")
    return _stream(conn, q, None)


def stage_times_txn(conn: Connection, account_id: int, until: float) -> list[tuple[Any, ...]]:
    """(lead id, stage, first time the lead entered it) from the history."""
    e = lead_events
    q = (
        sa.select(e.c.lead_id, e.c.new, sa.func.min(e.c.ts))
        .join(leads, leads.c.id == e.c.lead_id)
        .where(leads.c.account_id == int(account_id), e.c.field == "stage", e.c.new.in_(("mql", "sql", "customer")), e.c.ts < float(until))
        .group_by(e.c.lead_id, e.c.new)
    )
    return _stream(conn, q, None)
