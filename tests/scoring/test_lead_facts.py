"""The facts the backfill reads (grouped queries per chunk, only the facts asked for, joined by
frames.facts_frame) are the facts a lead-by-lead reading of the tables gives, on a varied data
set: two accounts interleaved, people with several leads, several calls and forms per lead,
visitors on two sites, NULL durations and urls, tracking numbers or none."""

from __future__ import annotations

import math
import random
from typing import Any

import pandas as pd
import pytest
import sqlalchemy as sa

from calltrack.db.schema import accounts, calls, contact_visitors, contacts, form_submissions, leads, sites, touchpoints, tracking_numbers
from calltrack.scoring.frames import facts_frame
from calltrack.scoring.rules import DEFAULT_RULES, FACT_COLUMNS, needed_facts, parse_rules
from calltrack.scoring.store import lead_facts_txn

T0 = 1_767_225_600.0
ACCOUNT, OTHER = 1, 2


def build(engine: sa.Engine, seed: int = 7) -> None:
    rng = random.Random(seed)
    rows: dict[sa.Table, list[dict[str, Any]]] = {t: [] for t in (accounts, sites, tracking_numbers, contacts, leads, calls, form_submissions, contact_visitors, touchpoints)}
    for account in (ACCOUNT, OTHER):
        rows[accounts].append({"id": account, "name": f"a{account}", "timezone": "UTC", "currency": "USD", "default_region": "US", "created_at": T0})
        for site in (1, 2):
            sid = account * 10 + site
            rows[sites].append({"id": sid, "account_id": account, "name": f"s{sid}", "site_key": f"k{sid}", "allowed_domains": "[]",
                                "own_number": f"+1415555{sid:04d}", "forward_to": "+14155550101", "created_at": T0})
        for n in (1, 2):
            rows[tracking_numbers].append({"id": account * 10 + n, "account_id": account, "e164": f"+1415666{account * 10 + n:04d}", "kind": "static",
                                           "forward_to": "+14155550101", "status": "active", "created_at": T0})
    contact_account: dict[int, int] = {}
    for cid in range(1, 41):
        contact_account[cid] = rng.choice((ACCOUNT, OTHER))
        rows[contacts].append({"id": cid, "account_id": contact_account[cid], "phone": f"+1202555{cid:04d}", "created_at": T0, "updated_at": T0})
    texts = ["Google", "google", "bing", None, "Ünïcode", "Paid_Search"]
    visits = 0
    for lead_id in range(1, 121):
        cid = rng.randint(1, 40)
        account = contact_account[cid]
        at = T0 + rng.choice([0, 60, 60, 3600, 7200, rng.randint(0, 10**6)])  # some people's leads at the same second
        rows[leads].append({
            "id": lead_id, "account_id": account, "contact_id": cid, "site_id": account * 10 + 1, "kind": rng.choice(["call", "form", "callback"]),
            "form_type": rng.choice([None, "estimate", "Contact"]), "created_at": at, "last_activity_at": at,
            "channel": rng.choice(texts), "source": rng.choice(texts), "medium": rng.choice(texts), "campaign": rng.choice(texts),
            "number_id": rng.choice([None, account * 10 + 1, account * 10 + 2]),
        })
        for k in range(rng.choice([0, 0, 1, 1, 2, 3])):
            answered = rng.random() < 0.5
            rows[calls].append({
                "account_id": account, "provider": "pbx", "call_ref": f"c{lead_id}-{k}", "status": "completed", "started_at": at,
                "answered_at": at + 3 if answered else None, "duration": rng.choice([None, 0, rng.randint(1, 400)]),
                "lead_id": lead_id, "contact_id": cid, "created_at": at, "updated_at": at,
            })
        for k in range(rng.choice([0, 0, 1, 2])):
            rows[form_submissions].append({
                "account_id": account, "site_id": account * 10 + 1, "client_ref": f"f{lead_id}-{k}", "ts": at, "fields": "{}",
                "lead_id": lead_id, "contact_id": cid,
                **{field: rng.choice([None, value]) for field, value in
                   (("phone", "+12025550000"), ("email", "x@example.com"), ("name", "X"), ("company", "Y"), ("message", "hello"))},
            })
    for cid in range(1, 41):
        for _ in range(rng.choice([0, 1, 1, 2])):
            visits += 1
            site = contact_account[cid] * 10 + rng.choice((1, 2))
            rows[contact_visitors].append({"contact_id": cid, "site_id": site, "vid": f"v{visits}", "linked_at": T0})
            for k in range(rng.choice([1, 2, 4])):
                url = rng.choice([None, "https://x.example/", "https://x.example/a", "https://x.example/pricing?x=1"])
                rows[touchpoints].append({"account_id": contact_account[cid], "site_id": site, "vid": f"v{visits}", "sid": "s", "ts": T0 + k,
                                          "channel": "direct", "url": url, "sig": f"{visits}-{k}"})
    with engine.begin() as conn:
        for table, values in rows.items():
            if values:
                conn.execute(table.insert(), values)


def lead_by_lead(engine: sa.Engine, account_id: int) -> dict[int, dict[str, Any]]:
    """Every fact of every lead of the account, worked out in Python from the tables' rows."""
    with engine.connect() as conn:
        all_leads = conn.execute(sa.select(leads)).all()
        numbers = dict(conn.execute(sa.select(tracking_numbers.c.id, tracking_numbers.c.e164)).all())
        lead_calls = conn.execute(sa.select(calls)).all()
        forms = conn.execute(sa.select(form_submissions)).all()
        visitors = conn.execute(sa.select(contact_visitors)).all()
        touches = conn.execute(sa.select(touchpoints)).all()
    out = {}
    for lead in all_leads:
        if lead.account_id != account_id:
            continue
        its_calls = [c for c in lead_calls if c.lead_id == lead.id]
        its_forms = [f for f in forms if f.lead_id == lead.id]
        its_touches = [t for v in visitors if v.contact_id == lead.contact_id for t in touches if (t.site_id, t.vid) == (v.site_id, v.vid)]
        out[lead.id] = {
            "answered": any(c.answered_at is not None or (c.duration or 0) > 0 for c in its_calls),
            "duration": max([c.duration or 0 for c in its_calls], default=0),
            "first_time_caller": not any(o.contact_id == lead.contact_id and o.created_at < lead.created_at for o in all_leads),
            "created_at": lead.created_at,
            "pricing_page": any("pricing" in (t.url or "") for t in its_touches),
            "pages_viewed": len({t.url for t in its_touches if t.url is not None}),
            "touchpoints": len(its_touches),
            "kind": lead.kind, "channel": lead.channel, "source": lead.source, "medium": lead.medium, "campaign": lead.campaign,
            "tracking_number": numbers.get(lead.number_id), "form_type": lead.form_type,
            **{f"has_{field}": any(getattr(f, field) is not None for f in its_forms) for field in ("phone", "email", "name", "company", "message")},
        }
    return out


def records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """The frame's rows as dicts, a missing text as None (pandas holds it as NaN)."""
    return [{k: None if isinstance(v, float) and math.isnan(v) else v for k, v in row.items()} for row in frame.to_dict("records")]


FACT_SETS = [
    FACT_COLUMNS,
    tuple(sorted(needed_facts(parse_rules(DEFAULT_RULES)))),
    ("pages_viewed",),  # one grouped query alone
    ("kind", "has_company", "duration"),
    (),  # no fact at all: the leads' ids still come
]


@pytest.mark.parametrize("facts", FACT_SETS, ids=lambda f: ",".join(f) or "none")
def test_chunks_read_the_facts_a_lead_by_lead_reading_gives(engine, facts) -> None:
    build(engine)
    expected = lead_by_lead(engine, ACCOUNT)
    assert len(expected) > 40 and any(not v["first_time_caller"] for v in expected.values()) and any(v["pricing_page"] for v in expected.values())
    seen: list[int] = []
    after = 0
    with engine.connect() as conn:
        while (chunk := lead_facts_txn(conn, ACCOUNT, facts, after_id=after, limit=9)):
            frame = facts_frame(chunk)
            assert sorted(frame.columns) == sorted(facts)
            for lead_id, row in zip(frame.index.tolist(), records(frame), strict=True):
                assert row == {name: expected[lead_id][name] for name in facts}, lead_id
            seen += frame.index.tolist()
            after = chunk.last_id
    assert seen == sorted(expected)


def test_dirty_leads_far_apart_read_their_own_facts(engine) -> None:
    build(engine)
    expected = lead_by_lead(engine, ACCOUNT)
    wanted = sorted(expected)[::7] + [10**6]  # a lead that does not exist is left out
    with engine.connect() as conn:
        frame = facts_frame(lead_facts_txn(conn, ACCOUNT, FACT_COLUMNS, lead_ids=wanted))
        assert lead_facts_txn(conn, OTHER, FACT_COLUMNS, lead_ids=wanted).rows == []  # another account's leads
    assert frame.index.tolist() == wanted[:-1]
    for lead_id, row in zip(frame.index.tolist(), records(frame), strict=True):
        assert row == expected[lead_id], lead_id


def test_unknown_facts_are_refused(engine) -> None:
    with engine.connect() as conn, pytest.raises(ValueError, match="colour"):
        lead_facts_txn(conn, ACCOUNT, ("kind", "colour"))
