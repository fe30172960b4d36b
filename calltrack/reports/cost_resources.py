"""HTTP resources for ad spend and bought-lead prices (the account API):

- ``POST /v1/costs``: a cost CSV as the body (``text/csv``); replaces the file's period for
  its sources; 400 listing every bad line, and then nothing is imported;
- ``GET /v1/costs?from=YYYY-MM-DD&to=YYYY-MM-DD``: the rows and their totals;
- ``GET|POST /v1/pricing-models``, ``DELETE /v1/pricing-models/{id}``: prices per click, lead
  or action for bought leads.
"""

from __future__ import annotations


from twisted.web.server import Request

from calltrack.accounts.service import AccountsService
from calltrack.clock import Clock
from calltrack.reports.cost_service import CostsService
from calltrack.reports.costs import CostProblem
from calltrack.reports.service import account_today
from calltrack.web import params
from calltrack.web.auth import require_account, require_account_record
from calltrack.web.errors import ApiError
from calltrack.web.resource import Response, Router, body_bytes, json_body, query_params

MAX_DAYS = 731


class CostResources:
    def __init__(self, costs: CostsService, accounts: AccountsService, clock: Clock) -> None:
        self._costs = costs
        self._accounts = accounts
        self._clock = clock

    def register(self, router: Router) -> None:
        router.add("POST", r"/v1/costs", self.import_costs, name="/v1/costs")
        router.add("GET", r"/v1/costs", self.list, name="/v1/costs")
        router.add("GET", r"/v1/pricing-models", self.prices, name="/v1/pricing-models")
        router.add("POST", r"/v1/pricing-models", self.set_price, name="/v1/pricing-models")
        router.add("DELETE", r"/v1/pricing-models/(?P<pricing_id>\d+)", self.delete_price, name="/v1/pricing-models/{id}")

    async def import_costs(self, request: Request) -> Response:
        account = await require_account_record(request, self._accounts)
        try:
            text = body_bytes(request).decode("utf-8-sig")
        except UnicodeDecodeError:
            raise ApiError(400, "malformed_body", "the CSV is not UTF-8") from None
        try:
            result = await self._costs.import_csv(account.id, text, currency=account.currency)
        except CostProblem as e:
            raise ApiError(
                400, "invalid_costs", str(e), details={"problems": [{"line": line, "message": msg} for line, msg in e.problems[:100]]}
            ) from None
        return Response(201, result)

    async def list(self, request: Request) -> Response:
        account = await require_account_record(request, self._accounts)
        today = account_today(account, self._clock.seconds())
        first, last = params.day_range(query_params(request), today=today, default_days=31, max_days=MAX_DAYS)
        rows = await self._costs.costs(account.id, first.isoformat(), last.isoformat())
        keys = ("date", "source", "medium", "campaign", "keyword", "clicks", "impressions", "cost")
        totals = {"clicks": sum(r[5] for r in rows), "impressions": sum(r[6] for r in rows), "cost": round(sum(r[7] for r in rows), 2)}
        return Response(200, {"from": first.isoformat(), "to": last.isoformat(), "totals": totals, "costs": [dict(zip(keys, r, strict=True)) for r in rows]})

    async def prices(self, request: Request) -> Response:
        account_id = await require_account(request, self._accounts)
        return Response(200, {"pricing_models": [{"id": i, **p.to_json()} for i, p in await self._costs.prices(account_id)]})

    async def set_price(self, request: Request) -> Response:
        account_id = await require_account(request, self._accounts)
        try:
            pricing_id, model = await self._costs.set_price(account_id, json_body(request))
        except ValueError as e:
            raise ApiError(400, "invalid_pricing_model", str(e)) from None
        return Response(201, {"id": pricing_id, **model.to_json()})

    async def delete_price(self, request: Request, pricing_id: str) -> Response:
        account_id = await require_account(request, self._accounts)
        if not await self._costs.delete_price(account_id, params.path_id(pricing_id, "pricing model")):
            raise ApiError(404, "not_found", "no such pricing model in this account")
        return Response(204)
