"""HTTP resources for outbound lead webhooks (the account API):

- ``GET|POST /v1/lead-webhooks``: the endpoints; POST answers the signing secret, once;
- ``GET|DELETE /v1/lead-webhooks/{id}``: one endpoint; DELETE stops it and cancels what it
  had pending (the log stays);
- ``GET /v1/lead-webhooks/{id}/deliveries``: the delivery log, newest first (``status``,
  ``lead_id``, ``limit``, ``cursor``);
- ``GET /v1/lead-webhooks/{id}/deliveries/{delivery}``: one delivery, its body and attempts;
- ``POST /v1/lead-webhooks/{id}/deliveries/{delivery}/resend``: send it again.
"""

from __future__ import annotations

from twisted.web.server import Request

from calltrack.accounts.service import AccountsService
from calltrack.leads.outbox import STATUSES, InvalidWebhook
from calltrack.leads.outbox_service import OutboxService
from calltrack.leads.outbox_store import OutboxConflict, OutboxError
from calltrack.web import params
from calltrack.web.auth import require_account
from calltrack.web.errors import ApiError
from calltrack.web.resource import Response, Router, json_body, query_params

_FIELDS = {"url", "events", "description"}


class LeadWebhookResources:
    def __init__(self, outbox: OutboxService, accounts: AccountsService) -> None:
        self._outbox = outbox
        self._accounts = accounts

    def register(self, router: Router) -> None:
        one = r"/v1/lead-webhooks/(?P<webhook_id>\d+)"
        router.add("GET", r"/v1/lead-webhooks", self.list, name="/v1/lead-webhooks")
        router.add("POST", r"/v1/lead-webhooks", self.add, name="/v1/lead-webhooks")
        router.add("GET", one, self.get, name="/v1/lead-webhooks/{id}")
        router.add("DELETE", one, self.remove, name="/v1/lead-webhooks/{id}")
        router.add("GET", one + r"/deliveries", self.deliveries, name="/v1/lead-webhooks/{id}/deliveries")
        router.add("GET", one + r"/deliveries/(?P<delivery_id>\d+)", self.delivery, name="/v1/lead-webhooks/{id}/deliveries/{delivery}")
        router.add(
            "POST", one + r"/deliveries/(?P<delivery_id>\d+)/resend", self.resend, name="/v1/lead-webhooks/{id}/deliveries/{delivery}/resend"
        )

    async def list(self, request: Request) -> Response:
        account_id = await require_account(request, self._accounts)
        return Response(200, {"webhooks": [w.to_json() for w in await self._outbox.list(account_id)]})

    async def add(self, request: Request) -> Response:
        """``{"url": "https://crm.example/hooks/calltrack", "events": ["lead.created"], "description": "…"}``
        (events: any of lead.created, lead.qualified, lead.stage_changed; all when left out)."""
        account_id = await require_account(request, self._accounts)
        body = json_body(request)
        unknown = sorted(set(body) - _FIELDS)
        if unknown:
            raise ApiError(400, "invalid_parameter", f"unknown field {unknown[0]!r} (known: {', '.join(sorted(_FIELDS))})")
        description = params.string(body.get("description"), "description", required=False) or ""
        try:
            webhook, secret = await self._outbox.add(account_id, body.get("url"), body.get("events"), description)
        except InvalidWebhook as e:
            raise ApiError(400, "invalid_webhook", str(e)) from None
        except OutboxConflict as e:
            raise ApiError(409, "too_many_webhooks", str(e)) from None
        return Response(201, webhook.to_json() | {"secret": secret})

    async def get(self, request: Request, webhook_id: str) -> Response:
        account_id = await require_account(request, self._accounts)
        webhook = await self._outbox.get(account_id, params.path_id(webhook_id, "lead webhook"))
        if webhook is None:
            raise ApiError(404, "not_found", "no such lead webhook in this account")
        return Response(200, webhook.to_json())

    async def remove(self, request: Request, webhook_id: str) -> Response:
        account_id = await require_account(request, self._accounts)
        try:
            cancelled = await self._outbox.remove(account_id, params.path_id(webhook_id, "lead webhook"))
        except OutboxError as e:
            raise ApiError(404, "not_found", str(e)) from None
        return Response(200, {"removed": True, "cancelled_deliveries": cancelled})

    async def deliveries(self, request: Request, webhook_id: str) -> Response:
        account_id = await require_account(request, self._accounts)
        q = query_params(request)
        status = q.get("status") or None
        if status is not None and status not in STATUSES:
            raise ApiError(400, "invalid_parameter", f"'status' must be one of {', '.join(STATUSES)}")
        limit = params.integer(q.get("limit"), "limit", default=50, minimum=1, maximum=500)
        try:
            found = await self._outbox.deliveries(
                account_id, params.path_id(webhook_id, "lead webhook"), status=status,
                lead_id=params.integer(q.get("lead_id"), "lead_id", minimum=1) if q.get("lead_id") else None,
                before_id=params.integer(q.get("cursor"), "cursor", minimum=1) if q.get("cursor") else None, limit=limit,
            )
        except OutboxError as e:
            raise ApiError(404, "not_found", str(e)) from None
        more = len(found) == limit
        return Response(200, {"deliveries": found, "next_cursor": found[-1]["id"] if found and more else None})

    async def delivery(self, request: Request, webhook_id: str, delivery_id: str) -> Response:
        account_id = await require_account(request, self._accounts)
        found = await self._outbox.delivery(account_id, params.path_id(webhook_id, "lead webhook"), params.path_id(delivery_id, "delivery"))
        if found is None:
            raise ApiError(404, "not_found", "no such delivery for this lead webhook")
        return Response(200, found)

    async def resend(self, request: Request, webhook_id: str, delivery_id: str) -> Response:
        account_id = await require_account(request, self._accounts)
        try:
            found = await self._outbox.resend(account_id, params.path_id(webhook_id, "lead webhook"), params.path_id(delivery_id, "delivery"))
        except OutboxError as e:
            raise ApiError(404, "not_found", str(e)) from None
        except OutboxConflict as e:
            raise ApiError(409, "webhook_removed", str(e)) from None
        return Response(202, found)
