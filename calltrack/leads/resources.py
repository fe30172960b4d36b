"""HTTP resources for form submissions: ``POST|OPTIONS /v1/forms`` (site key, from pages or
servers) and ``GET /v1/forms`` (account API)."""

from __future__ import annotations

from twisted.web.server import Request

from calltrack.accounts.service import AccountsService
from calltrack.leads.forms import InvalidForm, read_form
from calltrack.leads.service import FormsService
from calltrack.numbers.resources import PublicSiteGate
from calltrack.web import params
from calltrack.web.auth import require_account
from calltrack.web.errors import ApiError
from calltrack.web.resource import Response, Router, query_params, request_params


class FormResources:
    def __init__(self, forms: FormsService, accounts: AccountsService, gate: PublicSiteGate) -> None:
        self._forms = forms
        self._accounts = accounts
        self._gate = gate

    def register(self, router: Router) -> None:
        router.add("POST", r"/v1/forms", self.submit, name="/v1/forms")
        router.add("OPTIONS", r"/v1/forms", self._gate.preflight, name="/v1/forms")
        router.add("GET", r"/v1/forms", self.list, name="/v1/forms")

    async def submit(self, request: Request) -> Response:
        p = request_params(request)
        ctx, headers = await self._gate.open(request, p.get("site"), p.get("url"))
        vid = params.visitor_id(p.get("vid"), "vid")
        sid = params.visitor_id(p.get("sid"), "sid")
        client_ref = params.visitor_id(p.get("id"), "id")
        url = params.string(p.get("url"), "url", required=False, max_length=2048)
        account = await self._accounts.get_account(ctx.site.account_id)
        assert account is not None
        try:
            contact = read_form(p.get("fields"), region=account.default_region)
        except InvalidForm as e:
            raise ApiError(400, "invalid_form", str(e)) from None
        submission, new = await self._forms.submit(ctx.site, contact, client_ref=client_ref, vid=vid, sid=sid, url=url)
        return Response(201 if new else 200, {"id": submission.id, "duplicate": not new}, headers=headers)

    async def list(self, request: Request) -> Response:
        account_id = await require_account(request, self._accounts)
        limit = params.integer(query_params(request).get("limit"), "limit", default=100, minimum=1, maximum=1000)
        return Response(200, {"forms": [f.to_json() for f in await self._forms.list(account_id, limit=limit)]})
