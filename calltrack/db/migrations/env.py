"""Alembic environment: the engine comes from calltrack's config (see db/migrate.py)."""

from __future__ import annotations

from alembic import context

from calltrack.db.schema import metadata

config = context.config


def run_migrations_online() -> None:
    connection = config.attributes["connection"]
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


run_migrations_online()
