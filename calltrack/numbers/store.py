"""Numbers, pools, leases and the lease log: ``*_txn`` functions over SQLAlchemy Core.

The hot path is :func:`visit_batch_txn`, one transaction for a whole group-committed batch of
number requests: a handful of statements per batch (inserts and updates go as executemany),
not per request.

No number is ever held by two visitors at once, whatever process asks:
- a number is handed out only when its ``free_at`` (end of its last lease plus cool-down) has
  passed, and the row is locked while it is taken (PostgreSQL ``FOR UPDATE SKIP LOCKED``: a
  concurrent transaction takes the next free number instead of waiting; SQLite has a single
  writer, ``BEGIN IMMEDIATE``);
- the partial unique index ``uq_leases_open_number`` refuses a second open lease on a number.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from calltrack.db.schema import lease_events, leases, pool_exhaustions, pools, touchpoints, tracking_numbers
from calltrack.numbers.rules import PoolRules, parse_rules


class NotFound(LookupError):
    """No such object in this account."""


class Conflict(ValueError):
    """The change contradicts what is stored (duplicate number, name taken…)."""


@dataclass(frozen=True)
class Pool:
    id: int
    account_id: int
    site_id: int
    name: str
    priority: int
    rules: PoolRules
    hold_seconds: int
    cooldown_seconds: int
    overflow_number: str | None
    retired: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "site_id": self.site_id,
            "name": self.name,
            "priority": self.priority,
            "rules": self.rules.to_json(),
            "hold_seconds": self.hold_seconds,
            "cooldown_seconds": self.cooldown_seconds,
            "overflow_number": self.overflow_number,
            "retired": self.retired,
        }


@dataclass(frozen=True)
class TrackingNumber:
    id: int
    account_id: int
    e164: str
    kind: str
    pool_id: int | None
    forward_to: str
    source: str | None = None
    medium: str | None = None
    campaign: str | None = None
    keyword: str | None = None
    placement: str | None = None
    status: str = "active"

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "number": self.e164,
            "kind": self.kind,
            "pool_id": self.pool_id,
            "forward_to": self.forward_to,
            "source": self.source,
            "medium": self.medium,
            "campaign": self.campaign,
            "keyword": self.keyword,
            "placement": self.placement,
            "status": self.status,
        }


NUMBER_SOURCE_FIELDS = ("source", "medium", "campaign", "keyword", "placement")


@dataclass(frozen=True)
class NewNumber:
    e164: str
    forward_to: str
    kind: str  # 'static' | 'pool'
    pool_id: int | None = None
    source: str | None = None
    medium: str | None = None
    campaign: str | None = None
    keyword: str | None = None
    placement: str | None = None


@dataclass(frozen=True)
class VisitIn:
    """One number request, as the batch transaction needs it.

    ``touch`` holds the touchpoint columns when the request brings a visit to record (a new
    visitor, a new session or new tags), else None. ``pool`` is the pool its rules chose, or
    None when no pool serves the visit (then only the touchpoint is recorded).
    """

    account_id: int
    site_id: int
    vid: str
    sid: str
    now: float
    touch: dict[str, Any] | None
    pool: Pool | None
    allocate: bool = True  # False for a ping: renew an open lease, never take a new number
    # The server issued this visitor id just now: it can have no touchpoints or leases yet,
    # so the batch skips looking for them.
    new_visitor: bool = False


@dataclass(frozen=True)
class VisitOut:
    """What the batch decided for one request.

    ``outcome``: 'leased' (a new lease), 'renewed' (the visitor's open lease), 'exhausted' (no
    free number: the caller answers the overflow number), 'no_pool', or 'no_lease' (a ping
    with nothing to renew).
    """

    outcome: str
    e164: str | None = None
    lease_id: int | None = None
    number_id: int | None = None
    pool_id: int | None = None
    expires_at: float | None = None
    touchpoint_id: int | None = None


# -- pools -----------------------------------------------------------------------------------


def _pool(row: Any) -> Pool:
    return Pool(
        id=row.id,
        account_id=row.account_id,
        site_id=row.site_id,
        name=row.name,
        priority=row.priority,
        rules=parse_rules(json.loads(row.rules)),
        hold_seconds=row.hold_seconds,
        cooldown_seconds=row.cooldown_seconds,
        overflow_number=row.overflow_number,
        retired=row.retired_at is not None,
    )


def create_pool_txn(
    conn: Connection,
    *,
    account_id: int,
    site_id: int,
    name: str,
    priority: int,
    rules: PoolRules,
    hold_seconds: int,
    cooldown_seconds: int,
    overflow_number: str | None,
    now: float,
) -> Pool:
    taken = conn.execute(
        sa.select(pools.c.id).where(pools.c.site_id == site_id, pools.c.name == name)
    ).first()
    if taken:
        raise Conflict(f"site {site_id} already has a pool named {name!r}")
    pool_id = conn.execute(
        pools.insert()
        .values(
            account_id=account_id,
            site_id=site_id,
            name=name,
            priority=priority,
            rules=json.dumps(rules.to_json(), sort_keys=True),
            hold_seconds=hold_seconds,
            cooldown_seconds=cooldown_seconds,
            overflow_number=overflow_number,
            created_at=now,
        )
        .returning(pools.c.id)
    ).scalar_one()
    return get_pool_txn(conn, account_id, pool_id)


def update_pool_txn(conn: Connection, account_id: int, pool_id: int, changes: dict[str, Any], now: float) -> Pool:
    current = get_pool_txn(conn, account_id, pool_id)
    values = dict(changes)
    if values.get("name") not in (None, current.name):
        taken = conn.execute(
            sa.select(pools.c.id).where(pools.c.site_id == current.site_id, pools.c.name == values["name"])
        ).first()
        if taken:
            raise Conflict(f"site {current.site_id} already has a pool named {values['name']!r}")
    if "rules" in values:
        values["rules"] = json.dumps(values["rules"].to_json(), sort_keys=True)
    if values.pop("retired", False) and not current.retired:
        values["retired_at"] = now
        # Its visitors' leases end now: a retired pool serves nobody.
        open_ids = conn.execute(
            sa.select(leases.c.id).where(leases.c.pool_id == pool_id, leases.c.ended_at.is_(None))
        ).scalars().all()
        ended = _end_leases(conn, open_ids, reason="retired", at=now)
        if ended:
            conn.execute(
                tracking_numbers.update().where(tracking_numbers.c.current_lease_id.in_(ended)).values(current_lease_id=None)
            )
    if values:
        conn.execute(pools.update().where(pools.c.id == pool_id).values(**values))
    return get_pool_txn(conn, account_id, pool_id)


def get_pool_txn(conn: Connection, account_id: int, pool_id: int) -> Pool:
    row = conn.execute(
        sa.select(pools).where(pools.c.id == pool_id, pools.c.account_id == account_id)
    ).one_or_none()
    if row is None:
        raise NotFound(f"pool {pool_id} not found")
    return _pool(row)


def list_pools_txn(conn: Connection, account_id: int, site_id: int | None = None) -> list[Pool]:
    q = sa.select(pools).where(pools.c.account_id == account_id)
    if site_id is not None:
        q = q.where(pools.c.site_id == site_id)
    return [_pool(r) for r in conn.execute(q.order_by(pools.c.site_id, pools.c.priority, pools.c.id))]


def active_pools_for_site_txn(conn: Connection, site_id: int) -> list[Pool]:
    rows = conn.execute(
        sa.select(pools)
        .where(pools.c.site_id == site_id, pools.c.retired_at.is_(None))
        .order_by(pools.c.priority, pools.c.id)
    )
    return [_pool(r) for r in rows]


# -- numbers ---------------------------------------------------------------------------------


def _number(row: Any) -> TrackingNumber:
    return TrackingNumber(
        id=row.id,
        account_id=row.account_id,
        e164=row.e164,
        kind=row.kind,
        pool_id=row.pool_id,
        forward_to=row.forward_to,
        source=row.source,
        medium=row.medium,
        campaign=row.campaign,
        keyword=row.keyword,
        placement=row.placement,
        status=row.status,
    )


def add_numbers_txn(conn: Connection, account_id: int, numbers: Sequence[NewNumber], now: float) -> list[TrackingNumber]:
    """Add numbers (all or none). A number retired by this account comes back to life with the
    new settings; a number held by another account, or active here, is a Conflict."""
    if not numbers:
        return []
    wanted = [n.e164 for n in numbers]
    if len(set(wanted)) != len(wanted):
        dup = next(e for e in wanted if wanted.count(e) > 1)
        raise Conflict(f"{dup} appears twice")
    pool_ids = {n.pool_id for n in numbers if n.pool_id is not None}
    if pool_ids:
        found = set(
            conn.execute(
                sa.select(pools.c.id).where(pools.c.id.in_(pool_ids), pools.c.account_id == account_id)
            ).scalars()
        )
        missing = pool_ids - found
        if missing:
            raise NotFound(f"pool {min(missing)} not found")
    existing = {
        r.e164: r
        for r in conn.execute(
            sa.select(tracking_numbers.c.e164, tracking_numbers.c.account_id, tracking_numbers.c.status, tracking_numbers.c.id).where(
                tracking_numbers.c.e164.in_(wanted)
            )
        )
    }
    for e164 in wanted:
        row = existing.get(e164)
        if row is not None and (row.account_id != account_id or row.status == "active"):
            raise Conflict(f"{e164} is already a tracking number")
    for n in numbers:
        values = {
            "kind": n.kind,
            "pool_id": n.pool_id,
            "forward_to": n.forward_to,
            "source": n.source,
            "medium": n.medium,
            "campaign": n.campaign,
            "keyword": n.keyword,
            "placement": n.placement,
            "status": "active",
        }
        if n.e164 in existing:
            conn.execute(
                tracking_numbers.update()
                .where(tracking_numbers.c.id == existing[n.e164].id)
                .values(retired_at=None, **values)
            )
        else:
            conn.execute(
                tracking_numbers.insert().values(
                    account_id=account_id, e164=n.e164, created_at=now, free_at=0.0, last_leased_at=0.0, **values
                )
            )
    rows = conn.execute(
        sa.select(tracking_numbers).where(tracking_numbers.c.e164.in_(wanted)).order_by(tracking_numbers.c.id)
    )
    return [_number(r) for r in rows]


def list_numbers_txn(
    conn: Connection, account_id: int, *, pool_id: int | None = None, include_retired: bool = False
) -> list[TrackingNumber]:
    q = sa.select(tracking_numbers).where(tracking_numbers.c.account_id == account_id)
    if pool_id is not None:
        q = q.where(tracking_numbers.c.pool_id == pool_id)
    if not include_retired:
        q = q.where(tracking_numbers.c.status == "active")
    return [_number(r) for r in conn.execute(q.order_by(tracking_numbers.c.id))]


def sourced_static_numbers_txn(conn: Connection, account_id: int) -> list[TrackingNumber]:
    """Active static numbers that name a source or medium (candidates for consent-less visits)."""
    t = tracking_numbers.c
    q = sa.select(tracking_numbers).where(
        t.account_id == account_id, t.kind == "static", t.status == "active", sa.or_(t.source.is_not(None), t.medium.is_not(None))
    )
    return [_number(r) for r in conn.execute(q.order_by(t.id))]


def number_by_e164_txn(conn: Connection, e164: str) -> TrackingNumber | None:
    row = conn.execute(sa.select(tracking_numbers).where(tracking_numbers.c.e164 == e164)).one_or_none()
    return None if row is None else _number(row)


def retire_number_txn(conn: Connection, account_id: int, number_id: int, now: float) -> TrackingNumber:
    """Retire a number: no new leases; an open lease ends now (reason 'retired')."""
    row = conn.execute(
        sa.select(tracking_numbers).where(
            tracking_numbers.c.id == number_id, tracking_numbers.c.account_id == account_id
        )
    ).one_or_none()
    if row is None:
        raise NotFound(f"number {number_id} not found")
    open_ids = conn.execute(
        sa.select(leases.c.id).where(leases.c.number_id == number_id, leases.c.ended_at.is_(None))
    ).scalars().all()
    _end_leases(conn, open_ids, reason="retired", at=now)
    conn.execute(
        tracking_numbers.update()
        .where(tracking_numbers.c.id == number_id)
        .values(status="retired", retired_at=now, current_lease_id=None)
    )
    return _number(conn.execute(sa.select(tracking_numbers).where(tracking_numbers.c.id == number_id)).one())


# -- the number endpoint's batch -------------------------------------------------------------


@dataclass
class _Decision:
    out: VisitOut | None = None
    followers: list[int] = field(default_factory=list)  # later requests of the same visitor


def visit_batch_txn(conn: Connection, visits: list[VisitIn]) -> list[VisitOut]:
    """Record touchpoints, renew open leases and take new numbers for a batch of requests.

    Requests of one visitor in the same batch share one decision (the first one's).
    """
    if not visits:
        return []
    pg = conn.dialect.name == "postgresql"
    results: list[VisitOut | None] = [None] * len(visits)

    # 1. Touchpoints, in one executemany with RETURNING (SQLAlchemy's insertmanyvalues). A touch
    #    whose digest equals the visitor's last one (a page view bringing nothing new) is skipped.
    touch_idx = [i for i, v in enumerate(visits) if v.touch is not None]
    touch_ids: dict[int, int] = {}
    if touch_idx:
        known = [visits[i] for i in touch_idx if not visits[i].new_visitor]
        last_sig: dict[tuple[int, str], str] = {}
        if known:
            latest = (
                sa.select(sa.func.max(touchpoints.c.id))
                .where(_visitors_in(touchpoints.c.site_id, touchpoints.c.vid, known))
                .group_by(touchpoints.c.site_id, touchpoints.c.vid)
            )
            last_sig = {
                (r.site_id, r.vid): r.sig
                for r in conn.execute(
                    sa.select(touchpoints.c.site_id, touchpoints.c.vid, touchpoints.c.sig).where(touchpoints.c.id.in_(latest))
                )
            }
        fresh = []
        for i in touch_idx:
            v = visits[i]
            touch = v.touch
            assert touch is not None
            if last_sig.get((v.site_id, v.vid)) != touch["sig"]:
                last_sig[(v.site_id, v.vid)] = touch["sig"]
                fresh.append(i)
        if fresh:
            # RETURNING without a row order lets SQLite insert the batch in one statement
            # (asking for the order costs one statement per row); rows are matched back by
            # visitor and signature instead.
            returned = conn.execute(
                touchpoints.insert().returning(touchpoints.c.id, touchpoints.c.site_id, touchpoints.c.vid, touchpoints.c.sig),
                [visits[i].touch for i in fresh],  # type: ignore[misc]
            ).all()
            by_key: dict[tuple[int, str, str], list[int]] = defaultdict(list)
            for r in sorted(returned, key=lambda r: r.id):
                by_key[(r.site_id, r.vid, r.sig)].append(r.id)
            for i in fresh:
                v = visits[i]
                touch_ids[i] = by_key[(v.site_id, v.vid, v.touch["sig"])].pop(0)  # type: ignore[index]

    # 2. One decision per visitor.
    firsts: dict[tuple[int, str], int] = {}
    followers: dict[int, list[int]] = defaultdict(list)
    for i, v in enumerate(visits):
        key = (v.site_id, v.vid)
        if key in firsts:
            followers[firsts[key]].append(i)
        else:
            firsts[key] = i

    # 3. Open leases of these visitors (any process may have made them).
    known_visitors = [visits[i] for i in firsts.values() if not visits[i].new_visitor]
    if pg and known_visitors:
        # One visitor asking through two processes at once must not get two numbers: the
        # transactions take the visitor's lock (in one global order, so no deadlock) and the
        # second sees the first's lease.
        keys = sorted({_visitor_lock_key(v.site_id, v.vid) for v in known_visitors})
        conn.execute(
            sa.text("SELECT pg_advisory_xact_lock(k) FROM (SELECT unnest(CAST(:keys AS bigint[])) AS k ORDER BY k) AS s"),
            {"keys": keys},
        )
    open_q = (
        sa.select(
            leases.c.id,
            leases.c.site_id,
            leases.c.vid,
            leases.c.number_id,
            leases.c.pool_id,
            leases.c.expires_at,
            tracking_numbers.c.e164,
            pools.c.hold_seconds,
            pools.c.cooldown_seconds,
        )
        .join(tracking_numbers, tracking_numbers.c.id == leases.c.number_id)
        .join(pools, pools.c.id == leases.c.pool_id)
        .where(leases.c.ended_at.is_(None), _visitors_in(leases.c.site_id, leases.c.vid, known_visitors))
        .order_by(leases.c.id)
    )
    if pg:
        # Lock the leases being renewed: a sweeper that picked one waits, then sees the new
        # deadline (see _end_leases).
        open_q = open_q.with_for_update(of=leases)
    open_rows = conn.execute(open_q).all() if known_visitors else []
    renewals: list[dict[str, Any]] = []
    number_free: list[dict[str, Any]] = []
    for row in open_rows:
        i = firsts.get((row.site_id, row.vid))
        if i is None or results[i] is not None:
            continue
        v = visits[i]
        if row.expires_at <= v.now:
            continue  # lapsed: the visitor is new again; the sweeper or a reuse closes it
        expires = v.now + row.hold_seconds
        renewals.append({"l_id": row.id, "last_seen_at": v.now, "expires_at": expires})
        number_free.append({"n_id": row.number_id, "free_at": expires + row.cooldown_seconds})
        results[i] = VisitOut("renewed", row.e164, row.id, row.number_id, row.pool_id, expires, touch_ids.get(i))
    if renewals:
        renewals.sort(key=lambda r: r["l_id"])  # one lock order across processes: no deadlocks
        number_free.sort(key=lambda r: r["n_id"])
        conn.execute(
            leases.update().where(leases.c.id == sa.bindparam("l_id")).values(
                last_seen_at=sa.bindparam("last_seen_at"), expires_at=sa.bindparam("expires_at")
            ),
            renewals,
        )
        conn.execute(
            tracking_numbers.update().where(tracking_numbers.c.id == sa.bindparam("n_id")).values(
                free_at=sa.bindparam("free_at")
            ),
            number_free,
        )
        conn.execute(
            lease_events.insert(),
            [{"lease_id": r["l_id"], "kind": "renew", "ts": r["last_seen_at"], "expires_at": r["expires_at"]} for r in renewals],
        )

    # 4. New leases, pool by pool.
    wanting: dict[int, list[int]] = defaultdict(list)
    for i in firsts.values():
        if results[i] is not None:
            continue
        v = visits[i]
        if not v.allocate:
            results[i] = VisitOut("no_lease", touchpoint_id=touch_ids.get(i))
        elif v.pool is None:
            results[i] = VisitOut("no_pool", touchpoint_id=touch_ids.get(i))
        else:
            wanting[v.pool.id].append(i)
    for pool_id in sorted(wanting):
        idx = wanting[pool_id]
        pool = visits[idx[0]].pool
        assert pool is not None
        now = max(visits[i].now for i in idx)
        q = (
            sa.select(tracking_numbers.c.id, tracking_numbers.c.e164, tracking_numbers.c.current_lease_id)
            .where(
                tracking_numbers.c.pool_id == pool_id,
                tracking_numbers.c.status == "active",
                tracking_numbers.c.free_at <= now,
            )
            .order_by(tracking_numbers.c.last_leased_at, tracking_numbers.c.id)
            .limit(len(idx))
        )
        if pg:
            q = q.with_for_update(skip_locked=True)
        free = conn.execute(q).all()
        stale = [r.current_lease_id for r in free if r.current_lease_id is not None]
        if stale:
            _end_leases(conn, stale, reason="expired", due_by=now)
        granted = list(zip(idx, free, strict=False))
        if granted:
            new_leases = []
            for i, num in granted:
                v = visits[i]
                new_leases.append(
                    {
                        "account_id": v.account_id,
                        "site_id": v.site_id,
                        "pool_id": pool_id,
                        "number_id": num.id,
                        "vid": v.vid,
                        "sid": v.sid,
                        "touchpoint_id": touch_ids.get(i),
                        "started_at": v.now,
                        "last_seen_at": v.now,
                        "expires_at": v.now + pool.hold_seconds,
                    }
                )
            returned_leases = conn.execute(
                leases.insert().returning(leases.c.id, leases.c.site_id, leases.c.vid), new_leases
            ).all()
            lease_id_of = {(r.site_id, r.vid): r.id for r in returned_leases}  # one new lease per visitor
            lease_ids = [lease_id_of[(nl["site_id"], nl["vid"])] for nl in new_leases]
            conn.execute(
                lease_events.insert(),
                [
                    {"lease_id": lid, "kind": "start", "ts": nl["started_at"], "expires_at": nl["expires_at"]}
                    for lid, nl in zip(lease_ids, new_leases, strict=True)
                ],
            )
            conn.execute(
                tracking_numbers.update().where(tracking_numbers.c.id == sa.bindparam("n_id")).values(
                    current_lease_id=sa.bindparam("lease_id"),
                    last_leased_at=sa.bindparam("leased_at"),
                    free_at=sa.bindparam("free_at"),
                ),
                sorted(
                    (
                        {
                            "n_id": nl["number_id"],
                            "lease_id": lid,
                            "leased_at": nl["started_at"],
                            "free_at": nl["expires_at"] + pool.cooldown_seconds,
                        }
                        for lid, nl in zip(lease_ids, new_leases, strict=True)
                    ),
                    key=lambda r: r["n_id"],
                ),
            )
            for (i, num), lid, nl in zip(granted, lease_ids, new_leases, strict=True):
                results[i] = VisitOut("leased", num.e164, lid, num.id, pool_id, nl["expires_at"], touch_ids.get(i))
        short = idx[len(free) :]
        if short:
            conn.execute(
                pool_exhaustions.insert(),
                [{"pool_id": pool_id, "site_id": visits[i].site_id, "vid": visits[i].vid, "ts": visits[i].now} for i in short],
            )
            for i in short:
                results[i] = VisitOut("exhausted", pool_id=pool_id, touchpoint_id=touch_ids.get(i))

    for first, later in followers.items():
        for i in later:
            base = results[first]
            assert base is not None
            results[i] = VisitOut(
                base.outcome, base.e164, base.lease_id, base.number_id, base.pool_id, base.expires_at, touch_ids.get(i)
            )
    assert all(r is not None for r in results)
    return results  # type: ignore[return-value]


def _visitor_lock_key(site_id: int, vid: str) -> int:
    digest = hashlib.blake2b(f"{site_id}:{vid}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def _visitors_in(site_col: Any, vid_col: Any, visits: Sequence[VisitIn]) -> Any:
    """``(site_id, vid) IN visits`` written as ``site_id = ? AND vid IN (…)`` per site: SQLite
    plans a row-value IN as a scan, this form uses the (site_id, vid) indexes."""
    by_site: dict[int, set[str]] = defaultdict(set)
    for v in visits:
        by_site[v.site_id].add(v.vid)
    clauses = [sa.and_(site_col == site_id, vid_col.in_(sorted(vids))) for site_id, vids in sorted(by_site.items())]
    if not clauses:
        return sa.false()
    return clauses[0] if len(clauses) == 1 else sa.or_(*clauses)


def _end_leases(
    conn: Connection, lease_ids: Iterable[int], *, reason: str, at: float | None = None, due_by: float | None = None
) -> list[int]:
    """End open leases (at their deadline, or at ``at``) and log it; returns the ones ended.

    ``due_by``: end only leases whose deadline has passed by then. PostgreSQL re-checks this
    on a row another transaction renewed meanwhile, so a lease renewed after the sweeper
    picked it is left alone.
    """
    ids = sorted(set(lease_ids))
    if not ids:
        return []
    ended_at = leases.c.expires_at if at is None else sa.literal(at)
    due = [leases.c.expires_at <= due_by] if due_by is not None else []
    rows = conn.execute(
        leases.update()
        .where(leases.c.id.in_(ids), leases.c.ended_at.is_(None), *due)
        .values(ended_at=ended_at, end_reason=reason)
        .returning(leases.c.id, leases.c.ended_at)
    ).all()
    if rows:
        kind = {"expired": "expire", "released": "release", "retired": "retire"}[reason]
        conn.execute(
            lease_events.insert(),
            sorted(
                ({"lease_id": r.id, "kind": kind, "ts": r.ended_at, "expires_at": r.ended_at} for r in rows),
                key=lambda e: e["lease_id"],
            ),
        )
    return [r.id for r in rows]


def expire_leases_txn(conn: Connection, now: float, limit: int = 2000) -> int:
    """Close leases whose deadline has passed (logged at the deadline, not at the sweep)."""
    due = conn.execute(
        sa.select(leases.c.id)
        .where(leases.c.ended_at.is_(None), leases.c.expires_at <= now)
        .order_by(leases.c.id)
        .limit(limit)
    ).scalars().all()
    ended = _end_leases(conn, due, reason="expired", due_by=now)
    if ended:
        conn.execute(
            tracking_numbers.update()
            .where(tracking_numbers.c.current_lease_id.in_(ended))
            .values(current_lease_id=None)
        )
    return len(ended)


def count_open_leases_txn(conn: Connection) -> int:
    return int(conn.execute(sa.select(sa.func.count()).select_from(leases).where(leases.c.ended_at.is_(None))).scalar_one())


# -- the lease log ---------------------------------------------------------------------------


@dataclass(frozen=True)
class LeaseRecord:
    id: int
    pool_id: int
    number: str
    vid: str
    sid: str
    touchpoint_id: int | None
    started_at: float
    last_seen_at: float
    expires_at: float
    ended_at: float | None
    end_reason: str | None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "pool_id": self.pool_id,
            "number": self.number,
            "vid": self.vid,
            "sid": self.sid,
            "touchpoint_id": self.touchpoint_id,
            "started_at": self.started_at,
            "last_seen_at": self.last_seen_at,
            "expires_at": self.expires_at,
            "ended_at": self.ended_at,
            "end_reason": self.end_reason,
        }


def list_leases_txn(
    conn: Connection,
    account_id: int,
    *,
    pool_id: int | None = None,
    active_at: float | None = None,
    number: str | None = None,
    limit: int = 100,
) -> list[LeaseRecord]:
    """Leases of an account, newest first; ``active_at`` keeps those holding their number then."""
    q = (
        sa.select(leases, tracking_numbers.c.e164)
        .join(tracking_numbers, tracking_numbers.c.id == leases.c.number_id)
        .where(leases.c.account_id == account_id)
    )
    if pool_id is not None:
        q = q.where(leases.c.pool_id == pool_id)
    if number is not None:
        q = q.where(tracking_numbers.c.e164 == number)
    if active_at is not None:
        q = q.where(
            leases.c.started_at <= active_at,
            sa.func.coalesce(leases.c.ended_at, leases.c.expires_at) > active_at,
        )
    rows = conn.execute(q.order_by(leases.c.id.desc()).limit(limit)).all()
    return [
        LeaseRecord(
            r.id, r.pool_id, r.e164, r.vid, r.sid, r.touchpoint_id, r.started_at, r.last_seen_at, r.expires_at,
            r.ended_at, r.end_reason,
        )
        for r in rows
    ]


def lease_events_txn(conn: Connection, account_id: int, lease_id: int) -> list[tuple[str, float, float]]:
    rows = conn.execute(
        sa.select(lease_events.c.kind, lease_events.c.ts, lease_events.c.expires_at)
        .join(leases, leases.c.id == lease_events.c.lease_id)
        .where(lease_events.c.lease_id == lease_id, leases.c.account_id == account_id)
        .order_by(lease_events.c.id)
    ).all()
    return [(r.kind, r.ts, r.expires_at) for r in rows]


def pool_intervals_txn(
    conn: Connection, account_id: int, pool_id: int, since: float, until: float
) -> tuple[list[tuple[float, float]], list[float], int]:
    """For pool health: the (start, end) of leases overlapping [since, until), exhaustion
    times in it, and the pool's active number count."""
    get_pool_txn(conn, account_id, pool_id)
    end = sa.func.coalesce(leases.c.ended_at, leases.c.expires_at)
    spans = conn.execute(
        sa.select(leases.c.started_at, end.label("end"))
        .where(leases.c.pool_id == pool_id, leases.c.started_at < until, end > since)
        .order_by(leases.c.started_at)
    ).all()
    exhausted = conn.execute(
        sa.select(pool_exhaustions.c.ts)
        .where(pool_exhaustions.c.pool_id == pool_id, pool_exhaustions.c.ts >= since, pool_exhaustions.c.ts < until)
        .order_by(pool_exhaustions.c.ts)
    ).scalars().all()
    size = conn.execute(
        sa.select(sa.func.count()).where(tracking_numbers.c.pool_id == pool_id, tracking_numbers.c.status == "active")
    ).scalar_one()
    return [(float(s), float(e)) for s, e in spans], [float(t) for t in exhausted], int(size)


def pool_visits_txn(conn: Connection, account_id: int, pool_id: int, since: float, until: float) -> list[tuple[str, float]]:
    """(visitor, time) of every request the pool served or turned away: the simulator's input."""
    get_pool_txn(conn, account_id, pool_id)
    served = sa.select(leases.c.vid, leases.c.started_at.label("ts")).where(
        leases.c.pool_id == pool_id, leases.c.started_at >= since, leases.c.started_at < until
    )
    renewed = (
        sa.select(leases.c.vid, lease_events.c.ts)
        .join(leases, leases.c.id == lease_events.c.lease_id)
        .where(
            leases.c.pool_id == pool_id,
            lease_events.c.kind == "renew",
            lease_events.c.ts >= since,
            lease_events.c.ts < until,
        )
    )
    refused = sa.select(pool_exhaustions.c.vid, pool_exhaustions.c.ts).where(
        pool_exhaustions.c.pool_id == pool_id, pool_exhaustions.c.ts >= since, pool_exhaustions.c.ts < until
    )
    rows = conn.execute(sa.union_all(served, renewed, refused)).all()
    return sorted((r[0], float(r[1])) for r in rows)


# -- call matching ---------------------------------------------------------------------------


@dataclass(frozen=True)
class DialledNumber:
    """What a dialled number is to an account: 'static', 'pool', 'overflow' or None."""

    kind: str | None
    number: TrackingNumber | None = None
    pool: Pool | None = None


# Built once (building a select costs SQLAlchemy more than running it): the number and its
# pool, if any, in one statement.
_DIALLED = (
    sa.select(tracking_numbers, *[c.label("p_" + c.name) for c in pools.c])
    .outerjoin(pools, pools.c.id == tracking_numbers.c.pool_id)
    .where(tracking_numbers.c.e164 == sa.bindparam("e164"), tracking_numbers.c.account_id == sa.bindparam("account_id"))
)


def dialled_number_txn(conn: Connection, account_id: int, e164: str) -> DialledNumber:
    """The account's tracking number (retired ones too: old ads still ring) or pool overflow."""
    row = conn.execute(_DIALLED, {"e164": e164, "account_id": account_id}).one_or_none()
    if row is not None:
        number = _number(row)
        pool = None
        if number.kind == "pool" and row.p_id is not None:
            m = row._mapping
            pool = _pool(SimpleNamespace(**{c.name: m["p_" + c.name] for c in pools.c}))
        return DialledNumber(number.kind, number, pool)
    pool_row = conn.execute(
        sa.select(pools)
        .where(pools.c.account_id == account_id, pools.c.overflow_number == e164)
        .order_by(pools.c.retired_at.is_not(None), pools.c.id)
        .limit(1)
    ).one_or_none()
    if pool_row is not None:
        return DialledNumber("overflow", None, _pool(pool_row))
    return DialledNumber(None)


_TOUCH_SOURCE = (
    touchpoints.c.channel,
    touchpoints.c.utm_source,
    touchpoints.c.utm_medium,
    touchpoints.c.utm_campaign,
    touchpoints.c.utm_term,
    touchpoints.c.site_id,
)


def _touch_source(r: Any) -> dict[str, Any]:
    """A touchpoint's source columns, named as leads and calls keep them."""
    return {
        "channel": r.channel,
        "source": r.utm_source,
        "medium": r.utm_medium,
        "campaign": r.utm_campaign,
        "keyword": r.utm_term,
        "site_id": r.site_id,
    }


_LEASE_END = sa.func.coalesce(leases.c.ended_at, leases.c.expires_at)
_LEASE_SPANS = (
    sa.select(leases.c.id, leases.c.vid, leases.c.touchpoint_id, leases.c.started_at, _LEASE_END.label("until"), leases.c.ended_at, *_TOUCH_SOURCE)
    .outerjoin(touchpoints, touchpoints.c.id == leases.c.touchpoint_id)
    .where(leases.c.number_id == sa.bindparam("number_id"), leases.c.started_at <= sa.bindparam("until"), _LEASE_END >= sa.bindparam("since"))
    .order_by(leases.c.started_at)
    .limit(200)
)


def lease_spans_txn(
    conn: Connection, number_id: int, since: float, until: float
) -> tuple[list[tuple[Any, ...]], dict[int, dict[str, Any]]]:
    """(id, vid, touchpoint_id, started_at, until, open) of the number's leases overlapping
    [since, until], and the source of each lease's touchpoint (one statement)."""
    rows = conn.execute(_LEASE_SPANS, {"number_id": number_id, "since": since, "until": until}).all()
    spans = [(r.id, r.vid, r.touchpoint_id, float(r.started_at), float(r.until), r.ended_at is None) for r in rows]
    sources = {r.touchpoint_id: _touch_source(r) for r in rows if r.touchpoint_id is not None and r.site_id is not None}
    return spans, sources


def touchpoint_source_txn(conn: Connection, touchpoint_id: int) -> dict[str, Any] | None:
    """A touchpoint's source columns, named as leads and calls keep them."""
    r = conn.execute(sa.select(*_TOUCH_SOURCE).where(touchpoints.c.id == touchpoint_id)).one_or_none()
    return None if r is None else _touch_source(r)


def latest_touchpoint_txn(conn: Connection, site_id: int, vid: str, before: float) -> int | None:
    """The visitor's last touchpoint at or before ``before``: what brought them this time."""
    return conn.execute(
        sa.select(touchpoints.c.id)
        .where(touchpoints.c.site_id == site_id, touchpoints.c.vid == vid, touchpoints.c.ts <= before)
        .order_by(touchpoints.c.ts.desc(), touchpoints.c.id.desc())
        .limit(1)
    ).scalar_one_or_none()


def visitor_touchpoints_txn(conn: Connection, visitors: Sequence[tuple[int, str]]) -> list[dict[str, Any]]:
    """Every touchpoint of the given (site, visitor) pairs, oldest first."""
    if not visitors:
        return []
    cond = sa.or_(*[sa.and_(touchpoints.c.site_id == s, touchpoints.c.vid == v) for s, v in visitors[:100]])
    rows = conn.execute(sa.select(touchpoints).where(cond).order_by(touchpoints.c.ts, touchpoints.c.id).limit(1000)).all()
    return [
        {
            "id": r.id, "site_id": r.site_id, "vid": r.vid, "sid": r.sid, "ts": r.ts, "channel": r.channel, "url": r.url,
            "referrer": r.referrer, "source": r.utm_source, "medium": r.utm_medium, "campaign": r.utm_campaign,
            "keyword": r.utm_term, "content": r.utm_content,
            "click_ids": {k: getattr(r, k) for k in ("gclid", "gbraid", "wbraid", "msclkid", "yclid", "fbclid") if getattr(r, k)},
        }
        for r in rows
    ]
