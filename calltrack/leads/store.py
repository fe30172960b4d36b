"""Form submissions in the database: ``*_txn`` functions."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection

from calltrack.db.schema import form_submissions


@dataclass(frozen=True)
class FormSubmission:
    id: int
    site_id: int
    client_ref: str
    vid: str | None
    sid: str | None
    ts: float
    url: str | None
    fields: dict[str, str]
    email: str | None
    phone: str | None
    name: str | None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id, "site_id": self.site_id, "vid": self.vid, "sid": self.sid, "ts": self.ts, "url": self.url,
            "fields": self.fields, "email": self.email, "phone": self.phone, "name": self.name,
        }


def _submission(r: Any) -> FormSubmission:
    return FormSubmission(r.id, r.site_id, r.client_ref, r.vid, r.sid, r.ts, r.url, json.loads(r.fields), r.email, r.phone, r.name)


def add_submission_txn(conn: Connection, values: dict[str, Any]) -> tuple[FormSubmission, bool]:
    """Store a submission once per (site, client_ref): (the stored one, whether it is new).

    INSERT … ON CONFLICT DO NOTHING: two deliveries of the same submission racing in two
    transactions both succeed, one storing it and the other finding it.
    """
    row = dict(values, fields=json.dumps(values["fields"], ensure_ascii=False, sort_keys=True))
    insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    new_id = conn.execute(
        insert(form_submissions).values(**row).on_conflict_do_nothing(index_elements=["site_id", "client_ref"]).returning(form_submissions.c.id)
    ).scalar_one_or_none()
    stored = conn.execute(
        sa.select(form_submissions).where(
            form_submissions.c.site_id == values["site_id"], form_submissions.c.client_ref == values["client_ref"]
        )
    ).one()
    return _submission(stored), new_id is not None


def list_submissions_txn(conn: Connection, account_id: int, *, limit: int = 100) -> list[FormSubmission]:
    rows = conn.execute(
        sa.select(form_submissions)
        .where(form_submissions.c.account_id == account_id)
        .order_by(form_submissions.c.id.desc())
        .limit(limit)
    ).all()
    return [_submission(r) for r in rows]
