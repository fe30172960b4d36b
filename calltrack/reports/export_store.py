"""What the exports read (``*_txn``): a period's conversions with their people and clicks, and
a period's leads for a CRM. The rules (which click, what is left out) live in exports.py.

Conversions: the account's leads, not spam, that reached the stage in [since, until) — created
then for ``lead``; for ``mql``/``sql``/``customer`` the first ``lead_events`` stage change into
that stage or a later one. With each: the contact's email and phone, the touchpoint that
created the lead, every touchpoint of the person's visitors (``contact_visitors``) carrying an
ad click id from 90 days before ``since`` to ``until``, the GA fields of the lead's latest form
that had them, and the first call's talk time.

A few statements per chunk of 500 leads, each an indexed look-up: the cost grows with the
conversions of the period, not with the account's history.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from calltrack.db.schema import accounts, calls, contact_visitors, contacts, form_submissions, lead_events, leads, touchpoints
from calltrack.reports.exports import REACHED, Conversion, ExportError, LeadRow, Touch, window_start

CHUNK = 500
GA_CLIENT_FIELDS = ("_ga", "ga_client_id")
GA_SESSION_FIELDS = ("ga_session_id",)
_CLICK_COLUMNS = ("gclid", "gbraid", "wbraid", "msclkid")


def account_settings_txn(conn: Connection, account_id: int) -> tuple[str, str]:
    """(time zone, currency) of the account."""
    row = conn.execute(sa.select(accounts.c.timezone, accounts.c.currency).where(accounts.c.id == account_id)).one_or_none()
    if row is None:
        raise ExportError(f"no account {account_id}")
    return row.timezone, row.currency


def _chunks(items: Sequence[Any]) -> Iterator[Sequence[Any]]:
    for i in range(0, len(items), CHUNK):
        yield items[i : i + CHUNK]


def _touch(ts: Any, *ids: Any) -> Touch:
    return Touch(float(ts), *ids)


def conversions_txn(conn: Connection, account_id: int, stage: str, since: float, until: float) -> list[Conversion]:
    """The period's conversions at ``stage``, oldest first."""
    _, account_currency = account_settings_txn(conn, account_id)
    lt = touchpoints.alias("lt")
    if stage == "lead":
        at = leads.c.created_at
        base = sa.select(leads.c.id.label("lead_id"), at.label("at")).where(
            leads.c.account_id == account_id, leads.c.created_at >= since, leads.c.created_at < until
        )
    else:
        first = sa.func.min(lead_events.c.ts)
        base = (
            sa.select(lead_events.c.lead_id.label("lead_id"), first.label("at"))
            .join(leads, leads.c.id == lead_events.c.lead_id)
            .where(leads.c.account_id == account_id, lead_events.c.field == "stage", lead_events.c.new.in_(REACHED[stage]))
            .group_by(lead_events.c.lead_id)
            .having(sa.and_(first >= since, first < until))
        )
    reached = base.subquery("reached")
    q = (
        sa.select(
            leads.c.id, reached.c.at, leads.c.value, leads.c.currency, leads.c.kind, leads.c.contact_id,
            contacts.c.email, contacts.c.phone, lt.c.ts.label("t_ts"), *[lt.c[k].label(f"t_{k}") for k in _CLICK_COLUMNS],
        )
        .join(reached, reached.c.lead_id == leads.c.id)
        .join(contacts, contacts.c.id == leads.c.contact_id)
        .outerjoin(lt, lt.c.id == leads.c.touchpoint_id)
        .where(leads.c.stage != "spam")
        .order_by(reached.c.at, leads.c.id)
    )
    rows = conn.execute(q).all()
    if not rows:
        return []
    lead_ids = [r.id for r in rows]
    contact_ids = sorted({r.contact_id for r in rows})
    touches = _person_touches(conn, account_id, contact_ids, window_start(since), until)
    ga = _ga_fields(conn, lead_ids)
    durations = _first_call_durations(conn, lead_ids)
    out = []
    for r in rows:
        lead_touch = _touch(r.t_ts, *(getattr(r, f"t_{k}") for k in _CLICK_COLUMNS)) if r.t_ts is not None else None
        client, session = ga.get(r.id, (None, None))
        out.append(
            Conversion(
                lead_id=int(r.id), at=float(r.at), value=r.value, currency=(r.currency or account_currency).upper(), kind=r.kind,
                email=r.email, phone=r.phone, lead_touch=lead_touch, touches=tuple(touches.get(r.contact_id, ())),
                ga_client_id=client, ga_session_id=session, call_duration=durations.get(r.id),
            )
        )
    return out


def _person_touches(conn: Connection, account_id: int, contact_ids: Sequence[int], start: float, until: float) -> dict[int, list[Touch]]:
    t, cv = touchpoints, contact_visitors
    out: dict[int, list[Touch]] = {}
    for chunk in _chunks(contact_ids):
        q = (
            sa.select(cv.c.contact_id, t.c.ts, *[t.c[k] for k in _CLICK_COLUMNS])
            .join(t, sa.and_(t.c.site_id == cv.c.site_id, t.c.vid == cv.c.vid))
            .where(
                cv.c.contact_id.in_(list(chunk)), t.c.account_id == account_id, t.c.ts >= start, t.c.ts < until,
                sa.or_(*[t.c[k].is_not(None) for k in _CLICK_COLUMNS]),
            )
        )
        for r in conn.execute(q):
            out.setdefault(r.contact_id, []).append(_touch(r.ts, *(getattr(r, k) for k in _CLICK_COLUMNS)))
    return out


def _field(fields: dict[str, Any], names: Sequence[str]) -> str | None:
    lowered = {str(k).strip().lower(): v for k, v in fields.items()}
    for name in names:
        value = lowered.get(name)
        if isinstance(value, str) and value.strip():
            return value.strip()
    return None


def _ga_fields(conn: Connection, lead_ids: Sequence[int]) -> dict[int, tuple[str | None, str | None]]:
    """(client id field, session id field) of each lead's latest form that carried a client id."""
    f = form_submissions
    out: dict[int, tuple[str | None, str | None]] = {}
    for chunk in _chunks(lead_ids):
        rows = conn.execute(sa.select(f.c.lead_id, f.c.fields).where(f.c.lead_id.in_(list(chunk))).order_by(f.c.ts, f.c.id)).all()
        for r in rows:
            try:
                fields = json.loads(r.fields)
            except ValueError:
                continue
            if not isinstance(fields, dict):
                continue
            client = _field(fields, GA_CLIENT_FIELDS)
            if client is not None:
                out[r.lead_id] = (client, _field(fields, GA_SESSION_FIELDS))
    return out


def _first_call_durations(conn: Connection, lead_ids: Sequence[int]) -> dict[int, int]:
    c = calls
    out: dict[int, int] = {}
    for chunk in _chunks(lead_ids):
        rows = conn.execute(
            sa.select(c.c.lead_id, c.c.duration).where(c.c.lead_id.in_(list(chunk))).order_by(c.c.started_at.desc(), c.c.id.desc())
        ).all()
        for r in rows:  # newest first: the first call is written last
            if r.duration is not None:
                out[r.lead_id] = int(r.duration)
    return out


def leads_txn(conn: Connection, account_id: int, since: float, until: float) -> list[LeadRow]:
    """The account's leads created in [since, until), spam left out, oldest first; click ids
    and landing page from the touchpoint that created each."""
    _, account_currency = account_settings_txn(conn, account_id)
    t = touchpoints
    q = (
        sa.select(
            leads, contacts.c.name.label("c_name"), contacts.c.phone.label("c_phone"), contacts.c.email.label("c_email"),
            t.c.url.label("t_url"), t.c.gclid, t.c.gbraid, t.c.wbraid, t.c.msclkid, t.c.fbclid,
        )
        .join(contacts, contacts.c.id == leads.c.contact_id)
        .outerjoin(t, t.c.id == leads.c.touchpoint_id)
        .where(leads.c.account_id == account_id, leads.c.created_at >= since, leads.c.created_at < until, leads.c.stage != "spam")
        .order_by(leads.c.created_at, leads.c.id)
    )
    return [
        LeadRow(
            id=int(r.id), created_at=float(r.created_at), stage=r.stage, score=r.score, temperature=r.temperature, owner=r.owner,
            value=r.value, currency=(r.currency or account_currency).upper(), contact_name=r.c_name, contact_phone=r.c_phone,
            contact_email=r.c_email, kind=r.kind, form_type=r.form_type, channel=r.channel, source=r.source, medium=r.medium,
            campaign=r.campaign, keyword=r.keyword, placement=r.placement, landing_page=r.t_url, gclid=r.gclid, gbraid=r.gbraid,
            wbraid=r.wbraid, msclkid=r.msclkid, fbclid=r.fbclid, first_response_at=r.first_response_at, converted_at=r.converted_at,
            loss_reason=r.loss_reason,
        )
        for r in conn.execute(q)
    ]
