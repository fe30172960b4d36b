"""HTTP resources for forms and leads.

- ``POST|OPTIONS /v1/forms``: a form submission, from a page (ct.js, with the public site
  key) or from a server (``Authorization: Bearer`` with the account API key; then no
  browser checks apply, and the site must be the account's own);
- ``GET /v1/forms``, ``GET /v1/leads``, ``GET /v1/leads/{id}``: the account API.
"""

from __future__ import annotations

import re

from twisted.web.server import Request

from calltrack.accounts.service import AccountsService
from calltrack.accounts.store import Site
from calltrack.leads.forms import InvalidForm, read_form
from calltrack.leads.assignment import InvalidRule
from calltrack.leads.owner_store import OwnerError
from calltrack.leads.service import FormsService, LeadsService, OwnersService
from calltrack.leads.outcomes import read_outcome
from calltrack.leads.store import LeadFilters, LeadNotFound
from calltrack.scoring.stages import STAGES, InvalidOutcome, InvalidTransition
from calltrack.numbers.resources import PublicSiteGate
from calltrack.web import params
from calltrack.web.auth import require_account
from calltrack.web.errors import ApiError
from calltrack.web.resource import Response, Router, json_body, query_params, request_params

_FORM_TYPE = re.compile(r"^[a-z0-9][a-z0-9_\-]{0,63}$")
KINDS = ("call", "callback", "form")


class FormResources:
    def __init__(self, forms: FormsService, accounts: AccountsService, gate: PublicSiteGate) -> None:
        self._forms = forms
        self._accounts = accounts
        self._gate = gate

    def register(self, router: Router) -> None:
        router.add("POST", r"/v1/forms", self.submit, name="/v1/forms")
        router.add("OPTIONS", r"/v1/forms", self._gate.preflight, name="/v1/forms")
        router.add("GET", r"/v1/forms", self.list, name="/v1/forms")

    async def _site(self, request: Request, p: dict[str, object]) -> tuple[Site, dict[str, str]]:
        if request.getHeader("authorization"):
            account_id = await require_account(request, self._accounts)
            key = params.string(p.get("site"), "site", max_length=100)
            site = await self._accounts.site_by_key(key or "")
            if site is None or site.account_id != account_id:
                raise ApiError(404, "unknown_site", "this account has no site with this site key")
            return site, {}
        ctx, headers = await self._gate.open(request, p.get("site"), p.get("url"))
        return ctx.site, headers

    async def submit(self, request: Request) -> Response:
        p = request_params(request)
        site, headers = await self._site(request, p)
        vid = params.visitor_id(p.get("vid"), "vid")
        sid = params.visitor_id(p.get("sid"), "sid")
        client_ref = params.visitor_id(p.get("id"), "id")
        url = params.string(p.get("url"), "url", required=False, max_length=2048)
        form_type = params.string(p.get("form_type"), "form_type", required=False, max_length=64)
        if form_type is not None:
            form_type = form_type.strip().lower()
            if not _FORM_TYPE.match(form_type):
                raise ApiError(400, "invalid_parameter", "'form_type' must be 1-64 lower-case letters, digits, '_' or '-'")
        account = await self._accounts.get_account(site.account_id)
        assert account is not None
        try:
            contact = read_form(p.get("fields"), region=account.default_region)
        except InvalidForm as e:
            raise ApiError(400, "invalid_form", str(e)) from None
        submission, new = await self._forms.submit(
            site, contact, client_ref=client_ref, vid=vid, sid=sid, url=url, form_type=form_type
        )
        body = {"id": submission.id, "duplicate": not new, "lead_id": submission.lead_id}
        return Response(201 if new else 200, body, headers=headers)

    async def list(self, request: Request) -> Response:
        account_id = await require_account(request, self._accounts)
        limit = params.integer(query_params(request).get("limit"), "limit", default=100, minimum=1, maximum=1000)
        return Response(200, {"forms": [f.to_json() for f in await self._forms.list(account_id, limit=limit)]})


class LeadResources:
    def __init__(self, leads: LeadsService, accounts: AccountsService) -> None:
        self._leads = leads
        self._accounts = accounts

    def register(self, router: Router) -> None:
        router.add("GET", r"/v1/leads", self.list, name="/v1/leads")
        router.add("GET", r"/v1/leads/(?P<lead_id>\d+)", self.get, name="/v1/leads/{id}")
        router.add("PATCH", r"/v1/leads/(?P<lead_id>\d+)", self.patch, name="/v1/leads/{id}")

    async def list(self, request: Request) -> Response:
        """Leads newest first. Filters: from/to (creation time), source, campaign, channel,
        status (a stage; 'spam' lists the spam leads, which are otherwise left out), kind;
        pages with ``limit`` and the previous page's ``next_cursor``."""
        account_id = await require_account(request, self._accounts)
        q = query_params(request)
        stage = q.get("status") or None
        if stage is not None and stage not in STAGES:
            raise ApiError(400, "invalid_parameter", f"'status' must be one of {', '.join(STAGES)}")
        kind = q.get("kind") or None
        if kind is not None and kind not in KINDS:
            raise ApiError(400, "invalid_parameter", f"'kind' must be one of {', '.join(KINDS)}")
        filters = LeadFilters(
            since=params.timestamp(q.get("from"), "from", default=0.0) if q.get("from") else None,
            until=params.timestamp(q.get("to"), "to", default=0.0) if q.get("to") else None,
            source=params.string(q.get("source"), "source", required=False),
            campaign=params.string(q.get("campaign"), "campaign", required=False),
            channel=params.string(q.get("channel"), "channel", required=False, max_length=32),
            stage=stage,
            kind=kind,
            before_id=params.integer(q.get("cursor"), "cursor", minimum=1) if q.get("cursor") else None,
            limit=params.integer(q.get("limit"), "limit", default=100, minimum=1, maximum=1000),
        )
        leads = await self._leads.list(account_id, filters)
        more = len(leads) == filters.limit
        return Response(200, {"leads": [self._leads.to_json(lead) for lead in leads], "next_cursor": leads[-1].id if leads and more else None})

    async def get(self, request: Request, lead_id: str) -> Response:
        account_id = await require_account(request, self._accounts)
        detail = await self._leads.detail(account_id, params.path_id(lead_id, "lead"))
        if detail is None:
            raise ApiError(404, "not_found", "no such lead in this account")
        return Response(200, detail)

    async def patch(self, request: Request, lead_id: str) -> Response:
        """A sales outcome: stage, owner, value and currency, loss reason, BANT, notes."""
        account_id = await require_account(request, self._accounts)
        lead_number = params.path_id(lead_id, "lead")
        try:
            outcome = read_outcome(json_body(request))
            lead = await self._leads.update(account_id, lead_number, outcome, actor=_actor(request))
        except InvalidTransition as e:
            raise ApiError(409, "invalid_transition", str(e), details={"stage": e.current, "allowed": list(e.allowed)}) from None
        except InvalidOutcome as e:
            raise ApiError(400, "invalid_outcome", str(e)) from None
        except LeadNotFound:
            raise ApiError(404, "not_found", "no such lead in this account") from None
        return Response(200, self._leads.to_json(lead))


def _actor(request: Request) -> str:
    """Who made a change: the API key by its public prefix (the first 10 characters, as
    key listings show it), never the key."""
    key = (request.getHeader("authorization") or "").partition(" ")[2].strip()
    return "api:" + key[:10]


class OwnerResources:
    """``/v1/owners`` (managers, with their lead counts) and ``/v1/owner-rules``."""

    def __init__(self, owners: OwnersService, accounts: AccountsService) -> None:
        self._owners = owners
        self._accounts = accounts

    def register(self, router: Router) -> None:
        router.add("GET", r"/v1/owners", self.list, name="/v1/owners")
        router.add("POST", r"/v1/owners", self.add, name="/v1/owners")
        router.add("PATCH", r"/v1/owners/(?P<owner_id>\d+)", self.update, name="/v1/owners/{id}")
        router.add("GET", r"/v1/owner-rules", self.rules, name="/v1/owner-rules")
        router.add("POST", r"/v1/owner-rules", self.add_rule, name="/v1/owner-rules")
        router.add("DELETE", r"/v1/owner-rules/(?P<rule_id>\d+)", self.delete_rule, name="/v1/owner-rules/{id}")

    async def list(self, request: Request) -> Response:
        account_id = await require_account(request, self._accounts)
        return Response(200, {"owners": await self._owners.list(account_id)})

    async def add(self, request: Request) -> Response:
        account_id = await require_account(request, self._accounts)
        body = json_body(request)
        name = params.string(body.get("name"), "name")
        email = params.string(body.get("email"), "email", required=False, max_length=254)
        try:
            owner = await self._owners.add(account_id, (name or "").strip(), email)
        except OwnerError as e:
            raise ApiError(409, "owner_exists", str(e)) from None
        return Response(201, owner.to_json())

    async def update(self, request: Request, owner_id: str) -> Response:
        account_id = await require_account(request, self._accounts)
        body = json_body(request)
        changes: dict[str, object] = {}
        if "active" in body:
            if not isinstance(body["active"], bool):
                raise ApiError(400, "invalid_parameter", "'active' must be true or false")
            changes["active"] = body["active"]
        if "email" in body:
            changes["email"] = params.string(body["email"], "email", required=False, max_length=254)
        if not changes or set(body) - {"active", "email"}:
            raise ApiError(400, "invalid_parameter", "give 'active' and/or 'email' (and nothing else)")
        try:
            owner = await self._owners.update(account_id, params.path_id(owner_id, "owner"), changes)
        except OwnerError as e:
            raise ApiError(404, "not_found", str(e)) from None
        return Response(200, owner.to_json())

    async def rules(self, request: Request) -> Response:
        account_id = await require_account(request, self._accounts)
        names = {o["id"]: o["name"] for o in await self._owners.list(account_id)}
        return Response(200, {"rules": [r.to_json(names.get(r.owner_id)) for r in await self._owners.rules(account_id)]})

    async def add_rule(self, request: Request) -> Response:
        """``{"priority": 10, "when": {"source": "google"}, "owner": "Maria"}`` (or owner_id)."""
        account_id = await require_account(request, self._accounts)
        body = json_body(request)
        priority = params.integer(body.get("priority"), "priority", default=100, minimum=0, maximum=1_000_000)
        owner_id = body.get("owner_id")
        if owner_id is None:
            owner = await self._owners.by_name(account_id, params.string(body.get("owner"), "owner") or "")
            if owner is None:
                raise ApiError(404, "not_found", "no owner of that name in this account")
            owner_id = owner.id
        owner_id = params.integer(owner_id, "owner_id", minimum=1)
        try:
            rule = await self._owners.add_rule(account_id, priority, body.get("when"), owner_id)
        except InvalidRule as e:
            raise ApiError(400, "invalid_rule", str(e)) from None
        except OwnerError as e:
            raise ApiError(404, "not_found", str(e)) from None
        return Response(201, rule.to_json())

    async def delete_rule(self, request: Request, rule_id: str) -> Response:
        account_id = await require_account(request, self._accounts)
        if not await self._owners.delete_rule(account_id, params.path_id(rule_id, "rule")):
            raise ApiError(404, "not_found", "no such rule in this account")
        return Response(204)
