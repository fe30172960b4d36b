"""CostsService: ad spend imports (whole or not at all) and pricing models of bought leads."""

from __future__ import annotations

import csv
import io
from typing import Any

from calltrack.clock import Clock
from calltrack.db.pool import DBPool
from calltrack.reports import cost_store as store
from calltrack.reports.costs import CostProblem, PricingModel, read_costs, read_pricing


class CostsService:
    def __init__(self, db: DBPool, clock: Clock) -> None:
        self._db = db
        self._clock = clock

    async def import_csv(self, account_id: int, text: str, *, currency: str) -> dict[str, Any]:
        """Raises CostProblem (every bad line) and imports nothing then."""
        try:
            rows = read_costs(io.StringIO(text, newline=""), currency=currency)
        except csv.Error as e:
            raise CostProblem([(0, f"not a readable CSV ({e})")]) from None
        return await self._db.run("import_costs", store.replace_costs_txn, account_id, rows, self._clock.seconds())

    async def costs(self, account_id: int, first: str, last: str) -> list[tuple[Any, ...]]:
        return await self._db.run("costs", store.costs_txn, account_id, first, last)

    async def set_price(self, account_id: int, doc: Any) -> tuple[int, PricingModel]:
        """Raises ValueError naming the fault."""
        model = read_pricing(doc)
        return await self._db.run("set_pricing", store.set_pricing_txn, account_id, model, self._clock.seconds()), model

    async def prices(self, account_id: int) -> list[tuple[int, PricingModel]]:
        return await self._db.run("pricing", store.pricing_txn, account_id)

    async def delete_price(self, account_id: int, pricing_id: int) -> bool:
        return await self._db.run("delete_pricing", store.delete_pricing_txn, account_id, pricing_id)
