"""Read-only report links (``*_txn``): a token shown once, stored hashed."""

from __future__ import annotations

import secrets
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from calltrack.accounts.store import hash_api_key
from calltrack.db.schema import report_links


def new_token() -> str:
    return "rpt_" + secrets.token_urlsafe(24)


def add_link_txn(conn: Connection, account_id: int, token: str, *, label: str, now: float, expires_at: float | None) -> int:
    return int(
        conn.execute(
            report_links.insert().returning(report_links.c.id),
            dict(account_id=account_id, token_hash=hash_api_key(token), label=label, created_at=now, expires_at=expires_at),
        ).scalar_one()
    )


def account_of_link_txn(conn: Connection, token: str, now: float) -> int | None:
    r = report_links.c
    found = conn.execute(
        sa.select(r.account_id).where(
            r.token_hash == hash_api_key(token), r.revoked_at.is_(None), sa.or_(r.expires_at.is_(None), r.expires_at > now)
        )
    ).scalar_one_or_none()
    return None if found is None else int(found)


def links_txn(conn: Connection, account_id: int) -> list[dict[str, Any]]:
    r = report_links.c
    rows = conn.execute(sa.select(report_links).where(r.account_id == account_id).order_by(r.id)).all()
    return [{"id": x.id, "label": x.label, "created_at": x.created_at, "expires_at": x.expires_at, "revoked_at": x.revoked_at} for x in rows]


def revoke_link_txn(conn: Connection, account_id: int, link_id: int, now: float) -> bool:
    r = report_links.c
    return bool(conn.execute(report_links.update().where(r.id == link_id, r.account_id == account_id, r.revoked_at.is_(None)).values(revoked_at=now)).rowcount)
