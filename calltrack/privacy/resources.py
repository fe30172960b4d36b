"""HTTP resources for privacy (the account API):

- ``GET|PATCH /v1/account/retention``: days to keep recordings, caller numbers and form fields
  (``{"recordings_days": 90, "callers_days": null, "forms_days": 365}``; null keeps);
- ``POST /v1/contacts/erase``: ``{"phone": "…"}`` or ``{"email": "…"}``: erase that person's
  personal data from everything of this account (404 when the account has no such person);
- ``GET /v1/contacts/erasures``: the erasures made, newest first (when, by whom, how much).
"""

from __future__ import annotations

from twisted.web.server import Request

from calltrack.accounts.service import AccountsService
from calltrack.leads.resources import _actor
from calltrack.privacy.rules import InvalidRetention
from calltrack.privacy.service import InvalidPerson, PrivacyService
from calltrack.web import params
from calltrack.web.auth import require_account, require_account_record
from calltrack.web.errors import ApiError
from calltrack.web.resource import Response, Router, json_body, query_params

_PERSON = {"phone", "email"}


class PrivacyResources:
    def __init__(self, privacy: PrivacyService, accounts: AccountsService) -> None:
        self._privacy = privacy
        self._accounts = accounts

    def register(self, router: Router) -> None:
        router.add("GET", r"/v1/account/retention", self.retention, name="/v1/account/retention")
        router.add("PATCH", r"/v1/account/retention", self.set_retention, name="/v1/account/retention")
        router.add("POST", r"/v1/contacts/erase", self.erase, name="/v1/contacts/erase")
        router.add("GET", r"/v1/contacts/erasures", self.erasures, name="/v1/contacts/erasures")

    async def retention(self, request: Request) -> Response:
        account_id = await require_account(request, self._accounts)
        return Response(200, (await self._privacy.retention(account_id)).to_json())

    async def set_retention(self, request: Request) -> Response:
        account_id = await require_account(request, self._accounts)
        try:
            retention = await self._privacy.set_retention(account_id, json_body(request))
        except InvalidRetention as e:
            raise ApiError(400, "invalid_retention", str(e)) from None
        return Response(200, retention.to_json())

    async def erase(self, request: Request) -> Response:
        account = await require_account_record(request, self._accounts)
        body = json_body(request)
        unknown = sorted(set(body) - _PERSON)
        if unknown:
            raise ApiError(400, "invalid_parameter", f"unknown field {unknown[0]!r} (give 'phone' or 'email')")
        phone = params.string(body.get("phone"), "phone", required=False, max_length=64)
        email = params.string(body.get("email"), "email", required=False, max_length=254)
        try:
            erasure = await self._privacy.erase(account, phone=phone, email=email, actor=_actor(request))
        except InvalidPerson as e:
            raise ApiError(400, "invalid_parameter", str(e)) from None
        if erasure is None:
            raise ApiError(404, "not_found", "no such person in this account")
        return Response(200, erasure.to_json())

    async def erasures(self, request: Request) -> Response:
        account_id = await require_account(request, self._accounts)
        limit = params.integer(query_params(request).get("limit"), "limit", default=100, minimum=1, maximum=1000)
        return Response(200, {"erasures": [e.to_json() for e in await self._privacy.erasures(account_id, limit=limit)]})
