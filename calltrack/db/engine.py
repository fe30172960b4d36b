"""Create the SQLAlchemy engine for SQLite (embedded default) or PostgreSQL (psycopg 3)."""

from __future__ import annotations

import logging
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.pool import StaticPool

logger = logging.getLogger(__name__)


def is_sqlite(url: str | sa.URL) -> bool:
    return sa.make_url(url).get_backend_name() == "sqlite"


def normalise_url(url: str) -> str:
    """Accept ``postgresql://`` and ``postgres://`` as PostgreSQL through psycopg 3."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def create_engine(url: str, *, pool_size: int = 8, max_overflow: int = 4) -> Engine:
    """Build an engine with the settings each backend needs.

    SQLite: WAL (readers never wait for the writer), foreign keys on, a busy timeout so that
    a CLI command and the server can share the file, and ``BEGIN IMMEDIATE`` so a
    transaction takes the write lock up front instead of failing when it upgrades.

    ``hide_parameters``: a statement's values (secrets, phone numbers) never appear in an
    error's message, which tracebacks carry into the logs.
    """
    url = normalise_url(url)
    if is_sqlite(url):
        kwargs: dict[str, Any] = {}
        parsed = sa.make_url(url)
        if parsed.database in (None, "", ":memory:"):
            # One shared in-memory database for the whole process (tests).
            kwargs["poolclass"] = StaticPool
            kwargs["connect_args"] = {"check_same_thread": False}
        engine = sa.create_engine(url, hide_parameters=True, **kwargs)
        _configure_sqlite(engine)
        return engine
    return sa.create_engine(
        url, pool_size=pool_size, max_overflow=max_overflow, pool_pre_ping=True, future=True, hide_parameters=True
    )


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let us issue BEGIN ourselves (pysqlite's implicit BEGIN is DEFERRED).
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=10000")
        # FULL: a commit is on disk before we acknowledge it, even across a power loss.
        # Group commit (db/pool.py) pays one fsync per batch, not per request.
        cur.execute("PRAGMA synchronous=FULL")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: sa.Connection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")
