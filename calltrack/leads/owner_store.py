"""Lead owners (an account's managers) and assignment rules: ``*_txn`` functions."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from calltrack.db.schema import lead_events, leads, owner_rules, owners
from calltrack.leads.assignment import OwnerRule, parse_conditions, rule_owner


class OwnerError(ValueError):
    """Unknown owner, a name taken…; the message says which."""


@dataclass(frozen=True)
class Owner:
    id: int
    name: str
    email: str | None
    active: bool

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "email": self.email, "active": self.active}


def _owner(r: Any) -> Owner:
    return Owner(r.id, r.name, r.email, bool(r.active))


def add_owner_txn(conn: Connection, account_id: int, name: str, email: str | None, now: float) -> Owner:
    if conn.execute(sa.select(owners.c.id).where(owners.c.account_id == account_id, owners.c.name == name)).first():
        raise OwnerError(f"the account already has an owner named {name!r}")
    new_id = conn.execute(
        owners.insert().values(account_id=account_id, name=name, email=email, active=True, created_at=now).returning(owners.c.id)
    ).scalar_one()
    return Owner(new_id, name, email, True)


def update_owner_txn(conn: Connection, account_id: int, owner_id: int, changes: dict[str, Any]) -> Owner:
    result = conn.execute(owners.update().where(owners.c.id == owner_id, owners.c.account_id == account_id).values(**changes))
    if not result.rowcount:
        raise OwnerError(f"no owner {owner_id} in this account")
    return _owner(conn.execute(sa.select(owners).where(owners.c.id == owner_id)).one())


def owner_by_name_txn(conn: Connection, account_id: int, name: str) -> Owner | None:
    r = conn.execute(sa.select(owners).where(owners.c.account_id == account_id, owners.c.name == name)).one_or_none()
    return None if r is None else _owner(r)


def list_owners_txn(conn: Connection, account_id: int) -> list[dict[str, Any]]:
    """Owners with their lead counts (spam left out): all, open, customers."""
    counts = (
        sa.select(
            leads.c.owner,
            sa.func.count().label("leads"),
            sa.func.sum(sa.case((leads.c.stage.in_(("new", "contacted", "mql", "sql", "nurturing")), 1), else_=0)).label("open"),
            sa.func.sum(sa.case((leads.c.stage == "customer", 1), else_=0)).label("customers"),
        )
        .where(leads.c.account_id == account_id, leads.c.stage != "spam", leads.c.owner.is_not(None))
        .group_by(leads.c.owner)
        .subquery()
    )
    rows = conn.execute(
        sa.select(owners, counts.c.leads, counts.c.open, counts.c.customers)
        .outerjoin(counts, counts.c.owner == owners.c.name)
        .where(owners.c.account_id == account_id)
        .order_by(owners.c.id)
    ).all()
    return [
        _owner(r).to_json() | {"leads": int(r.leads or 0), "open": int(r.open or 0), "customers": int(r.customers or 0)}
        for r in rows
    ]


def add_rule_txn(conn: Connection, account_id: int, priority: int, when: Any, owner_id: int, now: float) -> OwnerRule:
    conditions = parse_conditions(when)
    if not conn.execute(sa.select(owners.c.id).where(owners.c.id == owner_id, owners.c.account_id == account_id)).first():
        raise OwnerError(f"no owner {owner_id} in this account")
    rule_id = conn.execute(
        owner_rules.insert()
        .values(account_id=account_id, priority=priority, conditions=json.dumps({k: sorted(v) for k, v in conditions}), owner_id=owner_id, created_at=now)
        .returning(owner_rules.c.id)
    ).scalar_one()
    return OwnerRule(rule_id, priority, conditions, owner_id)


def list_rules_txn(conn: Connection, account_id: int) -> list[OwnerRule]:
    rows = conn.execute(_RULES, {"account_id": account_id}).all()
    return [OwnerRule(r.id, r.priority, parse_conditions(json.loads(r.conditions)), r.owner_id) for r in rows]


def delete_rule_txn(conn: Connection, account_id: int, rule_id: int) -> bool:
    return bool(conn.execute(owner_rules.delete().where(owner_rules.c.id == rule_id, owner_rules.c.account_id == account_id)).rowcount)


_ACTIVE_OWNERS = (
    sa.select(owners.c.id, owners.c.name, owners.c.last_turn)
    .where(owners.c.account_id == sa.bindparam("account_id"), owners.c.active.is_(True))
    .order_by(owners.c.id)
)
# Several processes assigning at once take turns on the managers' rows (PostgreSQL).
_ACTIVE_OWNERS_LOCKED = _ACTIVE_OWNERS.with_for_update()
_RULES = sa.select(owner_rules).where(owner_rules.c.account_id == sa.bindparam("account_id")).order_by(owner_rules.c.priority, owner_rules.c.id)
_LAST_TURN = sa.select(sa.func.max(owners.c.last_turn)).where(owners.c.account_id == sa.bindparam("account_id"))


def assign_owner_txn(conn: Connection, account_id: int, lead_id: int, facts: dict[str, Any], at: float) -> str | None:
    """Give a new lead its owner: the first matching rule's, else the active manager whose turn
    it is (round robin that survives restarts and several processes: the managers' rows are
    locked while one is chosen). None when the account has no managers."""
    q = _ACTIVE_OWNERS_LOCKED if conn.dialect.name == "postgresql" else _ACTIVE_OWNERS
    active = conn.execute(q, {"account_id": account_id}).all()
    if not active:
        return None
    rule = rule_owner(list_rules_txn(conn, account_id), facts, {r.id for r in active})
    if rule is not None:
        chosen = next(r for r in active if r.id == rule.owner_id)
        actor = f"system:rule:{rule.id}"
    else:
        chosen = min(active, key=lambda r: (r.last_turn is not None, r.last_turn or 0, r.id))
        actor = "system:round_robin"
    turn = (conn.execute(_LAST_TURN, {"account_id": account_id}).scalar_one_or_none() or 0) + 1
    conn.execute(owners.update().where(owners.c.id == chosen.id).values(last_turn=turn))
    conn.execute(leads.update().where(leads.c.id == lead_id).values(owner=chosen.name))
    conn.execute(lead_events.insert().values(lead_id=lead_id, ts=at, field="owner", old=None, new=chosen.name, actor=actor))
    return str(chosen.name)
