"""FormsService and LeadsService: forms stored once and tied to leads; leads read back with
everything that happened to them."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from calltrack.accounts.store import Site
from calltrack.clock import Clock
from calltrack.config import LeadsConfig
from calltrack.db.pool import DBPool
from calltrack.leads import owner_store, store
from calltrack.leads.assignment import OwnerRule
from calltrack.leads.owner_store import Owner
from calltrack.leads.forms import FormContact
from calltrack.leads.store import FormSubmission, Lead, LeadFilters
from calltrack.numbers import store as numbers_store
from calltrack.telephony import store as calls_store


class FormsService:
    def __init__(self, db: DBPool, clock: Clock, config: LeadsConfig | None = None) -> None:
        self._db = db
        self._clock = clock
        self._repeat_window = (config or LeadsConfig()).repeat_window_days * 86400.0
        self.scoring: Any = None  # scores each new or changed lead off the hot path (app.py wires it)

    async def submit(
        self,
        site: Site,
        contact: FormContact,
        *,
        client_ref: str | None,
        vid: str | None,
        sid: str | None,
        url: str | None,
        form_type: str | None = None,
    ) -> tuple[FormSubmission, bool]:
        """Store a submission and tie it to its lead; a repeat of the same ``client_ref``
        returns the first one and changes nothing.

        Without a ``client_ref`` the content itself identifies the submission within its
        visitor's session, so a double click or a retried beacon is still stored once.
        """
        if not client_ref:
            digest = json.dumps([vid, sid, form_type, contact.fields], sort_keys=True, ensure_ascii=False)
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
            "company": contact.company,
            "message": contact.message,
            "form_type": form_type,
        }
        submission, new = await self._db.run("submit_form", store.submit_form_txn, values, repeat_window=self._repeat_window)
        if new and submission.lead_id is not None and self.scoring is not None:
            self.scoring.mark_dirty(site.account_id, submission.lead_id)
        return submission, new

    async def list(self, account_id: int, *, limit: int = 100) -> list[FormSubmission]:
        return await self._db.run("list_form_submissions", store.list_submissions_txn, account_id, limit=limit)


class LeadsService:
    def __init__(self, db: DBPool, clock: Clock, config: LeadsConfig | None = None) -> None:
        self._db = db
        self._clock = clock
        self._config = config or LeadsConfig()

    def to_json(self, lead: Lead) -> dict[str, Any]:
        """The lead as the API shows it, with its speed to lead as of now."""
        return lead.to_json() | {"speed": speed_to_lead(lead, self._clock.seconds(), self._config)}

    async def list(self, account_id: int, filters: LeadFilters) -> list[Lead]:
        return await self._db.run("list_leads", store.list_leads_txn, account_id, filters)

    async def detail(self, account_id: int, lead_id: int) -> dict[str, Any] | None:
        """The lead with its calls, forms and the person's touchpoints in time order, and the
        history of what sales and the rules changed."""
        detail = await self._db.run("lead_detail", _lead_detail_txn, account_id, lead_id)
        if detail is None:
            return None
        lead, body = detail
        speed = speed_to_lead(lead, self._clock.seconds(), self._config)
        calls = [item["call"] for item in body["timeline"] if item["type"] == "call"]
        # A person who rang, got nobody, and has had no answer from us since.
        speed["missed_not_called_back"] = bool(calls) and lead.first_response_at is None and all(c["answered_at"] is None for c in calls)
        return body | {"speed": speed}

    async def update(self, account_id: int, lead_id: int, outcome: dict[str, Any], *, actor: str) -> Lead:
        """Apply a sales outcome (raises LeadNotFound, InvalidTransition, InvalidOutcome)."""
        return await self._db.run("lead_outcome", store.apply_outcome_txn, account_id, lead_id, outcome, actor=actor, now=self._clock.seconds())

    def update_sync(self, account_id: int, lead_id: int, outcome: dict[str, Any], *, actor: str, now: float) -> Lead:
        return self._db.run_sync("lead_outcome", store.apply_outcome_txn, account_id, lead_id, outcome, actor=actor, now=now)

    def find_sync(self, account_id: int, *, phone: str | None, email: str | None) -> int | None:
        return self._db.run_sync("find_lead", store.find_lead_txn, account_id, phone=phone, email=email)


class OwnersService:
    """An account's managers and the rules that give them new leads."""

    def __init__(self, db: DBPool, clock: Clock) -> None:
        self._db = db
        self._clock = clock

    async def add(self, account_id: int, name: str, email: str | None) -> Owner:
        return await self._db.run("add_owner", owner_store.add_owner_txn, account_id, name, email, self._clock.seconds())

    async def update(self, account_id: int, owner_id: int, changes: dict[str, Any]) -> Owner:
        return await self._db.run("update_owner", owner_store.update_owner_txn, account_id, owner_id, changes)

    async def list(self, account_id: int) -> list[dict[str, Any]]:
        return await self._db.run("list_owners", owner_store.list_owners_txn, account_id)

    async def by_name(self, account_id: int, name: str) -> Owner | None:
        return await self._db.run("owner_by_name", owner_store.owner_by_name_txn, account_id, name)

    async def add_rule(self, account_id: int, priority: int, when: Any, owner_id: int) -> OwnerRule:
        return await self._db.run("add_owner_rule", owner_store.add_rule_txn, account_id, priority, when, owner_id, self._clock.seconds())

    async def rules(self, account_id: int) -> list[OwnerRule]:
        return await self._db.run("list_owner_rules", owner_store.list_rules_txn, account_id)

    async def delete_rule(self, account_id: int, rule_id: int) -> bool:
        return await self._db.run("delete_owner_rule", owner_store.delete_rule_txn, account_id, rule_id)


def speed_to_lead(lead: Lead, now: float, config: LeadsConfig) -> dict[str, Any]:
    """How fast the lead was answered: seconds to the first response, and where that stands
    against the target (default 5 minutes) and the limit (default 2 hours)."""
    target, limit = config.response_target_seconds, config.response_limit_seconds
    if lead.first_response_at is not None:
        seconds = max(0.0, lead.first_response_at - lead.created_at)
        status = "on_time" if seconds <= target else "late" if seconds <= limit else "too_late"
    else:
        seconds = None
        waited = now - lead.created_at
        status = "closed" if lead.stage in ("lost", "spam") else "waiting" if waited <= limit else "overdue"
    return {"first_response_at": lead.first_response_at, "response_seconds": seconds, "target_seconds": target, "limit_seconds": limit, "status": status}


def _lead_detail_txn(conn: Any, account_id: int, lead_id: int) -> tuple[Lead, dict[str, Any]] | None:
    lead = store.get_lead_txn(conn, account_id, lead_id)
    if lead is None:
        return None
    calls = calls_store.list_calls_txn(conn, account_id, lead_id=lead_id, limit=1000)
    forms = store.lead_forms_txn(conn, lead_id)
    visitors = store.contact_visitors_txn(conn, lead.contact["id"])
    if lead.source.get("vid") and lead.site_id and (lead.site_id, lead.source["vid"]) not in visitors:
        visitors.append((lead.site_id, lead.source["vid"]))
    touchpoints = numbers_store.visitor_touchpoints_txn(conn, visitors)
    timeline = (
        [{"type": "touchpoint", "ts": t["ts"], "touchpoint": t} for t in touchpoints]
        + [{"type": "call", "ts": c.started_at, "call": c.to_json()} for c in calls]
        + [{"type": "form", "ts": f.ts, "form": f.to_json()} for f in forms]
    )
    timeline.sort(key=lambda item: (item["ts"], ("touchpoint", "call", "form").index(item["type"])))
    history = store.lead_history_txn(conn, lead_id)
    return lead, lead.to_json() | {"visitors": [{"site_id": s, "vid": v} for s, v in visitors], "timeline": timeline, "history": history}
