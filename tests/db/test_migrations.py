"""Alembic's migrations produce exactly the tables in calltrack/db/schema.py."""

from __future__ import annotations

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from calltrack.db.migrate import current_revision, head_revision
from calltrack.db.schema import metadata


def test_migrations_match_the_metadata(engine: sa.Engine) -> None:
    assert current_revision(engine) == head_revision()
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), metadata)
    assert diff == []


def test_sqlite_pragmas(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from calltrack.db.engine import create_engine
    from calltrack.db.migrate import upgrade

    engine = create_engine(f"sqlite:///{tmp_path / 'x.db'}")
    upgrade(engine)
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    with engine.begin() as conn, __import__("pytest").raises(sa.exc.IntegrityError):
        conn.execute(sa.text("INSERT INTO sites (account_id, name, site_key, allowed_domains, own_number, forward_to, created_at) VALUES (999, 'x', 'k', '[]', '+1', '+1', 0)"))
    upgrade(engine)  # a second upgrade is a no-op
