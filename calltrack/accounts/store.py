"""Accounts (tenants), their API keys and their sites: ``*_txn`` functions over SQLAlchemy Core."""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from calltrack.db.schema import accounts, api_keys, sites


@dataclass(frozen=True)
class Account:
    id: int
    name: str
    timezone: str
    currency: str
    default_region: str


@dataclass(frozen=True)
class Site:
    id: int
    account_id: int
    name: str
    site_key: str
    allowed_domains: tuple[str, ...]
    own_number: str
    forward_to: str


def hash_api_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def new_api_key() -> str:
    # 192 random bits; the "ctk_" prefix lets secret scanners recognise a leaked key.
    return "ctk_" + secrets.token_urlsafe(24)


def new_site_key() -> str:
    # Public (it sits in the advertiser's HTML), so it only needs to be unguessable enough
    # that sites cannot be enumerated.
    return "site_" + secrets.token_urlsafe(12)


def create_account_txn(
    conn: Connection, *, name: str, timezone: str, currency: str, default_region: str, now: float
) -> Account:
    account_id = conn.execute(
        accounts.insert()
        .values(name=name, timezone=timezone, currency=currency, default_region=default_region, created_at=now)
        .returning(accounts.c.id)
    ).scalar_one()
    return Account(account_id, name, timezone, currency, default_region)


def get_account_txn(conn: Connection, account_id: int) -> Account | None:
    row = conn.execute(sa.select(accounts).where(accounts.c.id == account_id)).one_or_none()
    if row is None:
        return None
    return Account(row.id, row.name, row.timezone, row.currency, row.default_region)


def list_accounts_txn(conn: Connection) -> list[Account]:
    rows = conn.execute(sa.select(accounts).order_by(accounts.c.id)).all()
    return [Account(r.id, r.name, r.timezone, r.currency, r.default_region) for r in rows]


def add_api_key_txn(conn: Connection, account_id: int, *, label: str, now: float) -> str:
    """Create a key and return it in clear; only its hash is kept, so this is the one showing."""
    key = new_api_key()
    conn.execute(
        api_keys.insert().values(
            account_id=account_id, prefix=key[:10], key_hash=hash_api_key(key), label=label, created_at=now
        )
    )
    return key


def account_for_api_key_txn(conn: Connection, key: str) -> int | None:
    return conn.execute(
        sa.select(api_keys.c.account_id).where(
            api_keys.c.key_hash == hash_api_key(key), api_keys.c.revoked_at.is_(None)
        )
    ).scalar_one_or_none()


def revoke_api_key_txn(conn: Connection, account_id: int, prefix: str, *, now: float) -> int:
    return conn.execute(
        api_keys.update()
        .where(api_keys.c.account_id == account_id, api_keys.c.prefix == prefix, api_keys.c.revoked_at.is_(None))
        .values(revoked_at=now)
    ).rowcount


def _site(row: sa.Row) -> Site:  # type: ignore[type-arg]
    return Site(
        row.id,
        row.account_id,
        row.name,
        row.site_key,
        tuple(json.loads(row.allowed_domains)),
        row.own_number,
        row.forward_to,
    )


def add_site_txn(
    conn: Connection,
    account_id: int,
    *,
    name: str,
    allowed_domains: list[str],
    own_number: str,
    forward_to: str,
    now: float,
) -> Site:
    key = new_site_key()
    site_id = conn.execute(
        sites.insert()
        .values(
            account_id=account_id,
            name=name,
            site_key=key,
            allowed_domains=json.dumps(allowed_domains),
            own_number=own_number,
            forward_to=forward_to,
            created_at=now,
        )
        .returning(sites.c.id)
    ).scalar_one()
    return Site(site_id, account_id, name, key, tuple(allowed_domains), own_number, forward_to)


def site_by_key_txn(conn: Connection, site_key: str) -> Site | None:
    row = conn.execute(sa.select(sites).where(sites.c.site_key == site_key)).one_or_none()
    return None if row is None else _site(row)


def get_site_txn(conn: Connection, account_id: int, site_id: int) -> Site | None:
    row = conn.execute(
        sa.select(sites).where(sites.c.id == site_id, sites.c.account_id == account_id)
    ).one_or_none()
    return None if row is None else _site(row)


def list_sites_txn(conn: Connection, account_id: int) -> list[Site]:
    rows = conn.execute(sa.select(sites).where(sites.c.account_id == account_id).order_by(sites.c.id)).all()
    return [_site(r) for r in rows]


def first_site_of_account_named_txn(conn: Connection, account_name: str) -> Site | None:
    row = conn.execute(
        sa.select(sites)
        .join(accounts, accounts.c.id == sites.c.account_id)
        .where(accounts.c.name == account_name)
        .order_by(sites.c.id)
        .limit(1)
    ).one_or_none()
    return _site(row) if row is not None else None
