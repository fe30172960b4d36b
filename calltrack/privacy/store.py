"""Privacy in the database (``*_txn``): retention settings, the retention purge in batches, and
the erasure of one person in one transaction.

Rows are never deleted and their non-personal columns never change, so every count, report
and attribution reads the same before and after. Personal values are blanked, or, where a
report counts distinct values, replaced by a pseudonym:

- a caller number becomes ``~`` and 15 random characters on *every* call of that number in the
  account at once, so unique callers, first-time callers and "called back" stay exact. It is
  random, not a hash: a hash of a phone number is undone by hashing every number;
- a visitor id (and session id) of an erased person becomes ``anon_…`` on every row that holds
  it (touchpoints, the contact's visitor links, calls, forms, leads, leases),
  so journeys and attribution stay whole while the browser's cookie no longer leads anywhere.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from calltrack.db.schema import (
    call_events,
    caller_blocklist,
    calls,
    contact_visitors,
    contacts,
    form_submissions,
    lead_events,
    lead_webhook_attempts,
    lead_webhook_deliveries,
    leads,
    leases,
    privacy_erasures,
    privacy_retention,
    touchpoints,
)
from calltrack.db.statements import insert_ignoring_conflicts
from calltrack.leads import store as leads_store
from calltrack.privacy.rules import (
    CALLER_KEYS,
    CLICK_ID_COLUMNS,
    FIELDS,
    RECORDING_KEYS,
    Needles,
    Retention,
    needles,
    scrub,
    scrub_event,
    strip_url,
    url_origin,
)

BATCH = 500  # rows per purge transaction: the SQLite writer is never held for long
Cursor = tuple[float, int]  # (time, id) of the last row a purge batch read
T = TypeVar("T")


def caller_pseudonym() -> str:
    """Stands for one caller number on all its calls; fits the 16 characters of a phone column."""
    return "~" + secrets.token_urlsafe(12)[:15]


def visitor_pseudonym() -> str:
    return "anon_" + secrets.token_urlsafe(18)


def _chunks(items: Iterable[T], size: int = 500) -> Iterator[list[T]]:
    chunk: list[T] = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


# -- settings --------------------------------------------------------------------------------------


def get_retention_txn(conn: Connection, account_id: int) -> Retention:
    r = conn.execute(sa.select(privacy_retention).where(privacy_retention.c.account_id == account_id)).one_or_none()
    return Retention() if r is None else Retention(r.recordings_days, r.callers_days, r.forms_days)


def set_retention_txn(conn: Connection, account_id: int, retention: Retention, now: float) -> Retention:
    values = retention.to_json() | {"updated_at": now}
    update = privacy_retention.update().where(privacy_retention.c.account_id == account_id).values(**values)
    if not conn.execute(update).rowcount:
        insert_ignoring_conflicts(conn, privacy_retention, {"account_id": account_id, **values}, conflict=("account_id",))
        conn.execute(update)  # a concurrent first setting inserted its row: ours, the later, wins
    return retention


def retention_accounts_txn(conn: Connection, account_id: int | None = None) -> list[tuple[int, Retention]]:
    """The accounts that keep some kind of personal data for a limited time, with their settings."""
    r = privacy_retention.c
    q = sa.select(r.account_id, *[r[f] for f in FIELDS]).where(sa.or_(*[r[f].is_not(None) for f in FIELDS])).order_by(r.account_id)
    if account_id is not None:
        q = q.where(r.account_id == account_id)
    return [(int(row[0]), Retention(*row[1:])) for row in conn.execute(q).all()]


# -- the retention purge -----------------------------------------------------------------------------


def _after(ts: Any, id_: Any, cursor: Cursor | None) -> Any:
    if cursor is None:
        return sa.true()
    return sa.or_(ts > cursor[0], sa.and_(ts == cursor[0], id_ > cursor[1]))


def _next(rows: Sequence[Any], limit: int) -> Cursor | None:
    return (float(rows[-1][1]), int(rows[-1][0])) if len(rows) == limit else None


_UPDATE_EVENT = call_events.update().where(call_events.c.id == sa.bindparam("b_id")).values(payload=sa.bindparam("b_payload"))


def _scrub_events(conn: Connection, call_ids: Sequence[int], *, drop: Sequence[str], found: Needles = Needles(), replace: dict[str, str] | None = None) -> int:
    """Scrub the stored deliveries (call_events.payload) of these calls; returns how many changed."""
    updates = []
    for chunk in _chunks(call_ids):
        for r in conn.execute(sa.select(call_events.c.id, call_events.c.payload).where(call_events.c.call_id.in_(chunk))).all():
            try:
                payload = json.loads(r.payload)
            except ValueError:
                payload = None
            if not isinstance(payload, dict):
                updates.append({"b_id": r.id, "b_payload": "{}"})
                continue
            new = scrub_event(payload, drop=drop, found=found, replace=replace)
            if new != payload:
                updates.append({"b_id": r.id, "b_payload": json.dumps(new, ensure_ascii=False, sort_keys=True)})
    if updates:
        conn.execute(_UPDATE_EVENT, updates)
    return len(updates)


def purge_recordings_txn(conn: Connection, account_id: int, *, before: float, cursor: Cursor | None = None, limit: int = BATCH) -> tuple[int, Cursor | None]:
    """Forget the recordings of calls that began before ``before`` (the URL on the call and in its
    stored deliveries; the recording's duration stays). Returns (calls changed, where the next
    batch starts, or None when this was the last)."""
    c = calls.c
    rows = conn.execute(
        sa.select(c.id, c.started_at)
        .where(c.account_id == account_id, c.started_at < before, c.recording_url.is_not(None), _after(c.started_at, c.id, cursor))
        .order_by(c.started_at, c.id)
        .limit(limit)
    ).all()
    ids = [int(r.id) for r in rows]
    if ids:
        conn.execute(calls.update().where(c.id.in_(ids)).values(recording_url=None))
        _scrub_events(conn, ids, drop=RECORDING_KEYS)
    return len(ids), _next(rows, limit)


def purge_callers_txn(conn: Connection, account_id: int, *, before: float, cursor: Cursor | None = None, limit: int = BATCH) -> tuple[int, Cursor | None]:
    """Anonymise the caller numbers whose last call began before ``before``: a pseudonym on all
    of that number's calls, the caller's name, city and region blanked, and the caller taken out
    of the calls' stored deliveries. A number that called again since is kept (on its old calls
    too) until its latest call is that old: replacing it on the old calls alone would count the
    same person as two callers, and their next call as a first one. Callers without a readable
    number lose their name, city and region by the call's own age.

    Returns (calls changed, where the next batch starts, or None when this was the last)."""
    c = calls.c
    details = sa.or_(c.caller_name.is_not(None), c.caller_city.is_not(None), c.caller_region.is_not(None), c.caller_withheld == sa.false())
    rows = conn.execute(
        sa.select(c.id, c.started_at, c.caller)
        .where(
            c.account_id == account_id, c.started_at < before, _after(c.started_at, c.id, cursor),
            sa.or_(c.caller.like("+%"), sa.and_(c.caller.is_(None), details)),
        )
        .order_by(c.started_at, c.id)
        .limit(limit)
    ).all()
    numbers = sorted({r.caller for r in rows if r.caller})
    active: set[str] = set()
    for chunk in _chunks(numbers):
        active.update(
            conn.execute(sa.select(c.caller).where(c.account_id == account_id, c.caller.in_(chunk), c.started_at >= before).distinct()).scalars()
        )
    changed = 0
    for number in numbers:
        if number in active:
            continue
        ids = [int(i) for i in conn.execute(sa.select(c.id).where(c.account_id == account_id, c.caller == number)).scalars()]
        conn.execute(
            calls.update().where(c.account_id == account_id, c.caller == number)
            .values(caller=caller_pseudonym(), caller_name=None, caller_city=None, caller_region=None)
        )
        _scrub_events(conn, ids, drop=CALLER_KEYS, found=needles([number]))
        changed += len(ids)
    unnumbered = [int(r.id) for r in rows if r.caller is None]
    if unnumbered:
        conn.execute(calls.update().where(c.id.in_(unnumbered)).values(caller_name=None, caller_city=None, caller_region=None))
        _scrub_events(conn, unnumbered, drop=CALLER_KEYS)
        changed += len(unnumbered)
    return changed, _next(rows, limit)


_FORM_BLANK = {"fields": "{}", "email": None, "phone": None, "name": None, "company": None, "message": None}
_UPDATE_FORM = (
    form_submissions.update()
    .where(form_submissions.c.id == sa.bindparam("b_id"))
    .values(url=sa.bindparam("b_url"), **{k: sa.literal(v) if v is not None else None for k, v in _FORM_BLANK.items()})
)


def purge_forms_txn(conn: Connection, account_id: int, *, before: float, cursor: Cursor | None = None, limit: int = BATCH) -> tuple[int, Cursor | None]:
    """Blank the fields (and the email, phone, name, company and message read from them) of forms
    submitted before ``before``; the page's URL loses its query string. The submission stays,
    with its time, site, visitor, type and lead. Returns (forms changed, next cursor or None)."""
    f = form_submissions.c
    personal = sa.or_(
        f.fields != "{}", *[f[k].is_not(None) for k in ("email", "phone", "name", "company", "message")], f.url.like("%?%"), f.url.like("%#%")
    )
    rows = conn.execute(
        sa.select(f.id, f.ts, f.url)
        .where(f.account_id == account_id, f.ts < before, personal, _after(f.ts, f.id, cursor))
        .order_by(f.ts, f.id)
        .limit(limit)
    ).all()
    if rows:
        conn.execute(_UPDATE_FORM, [{"b_id": r.id, "b_url": strip_url(r.url)} for r in rows])
    return len(rows), _next(rows, limit)


def purge_contacts_txn(
    conn: Connection, account_id: int, *, phone_before: float | None, email_before: float | None, after_id: int = 0, limit: int = BATCH
) -> tuple[int, int | None]:
    """The people themselves: a contact's phone goes once the person has been quiet (no lead
    activity, no new detail) since ``phone_before`` (the caller numbers' retention), its email
    since ``email_before`` (the forms'), and its name when neither is left. Their leads, with
    stages and values, stay. Returns (contacts changed, the id the next batch starts after)."""
    k = contacts.c
    wanted = [k.name.is_not(None)]
    if phone_before is not None:
        wanted.append(k.phone.is_not(None))
    if email_before is not None:
        wanted.append(k.email.is_not(None))
    rows = conn.execute(
        sa.select(k.id, k.phone, k.email, k.name, k.merged_into, k.updated_at)
        .where(k.account_id == account_id, k.id > after_id, sa.or_(*wanted))
        .order_by(k.id)
        .limit(limit)
    ).all()
    roots = sorted({int(r.merged_into or r.id) for r in rows})
    last: dict[int, float] = {}
    for chunk in _chunks(roots):
        for root, at in conn.execute(sa.select(k.id, k.updated_at).where(k.id.in_(chunk))).all():
            last[int(root)] = float(at)
        for root, at in conn.execute(
            sa.select(leads.c.contact_id, sa.func.max(leads.c.last_activity_at)).where(leads.c.contact_id.in_(chunk)).group_by(leads.c.contact_id)
        ).all():
            last[int(root)] = max(last.get(int(root), float("-inf")), float(at))
    cutoffs = [c for c in (phone_before, email_before) if c is not None]
    updates = []
    for r in rows:
        quiet_since = last.get(int(r.merged_into or r.id), float(r.updated_at))
        changes: dict[str, Any] = {}
        if phone_before is not None and r.phone is not None and quiet_since < phone_before:
            changes["phone"] = None
        if email_before is not None and r.email is not None and quiet_since < email_before:
            changes["email"] = None
        left_phone = None if "phone" in changes else r.phone
        left_email = None if "email" in changes else r.email
        if r.name is not None and left_phone is None and left_email is None and any(quiet_since < c for c in cutoffs):
            changes["name"] = None
        if changes:
            updates.append((int(r.id), changes))
    for contact_id, changes in updates:
        conn.execute(contacts.update().where(k.id == contact_id).values(**changes))
    return len(updates), (int(rows[-1].id) if len(rows) == limit else None)


# -- erasure -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Erasure:
    id: int
    at: float
    actor: str
    matched_by: str
    counts: dict[str, int]

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "at": self.at, "actor": self.actor, "matched_by": self.matched_by, **self.counts}


def _person(conn: Connection, account_id: int, phone: str | None, email: str | None) -> set[int]:
    """Every contact row that is this person: the one with the phone or email, the contact it
    was merged into, and every contact merged into that one."""
    k = contacts.c
    match = [k.phone == phone] if phone else []
    match += [k.email == email] if email else []
    people: set[int] = set()
    for row in conn.execute(sa.select(k.id, k.merged_into).where(k.account_id == account_id, sa.or_(*match))).all():
        root, up, seen = int(row.id), row.merged_into, {int(row.id)}
        while up is not None and int(up) not in seen:
            root = int(up)
            seen.add(root)
            up = conn.execute(sa.select(k.merged_into).where(k.id == root)).scalar_one_or_none()
        people.add(root)
    frontier = set(people)
    while frontier:
        more: set[int] = set()
        for chunk in _chunks(sorted(frontier)):
            more.update(int(i) for i in conn.execute(sa.select(k.id).where(k.account_id == account_id, k.merged_into.in_(chunk))).scalars())
        frontier = more - people
        people |= frontier
    return people


def _select_in(conn: Connection, columns: Sequence[Any], col: Any, values: Iterable[Any], *where: Any) -> list[Any]:
    out: list[Any] = []
    for chunk in _chunks(sorted(set(values))):
        out.extend(conn.execute(sa.select(*columns).where(col.in_(chunk), *where)).all())
    return out


def _by_id(table: sa.Table, **values: Any) -> Any:
    """``UPDATE table … WHERE id = :b_id`` for executemany: a value of None is bound per row (as
    ``b_<column>``), any other is the same for every row."""
    return table.update().where(table.c.id == sa.bindparam("b_id")).values(
        **{k: sa.bindparam("b_" + k) if v is None else v if isinstance(v, sa.sql.ClauseElement) else sa.literal(v) for k, v in values.items()}
    )


def erase_person_txn(conn: Connection, account_id: int, *, phone: str | None, email: str | None, actor: str, now: float) -> Erasure | None:
    """Remove one person's personal data from everything of this account, in one transaction:

    - their contact rows (merged ones included): phone, email and name blanked;
    - their calls (those of their leads, and every call from their numbers): the number
      replaced by a pseudonym, caller name, city and region and the recording address blanked,
      the stored deliveries stripped of the caller and the recording, anything naming them erased;
    - their forms: fields, email, phone, name, company and message blanked, URL without query;
    - their leads: notes blanked; the history keeps every row (who changed what and when) with
      the notes' old and new values blanked, and gains one 'erased' row naming the actor;
    - their lead webhook deliveries: pending ones cancelled, every body and CRM answer blanked;
    - their visits: visitor and session ids re-keyed, URLs without query, referrers cut to
      their origin, ad click ids removed;
    - their numbers on the caller blocklist: removed (a blocked number is personal data too).

    Stages, values, sources, times and counts stay. The pool exhaustion log keeps the old
    visitor ids it refused a number: nothing else holds them any more. Finding the merged
    contacts reads the account's contacts (``merged_into`` has no index): an erasure is rare.
    Returns None when the account has no such person (another account's is never looked at)."""
    for key in sorted(k for k in (phone, email) if k):
        leads_store._lock(conn, "contact", account_id, key)  # serialised with ingestion of the same person
    person = _person(conn, account_id, phone, email)
    rows = _select_in(conn, (contacts.c.id, contacts.c.phone, contacts.c.email), contacts.c.id, person)
    own_phones = {p for p in [phone, *(r.phone for r in rows)] if p}
    own_emails = {e for e in [email, *(r.email for r in rows)] if e}
    lead_rows = _select_in(conn, (leads.c.id, leads.c.site_id, leads.c.vid), leads.c.contact_id, person)
    lead_ids = [int(r.id) for r in lead_rows]

    c = calls.c
    call_cols = (c.id, c.caller, c.site_id, c.vid, c.lease_id, c.explain)
    found_calls = {int(r.id): r for r in _select_in(conn, call_cols, c.lead_id, lead_ids)}
    numbers = own_phones | {r.caller for r in found_calls.values() if r.caller and r.caller.startswith("+")}
    found_calls.update({int(r.id): r for r in _select_in(conn, call_cols, c.caller, numbers, c.account_id == account_id)})
    if not person and not found_calls:
        return None
    call_rows = [found_calls[i] for i in sorted(found_calls)]
    f = form_submissions.c
    form_rows = _select_in(conn, (f.id, f.site_id, f.vid, f.sid, f.url), f.lead_id, lead_ids, f.account_id == account_id)
    visitor_rows = _select_in(conn, (contact_visitors.c.id, contact_visitors.c.site_id, contact_visitors.c.vid), contact_visitors.c.contact_id, person)

    visitors = {(r.site_id, r.vid) for r in [*visitor_rows, *lead_rows, *call_rows, *form_rows] if r.site_id is not None and r.vid}
    t = touchpoints.c
    touch_rows: list[Any] = []
    by_site: dict[int, set[str]] = {}
    for site_id, vid in visitors:
        by_site.setdefault(int(site_id), set()).add(vid)
    for site_id, vids in sorted(by_site.items()):
        touch_rows += _select_in(conn, (t.id, t.site_id, t.vid, t.sid, t.url, t.referrer), t.vid, vids, t.site_id == site_id)
    lease_cols = (leases.c.id, leases.c.site_id, leases.c.vid, leases.c.sid)
    found_leases = {int(r.id): r for r in _select_in(conn, lease_cols, leases.c.id, [r.lease_id for r in call_rows if r.lease_id is not None])}
    for site_id, vids in sorted(by_site.items()):
        found_leases.update({int(r.id): r for r in _select_in(conn, lease_cols, leases.c.vid, vids, leases.c.site_id == site_id)})
    lease_rows = [found_leases[i] for i in sorted(found_leases)]

    vid_map = {key: visitor_pseudonym() for key in sorted(visitors)}
    sid_map = {(r.site_id, r.sid): visitor_pseudonym() for r in [*touch_rows, *form_rows] if r.sid}
    sid_map.update({(r.site_id, r.sid): visitor_pseudonym() for r in lease_rows if r.sid and (r.site_id, r.vid) in vid_map and (r.site_id, r.sid) not in sid_map})
    texts = {vid: new for (_, vid), new in vid_map.items()}
    caller_map = {n: caller_pseudonym() for n in sorted(numbers)}
    found = needles(numbers, own_emails)

    def vid_of(r: Any) -> Any:
        return vid_map.get((r.site_id, r.vid), r.vid)

    def sid_of(r: Any) -> Any:
        return sid_map.get((r.site_id, r.sid), r.sid)

    if touch_rows:
        conn.execute(
            _by_id(touchpoints, vid=None, sid=None, url=None, referrer=None, **{col: sa.null() for col in CLICK_ID_COLUMNS}),
            [{"b_id": r.id, "b_vid": vid_of(r), "b_sid": sid_of(r), "b_url": strip_url(r.url), "b_referrer": url_origin(r.referrer)} for r in touch_rows],
        )
    if visitor_rows:
        conn.execute(_by_id(contact_visitors, vid=None), [{"b_id": r.id, "b_vid": vid_of(r)} for r in visitor_rows])
    if call_rows:
        conn.execute(
            _by_id(calls, caller=None, vid=None, explain=None, caller_name=sa.null(), caller_city=sa.null(), caller_region=sa.null(), recording_url=sa.null()),
            [
                {
                    "b_id": r.id, "b_caller": caller_map.get(r.caller, r.caller), "b_vid": vid_of(r),
                    "b_explain": json.dumps(scrub(json.loads(r.explain), found, texts), sort_keys=True) if r.explain else r.explain,
                }
                for r in call_rows
            ],
        )
        _scrub_events(conn, [int(r.id) for r in call_rows], drop=CALLER_KEYS + RECORDING_KEYS, found=found, replace=texts)
    if lease_rows:
        conn.execute(_by_id(leases, vid=None, sid=None), [{"b_id": r.id, "b_vid": vid_of(r), "b_sid": sid_of(r)} for r in lease_rows])
    if form_rows:
        conn.execute(
            _by_id(form_submissions, url=None, vid=None, sid=None, **{k: sa.null() if v is None else v for k, v in _FORM_BLANK.items()}),
            [{"b_id": r.id, "b_url": strip_url(r.url), "b_vid": vid_of(r), "b_sid": sid_of(r)} for r in form_rows],
        )
    cancelled = 0
    if lead_rows:
        conn.execute(_by_id(leads, vid=None, notes=sa.null()), [{"b_id": r.id, "b_vid": vid_of(r)} for r in lead_rows])
        e, d = lead_events.c, lead_webhook_deliveries.c
        for chunk in _chunks(lead_ids):
            conn.execute(lead_events.update().where(e.lead_id.in_(chunk), e.field == "notes").values(old=None, new=None))
            cancelled += int(
                conn.execute(
                    lead_webhook_deliveries.update()
                    .where(d.lead_id.in_(chunk), d.status == "pending")
                    .values(status="cancelled", next_attempt_at=None, last_error="cancelled: the person's data was erased")
                ).rowcount or 0
            )
            conn.execute(lead_webhook_deliveries.update().where(d.lead_id.in_(chunk)).values(body=None))
            conn.execute(
                lead_webhook_attempts.update()
                .where(lead_webhook_attempts.c.delivery_id.in_(sa.select(d.id).where(d.lead_id.in_(chunk))))
                .values(response_excerpt=None)
            )
        conn.execute(lead_events.insert(), [{"lead_id": i, "ts": now, "field": "erased", "old": None, "new": None, "actor": actor} for i in lead_ids])
    removed = 0
    if own_phones:
        b = caller_blocklist.c
        removed = int(conn.execute(caller_blocklist.delete().where(b.account_id == account_id, b.phone.in_(sorted(own_phones)))).rowcount or 0)
    for chunk in _chunks(sorted(person)):
        conn.execute(contacts.update().where(contacts.c.id.in_(chunk)).values(phone=None, email=None, name=None, updated_at=now))
    counts = {
        "contacts": len(person), "leads": len(lead_rows), "calls": len(call_rows), "forms": len(form_rows), "touchpoints": len(touch_rows),
        "deliveries_cancelled": cancelled, "blocklist_removed": removed,
    }
    matched_by = "phone" if phone else "email"
    erasure_id = conn.execute(
        privacy_erasures.insert().returning(privacy_erasures.c.id),
        {"account_id": account_id, "at": now, "actor": actor[:64], "matched_by": matched_by, "counts": json.dumps(counts, sort_keys=True)},
    ).scalar_one()
    return Erasure(int(erasure_id), now, actor[:64], matched_by, counts)


def erasures_txn(conn: Connection, account_id: int, *, limit: int = 100) -> list[Erasure]:
    """The account's erasures, newest first."""
    e = privacy_erasures.c
    rows = conn.execute(sa.select(privacy_erasures).where(e.account_id == account_id).order_by(e.id.desc()).limit(limit)).all()
    return [Erasure(int(r.id), float(r.at), r.actor, r.matched_by, json.loads(r.counts)) for r in rows]
