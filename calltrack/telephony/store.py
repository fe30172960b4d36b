"""Calls in the database: each delivery stored once, the call's state only moving forward,
the call matched to its source and tied to a person's lead, all in one transaction.

:func:`ingest_batch_txn` is the group-commit entry: a batch of webhook deliveries in one
transaction, so a burst of calls costs one commit. Exactly once rests on two unique keys:
``calls (account_id, provider, call_ref)`` (one row per call, whichever event comes first)
and ``call_events (call_id, event_ref)`` (a retried or duplicated delivery finds its twin and
changes nothing). On PostgreSQL the call row is locked (``FOR UPDATE``) while an event is
applied, so two processes applying two events of one call take turns.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from collections.abc import Sequence
from functools import lru_cache
from types import SimpleNamespace
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from calltrack.db.statements import insert_ignoring_conflicts
from calltrack.db.schema import call_events, caller_blocklist, calls, contacts, leases, pools, sites, telephony_credentials, touchpoints, tracking_numbers
from calltrack.leads import store as leads_store
from calltrack.leads.store import DriverStatement, insert_or_nothing
from calltrack.leads.contacts import Caller
from calltrack.numbers import store as numbers_store
from calltrack.numbers.channels import derive_channel
from calltrack.numbers.matching import NEIGHBOUR_SECONDS, LeaseSpan, Match, PriorMatch, match_call
from calltrack.telephony.events import TERMINAL, CallEvent, later_status

MATCHED_METHODS = ("lease", "expired_lease", "repeat_caller")
SOURCE_COLUMNS = ("channel", "source", "medium", "campaign", "keyword", "placement")


@dataclass(frozen=True)
class LeadRules:
    """The per-account numbers of lead making (see config.LeadsConfig)."""

    repeat_window: float = 30 * 86400
    repeat_caller_window: float = 30 * 86400
    spam_callers_per_lease: int = 3
    spam_short_calls_per_day: int = 3
    spam_short_call_seconds: int = 10


@dataclass(frozen=True)
class Delivery:
    """One verified, parsed webhook delivery, with its numbers read in the account's region."""

    account_id: int
    event: CallEvent
    caller: Caller | None
    called: str | None
    received_at: float
    rules: LeadRules = field(default_factory=LeadRules)


@dataclass(frozen=True)
class CallRecord:
    id: int
    account_id: int
    provider: str
    call_ref: str
    tracking_number: str | None
    number_id: int | None
    site_id: int | None
    caller: str | None
    caller_withheld: bool
    status: str
    started_at: float
    answered_at: float | None
    ended_at: float | None
    duration: int | None
    forwarded_to: str | None
    match_method: str | None
    match_confidence: float | None
    lease_id: int | None
    vid: str | None
    touchpoint_id: int | None
    source: dict[str, Any]
    contact_id: int | None
    lead_id: int | None
    spam_reason: str | None
    details: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "provider": self.provider,
            "call_ref": self.call_ref,
            "tracking_number": self.tracking_number,
            "number_id": self.number_id,
            "site_id": self.site_id,
            "caller": self.caller,
            "caller_withheld": self.caller_withheld,
            "status": self.status,
            "started_at": self.started_at,
            "answered_at": self.answered_at,
            "ended_at": self.ended_at,
            "duration": self.duration,
            "forwarded_to": self.forwarded_to,
            "match": {
                "method": self.match_method,
                "confidence": self.match_confidence,
                "lease_id": self.lease_id,
                "vid": self.vid,
                "touchpoint_id": self.touchpoint_id,
            },
            "source": self.source,
            "contact_id": self.contact_id,
            "lead_id": self.lead_id,
            "spam_reason": self.spam_reason,
            **self.details,
        }


@dataclass(frozen=True)
class Ingested:
    call: CallRecord
    duplicate: bool
    # The caller is on the account's blocklist: the voice answer rejects the call.
    blocked: bool = False
    # This delivery is the one that matched the call (the others of the call say nothing new).
    matched_now: bool = False


# json.dumps with options builds an encoder per call; these are built once.
_encode_payload = json.JSONEncoder(ensure_ascii=False, sort_keys=True).encode
_encode_explain = json.JSONEncoder(sort_keys=True).encode

_DETAIL_COLUMNS = ("caller_name", "caller_city", "caller_region", "caller_country", "direction", "recording_url", "recording_duration")


def _record(r: Any) -> CallRecord:
    """A call from its row (a dict, or a Row)."""
    m = r if isinstance(r, dict) else r._mapping
    return CallRecord(
        m["id"], m["account_id"], m["provider"], m["call_ref"], m["tracking_number"], m["number_id"], m["site_id"], m["caller"],
        bool(m["caller_withheld"]), m["status"], m["started_at"], m["answered_at"], m["ended_at"], m["duration"], m["forwarded_to"],
        m["match_method"], m["match_confidence"], m["lease_id"], m["vid"], m["touchpoint_id"],
        {k: m[k] for k in SOURCE_COLUMNS}, m["contact_id"], m["lead_id"], m["spam_reason"],
        {k: m[k] for k in _DETAIL_COLUMNS},
    )


# -- ingesting -------------------------------------------------------------------------------


def ingest_batch_txn(conn: Connection, deliveries: list[Delivery]) -> list[Ingested]:
    """Apply a batch of deliveries in the order they arrived: a person's calls must be applied
    in time order (the first opens the lead and sets its source). Two PostgreSQL batches that
    lock the same call rows in another order may deadlock; the loser is retried whole by
    DBPool (db/pool.py), and exactly-once holds either way."""
    follow_ups: dict[int, tuple[bool, bool]] = {}  # per account, asked once per batch (see attach_to_lead_txn)
    return [ingest_txn(conn, d, follow_ups=follow_ups) for d in deliveries]


def ingest_txn(conn: Connection, d: Delivery, *, follow_ups: dict[int, tuple[bool, bool]] | None = None) -> Ingested:
    ev = d.event
    row = _call_row(conn, d)
    event_id = _INSERT_EVENT.scalar(
        conn,
        dict(
            call_id=row["id"], event_ref=ev.event_ref, kind=ev.kind, status=ev.status, occurred_at=ev.occurred_at,
            received_at=d.received_at, payload=_encode_payload(ev.to_json()),
        ),
    )
    if event_id is None:  # a retry or a duplicate: it changed nothing the first time round
        return Ingested(_record(row), duplicate=True, blocked=row["spam_reason"] == "blocklisted")

    changes = _merge(row, d)
    current = row | changes
    blocked = False
    if (
        current["match_method"] is not None
        and "started_at" in changes
        and current["lead_id"] is None
        and current["match_method"] != "static"
    ):
        current["match_method"] = None  # the call began earlier than first thought: match again at its real start
    dialled_unreadable = d.event.called_raw is not None and d.called is None
    if current["match_method"] is None and (current["tracking_number"] is not None or dialled_unreadable):
        match_changes, blocked = _match(conn, d, current)
        changes.update(match_changes)
        current.update(match_changes)
    if current["lead_id"] is None and current["match_method"] is not None:
        changes.update(_to_lead(conn, d, current, follow_ups))
        current.update(changes)
    if current["lead_id"] is not None and current["answered_at"] is not None and ("answered_at" in changes or "lead_id" in changes):
        leads_store.note_response_txn(conn, current["lead_id"], current["answered_at"])
    if ev.status in TERMINAL and current["lead_id"] is not None and current["caller"]:
        _check_short_calls(conn, d, current)
    if changes:
        changes["updated_at"] = d.received_at
        current["updated_at"] = d.received_at
        _update_call(tuple(sorted(changes))).run(conn, {"b_" + k: v for k, v in changes.items()} | {"b_call_id": row["id"]})
    return Ingested(
        _record(current), duplicate=False, blocked=blocked or current["spam_reason"] == "blocklisted", matched_now="match_method" in changes
    )


_CALL_COLUMNS = tuple(c.name for c in calls.c)
_NEW_CALL_COLUMNS = ("account_id", "provider", "call_ref", "status", "started_at", "direction", "caller_withheld", "created_at", "updated_at")
_INSERT_CALL = insert_or_nothing(calls, _NEW_CALL_COLUMNS, conflict=("account_id", "provider", "call_ref"), returning="id")
_INSERT_EVENT = insert_or_nothing(
    call_events, ("call_id", "event_ref", "kind", "status", "occurred_at", "received_at", "payload"), conflict=("call_id", "event_ref"), returning="id"
)


def _call_row(conn: Connection, d: Delivery) -> dict[str, Any]:
    """The call's row, created by whichever of its events arrives first; locked on PostgreSQL.

    The insert comes first: for the first event of a call (the common case) that is the only
    statement; a later event finds the key taken and reads (and on PostgreSQL locks) the row.
    """
    ev = d.event
    values = dict(
        account_id=d.account_id, provider=ev.provider, call_ref=ev.call_ref, status=ev.status or "queued",
        started_at=_start_time(ev, d.received_at) or d.received_at, direction=ev.direction[:16],
        caller_withheld=False, created_at=d.received_at, updated_at=d.received_at,
    )
    new_id = _INSERT_CALL.scalar(conn, values)
    if new_id is not None:
        return dict.fromkeys(_CALL_COLUMNS) | values | {"id": new_id}
    select = sa.select(calls).where(calls.c.account_id == d.account_id, calls.c.provider == ev.provider, calls.c.call_ref == ev.call_ref)
    if conn.dialect.name == "postgresql":
        select = select.with_for_update()
    return dict(conn.execute(select).one()._mapping)


def _start_time(ev: CallEvent, received_at: float) -> float | None:
    """When the call began, as far as this event tells; a completion that came first
    (with no start of its own) tells it from its end and its duration."""
    if ev.started_at is not None:
        return ev.started_at
    if ev.kind in ("started", "ringing"):
        return ev.occurred_at or received_at
    end = ev.ended_at or (ev.occurred_at if ev.kind == "completed" else None)
    if end is not None and ev.duration is not None:
        return end - ev.duration
    return None


def _merge(row: dict[str, Any], d: Delivery) -> dict[str, Any]:
    """What this event adds to the call: status forward only, times and details filled in."""
    ev = d.event
    changes: dict[str, Any] = {}
    start = _start_time(ev, d.received_at)
    if start is not None and start < row["started_at"]:
        changes["started_at"] = start
    answered = ev.answered_at or ((ev.occurred_at or d.received_at) if ev.kind == "answered" else None)
    if answered is not None and (row["answered_at"] is None or answered < row["answered_at"]):
        changes["answered_at"] = answered
    ended = ev.ended_at or ((ev.occurred_at or d.received_at) if ev.kind == "completed" else None)
    if ended is not None and (row["ended_at"] is None or ended > row["ended_at"]):
        changes["ended_at"] = ended  # the call ends when its last leg does
    if ev.duration is not None and (row["duration"] is None or ev.duration > row["duration"]):
        changes["duration"] = ev.duration
    if ev.recording_url and not row["recording_url"]:
        changes["recording_url"] = ev.recording_url
        changes["recording_duration"] = ev.recording_duration
    if d.caller is not None and row["caller"] is None and not row["caller_withheld"]:
        changes["caller"] = d.caller.e164
        changes["caller_withheld"] = d.caller.withheld
    if d.called is not None and row["tracking_number"] is None:
        changes["tracking_number"] = d.called
    for col, value in (
        ("caller_name", ev.caller_name),
        ("caller_city", ev.caller_city),
        ("caller_region", ev.caller_region),
        ("caller_country", (ev.caller_country or "")[:2] or None),
    ):
        if value and row[col] is None:
            changes[col] = value[:200]
    merged = row | changes
    if merged["answered_at"] is None and merged["duration"] and merged["ended_at"] is not None:
        # Talk time and an end (a PBX's billsec, a CDR, the forwarded leg) tell when it was answered.
        changes["answered_at"] = merged["answered_at"] = merged["ended_at"] - merged["duration"]
    answered = merged["answered_at"] is not None or bool(merged["duration"])
    status = later_status(row["status"], ev.status, answered=answered)
    if status != row["status"]:
        changes["status"] = merged["status"] = status
    # Talk time from the times when the provider sent none (Telnyx, some PBXs).
    if merged["status"] in TERMINAL and merged["duration"] is None and merged["answered_at"] and merged["ended_at"]:
        changes["duration"] = max(0, int(round(merged["ended_at"] - merged["answered_at"])))
    return changes


def _match(conn: Connection, d: Delivery, call: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    """Tie the call to its source; also where it is forwarded, and whether it is spam."""
    at = call["started_at"]
    sources: dict[int, dict[str, Any]] = {}
    if call["tracking_number"]:
        dialled, known = _dialled_and_caller(conn, d.account_id, call["tracking_number"], call["caller"])
    else:
        dialled, known = _Dialled(None), _known_caller(conn, d.account_id, call["caller"])
    m: Match
    forward_to = dialled.forward_to
    if dialled.kind == "static" and dialled.number_id is not None:
        m = match_call(call_at=at, number_kind="static", static_source=dialled.static_source)
    elif dialled.kind == "pool" and dialled.number_id is not None:
        cooldown = dialled.cooldown
        found, sources = _lease_spans(conn, dialled.number_id, at - max(cooldown, NEIGHBOUR_SECONDS), at + NEIGHBOUR_SECONDS)
        spans = [LeaseSpan(*span) for span in found]
        # Only a caller we already know can have called before (every matched caller with a
        # number becomes a contact): a new caller costs no look-up.
        prior = _prior_match(conn, d, call, dialled.number_id, at) if known.contact_id is not None else None
        m = match_call(call_at=at, number_kind="pool", pool_cooldown=cooldown, spans=spans, prior=prior)
    elif dialled.kind == "overflow" and dialled.pool_id is not None:
        m = match_call(call_at=at, number_kind="overflow", overflow_channel=dialled.overflow_channel, overflow_pool_id=dialled.pool_id)
    else:
        m = match_call(call_at=at, number_kind=None)
    site_id = dialled.site_id
    source = dict.fromkeys(SOURCE_COLUMNS) | {k: v for k, v in m.source.items() if k in SOURCE_COLUMNS}
    if m.touchpoint_id is not None:
        tp = sources.get(m.touchpoint_id) or numbers_store.touchpoint_source_txn(conn, m.touchpoint_id)
        if tp is not None:
            site_id = tp.pop("site_id")
            source.update(tp)
    if forward_to is None:
        forward_to = _site_forward_to(conn, d.account_id, site_id)
    changes: dict[str, Any] = {
        "number_id": dialled.number_id,
        "pool_id": dialled.pool_id,
        "site_id": site_id,
        "match_method": m.method,
        "match_confidence": m.confidence,
        "lease_id": m.lease_id,
        "vid": m.vid,
        "touchpoint_id": m.touchpoint_id,
        "forwarded_to": forward_to,
        "explain": _encode_explain(m.explain),
        **source,
    }
    changes["contact_id"] = known.contact_id
    blocked = False
    if known.blocked:
        changes["spam_reason"] = "blocklisted"
        blocked = True
    elif m.lease_id is not None and m.method in ("lease", "expired_lease"):
        others = _OTHER_CALLERS_ON_LEASE.scalar(conn, {"lease_id": m.lease_id, "caller": call["caller"] or ""})
        if others >= d.rules.spam_callers_per_lease:
            changes["spam_reason"] = "many_callers_on_lease"
    return changes, blocked


@dataclass(frozen=True)
class _Dialled:
    """What the dialled number is to the account, as matching needs it (see
    numbers.store.dialled_number_txn): 'static', 'pool', 'overflow' or None."""

    kind: str | None
    number_id: int | None = None
    forward_to: str | None = None
    pool_id: int | None = None
    site_id: int | None = None
    cooldown: float = 0.0
    static_source: dict[str, str | None] = field(default_factory=dict)
    overflow_channel: str | None = None


# The tracking number and its pool's few columns matching reads, in one statement, run on the
# driver: a pool's rules are only parsed for an overflow number, which is not found here.
_DIALLED_COLUMNS = (
    tracking_numbers.c.id, tracking_numbers.c.kind, tracking_numbers.c.forward_to, tracking_numbers.c.source,
    tracking_numbers.c.medium, tracking_numbers.c.campaign, tracking_numbers.c.keyword, tracking_numbers.c.placement,
    pools.c.id, pools.c.site_id, pools.c.cooldown_seconds,
)
_DIALLED_SELECT = (
    sa.select(*_DIALLED_COLUMNS)
    .outerjoin(pools, pools.c.id == tracking_numbers.c.pool_id)
    .where(tracking_numbers.c.e164 == sa.bindparam("e164"), tracking_numbers.c.account_id == sa.bindparam("account_id"))
)
_DIALLED = DriverStatement(_DIALLED_SELECT)


def _dialled(conn: Connection, account_id: int, e164: str) -> _Dialled:
    r = _DIALLED.first(conn, {"e164": e164, "account_id": account_id})
    return _dialled_number(r) if r is not None else _not_a_number(conn, account_id, e164)


def _dialled_number(r: Sequence[Any]) -> _Dialled:
    """A _Dialled from the columns of _DIALLED_COLUMNS."""
    number_id, kind, forward_to, source, medium, campaign, keyword, placement, pool_id, site_id, cooldown = r
    if kind == "static":
        tags = SimpleNamespace(source=source, medium=medium, campaign=campaign, keyword=keyword, placement=placement)
        return _Dialled(kind, number_id, forward_to, static_source=_static_source(tags))
    if kind == "pool" and pool_id is not None:
        return _Dialled(kind, number_id, forward_to, pool_id, site_id, float(cooldown))
    return _Dialled(kind, number_id, forward_to)


def _not_a_number(conn: Connection, account_id: int, e164: str) -> _Dialled:
    """Not one of the account's numbers: perhaps a pool's overflow number (rare; the long way)."""
    overflow = numbers_store.dialled_number_txn(conn, account_id, e164)
    if overflow.kind == "overflow" and overflow.pool is not None:
        return _Dialled("overflow", pool_id=overflow.pool.id, site_id=overflow.pool.site_id, overflow_channel=_pool_channel(overflow.pool))
    return _Dialled(None)


# numbers.store.lease_spans_txn's statement, run on the driver: the number's leases
# overlapping [since, until] with their touchpoints' source (tests/telephony check the two agree).
_LEASE_END = sa.func.coalesce(leases.c.ended_at, leases.c.expires_at)
_LEASE_SPANS = DriverStatement(
    sa.select(
        leases.c.id, leases.c.vid, leases.c.touchpoint_id, leases.c.started_at, _LEASE_END, leases.c.ended_at,
        touchpoints.c.channel, touchpoints.c.utm_source, touchpoints.c.utm_medium, touchpoints.c.utm_campaign, touchpoints.c.utm_term,
        touchpoints.c.site_id,
    )
    .outerjoin(touchpoints, touchpoints.c.id == leases.c.touchpoint_id)
    .where(leases.c.number_id == sa.bindparam("number_id"), leases.c.started_at <= sa.bindparam("until"), _LEASE_END >= sa.bindparam("since"))
    .order_by(leases.c.started_at)
    .limit(200)
)


def _lease_spans(conn: Connection, number_id: int, since: float, until: float) -> tuple[list[tuple[Any, ...]], dict[int, dict[str, Any]]]:
    """(id, vid, touchpoint_id, started_at, until, open) of each lease, and each lease's
    touchpoint source by touchpoint id, as numbers.store.lease_spans_txn returns them."""
    spans: list[tuple[Any, ...]] = []
    sources: dict[int, dict[str, Any]] = {}
    for lease_id, vid, tp_id, started, ends, ended, channel, source, medium, campaign, keyword, site_id in _LEASE_SPANS.all(
        conn, {"number_id": number_id, "since": since, "until": until}
    ):
        spans.append((lease_id, vid, tp_id, float(started), float(ends), ended is None))
        if tp_id is not None and site_id is not None:
            sources[tp_id] = {"channel": channel, "source": source, "medium": medium, "campaign": campaign, "keyword": keyword, "site_id": site_id}
    return spans, sources


def _static_source(number: Any) -> dict[str, str | None]:
    channel = "offline" if number.placement else derive_channel(utm_source=number.source, utm_medium=number.medium)
    if channel == "direct":
        channel = "offline"  # a static number with no tags stands for an offline ad
    return {
        "channel": channel, "source": number.source, "medium": number.medium, "campaign": number.campaign,
        "keyword": number.keyword, "placement": number.placement,
    }


def _pool_channel(pool: Any) -> str | None:
    for key, values in pool.rules.conditions:
        if key == "channel" and len(values) == 1:
            return str(next(iter(values)))
    return None


# The hot path's statements are built and compiled once, and run on the driver's cursor:
# SQLAlchemy's own work per execution costs more than SQLite's (see leads.store.DriverStatement).
_PRIOR_MATCH = DriverStatement(
    sa.select(calls.c.id, calls.c.started_at, calls.c.match_method, calls.c.match_confidence, calls.c.lease_id, calls.c.vid, calls.c.touchpoint_id)
    .where(
        calls.c.account_id == sa.bindparam("account_id"),
        calls.c.caller == sa.bindparam("caller"),
        calls.c.number_id == sa.bindparam("number_id"),
        calls.c.started_at >= sa.bindparam("since"),
        calls.c.started_at <= sa.bindparam("at"),
        calls.c.id != sa.bindparam("call_id"),
        # Spelled out: an IN list is an expanding parameter, which DriverStatement cannot run.
        sa.or_(*[calls.c.match_method == method for method in MATCHED_METHODS]),
    )
    .order_by(calls.c.started_at.desc())
    .limit(1)
)
_OTHER_CALLERS_ON_LEASE = DriverStatement(
    sa.select(sa.func.count(sa.distinct(calls.c.caller))).where(
        calls.c.lease_id == sa.bindparam("lease_id"), calls.c.caller.is_not(None), calls.c.caller != sa.bindparam("caller")
    )
)
_KNOWN_CALLER_COLUMNS = (
    sa.select(sa.func.coalesce(contacts.c.merged_into, contacts.c.id))
    .where(contacts.c.account_id == sa.bindparam("account_id"), contacts.c.phone == sa.bindparam("caller"))
    .scalar_subquery(),
    sa.exists().where(caller_blocklist.c.account_id == sa.bindparam("account_id"), caller_blocklist.c.phone == sa.bindparam("caller")),
)
_KNOWN_CALLER = DriverStatement(sa.select(*_KNOWN_CALLER_COLUMNS))


# The dialled number and what we know of the caller, in one statement (a call to one of our
# numbers is the common case; for any other the two are asked apart).
_DIALLED_AND_CALLER = DriverStatement(
    sa.select(*_DIALLED_COLUMNS, *_KNOWN_CALLER_COLUMNS)
    .outerjoin(pools, pools.c.id == tracking_numbers.c.pool_id)
    .where(tracking_numbers.c.e164 == sa.bindparam("e164"), tracking_numbers.c.account_id == sa.bindparam("account_id"))
)


def _dialled_and_caller(conn: Connection, account_id: int, e164: str, caller: str | None) -> tuple[_Dialled, _Known]:
    r = _DIALLED_AND_CALLER.first(conn, {"e164": e164, "account_id": account_id, "caller": caller})
    if r is None:
        return _not_a_number(conn, account_id, e164), _known_caller(conn, account_id, caller)
    # With no caller the subqueries compare with NULL and find nothing: an unknown, unblocked caller.
    return _dialled_number(r[: len(_DIALLED_COLUMNS)]), _Known(r[-2], bool(r[-1]))


@lru_cache(maxsize=256)
def _update_call(columns: tuple[str, ...]) -> DriverStatement:
    return DriverStatement(calls.update().where(calls.c.id == sa.bindparam("b_call_id")).values({c: sa.bindparam("b_" + c) for c in columns}))


def _prior_match(conn: Connection, d: Delivery, call: dict[str, Any], number_id: int, at: float) -> PriorMatch | None:
    r = _PRIOR_MATCH.first(
        conn,
        {
            "account_id": d.account_id, "caller": call["caller"], "number_id": number_id,
            "since": at - d.rules.repeat_caller_window, "at": at, "call_id": call["id"],
        },
    )
    if r is None:
        return None
    call_id, started_at, method, confidence, lease_id, vid, touchpoint_id = r
    return PriorMatch(call_id, started_at, method, confidence or 0.0, lease_id, vid, touchpoint_id)


@dataclass(frozen=True)
class _Known:
    contact_id: int | None = None
    blocked: bool = False


def _known_caller(conn: Connection, account_id: int, caller: str | None) -> _Known:
    """Whether the caller is already a contact, and whether they are blocked (one statement)."""
    if not caller:
        return _Known()
    row = _KNOWN_CALLER.first(conn, {"account_id": account_id, "caller": caller})
    assert row is not None  # a select of two scalars always has its row
    return _Known(row[0], bool(row[1]))


_SITES_FORWARD_TO = sa.select(sites.c.forward_to).where(sites.c.account_id == sa.bindparam("account_id")).order_by(sites.c.id).limit(1)
_FIRST_SITE_FORWARD_TO = DriverStatement(_SITES_FORWARD_TO)
_SITE_FORWARD_TO = DriverStatement(_SITES_FORWARD_TO.where(sites.c.id == sa.bindparam("site_id")))


def _site_forward_to(conn: Connection, account_id: int, site_id: int | None) -> str | None:
    """Where a call with no forwarding of its own goes: its site's, else the account's first."""
    if site_id is None:
        return _FIRST_SITE_FORWARD_TO.scalar(conn, {"account_id": account_id})  # type: ignore[no-any-return]
    return _SITE_FORWARD_TO.scalar(conn, {"account_id": account_id, "site_id": site_id})  # type: ignore[no-any-return]


_INSERT_CONTACT = insert_or_nothing(contacts, ("account_id", "phone", "email", "name", "created_at", "updated_at"), returning="id")


def _to_lead(conn: Connection, d: Delivery, call: dict[str, Any], follow_ups: dict[int, tuple[bool, bool]] | None = None) -> dict[str, Any]:
    """A call from a known person makes or joins their lead; a withheld caller whose visitor
    is already a known person joins that person's lead; otherwise it stays interest."""
    at = call["started_at"]
    contact_id: int | None = None
    new_contact = False
    if call["caller"] and call.get("contact_id") is not None:
        contact_id = call["contact_id"]
    elif call["caller"]:
        # Not a contact a moment ago (_known_caller): insert straight away; a racing delivery
        # that made the contact meanwhile sends us the long way round.
        contact_id = _INSERT_CONTACT.scalar(
            conn, dict(account_id=d.account_id, phone=call["caller"], email=None, name=call.get("caller_name"), created_at=at, updated_at=at)
        )
        new_contact = contact_id is not None
        if contact_id is None:
            contact_id = leads_store.find_or_create_contact_txn(
                conn, d.account_id, phone=call["caller"], email=None, name=call.get("caller_name"), now=at
            )
    elif call["vid"] and call["site_id"]:
        contact_id = leads_store.contact_for_visitor_txn(conn, call["site_id"], call["vid"])
    if contact_id is None:
        return {}
    snapshot = {k: call[k] for k in leads_store.LEAD_SOURCE_FIELDS if k in call}
    link = leads_store.attach_to_lead_txn(
        conn, d.account_id, contact_id, at=at, kind="call", repeat_window=d.rules.repeat_window,
        site_id=call["site_id"], snapshot=snapshot, spam_reason=call.get("spam_reason"), new_contact=new_contact,
        region=call.get("caller_region"), country=call.get("caller_country"), follow_ups=follow_ups,
    )
    if call["vid"] and call["site_id"] and call["caller"]:
        leads_store.link_visitor_txn(conn, contact_id, call["site_id"], call["vid"], at)
        leads_store.adopt_interest_txn(conn, d.account_id, link, call["site_id"], call["vid"], exclude_call=call["id"])
    return {"contact_id": link.contact_id, "lead_id": link.lead_id}


def _check_short_calls(conn: Connection, d: Delivery, call: dict[str, Any]) -> None:
    """Very short answered calls repeated by one caller within a day make their lead spam,
    unless a real conversation (a call at least that long) happened on it. Missed calls never
    count: a person ringing again and again while nobody picks up is a lead we failed."""
    limit = d.rules.spam_short_call_seconds
    answered = sa.or_(calls.c.answered_at.is_not(None), calls.c.duration > 0)
    short = sa.and_(answered, sa.func.coalesce(calls.c.duration, 0) < limit)
    count = conn.execute(
        sa.select(sa.func.count()).where(
            calls.c.account_id == d.account_id,
            calls.c.caller == call["caller"],
            calls.c.started_at >= call["started_at"] - 86400,
            calls.c.status.in_(sorted(TERMINAL)),
            short,
            calls.c.id != call["id"],
        )
    ).scalar_one()
    this_short = (call["answered_at"] is not None or bool(call["duration"])) and (call["duration"] or 0) < limit
    if not this_short or count + 1 < d.rules.spam_short_calls_per_day:
        return
    real = conn.execute(
        sa.select(calls.c.id).where(calls.c.lead_id == call["lead_id"], calls.c.duration >= limit).limit(1)
    ).first()
    if real is None:
        leads_store.mark_lead_spam_txn(conn, call["lead_id"], "short_repeated_calls", now=d.received_at)


# -- reading ---------------------------------------------------------------------------------


def get_call_txn(conn: Connection, account_id: int, call_id: int) -> tuple[CallRecord, dict[str, Any], list[dict[str, Any]]] | None:
    """The call, its explain record and its deliveries in order of arrival."""
    row = conn.execute(sa.select(calls).where(calls.c.id == call_id, calls.c.account_id == account_id)).one_or_none()
    if row is None:
        return None
    events = conn.execute(
        sa.select(call_events.c.event_ref, call_events.c.kind, call_events.c.status, call_events.c.occurred_at, call_events.c.received_at)
        .where(call_events.c.call_id == call_id)
        .order_by(call_events.c.id)
    ).all()
    return (
        _record(row),
        json.loads(row.explain) if row.explain else {},
        [dict(e._mapping) for e in events],
    )


def list_calls_txn(
    conn: Connection, account_id: int, *, since: float | None = None, until: float | None = None, lead_id: int | None = None,
    before_id: int | None = None, limit: int = 100,
) -> list[CallRecord]:
    q = sa.select(calls).where(calls.c.account_id == account_id)
    if since is not None:
        q = q.where(calls.c.started_at >= since)
    if until is not None:
        q = q.where(calls.c.started_at < until)
    if lead_id is not None:
        q = q.where(calls.c.lead_id == lead_id)
        return [_record(r) for r in conn.execute(q.order_by(calls.c.started_at, calls.c.id).limit(limit)).all()]
    if before_id is not None:
        q = q.where(calls.c.id < before_id)
    return [_record(r) for r in conn.execute(q.order_by(calls.c.id.desc()).limit(limit)).all()]


# -- credentials and blocklist ---------------------------------------------------------------


@dataclass(frozen=True)
class Credential:
    id: int
    account_id: int
    provider: str
    provider_account: str | None
    secret: str
    record_calls: bool


def add_credential_txn(
    conn: Connection, account_id: int, *, provider: str, provider_account: str | None, secret: str, record_calls: bool, now: float
) -> Credential:
    cred_id = conn.execute(
        telephony_credentials.insert()
        .values(account_id=account_id, provider=provider, provider_account=provider_account, secret=secret, record_calls=record_calls, created_at=now)
        .returning(telephony_credentials.c.id)
    ).scalar_one()
    return Credential(cred_id, account_id, provider, provider_account, secret, record_calls)


def active_credentials_txn(conn: Connection) -> list[Credential]:
    rows = conn.execute(
        sa.select(telephony_credentials).where(telephony_credentials.c.revoked_at.is_(None)).order_by(telephony_credentials.c.id)
    ).all()
    return [Credential(r.id, r.account_id, r.provider, r.provider_account, r.secret, bool(r.record_calls)) for r in rows]


def revoke_credential_txn(conn: Connection, account_id: int, cred_id: int, now: float) -> bool:
    result = conn.execute(
        telephony_credentials.update()
        .where(telephony_credentials.c.id == cred_id, telephony_credentials.c.account_id == account_id, telephony_credentials.c.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    return bool(result.rowcount)


def block_caller_txn(conn: Connection, account_id: int, phone: str, reason: str, now: float) -> int:
    """Block a caller: their later calls are rejected, and their leads become spam now.
    Returns how many leads were marked."""
    insert_ignoring_conflicts(
        conn, caller_blocklist, dict(account_id=account_id, phone=phone, reason=reason, created_at=now), conflict=("account_id", "phone")
    )
    contact_id = conn.execute(
        sa.select(contacts.c.id).where(contacts.c.account_id == account_id, contacts.c.phone == phone)
    ).scalar_one_or_none()
    if contact_id is None:
        return 0
    lead_ids = conn.execute(sa.select(leads_store.leads.c.id).where(leads_store.leads.c.contact_id == contact_id)).scalars().all()
    for lead_id in lead_ids:
        leads_store.mark_lead_spam_txn(conn, lead_id, "blocklisted", now=now)
    return len(lead_ids)


def account_of_number_txn(conn: Connection, e164: str) -> int | None:
    """The account a dialled number (tracking or overflow) belongs to, to find its secrets."""
    dialled = conn.execute(
        sa.select(numbers_store.tracking_numbers.c.account_id).where(numbers_store.tracking_numbers.c.e164 == e164)
    ).scalar_one_or_none()
    if dialled is not None:
        return int(dialled)
    pool_account = conn.execute(
        sa.select(numbers_store.pools.c.account_id).where(numbers_store.pools.c.overflow_number == e164).limit(1)
    ).scalar_one_or_none()
    return None if pool_account is None else int(pool_account)


def accounts_with_call_txn(conn: Connection, provider: str, call_refs: list[str]) -> list[int]:
    """The accounts holding a call with one of these provider ids."""
    rows = conn.execute(
        sa.select(sa.distinct(calls.c.account_id)).where(calls.c.provider == provider, calls.c.call_ref.in_(call_refs[:10]))
    ).scalars().all()
    return [int(r) for r in rows]
