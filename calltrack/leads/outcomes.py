"""Sales outcomes as the API and CRM exports send them: checked into plain values. Pure.

``PATCH /v1/leads/{id}`` takes a JSON object; ``calltrack leads import-outcomes`` a CSV whose
rows name the lead by ``lead_id`` (or by the person's ``phone``/``email``) and carry the same
fields, BANT as ``budget``/``authority``/``need``/``timing`` columns (yes/no).
"""

from __future__ import annotations

import csv
import math
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from calltrack.scoring.stages import BANT_KEYS, STAGES, InvalidOutcome, read_bant

_CURRENCY = re.compile(r"^[A-Z]{3}$")
_AMOUNT = re.compile(r"^(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d{1,2})?$")
_LIMITS = {"owner": 200, "loss_reason": 200, "spam_reason": 64, "notes": 5000}
MAX_VALUE = 999_999_999_999.99  # Numeric(14, 2)
FIELDS = ("stage", "owner", "value", "currency", "loss_reason", "spam_reason", "bant", "notes")


def read_outcome(body: Mapping[str, Any]) -> dict[str, Any]:
    """The fields present in ``body``, checked; null clears owner, value, loss reason, notes."""
    if not isinstance(body, Mapping) or not body:
        raise InvalidOutcome(f"give at least one of {', '.join(FIELDS)}")
    out: dict[str, Any] = {}
    for key, value in body.items():
        if key not in FIELDS:
            raise InvalidOutcome(f"{str(key)[:40]!r} is not a lead field (known: {', '.join(FIELDS)})")
        if key == "stage":
            if value not in STAGES:
                raise InvalidOutcome(f"stage must be one of {', '.join(STAGES)}")
            out[key] = value
        elif key == "bant":
            out[key] = read_bant(value)
        elif key == "value":
            rounded = None if value is None or isinstance(value, bool) or not isinstance(value, (int, float)) else round(float(value), 2)
            if value is not None and (rounded is None or not math.isfinite(rounded) or not 0 <= rounded <= MAX_VALUE):
                raise InvalidOutcome("value must be a number between 0 and 999999999999.99, or null")
            out[key] = rounded
        elif key == "currency":
            if value is not None and (not isinstance(value, str) or not _CURRENCY.match(value.upper())):
                raise InvalidOutcome("currency must be a 3-letter ISO 4217 code")
            out[key] = None if value is None else value.upper()
        else:
            if value is not None and not isinstance(value, str):
                raise InvalidOutcome(f"{key} must be a string or null")
            text = None if value is None else "".join(ch for ch in value if ch >= " " or ch in "\n\t").strip() or None
            if text is not None and len(text) > _LIMITS[key]:
                raise InvalidOutcome(f"{key} is longer than {_LIMITS[key]} characters")
            out[key] = text
    return out


@dataclass(frozen=True)
class OutcomeRow:
    line: int
    lead_id: int | None
    phone: str | None
    email: str | None
    outcome: dict[str, Any]


@dataclass(frozen=True)
class OutcomeProblem:
    line: int
    message: str


_YES = {"yes", "y", "true", "1"}
_NO = {"no", "n", "false", "0"}


def read_outcomes_csv(lines: Iterable[str]) -> Iterator[OutcomeRow | OutcomeProblem]:
    """Rows of a CRM export; a bad row is reported by line and the rest go on."""
    reader = csv.DictReader(lines)
    names = {n.strip().lower() for n in reader.fieldnames or []}
    if not names & {"lead_id", "phone", "email"}:
        yield OutcomeProblem(1, "the header needs a lead_id, phone or email column")
        return
    for row in reader:
        line = reader.line_num
        clean = {(k or "").strip().lower(): (v or "").strip() for k, v in row.items() if k}
        try:
            lead_id = int(clean["lead_id"]) if clean.get("lead_id") else None
            if lead_id is not None and not 0 < lead_id < 2**31:
                raise ValueError
        except ValueError:
            yield OutcomeProblem(line, "lead_id must be a positive integer")
            continue
        body: dict[str, Any] = {}
        for key in ("stage", "owner", "currency", "loss_reason", "spam_reason", "notes"):
            if clean.get(key):
                body[key] = clean[key].lower() if key == "stage" else clean[key]
        bant: dict[str, bool] = {}
        try:
            if clean.get("value"):
                if not _AMOUNT.match(clean["value"]):
                    raise InvalidOutcome("value must be written like 1200, 1200.50 or 1,200.50")
                body["value"] = float(clean["value"].replace(",", ""))
            for key in BANT_KEYS:
                answer = clean.get(key, "").lower()
                if answer in _YES:
                    bant[key] = True
                elif answer in _NO:
                    bant[key] = False
                elif answer:
                    raise InvalidOutcome(f"{key} must be yes or no")
            if bant:
                body["bant"] = bant
            outcome = read_outcome(body)
        except (InvalidOutcome, ValueError) as e:
            yield OutcomeProblem(line, str(e) if isinstance(e, InvalidOutcome) else "value must be a number")
            continue
        if lead_id is None and not clean.get("phone") and not clean.get("email"):
            yield OutcomeProblem(line, "the row names no lead (lead_id, phone or email)")
            continue
        yield OutcomeRow(line, lead_id, clean.get("phone") or None, clean.get("email") or None, outcome)
