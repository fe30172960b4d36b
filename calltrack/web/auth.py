"""Account authentication: ``Authorization: Bearer <api key>``."""

from __future__ import annotations

from twisted.web.server import Request

from calltrack.accounts.service import AccountsService
from calltrack.accounts.store import Account
from calltrack.web.errors import ApiError


async def require_account(request: Request, accounts: AccountsService) -> int:
    """The id of the account whose key the request carries; 401 otherwise."""
    header = request.getHeader("authorization") or ""
    scheme, _, key = header.partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        raise ApiError(
            401,
            "unauthenticated",
            "this endpoint needs an account API key: Authorization: Bearer <key>",
            headers={"WWW-Authenticate": "Bearer"},
        )
    account_id = await accounts.authenticate(key.strip())
    if account_id is None:
        raise ApiError(401, "invalid_api_key", "the API key is unknown or revoked", headers={"WWW-Authenticate": "Bearer"})
    return account_id


async def require_account_record(request: Request, accounts: AccountsService) -> Account:
    """The account itself (time zone, currency, region) for handlers that need more than its id."""
    account = await accounts.get_account(await require_account(request, accounts))
    if account is None:  # pragma: no cover - a key outlived its account
        raise ApiError(401, "invalid_api_key", "the API key's account no longer exists")
    return account
