"""``GET|PUT /v1/scoring/rules``: the account's qualification rules (PUT makes a new version)."""

from __future__ import annotations

from twisted.web.server import Request

from calltrack.accounts.service import AccountsService
from calltrack.scoring.rules import InvalidRules
from calltrack.scoring.service import ScoringService
from calltrack.web.auth import require_account
from calltrack.web.errors import ApiError
from calltrack.web.resource import Response, Router, json_body


class ScoringResources:
    def __init__(self, scoring: ScoringService, accounts: AccountsService) -> None:
        self._scoring = scoring
        self._accounts = accounts

    def register(self, router: Router) -> None:
        router.add("GET", r"/v1/scoring/rules", self.get, name="/v1/scoring/rules")
        router.add("PUT", r"/v1/scoring/rules", self.put, name="/v1/scoring/rules")

    async def get(self, request: Request) -> Response:
        account_id = await require_account(request, self._accounts)
        version, document = await self._scoring.rules(account_id)
        return Response(200, {"version": version, "rules": document})

    async def put(self, request: Request) -> Response:
        account_id = await require_account(request, self._accounts)
        try:
            version = await self._scoring.set_rules(account_id, json_body(request))
        except InvalidRules as e:
            raise ApiError(400, "invalid_rules", f"{e}; the active version stays") from None
        return Response(201, {"version": version, "note": "new leads are scored with it; `calltrack scoring backfill` re-scores the rest"})
