"""HTTP resources for the account API: ``GET|POST /v1/sites``, ``GET /v1/sites/{id}``."""

from __future__ import annotations

from typing import Any

from twisted.web.server import Request

from calltrack.accounts.service import AccountError, AccountsService
from calltrack.accounts.store import Site
from calltrack.web import params
from calltrack.web.auth import require_account, require_account_record
from calltrack.web.errors import ApiError
from calltrack.web.resource import Response, Router, json_body


def site_json(site: Site) -> dict[str, Any]:
    return {
        "id": site.id,
        "name": site.name,
        "site_key": site.site_key,
        "allowed_domains": list(site.allowed_domains),
        "own_number": site.own_number,
        "forward_to": site.forward_to,
    }


class AccountResources:
    def __init__(self, accounts: AccountsService) -> None:
        self._accounts = accounts

    def register(self, router: Router) -> None:
        router.add("GET", r"/v1/sites", self.list_sites)
        router.add("POST", r"/v1/sites", self.add_site)
        router.add("GET", r"/v1/sites/(?P<site_id>\d+)", self.get_site, name="/v1/sites/{id}")

    async def list_sites(self, request: Request) -> Response:
        account_id = await require_account(request, self._accounts)
        return Response(200, {"sites": [site_json(s) for s in await self._accounts.list_sites(account_id)]})

    async def get_site(self, request: Request, site_id: str) -> Response:
        account_id = await require_account(request, self._accounts)
        site = await self._accounts.get_site(account_id, params.path_id(site_id, "site"))
        if site is None:
            raise ApiError(404, "not_found", f"site {site_id} not found")
        return Response(200, site_json(site))

    async def add_site(self, request: Request) -> Response:
        account = await require_account_record(request, self._accounts)
        body = json_body(request)
        domains = body.get("allowed_domains")
        if isinstance(domains, str):
            domains = [domains]
        if not isinstance(domains, list) or not all(isinstance(d, str) for d in domains):
            raise ApiError(400, "invalid_site", "'allowed_domains' must be a list of host names")
        for key in ("name", "own_number"):
            if not isinstance(body.get(key), str):
                raise ApiError(400, "invalid_site", f"'{key}' (a string) is required")
        forward = body.get("forward_to")
        if forward is not None and not isinstance(forward, str):
            raise ApiError(400, "invalid_site", "'forward_to' must be a phone number string")
        try:
            site = await self._accounts.add_site(
                account, name=body["name"], allowed_domains=domains, own_number=body["own_number"], forward_to=forward
            )
        except AccountError as e:
            raise ApiError(400, "invalid_site", str(e)) from None
        return Response(201, site_json(site))
