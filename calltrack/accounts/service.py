"""AccountsService: tenants, API keys and sites."""

from __future__ import annotations

import zoneinfo

from calltrack.accounts import store
from calltrack.accounts.store import Account, Site
from calltrack.clock import Clock
from calltrack.db.pool import DBPool
from calltrack.phones import InvalidPhoneNumber, to_e164
from calltrack.text import has_control

_KEY_CACHE_SECONDS = 30.0


class AccountError(ValueError):
    """Invalid account or site settings; the message names the field."""


def validate_domain(domain: str) -> str:
    d = domain.strip().lower().removeprefix("https://").removeprefix("http://").split("/")[0]
    if not d or len(d) > 253 or any(not (ch.isalnum() or ch in "-.:") for ch in d):
        raise AccountError(f"allowed domain {domain!r} is not a host name")
    return d


class AccountsService:
    def __init__(self, db: DBPool, clock: Clock) -> None:
        self._db = db
        self._clock = clock
        self._keys: dict[str, tuple[int | None, float]] = {}

    async def create_account(
        self, name: str, *, timezone: str = "UTC", currency: str = "USD", default_region: str = "US"
    ) -> tuple[Account, str]:
        """Create an account and its first API key (returned in clear, shown once)."""
        if not name.strip():
            raise AccountError("name is required")
        try:
            zoneinfo.ZoneInfo(timezone)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise AccountError(f"unknown time zone {timezone!r}") from None
        if len(currency) != 3 or not currency.isalpha():
            raise AccountError(f"currency {currency!r} is not an ISO 4217 code")
        if len(default_region) != 2 or not default_region.isalpha():
            raise AccountError(f"region {default_region!r} is not an ISO 3166 country code")
        now = self._clock.seconds()

        def txn(conn: object) -> tuple[Account, str]:
            account = store.create_account_txn(
                conn,  # type: ignore[arg-type]
                name=name.strip(),
                timezone=timezone,
                currency=currency.upper(),
                default_region=default_region.upper(),
                now=now,
            )
            return account, store.add_api_key_txn(conn, account.id, label="first key", now=now)  # type: ignore[arg-type]

        return await self._db.run("create_account", txn)

    async def get_account(self, account_id: int) -> Account | None:
        return await self._db.run("get_account", store.get_account_txn, account_id)

    async def add_api_key(self, account_id: int, label: str = "") -> str:
        return await self._db.run("add_api_key", store.add_api_key_txn, account_id, label=label, now=self._clock.seconds())

    async def authenticate(self, key: str) -> int | None:
        """The account a bearer key belongs to, or None (revocation shows within 30 s)."""
        now = self._clock.seconds()
        h = store.hash_api_key(key)
        cached = self._keys.get(h)
        if cached is not None and now - cached[1] < _KEY_CACHE_SECONDS:
            return cached[0]
        account_id = await self._db.run("authenticate", store.account_for_api_key_txn, key)
        if len(self._keys) > 10_000:
            self._keys.clear()
        self._keys[h] = (account_id, now)
        return account_id

    async def add_site(
        self,
        account: Account,
        *,
        name: str,
        allowed_domains: list[str],
        own_number: str,
        forward_to: str | None = None,
    ) -> Site:
        if not name.strip():
            raise AccountError("name is required")
        if has_control(name):
            raise AccountError("name contains control characters")  # PostgreSQL refuses NUL in text
        if not allowed_domains:
            raise AccountError("at least one allowed domain is required")
        domains = [validate_domain(d) for d in allowed_domains]
        try:
            own = to_e164(own_number, account.default_region)
            forward = to_e164(forward_to, account.default_region) if forward_to else own
        except InvalidPhoneNumber as e:
            raise AccountError(str(e)) from None
        return await self._db.run(
            "add_site",
            store.add_site_txn,
            account.id,
            name=name.strip(),
            allowed_domains=domains,
            own_number=own,
            forward_to=forward,
            now=self._clock.seconds(),
        )

    async def site_by_key(self, site_key: str) -> Site | None:
        return await self._db.run("site_by_key", store.site_by_key_txn, site_key)

    async def first_site_of_account_named(self, name: str) -> Site | None:
        return await self._db.run("first_site_of_account", store.first_site_of_account_named_txn, name)

    async def list_sites(self, account_id: int) -> list[Site]:
        return await self._db.run("list_sites", store.list_sites_txn, account_id)

    async def get_site(self, account_id: int, site_id: int) -> Site | None:
        return await self._db.run("get_site", store.get_site_txn, account_id, site_id)
