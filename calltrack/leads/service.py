"""FormsService: form submissions from pages (ct.js) and servers, stored once each."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from calltrack.accounts.store import Site
from calltrack.clock import Clock
from calltrack.db.pool import DBPool
from calltrack.leads import store
from calltrack.leads.forms import FormContact
from calltrack.leads.store import FormSubmission


class FormsService:
    def __init__(self, db: DBPool, clock: Clock) -> None:
        self._db = db
        self._clock = clock

    async def submit(
        self, site: Site, contact: FormContact, *, client_ref: str | None, vid: str | None, sid: str | None, url: str | None
    ) -> tuple[FormSubmission, bool]:
        """Store a submission; a repeat of the same ``client_ref`` returns the first one.

        Without a ``client_ref`` the content itself identifies the submission within its
        visitor's session, so a double click or a retried beacon is still stored once.
        """
        if not client_ref:
            digest = json.dumps([vid, sid, contact.fields], sort_keys=True, ensure_ascii=False)
            client_ref = "h:" + hashlib.blake2b(digest.encode("utf-8"), digest_size=16).hexdigest()
        values: dict[str, Any] = {
            "account_id": site.account_id,
            "site_id": site.id,
            "client_ref": client_ref,
            "vid": vid,
            "sid": sid,
            "ts": self._clock.seconds(),
            "url": url,
            "fields": contact.fields,
            "email": contact.email,
            "phone": contact.phone,
            "name": contact.name,
        }
        return await self._db.run("add_form_submission", store.add_submission_txn, values)

    async def list(self, account_id: int, *, limit: int = 100) -> list[FormSubmission]:
        return await self._db.run("list_form_submissions", store.list_submissions_txn, account_id, limit=limit)
