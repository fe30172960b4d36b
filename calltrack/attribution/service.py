"""AttributionService: an account's touches and conversions from the database, the models of
``calltrack.attribution`` over them on the compute pool, a frame per model.

The same frames serve the API (``GET /v1/attribution``), the CLI (``calltrack attribute``) and
the reports. Turning the stored rows into the models' frames is pure and lives here too:
``touches_frame`` and ``conversions_frame``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from calltrack import attribution
from calltrack.attribution import store
from calltrack.attribution.levels import LEVELS, add_levels
from calltrack.compute import ComputePool
from calltrack.db.pool import DBPool
from calltrack.reports.spreadsheet import frame_to_csv

DAY = 86400.0
DATA_DRIVEN = ("markov", "shapley")


@dataclass(frozen=True)
class Query:
    models: tuple[str, ...]
    stage: str = "mql"
    since: float = 0.0
    until: float = 0.0
    level: str = "channel"
    lookback_days: int = 30
    options: dict[str, Any] = field(default_factory=dict)
    ci: bool = False
    samples: int = 200
    seed: int = 0


@dataclass(frozen=True)
class ModelResult:
    model: str
    frame: pd.DataFrame  # indexed by the level: conversions, value (and low, high with ci)


@dataclass(frozen=True)
class Result:
    query: Query
    results: list[ModelResult]
    conversions: int  # conversions in the period
    attributed: int  # of which had a touch in their lookback window
    value: float
    touches: int
    persons: int

    def to_json(self) -> dict[str, Any]:
        q = self.query
        level = q.level
        return {
            "stage": q.stage, "level": level, "from": q.since, "to": q.until, "lookback_days": q.lookback_days,
            "conversions": self.conversions, "attributed": self.attributed, "unattributed": self.conversions - self.attributed,
            "value": round(self.value, 2), "touches": self.touches, "persons": self.persons,
            "results": [
                {"model": r.model, "rows": [{level: str(idx), **{k: _num(v) for k, v in row.items()}} for idx, row in r.frame.iterrows()]}
                for r in self.results
            ],
        }

    def long_frame(self) -> pd.DataFrame:
        """One row per (model, level value): the CSV rendering."""
        parts = [r.frame.assign(model=r.model).reset_index().set_index(["model", self.query.level]) for r in self.results]
        return pd.concat(parts) if parts else pd.DataFrame()


def _num(v: Any) -> Any:
    if isinstance(v, (float, np.floating)):
        return None if not np.isfinite(v) else round(float(v), 6)
    return v


# -- the stored rows as the models' frames (pure) -------------------------------------------------


def touches_frame(web_rows: Sequence[tuple[Any, ...]], call_rows: Sequence[tuple[Any, ...]], levels: Sequence[str] = LEVELS) -> pd.DataFrame:
    """touch_id, person_id, ts and every level column (levels.add_levels). A touch of an
    anonymous visitor gets a negative person id of its own visitor (sorted, so the same data
    gives the same ids); call touches have negative touch ids (touchpoint ids are positive)."""
    web = pd.DataFrame(list(web_rows), columns=list(store.WEB_TOUCH_COLUMNS))
    anon = web["contact_id"].isna()
    person = web["contact_id"].astype("float64")
    if anon.any():
        keys = web.loc[anon, "site_id"].astype(str) + ":" + web.loc[anon, "vid"].astype(str)
        codes, _ = pd.factorize(keys, sort=True)
        person.loc[anon] = -(codes.astype("float64") + 1)
    web["person_id"] = person.astype("int64")
    web["tracking_number"] = None
    call = pd.DataFrame(list(call_rows), columns=list(store.CALL_TOUCH_COLUMNS))
    call["touch_id"] = -call["touch_id"].astype("int64")
    call["person_id"] = call["contact_id"].astype("int64")
    call["source"] = call["source"].where(call["source"].notna(), call["placement"])
    call["url"] = None
    call["referrer"] = None
    columns = ["touch_id", "person_id", "ts", "channel", "source", "medium", "campaign", "keyword", "url", "referrer", "tracking_number"]
    both = pd.concat([web[columns], call[columns]], ignore_index=True) if len(call) else web[columns]
    both["ts"] = both["ts"].astype("float64")
    # Only the asked levels are named: a year of touches is millions of rows.
    return add_levels(both, levels=set(levels))[["touch_id", "person_id", "ts", *levels]]


def conversions_frame(lead_rows: Sequence[tuple[Any, ...]], stage_rows: Sequence[tuple[Any, ...]], stage: str, since: float, until: float) -> pd.DataFrame:
    """conversion_id (the lead), person_id, ts (when the lead reached ``stage``), value, lead_ts,
    lead_touch_id, opportunity_ts, for conversions within [since, until)."""
    lead = pd.DataFrame(list(lead_rows), columns=list(store.LEAD_COLUMNS)).set_index("lead_id")
    firsts = pd.DataFrame(list(stage_rows), columns=list(store.STAGE_TIME_COLUMNS)).pivot_table(
        index="lead_id", columns="stage", values="first_at", aggfunc="min"
    )
    firsts = firsts.reindex(index=lead.index, columns=["mql", "sql", "customer"])
    firsts["customer"] = firsts["customer"].fillna(lead["converted_at"].astype("float64"))
    if stage == "lead":
        ts = lead["created_at"].astype("float64")
    else:
        ts = firsts[list(store.REACHED[stage])].min(axis=1)
    out = pd.DataFrame(
        {
            "conversion_id": lead.index.astype("int64"),
            "person_id": lead["contact_id"].astype("int64"),
            "ts": ts,
            "value": lead["value"].astype("float64").fillna(0.0),
            "lead_ts": lead["created_at"].astype("float64"),
            "lead_touch_id": lead["touchpoint_id"].astype("Int64"),
            "opportunity_ts": firsts[["sql", "customer"]].min(axis=1),
        }
    )
    out = out[out["ts"].notna() & (out["ts"] >= since) & (out["ts"] < until)]
    return out.sort_values(["ts", "conversion_id"]).reset_index(drop=True)


def compute(web_rows: Any, call_rows: Any, lead_rows: Any, stage_rows: Any, q: Query) -> Result:
    """Pure: the stored rows → every asked model's frame (the journeys prepared once)."""
    touches = touches_frame(web_rows, call_rows, (q.level,))
    conversions = conversions_frame(lead_rows, stage_rows, q.stage, q.since, q.until)
    options = {m: {k: v for k, v in q.options.items() if k in attribution.DEFAULT_OPTIONS[m]} for m in q.models}
    frames = attribution.attribute_many(
        touches, conversions, q.models, lookback_days=q.lookback_days, level=q.level, options={m: o for m, o in options.items() if o}
    )
    results = []
    for model in q.models:
        frame = frames[model]
        if q.ci and model in DATA_DRIVEN and len(frame):
            interval = attribution.bootstrap(
                touches, conversions, model, n=q.samples, seed=q.seed, lookback_days=q.lookback_days, level=q.level, **options[model]
            )
            frame = frame.join(interval[["low", "high"]])
        results.append(ModelResult(model, frame))
    unattributed = int(frames[q.models[0]].attrs.get("unattributed", 0)) if q.models else 0
    return Result(
        q, results, conversions=len(conversions), attributed=len(conversions) - unattributed, value=float(conversions["value"].sum()),
        touches=len(touches), persons=int(touches["person_id"].nunique()),
    )


def render(result: Result, fmt: str) -> bytes:
    """Pure: the result as CSV (one row per model and level value) or JSON bytes."""
    if fmt == "csv":
        return frame_to_csv(result.long_frame())
    return json.dumps(result.to_json(), separators=(",", ":"), ensure_ascii=False).encode("utf-8")


class AttributionService:
    def __init__(self, db: DBPool, compute_pool: ComputePool) -> None:
        self._db = db
        self._compute = compute_pool

    async def attribute(self, account_id: int, q: Query) -> Result:
        start = q.since - q.lookback_days * DAY
        web = await self._db.run("attribution_web_touches", store.web_touches_txn, account_id, start, q.until)
        calls = await self._db.run("attribution_call_touches", store.call_touches_txn, account_id, start, q.until)
        lead_rows = await self._db.run("attribution_leads", store.leads_txn, account_id, q.until)
        stage_rows = await self._db.run("attribution_stages", store.stage_times_txn, account_id, q.until)
        return await self._compute.run(compute, web, calls, lead_rows, stage_rows, q)

    async def attribute_rendered(self, account_id: int, q: Query, fmt: str) -> bytes:
        """``attribute`` rendered as ``json`` or ``csv`` bytes, off the reactor thread."""
        return await self._compute.run(render, await self.attribute(account_id, q), fmt)

    def attribute_sync(self, account_id: int, q: Query, *, on_rows: Callable[[int], None] | None = None) -> Result:
        """For the CLI: ``on_rows`` hears the touches read, a chunk at a time."""
        start = q.since - q.lookback_days * DAY
        web = self._db.run_sync("attribution_web_touches", store.web_touches_txn, account_id, start, q.until, on_rows=on_rows)
        calls = self._db.run_sync("attribution_call_touches", store.call_touches_txn, account_id, start, q.until, on_rows=on_rows)
        lead_rows = self._db.run_sync("attribution_leads", store.leads_txn, account_id, q.until)
        stage_rows = self._db.run_sync("attribution_stages", store.stage_times_txn, account_id, q.until)
        return compute(web, calls, lead_rows, stage_rows, q)
