"""Helpers for number tests: pools with numbers, and visits through the service."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from calltrack.app import App
from calltrack.numbers.inputs import new_number_from_json
from calltrack.numbers.rules import parse_rules
from calltrack.numbers.service import NumberAnswer, clean_visit
from tests.conftest import Tenant, resolve


def make_pool(
    app: App, tenant: Tenant, name: str, size: int, *, rules: dict[str, Any] | None = None, first: int = 10, **settings: Any
) -> Any:
    pool = resolve(
        app.numbers.create_pool(tenant.account.id, tenant.site, name=name, rules=parse_rules(rules or {"all": True}), **settings)
    )
    add_numbers(app, tenant, pool, [f"+1415555{first + i:04d}" for i in range(size)])
    return pool


def add_numbers(app: App, tenant: Tenant, pool: Any, numbers: list[str]) -> list[Any]:
    new = [
        new_number_from_json({"number": n, "pool_id": pool.id}, region="US", pools_by_id={pool.id: pool}, default_forward=tenant.site.forward_to)
        for n in numbers
    ]
    return resolve(app.numbers.add_numbers(tenant.account.id, new))


def visit(app: App, tenant: Tenant, vid: str | None = None, *, sid: str | None = None, bot: bool = False, **tags: str) -> NumberAnswer:
    ctx = resolve(app.numbers.site_context(tenant.site.site_key))
    v = clean_visit(dict(tags, vid=vid, sid=sid or (f"s-{vid}" if vid else None)))
    return resolve(app.numbers.number_for_visit(ctx, v, bot=bot))


def ping(app: App, tenant: Tenant, vid: str) -> NumberAnswer:
    ctx = resolve(app.numbers.site_context(tenant.site.site_key))
    return resolve(app.numbers.ping(ctx, vid, f"s-{vid}"))


def rows(app: App, sql: str, **params: Any) -> list[Any]:
    with app.engine.connect() as conn:
        return list(conn.execute(sa.text(sql), params).all())


def count(app: App, table: str) -> int:
    return int(rows(app, f"SELECT count(*) FROM {table}")[0][0])
