"""Ad spend and pricing models in the database (``*_txn``)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from calltrack.db.schema import ad_costs, pricing_models
from calltrack.reports.costs import CostRow, PricingModel, period


def replace_costs_txn(conn: Connection, account_id: int, rows: list[CostRow], now: float) -> dict[str, Any]:
    """The file's rows replace what the account had for the file's period and sources."""
    first, last, sources = period(rows)
    replaced = conn.execute(
        ad_costs.delete().where(
            ad_costs.c.account_id == account_id, ad_costs.c.day >= first, ad_costs.c.day <= last, ad_costs.c.source.in_(sources)
        )
    ).rowcount
    conn.execute(
        ad_costs.insert(),
        [
            dict(account_id=account_id, day=r.day, source=r.source, medium=r.medium, campaign=r.campaign, keyword=r.keyword,
                 clicks=r.clicks, impressions=r.impressions, cost=r.cost, currency=r.currency, imported_at=now)
            for r in rows
        ],
    )
    return {"imported": len(rows), "replaced": int(replaced or 0), "from": first, "to": last, "sources": sources}


def costs_txn(conn: Connection, account_id: int, first: str, last: str) -> list[tuple[Any, ...]]:
    """(day, source, medium, campaign, keyword, clicks, impressions, cost) for days in [first, last]."""
    c = ad_costs.c
    rows = conn.execute(
        sa.select(c.day, c.source, c.medium, c.campaign, c.keyword, c.clicks, c.impressions, c.cost)
        .where(c.account_id == account_id, c.day >= first, c.day <= last)
        .order_by(c.day, c.source, c.medium, c.campaign, c.keyword)
    ).all()
    return [tuple(r) for r in rows]


def set_pricing_txn(conn: Connection, account_id: int, p: PricingModel, now: float) -> int:
    """Add, or replace the price of the same source/medium/campaign."""
    m = pricing_models.c
    conn.execute(pricing_models.delete().where(m.account_id == account_id, m.source == p.source, m.medium == p.medium, m.campaign == p.campaign))
    return int(
        conn.execute(
            pricing_models.insert().returning(m.id),
            dict(account_id=account_id, source=p.source, medium=p.medium, campaign=p.campaign, model=p.model, stage=p.stage, price=p.price, created_at=now),
        ).scalar_one()
    )


def pricing_txn(conn: Connection, account_id: int) -> list[tuple[int, PricingModel]]:
    m = pricing_models.c
    rows = conn.execute(sa.select(pricing_models).where(m.account_id == account_id).order_by(m.source, m.medium, m.campaign)).all()
    return [(r.id, PricingModel(r.source, r.medium, r.campaign, r.model, float(r.price), r.stage)) for r in rows]


def delete_pricing_txn(conn: Connection, account_id: int, pricing_id: int) -> bool:
    m = pricing_models.c
    return bool(conn.execute(pricing_models.delete().where(m.id == pricing_id, m.account_id == account_id)).rowcount)
