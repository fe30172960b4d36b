"""Statements SQLAlchemy cannot cache, written so that it can.

``insert(...).on_conflict_do_nothing()`` (both the SQLite and the PostgreSQL dialect, as of
SQLAlchemy 2.0.58) carries no cache key, so every execution compiles it again: about half a
millisecond each, several times per webhook. The same statement as ``text()`` is cached, and
``INSERT … ON CONFLICT (…) DO NOTHING [RETURNING …]`` reads the same on SQLite (3.35+) and
PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection


@lru_cache(maxsize=64)
def _insert_ignoring_conflicts(table: sa.Table, columns: tuple[str, ...], conflict: tuple[str, ...], returning: str | None) -> sa.TextClause:
    target = f" ({', '.join(conflict)})" if conflict else ""
    ret = f" RETURNING {returning}" if returning else ""
    sql = (
        f"INSERT INTO {table.name} ({', '.join(columns)}) VALUES ({', '.join(':' + c for c in columns)})"
        f" ON CONFLICT{target} DO NOTHING{ret}"
    )
    stmt = sa.text(sql).bindparams(*[sa.bindparam(c, type_=table.c[c].type) for c in columns])
    if returning:
        stmt = stmt.columns(table.c[returning])  # type: ignore[assignment]
    return stmt


def insert_ignoring_conflicts(
    conn: Connection, table: sa.Table, values: dict[str, Any], *, conflict: Sequence[str] = (), returning: str | None = None
) -> Any:
    """Insert a row unless it collides with a unique key; with ``returning``, the new row's
    column, or None when the row was already there."""
    columns = tuple(sorted(values))
    stmt = _insert_ignoring_conflicts(table, columns, tuple(conflict), returning)
    result = conn.execute(stmt, values)
    return result.scalar_one_or_none() if returning else None
