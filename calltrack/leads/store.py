"""Form submissions in the database: ``*_txn`` functions."""

from __future__ import annotations

import hashlib
import json
import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from calltrack.db.schema import accounts, calls, contact_visitors, contacts, form_submissions, lead_events, lead_webhooks, leads, owners
from calltrack.db.statements import insert_ignoring_conflicts
from calltrack.leads import outbox_store, owner_store
from calltrack.numbers import store as numbers_store
from calltrack.scoring.stages import RESPONDED_STAGES, TRANSITIONS, InvalidOutcome, bant_stage, check_transition, read_bant


# -- statements run on the driver's own cursor ------------------------------------------------


@dataclass(frozen=True)
class _Compiled:
    sql: str
    pick: Callable[[dict[str, Any]], tuple[Any, ...]] | None  # positional drivers: the values in order
    defaults: dict[str, Any]
    processors: tuple[tuple[str, Callable[[Any], Any]], ...]


class DriverStatement:
    """A Core statement compiled once per dialect and run on the driver's own cursor.

    On the call-ingest path SQLAlchemy's work per execution (cache look-up, parameter and
    result set-up: some 60 µs) costs more than SQLite takes to run a statement, and a call
    runs a dozen of them. This skips it, and reads rows as plain tuples in the statement's
    column order. The statement must have no expanding ``IN`` parameter (a list is rendered
    per execution); bind processors (floats, booleans) are applied as SQLAlchemy would, and
    nothing is converted on the way back, so it suits integer, float and string columns.

    Driver errors come up as the driver's own exceptions (DBPool retries its
    OperationalError, which covers SQLite's "database is locked" and PostgreSQL deadlocks).
    """

    __slots__ = ("_stmt", "_column_keys", "_compiled")

    def __init__(self, stmt: Any, column_keys: Sequence[str] | None = None) -> None:
        self._stmt = stmt
        self._column_keys = list(column_keys) if column_keys is not None else None
        self._compiled: dict[str, _Compiled] = {}

    def _for(self, dialect: Any) -> _Compiled:
        found = self._compiled.get(dialect.name)
        if found is None:
            compiled = self._stmt.compile(dialect=dialect, column_keys=self._column_keys)
            if "POSTCOMPILE" in compiled.string:
                raise TypeError("DriverStatement cannot run a statement with an expanding IN parameter")
            defaults = {k: v for k, v in compiled.construct_params(_check=False).items() if v is not None}
            order = list(compiled.positiontup) if compiled.positional else None  # type: ignore[arg-type]
            # Positional drivers (SQLite) get a tuple in the statement's order, built in C.
            pick = None if order is None else (lambda values, get=operator.itemgetter(*order): get(values)) if len(order) > 1 else (
                (lambda values, name=order[0]: (values[name],)) if order else (lambda values: ())
            )
            found = _Compiled(compiled.string, pick, defaults, tuple(compiled._bind_processors.items()))
            self._compiled[dialect.name] = found
        return found

    def cursor(self, conn: Connection, params: dict[str, Any] | None = None) -> Any:
        """The driver's cursor, the statement executed; the caller reads and closes it."""
        c = self._compiled.get(conn.dialect.name) or self._for(conn.dialect)
        if c.defaults:
            values = {**c.defaults, **params} if params else dict(c.defaults)
        else:
            values = params if params is not None else {}
        if c.processors:
            if values is params:
                values = dict(params)  # the caller's dict stays as it was
            for name, process in c.processors:
                if name in values:
                    values[name] = process(values[name])
        cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
        try:
            cursor.execute(c.sql, values if c.pick is None else c.pick(values))
        except BaseException:
            cursor.close()
            raise
        return cursor

    def first(self, conn: Connection, params: dict[str, Any] | None = None) -> tuple[Any, ...] | None:
        """The first row, as a tuple, or None."""
        cursor = self.cursor(conn, params)
        try:
            return cursor.fetchone()  # type: ignore[no-any-return]
        finally:
            cursor.close()

    def scalar(self, conn: Connection, params: dict[str, Any] | None = None) -> Any:
        """The first column of the first row, or None when there is no row."""
        row = self.first(conn, params)
        return None if row is None else row[0]

    def all(self, conn: Connection, params: dict[str, Any] | None = None) -> list[tuple[Any, ...]]:
        cursor = self.cursor(conn, params)
        try:
            return list(cursor.fetchall())
        finally:
            cursor.close()

    def run(self, conn: Connection, params: dict[str, Any] | None = None) -> int:
        """Execute; the number of rows changed."""
        cursor = self.cursor(conn, params)
        try:
            return int(cursor.rowcount)
        finally:
            cursor.close()


def insert_or_nothing(table: sa.Table, columns: Sequence[str], *, conflict: Sequence[str] = (), returning: str | None = None) -> DriverStatement:
    """``INSERT … ON CONFLICT [(conflict)] DO NOTHING [RETURNING returning]`` of these columns,
    bound by column name: one form for SQLite (3.35+) and PostgreSQL."""
    target = f" ({', '.join(conflict)})" if conflict else ""
    sql = (
        f"INSERT INTO {table.name} ({', '.join(columns)}) VALUES ({', '.join(':' + c for c in columns)})"
        f" ON CONFLICT{target} DO NOTHING" + (f" RETURNING {returning}" if returning else "")
    )
    return DriverStatement(sa.text(sql).bindparams(*[sa.bindparam(c, type_=table.c[c].type) for c in columns]))


@dataclass(frozen=True)
class FormSubmission:
    id: int
    site_id: int
    client_ref: str
    vid: str | None
    sid: str | None
    ts: float
    url: str | None
    fields: dict[str, str]
    email: str | None
    phone: str | None
    name: str | None
    company: str | None = None
    message: str | None = None
    form_type: str | None = None
    contact_id: int | None = None
    lead_id: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id, "site_id": self.site_id, "vid": self.vid, "sid": self.sid, "ts": self.ts, "url": self.url,
            "form_type": self.form_type, "fields": self.fields, "email": self.email, "phone": self.phone,
            "name": self.name, "company": self.company, "message": self.message, "contact_id": self.contact_id,
            "lead_id": self.lead_id,
        }


def _submission(r: Any) -> FormSubmission:
    return FormSubmission(
        r.id, r.site_id, r.client_ref, r.vid, r.sid, r.ts, r.url, json.loads(r.fields), r.email, r.phone, r.name,
        r.company, r.message, r.form_type, r.contact_id, r.lead_id,
    )


def add_submission_txn(conn: Connection, values: dict[str, Any]) -> tuple[FormSubmission, bool]:
    """Store a submission once per (site, client_ref): (the stored one, whether it is new).

    INSERT … ON CONFLICT DO NOTHING: two deliveries of the same submission racing in two
    transactions both succeed, one storing it and the other finding it.
    """
    row = dict(values, fields=json.dumps(values["fields"], ensure_ascii=False, sort_keys=True))
    new_id = insert_ignoring_conflicts(conn, form_submissions, row, conflict=("site_id", "client_ref"), returning="id")
    stored = conn.execute(
        sa.select(form_submissions).where(
            form_submissions.c.site_id == values["site_id"], form_submissions.c.client_ref == values["client_ref"]
        )
    ).one()
    return _submission(stored), new_id is not None


def list_submissions_txn(conn: Connection, account_id: int, *, limit: int = 100) -> list[FormSubmission]:
    rows = conn.execute(
        sa.select(form_submissions)
        .where(form_submissions.c.account_id == account_id)
        .order_by(form_submissions.c.id.desc())
        .limit(limit)
    ).all()
    return [_submission(r) for r in rows]


# -- contacts and leads ----------------------------------------------------------------------

LEAD_SOURCE_FIELDS = ("match_method", "channel", "source", "medium", "campaign", "keyword", "placement", "number_id", "touchpoint_id", "vid")


@dataclass(frozen=True)
class LeadLink:
    """Where a call or form landed: its contact and lead (None for anonymous interest)."""

    contact_id: int | None
    lead_id: int | None
    new_lead: bool = False


def _lock(conn: Connection, *parts: Any) -> None:
    """PostgreSQL: serialise work on one person across processes until commit. SQLite has
    one writer, so it needs nothing."""
    if conn.dialect.name == "postgresql":
        digest = hashlib.blake2b(repr(parts).encode(), digest_size=8).digest()
        _ADVISORY_LOCK.run(conn, {"k": int.from_bytes(digest, "big", signed=True)})


_ADVISORY_LOCK = DriverStatement(sa.text("SELECT pg_advisory_xact_lock(:k)"))


def find_or_create_contact_txn(
    conn: Connection,
    account_id: int,
    *,
    phone: str | None,
    email: str | None,
    name: str | None,
    now: float,
    created: bool = False,
    hint: int | None = None,
) -> Any:
    """The person with this phone or email (or ``hint``: the contact the visitor id already
    belongs to), created when new; fills in what the stored contact lacks. When the phone,
    the email and the visitor name different contacts, they are one person: the others are
    merged into the oldest. Safe under racing deliveries (ON CONFLICT DO NOTHING).

    Returns its id, or with ``created`` (id, whether this call created it)."""
    assert phone or email or hint
    for key in sorted(str(k) for k in (phone, email) if k):  # every key, in one order: no deadlock
        _lock(conn, "contact", account_id, key)
    found: dict[int, Any] = {}
    for col, value in ((contacts.c.phone, phone), (contacts.c.email, email), (contacts.c.id, hint)):
        if value is not None:
            row = conn.execute(sa.select(contacts).where(contacts.c.account_id == account_id, col == value)).one_or_none()
            while row is not None and row.merged_into is not None:  # a merged contact stands for the one it joined
                row = conn.execute(sa.select(contacts).where(contacts.c.id == row.merged_into)).one_or_none()
            if row is not None:
                found.setdefault(row.id, row)
    if not found:
        new_id = insert_ignoring_conflicts(
            conn, contacts, dict(account_id=account_id, phone=phone, email=email, name=name, created_at=now, updated_at=now), returning="id"
        )
        if new_id is not None:
            return (int(new_id), True) if created else int(new_id)
        return find_or_create_contact_txn(conn, account_id, phone=phone, email=email, name=name, now=now, created=created)
    keep = found[min(found)]
    current = {"phone": keep.phone, "email": keep.email, "name": keep.name}
    for other in (found[i] for i in sorted(found) if i != keep.id):
        moved = [key for key in ("phone", "email") if current[key] is None and getattr(other, key) is not None]
        _merge_contact(conn, other.id, keep.id, now, moved)
        for key in (*moved, "name"):
            if current[key] is None and getattr(other, key) is not None:
                current[key] = getattr(other, key)
    if phone and current["phone"] is None and not _taken(conn, account_id, contacts.c.phone, phone):
        current["phone"] = phone
    if email and current["email"] is None and not _taken(conn, account_id, contacts.c.email, email):
        current["email"] = email
    if name and current["name"] is None:
        current["name"] = name
    changes = {k: v for k, v in current.items() if v != getattr(keep, k)}
    if changes:
        conn.execute(contacts.update().where(contacts.c.id == keep.id).values(updated_at=now, **changes))
    return (int(keep.id), False) if created else int(keep.id)


def _merge_contact(conn: Connection, other: int, keep: int, now: float, moved: list[str]) -> None:
    """Everything of ``other`` now belongs to ``keep``. The phone or email ``keep`` lacks moves
    over (freed first: each is unique in the account); a second phone or email stays on the
    merged row, whose ``merged_into`` every look-up follows, so the person never splits again.
    Its leads stay leads, with their history."""
    for table in (leads, calls, form_submissions, contact_visitors):
        conn.execute(table.update().where(table.c.contact_id == other).values(contact_id=keep))
    conn.execute(contacts.update().where(contacts.c.merged_into == other).values(merged_into=keep))
    conn.execute(contacts.update().where(contacts.c.id == other).values(merged_into=keep, updated_at=now, **dict.fromkeys(moved)))


def _taken(conn: Connection, account_id: int, col: Any, value: str) -> bool:
    return conn.execute(sa.select(contacts.c.id).where(contacts.c.account_id == account_id, col == value)).first() is not None


def contact_for_visitor_txn(conn: Connection, site_id: int, vid: str) -> int | None:
    return conn.execute(
        sa.select(contact_visitors.c.contact_id).where(contact_visitors.c.site_id == site_id, contact_visitors.c.vid == vid)
    ).scalar_one_or_none()


def link_visitor_txn(conn: Connection, contact_id: int, site_id: int, vid: str, now: float) -> None:
    _LINK_VISITOR.run(conn, dict(contact_id=contact_id, site_id=site_id, vid=vid, linked_at=now))


_LINK_VISITOR = insert_or_nothing(contact_visitors, ("contact_id", "site_id", "vid", "linked_at"), conflict=("site_id", "vid"))


def attach_to_lead_txn(
    conn: Connection,
    account_id: int,
    contact_id: int,
    *,
    at: float,
    kind: str,
    repeat_window: float,
    site_id: int | None = None,
    form_type: str | None = None,
    snapshot: dict[str, Any] | None = None,
    spam_reason: str | None = None,
    new_contact: bool = False,
    region: str | None = None,
    country: str | None = None,
    follow_ups: dict[int, tuple[bool, bool]] | None = None,
) -> LeadLink:
    """Join the contact's open lead (last activity within ``repeat_window``, or a customer),
    or open a new one with this touch's source snapshot. A contact made in this very
    transaction has no lead yet: ``new_contact`` skips the look-up.

    ``follow_ups``: a dict the caller keeps for one transaction (a batch of calls), in which
    whether each account has an active manager and lead webhook is asked once, not per lead."""
    _lock(conn, "lead", contact_id)
    open_lead = None if new_contact else _OPEN_LEAD.scalar(conn, {"contact_id": contact_id, "since": at - repeat_window})
    if open_lead is not None:
        if spam_reason is None:  # a spam touch is tied to the person but counts for nothing
            _JOIN_LEAD.run(conn, {"b_lead_id": open_lead, "b_at": at})
        elif spam_reason == "blocklisted":
            mark_lead_spam_txn(conn, int(open_lead), spam_reason, now=at)
        return LeadLink(contact_id, int(open_lead), False)
    row = dict.fromkeys(LEAD_SOURCE_FIELDS) | {k: v for k, v in (snapshot or {}).items() if k in LEAD_SOURCE_FIELDS}
    row.update(
        account_id=account_id, contact_id=contact_id, site_id=site_id, kind=kind, form_type=form_type,
        stage="spam" if spam_reason else "new", spam_reason=spam_reason, created_at=at, last_activity_at=at, touches=1,
    )
    lead_id = _NEW_LEAD.scalar(conn, row)
    if spam_reason is None:
        known = follow_ups.get(account_id) if follow_ups is not None else None
        if known is None:
            asked = _FOLLOW_UPS.first(conn, {"account_id": account_id})
            assert asked is not None  # a select of two EXISTS always has its row
            known = (bool(asked[0]), bool(asked[1]))
            if follow_ups is not None:
                follow_ups[account_id] = known
        has_managers, has_webhooks = known
        if has_managers:
            facts = {k: row[k] for k in ("channel", "source", "medium", "campaign", "kind", "form_type")} | {"region": region, "country": country}
            owner_store.assign_owner_txn(conn, account_id, int(lead_id), facts, at)
        if has_webhooks:
            outbox_store.lead_created_txn(conn, account_id, int(lead_id), at)  # a CRM wants no spam
    return LeadLink(contact_id, int(lead_id), True)


# Built and compiled once, run on the driver: the call-ingest path makes and joins leads.
_OPEN_LEAD = DriverStatement(
    sa.select(leads.c.id, leads.c.last_activity_at)
    .where(
        leads.c.contact_id == sa.bindparam("contact_id"),
        sa.or_(leads.c.last_activity_at >= sa.bindparam("since"), leads.c.stage == "customer"),
    )
    .order_by(leads.c.last_activity_at.desc())
    .limit(1)
)
_JOIN_LEAD = DriverStatement(
    leads.update()
    .where(leads.c.id == sa.bindparam("b_lead_id"))
    .values(
        touches=leads.c.touches + 1,
        # A late delivery of an older touch must not move the activity back.
        last_activity_at=sa.case((leads.c.last_activity_at > sa.bindparam("b_at"), leads.c.last_activity_at), else_=sa.bindparam("b_at")),
    )
)
_NEW_LEAD_COLUMNS = (
    *LEAD_SOURCE_FIELDS, "account_id", "contact_id", "site_id", "kind", "form_type", "stage", "spam_reason", "created_at", "last_activity_at",
    "touches",
)
_NEW_LEAD = DriverStatement(leads.insert().returning(leads.c.id), column_keys=_NEW_LEAD_COLUMNS)
# Whether the account has an active manager, and an active lead webhook, at all. Many have
# neither; then assigning an owner and queueing lead.created (each a few statements run by
# SQLAlchemy) would do nothing, and this one cheap statement stands for both.
_FOLLOW_UPS = DriverStatement(
    sa.select(
        sa.exists().where(owners.c.account_id == sa.bindparam("account_id"), owners.c.active.is_(True)),
        sa.exists().where(lead_webhooks.c.account_id == sa.bindparam("account_id"), lead_webhooks.c.active.is_(True)),
    )
)


_ADOPT_INTEREST = DriverStatement(
    calls.update()
    .where(
        calls.c.account_id == sa.bindparam("b_account_id"), calls.c.site_id == sa.bindparam("b_site_id"),
        calls.c.vid == sa.bindparam("b_vid"), calls.c.lead_id.is_(None), calls.c.id != sa.bindparam("b_exclude"),
    )
    .values(lead_id=sa.bindparam("b_lead_id"), contact_id=sa.bindparam("b_contact_id"))
)


def adopt_interest_txn(conn: Connection, account_id: int, link: LeadLink, site_id: int, vid: str, *, exclude_call: int = 0) -> int:
    """Earlier anonymous calls of this visitor join the lead now that the person is known
    (``exclude_call``: the call being tied to the lead right now, counted already)."""
    adopted = _ADOPT_INTEREST.run(
        conn,
        {"b_account_id": account_id, "b_site_id": site_id, "b_vid": vid, "b_lead_id": link.lead_id, "b_contact_id": link.contact_id,
         "b_exclude": exclude_call},
    )
    if adopted > 0 and link.lead_id is not None:
        conn.execute(leads.update().where(leads.c.id == link.lead_id).values(touches=leads.c.touches + adopted))
    return max(adopted, 0)


def set_form_link_txn(conn: Connection, form_id: int, link: LeadLink) -> None:
    conn.execute(form_submissions.update().where(form_submissions.c.id == form_id).values(contact_id=link.contact_id, lead_id=link.lead_id))


def mark_lead_spam_txn(conn: Connection, lead_id: int, reason: str, *, now: float | None = None) -> None:
    """Spam, by a rule: kept with its reason, out of every count. A stage sales set stands."""
    q = sa.select(leads.c.account_id, leads.c.stage, leads.c.last_activity_at).where(
        leads.c.id == lead_id, leads.c.spam_reason.is_(None), leads.c.stage_set_by != "sales"
    )
    if conn.dialect.name == "postgresql":
        q = q.with_for_update()  # a PATCH committing meanwhile is seen, not overwritten
    row = conn.execute(q).one_or_none()
    if row is None:
        return
    at = now if now is not None else row.last_activity_at
    conn.execute(leads.update().where(leads.c.id == lead_id).values(stage="spam", spam_reason=reason, stage_changed_at=at))
    conn.execute(
        lead_events.insert(),
        [
            {"lead_id": lead_id, "ts": at, "field": "stage", "old": row.stage, "new": "spam", "actor": f"system:{reason}"},
            {"lead_id": lead_id, "ts": at, "field": "spam_reason", "old": None, "new": reason, "actor": f"system:{reason}"},
        ],
    )
    outbox_store.stage_moves_txn(conn, [(row.account_id, lead_id, row.stage, "spam")], at=at, actor=f"system:{reason}")


def note_response_txn(conn: Connection, lead_id: int, at: float) -> None:
    """Speed to lead: the lead's first response, if it has none yet and this came after it."""
    _FIRST_RESPONSE.run(conn, {"b_lead_id": lead_id, "b_at": at})


_FIRST_RESPONSE = DriverStatement(
    leads.update()
    .where(leads.c.id == sa.bindparam("b_lead_id"), leads.c.first_response_at.is_(None), leads.c.created_at <= sa.bindparam("b_at"))
    .values(first_response_at=sa.bindparam("b_at"))
)


# -- sales outcomes --------------------------------------------------------------------------

OUTCOME_FIELDS = ("stage", "owner", "value", "currency", "loss_reason", "spam_reason", "bant", "notes")


class LeadNotFound(LookupError):
    pass


def apply_outcome_txn(
    conn: Connection, account_id: int, lead_id: int, outcome: dict[str, Any], *, actor: str, now: float
) -> Lead:
    """Record what sales says of a lead: stage (checked against the allowed moves; BANT
    answers decide SQL or nurturing when no stage is given), owner, value, loss reason, notes.
    Every change is appended to ``lead_events``; nothing is overwritten without a trace."""
    q = sa.select(leads).where(leads.c.id == lead_id, leads.c.account_id == account_id)
    if conn.dialect.name == "postgresql":
        q = q.with_for_update()
    row = conn.execute(q).one_or_none()
    if row is None:
        raise LeadNotFound(lead_id)
    changes: dict[str, Any] = {}
    bant = None
    if "bant" in outcome:
        bant = dict(json.loads(row.bant) if row.bant else {}) | read_bant(outcome["bant"])
        changes["bant"] = json.dumps(bant, sort_keys=True)
    stage = outcome.get("stage")
    if stage is None and bant is not None:
        decided = bant_stage(bant)
        # Answers recorded on a lead that cannot move there (lost, customer…) are kept as answers.
        if decided is not None and decided in TRANSITIONS.get(row.stage, ()):
            stage = decided
        if row.first_response_at is None:
            changes["first_response_at"] = now  # BANT answers mean somebody talked to the person
    if stage is not None and stage != row.stage:
        check_transition(row.stage, stage)
        changes.update(stage=stage, stage_changed_at=now, stage_set_by="sales")
        if stage == "customer":
            changes["converted_at"] = now
        if stage in RESPONDED_STAGES and row.first_response_at is None:
            changes["first_response_at"] = now
        if row.stage == "spam":
            changes["spam_reason"] = None  # undone: the history keeps the reason it had
    final_stage = changes.get("stage", row.stage)
    for key in ("owner", "value", "currency", "loss_reason", "notes"):
        if key in outcome and outcome[key] != getattr(row, key):
            changes[key] = outcome[key]
    if final_stage == "spam" and "stage" in changes:
        reason = outcome.get("spam_reason")
        if not reason:
            raise InvalidOutcome("marking a lead spam needs a spam_reason")
        changes["spam_reason"] = reason
    if final_stage == "lost" and not changes.get("loss_reason", row.loss_reason):
        raise InvalidOutcome("a lost lead needs a loss_reason (no response, refused to talk, refused to buy…)")
    if changes.get("value") is not None and not changes.get("currency", row.currency):
        # A value without a currency is in the account's own.
        changes["currency"] = conn.execute(sa.select(accounts.c.currency).where(accounts.c.id == account_id)).scalar_one()
    if changes:
        conn.execute(leads.update().where(leads.c.id == lead_id).values(**changes))
        conn.execute(
            lead_events.insert(),
            [
                {"lead_id": lead_id, "ts": now, "field": key, "old": _text(getattr(row, key)), "new": _text(changes[key]), "actor": actor}
                for key in ("stage", "spam_reason", "owner", "value", "currency", "loss_reason", "bant", "notes")
                if key in changes
            ],
        )
        if "stage" in changes:
            outbox_store.stage_moves_txn(conn, [(account_id, lead_id, row.stage, changes["stage"])], at=now, actor=actor)
    lead = get_lead_txn(conn, account_id, lead_id)
    assert lead is not None
    return lead


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def lead_history_txn(conn: Connection, lead_id: int) -> list[dict[str, Any]]:
    rows = conn.execute(sa.select(lead_events).where(lead_events.c.lead_id == lead_id).order_by(lead_events.c.id)).all()
    return [{"ts": r.ts, "field": r.field, "old": r.old, "new": r.new, "actor": r.actor} for r in rows]


def find_lead_txn(conn: Connection, account_id: int, *, phone: str | None = None, email: str | None = None) -> int | None:
    """The newest lead of the person with this phone or email (for CRM exports without our ids)."""
    for col, value in ((contacts.c.phone, phone), (contacts.c.email, email)):
        if value:
            found = conn.execute(
                sa.select(leads.c.id)
                .join(contacts, contacts.c.id == leads.c.contact_id)
                .where(leads.c.account_id == account_id, col == value)
                .order_by(leads.c.created_at.desc())
                .limit(1)
            ).scalar_one_or_none()
            if found is not None:
                return int(found)
    return None


# -- reading leads ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Lead:
    id: int
    account_id: int
    contact: dict[str, Any]
    site_id: int | None
    kind: str
    form_type: str | None
    stage: str
    spam_reason: str | None
    created_at: float
    last_activity_at: float
    touches: int
    source: dict[str, Any]
    sales: dict[str, Any] = field(default_factory=dict)
    first_response_at: float | None = None
    qualification: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id, "contact": self.contact, "site_id": self.site_id, "kind": self.kind, "form_type": self.form_type,
            "stage": self.stage, "spam_reason": self.spam_reason, "created_at": self.created_at,
            "last_activity_at": self.last_activity_at, "touches": self.touches, "source": self.source, "sales": self.sales,
            "first_response_at": self.first_response_at, "qualification": self.qualification,
        }


@dataclass(frozen=True)
class LeadFilters:
    since: float | None = None
    until: float | None = None
    source: str | None = None
    campaign: str | None = None
    channel: str | None = None
    stage: str | None = None
    kind: str | None = None
    before_id: int | None = None
    limit: int = 100


_LEAD_COLUMNS = (leads, contacts.c.phone.label("c_phone"), contacts.c.email.label("c_email"), contacts.c.name.label("c_name"))


def _lead(r: Any) -> Lead:
    sales = {
        "owner": r.owner, "value": r.value, "currency": r.currency, "loss_reason": r.loss_reason,
        "bant": json.loads(r.bant) if r.bant else None, "notes": r.notes, "converted_at": r.converted_at,
        "stage_changed_at": r.stage_changed_at, "stage_set_by": r.stage_set_by,
    }
    return Lead(
        r.id, r.account_id, {"id": r.contact_id, "phone": r.c_phone, "email": r.c_email, "name": r.c_name}, r.site_id,
        r.kind, r.form_type, r.stage, r.spam_reason, r.created_at, r.last_activity_at, r.touches,
        {k: getattr(r, k) for k in LEAD_SOURCE_FIELDS}, sales, r.first_response_at,
        {
            "score": r.score, "temperature": r.temperature, "flags": r.score_flags.split(",") if r.score_flags else [],
            "rules_version": r.scored_version, "scored_at": r.scored_at,
        },
    )


def list_leads_txn(conn: Connection, account_id: int, f: LeadFilters) -> list[Lead]:
    """Leads newest first; spam leads only when asked for by ``stage='spam'``."""
    q = sa.select(*_LEAD_COLUMNS).join(contacts, contacts.c.id == leads.c.contact_id).where(leads.c.account_id == account_id)
    if f.since is not None:
        q = q.where(leads.c.created_at >= f.since)
    if f.until is not None:
        q = q.where(leads.c.created_at < f.until)
    for col, value in ((leads.c.source, f.source), (leads.c.campaign, f.campaign), (leads.c.channel, f.channel), (leads.c.kind, f.kind)):
        if value is not None:
            q = q.where(col == value)
    q = q.where(leads.c.stage == f.stage) if f.stage is not None else q.where(leads.c.stage != "spam")
    if f.before_id is not None:
        q = q.where(leads.c.id < f.before_id)
    return [_lead(r) for r in conn.execute(q.order_by(leads.c.id.desc()).limit(f.limit)).all()]


def get_lead_txn(conn: Connection, account_id: int, lead_id: int) -> Lead | None:
    r = conn.execute(
        sa.select(*_LEAD_COLUMNS)
        .join(contacts, contacts.c.id == leads.c.contact_id)
        .where(leads.c.account_id == account_id, leads.c.id == lead_id)
    ).one_or_none()
    return None if r is None else _lead(r)


def lead_forms_txn(conn: Connection, lead_id: int) -> list[FormSubmission]:
    rows = conn.execute(sa.select(form_submissions).where(form_submissions.c.lead_id == lead_id).order_by(form_submissions.c.ts)).all()
    return [_submission(r) for r in rows]


def contact_visitors_txn(conn: Connection, contact_id: int) -> list[tuple[int, str]]:
    rows = conn.execute(
        sa.select(contact_visitors.c.site_id, contact_visitors.c.vid).where(contact_visitors.c.contact_id == contact_id).order_by(contact_visitors.c.id)
    ).all()
    return [(r.site_id, r.vid) for r in rows]


def submit_form_txn(conn: Connection, values: dict[str, Any], *, repeat_window: float) -> tuple[FormSubmission, bool]:
    """Store a submission once and, the first time, tie it to its person's lead.

    The lead's source is the visitor's latest touchpoint before the form (what brought them
    this time); the visitor id joins the contact, and the visitor's earlier anonymous calls
    join the lead.
    """
    submission, new = add_submission_txn(conn, values)
    if not new:
        return submission, False
    at, site_id, vid = values["ts"], values["site_id"], values.get("vid")
    contact_id = find_or_create_contact_txn(
        conn, values["account_id"], phone=values.get("phone"), email=values.get("email"), name=values.get("name"), now=at,
        hint=contact_for_visitor_txn(conn, site_id, vid) if vid else None,
    )
    snapshot: dict[str, Any] = {"match_method": "form"}
    if vid:
        touchpoint_id = numbers_store.latest_touchpoint_txn(conn, site_id, vid, at)
        if touchpoint_id is not None:
            snapshot.update(numbers_store.touchpoint_source_txn(conn, touchpoint_id) or {}, touchpoint_id=touchpoint_id, vid=vid)
            snapshot.pop("site_id", None)
    form_type = values.get("form_type")
    link = attach_to_lead_txn(
        conn, values["account_id"], contact_id, at=at, kind="callback" if form_type == "callback" else "form",
        repeat_window=repeat_window, site_id=site_id, form_type=form_type, snapshot=snapshot,
    )
    if vid:
        link_visitor_txn(conn, contact_id, site_id, vid, at)
        adopt_interest_txn(conn, values["account_id"], link, site_id, vid)
    set_form_link_txn(conn, submission.id, link)
    stored = conn.execute(sa.select(form_submissions).where(form_submissions.c.id == submission.id)).one()
    return _submission(stored), True
