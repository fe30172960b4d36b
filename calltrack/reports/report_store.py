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


OPS_LEAD_COLUMNS = ("lead_id", "created_at", "owner", "channel", "source", "stage", "spam_reason", "loss_reason", "first_response_at", "kind")
MISSED_COLUMNS = ("call_id", "ts", "caller", "channel", "source", "lead_id", "called_back")


def ops_leads_txn(conn: Connection, account_id: int, since: float, until: float) -> list[tuple[Any, ...]]:
    """Leads created in the period, spam included (its reasons are ranked), for the
    operations report."""
    le = leads.c
    q = sa.select(le.id, le.created_at, le.owner, le.channel, le.source, le.stage, le.spam_reason, le.loss_reason, le.first_response_at, le.kind).where(
        le.account_id == int(account_id), le.created_at >= float(since), le.created_at < float(until)
    )
    return _stream(conn, q, None)


def missed_calls_txn(conn: Connection, account_id: int, since: float, until: float) -> list[tuple[Any, ...]]:
    """Inbound calls of the period nobody answered, from a known caller, each with whether the
    person was reached afterwards: a later answered call with them, or their lead's first
    response at or after the missed call."""
    c = calls.c
    later = calls.alias("later")
    answered_later = (
        sa.select(sa.literal(1))
        .where(later.c.account_id == c.account_id, later.c.caller == c.caller, later.c.started_at > c.started_at,
               sa.or_(later.c.answered_at.is_not(None), later.c.duration > 0))
        .exists()
    )
    responded = sa.and_(leads.c.first_response_at.is_not(None), leads.c.first_response_at >= c.started_at)
    called_back = sa.case((sa.or_(answered_later, responded), 1), else_=0)
    q = (
        sa.select(c.id, c.started_at, c.caller, c.channel, c.source, c.lead_id, called_back)
        .select_from(calls)
        .outerjoin(leads, leads.c.id == c.lead_id)
        .where(c.account_id == int(account_id), c.started_at >= float(since), c.started_at < float(until), c.caller.is_not(None),
               c.answered_at.is_(None), sa.func.coalesce(c.duration, 0) == 0, c.spam_reason.is_(None), c.direction == "inbound",
               c.status.in_(("no-answer", "busy", "failed", "canceled")))
    )
    return _stream(conn, q, None)


def paid_history_txn(conn: Connection, account_id: int, first: str, last: str, since: float, until: float) -> dict[str, float]:
    """What planning starts from: the period's paid clicks and spend (cost rows), and the leads,
    qualified leads and customers of the sources that had spend."""
    from calltrack.db.schema import ad_costs

    a = ad_costs.c
    clicks, cost = conn.execute(
        sa.select(sa.func.coalesce(sa.func.sum(a.clicks), 0), sa.func.coalesce(sa.func.sum(a.cost), 0.0)).where(
            a.account_id == account_id, a.day >= first, a.day <= last
        )
    ).one()
    sources = [r[0] for r in conn.execute(sa.select(a.source).where(a.account_id == account_id, a.day >= first, a.day <= last).distinct())]
    le = leads.c
    paid = sa.func.lower(le.source).in_(sources) if sources else sa.false()
    from calltrack.db.schema import lead_events

    was_qualified = (
        sa.select(sa.literal(1))
        .where(lead_events.c.lead_id == le.id, lead_events.c.field == "stage", lead_events.c.new.in_(("mql", "sql", "customer")))
        .exists()
    )
    n, qualified, customers = conn.execute(
        sa.select(
            sa.func.count(),
            sa.func.coalesce(sa.func.sum(sa.case((sa.or_(le.stage.in_(("mql", "sql", "customer")), was_qualified), 1), else_=0)), 0),
            sa.func.coalesce(sa.func.sum(sa.case((le.stage == "customer", 1), else_=0)), 0),
        ).where(le.account_id == account_id, le.created_at >= since, le.created_at < until, le.stage != "spam", paid)
    ).one()
    return {"clicks": float(clicks), "cost": float(cost), "leads": float(n), "qualified": float(qualified), "customers": float(customers)}
