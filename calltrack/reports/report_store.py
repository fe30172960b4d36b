"""What the campaign report reads: one account's visits, calls, forms and leads of a period
(``*_txn``; rows as plain tuples, the frames are built in reports/service.py).

Each row carries its source columns as stored (a visit's utm tags and referrer; a call's and a
lead's source snapshot with the landing page and referrer of the visit it was matched to; a
form the source of its visitor's latest visit at or before it) so that
``attribution.levels.add_levels`` names them all the same way.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from calltrack.attribution.store import _stream
from calltrack.db.schema import calls, form_submissions, leads, touchpoints, tracking_numbers

TOUCH_COLUMNS = ("ts", "channel", "source", "medium", "campaign", "keyword", "url", "referrer")
CALL_COLUMNS = ("ts", "caller", "answered", "channel", "source", "medium", "campaign", "keyword", "tracking_number", "url", "referrer")
FORM_COLUMNS = ("ts", "channel", "source", "medium", "campaign", "keyword", "url", "referrer")
LEAD_COLUMNS = ("lead_id", "ts", "stage", "value", "channel", "source", "medium", "campaign", "keyword", "tracking_number", "url", "referrer")


def touches_txn(conn: Connection, account_id: int, since: float, until: float) -> list[tuple[Any, ...]]:
    t = touchpoints.c
    q = sa.select(t.ts, t.channel, t.utm_source, t.utm_medium, t.utm_campaign, t.utm_term, t.url, t.referrer).where(
        t.account_id == int(account_id), t.ts >= float(since), t.ts < float(until)
    )
    return _stream(conn, q, None)


def calls_txn(conn: Connection, account_id: int, since: float, until: float) -> list[tuple[Any, ...]]:
    """Inbound calls of the period, spam left out."""
    c = calls.c
    answered = sa.case((sa.or_(c.answered_at.is_not(None), c.duration > 0), 1), else_=0)
    q = (
        sa.select(c.started_at, c.caller, answered, c.channel, c.source, c.medium, c.campaign, c.keyword, c.tracking_number,
                  touchpoints.c.url, touchpoints.c.referrer)
        .outerjoin(touchpoints, touchpoints.c.id == c.touchpoint_id)
        .where(c.account_id == int(account_id), c.started_at >= float(since), c.started_at < float(until), c.spam_reason.is_(None),
               c.direction == "inbound")
    )
    return _stream(conn, q, None)


def first_calls_txn(conn: Connection, account_id: int, until: float) -> dict[str, float]:
    """Each caller's first call ever (before ``until``): a call is first-time if it is that."""
    c = calls.c
    rows = conn.execute(
        sa.select(c.caller, sa.func.min(c.started_at)).where(c.account_id == account_id, c.caller.is_not(None), c.started_at < until).group_by(c.caller)
    ).all()
    return {r[0]: float(r[1]) for r in rows}


def forms_txn(conn: Connection, account_id: int, since: float, until: float) -> list[tuple[Any, ...]]:
    """Form submissions of the period, with the source of the visitor's latest visit at or
    before the submission (indexed: site, visitor, time)."""
    f = form_submissions.c
    t = touchpoints.alias("t")
    latest = (
        sa.select(touchpoints.c.id)
        .where(touchpoints.c.site_id == f.site_id, touchpoints.c.vid == f.vid, touchpoints.c.ts <= f.ts)
        .order_by(touchpoints.c.ts.desc())
        .limit(1)
        .scalar_subquery()
    )
    q = (
        sa.select(f.ts, t.c.channel, t.c.utm_source, t.c.utm_medium, t.c.utm_campaign, t.c.utm_term, t.c.url, t.c.referrer)
        .select_from(form_submissions)
        .outerjoin(t, t.c.id == latest)
        .where(f.account_id == int(account_id), f.ts >= float(since), f.ts < float(until))
    )
    return _stream(conn, q, None)


def leads_txn(conn: Connection, account_id: int, since: float, until: float) -> list[tuple[Any, ...]]:
    """Leads created in the period, spam left out, with their source snapshot."""
    le = leads.c
    q = (
        sa.select(le.id, le.created_at, le.stage, le.value, le.channel, le.source, le.medium, le.campaign, le.keyword,
                  tracking_numbers.c.e164, touchpoints.c.url, touchpoints.c.referrer)
        .outerjoin(tracking_numbers, tracking_numbers.c.id == le.number_id)
        .outerjoin(touchpoints, touchpoints.c.id == le.touchpoint_id)
        .where(le.account_id == int(account_id), le.created_at >= float(since), le.created_at < float(until), le.stage != "spam")
    )
    return _stream(conn, q, None)
