"""Ad spend: reading a cost CSV, and the pricing models of bought leads. Pure.

A cost row is one day of one campaign (keyword optional) of one source/medium: clicks,
impressions, cost, currency. Files from ad platforms name their columns in many ways; the
common names are accepted (``Day``, ``Campaign name``, ``Amount spent``…). A file is taken
whole or not at all: every bad row is reported with its line number and nothing is imported,
so a half-imported month never shows up as a cheap month.

Re-importing replaces: the rows of the file's period (first to last date) for the file's
sources are deleted and the file's rows take their place, so importing Google's and Facebook's
spend for the same month separately keeps both, and importing one of them again changes
nothing.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from calltrack.text import has_control

MAX_ROWS = 200_000
MAX_TEXT = 200
PRICING_MODELS = ("per_click", "per_lead", "per_action")
ACTION_STAGES = ("mql", "sql", "customer")

# Accepted header names (lower-cased, spaces and dashes as underscores) → our field.
_ALIASES = {
    "date": "date", "day": "date", "reporting_starts": "date",
    "source": "source", "utm_source": "source", "network": "source",
    "medium": "medium", "utm_medium": "medium",
    "campaign": "campaign", "utm_campaign": "campaign", "campaign_name": "campaign",
    "keyword": "keyword", "utm_term": "keyword", "search_keyword": "keyword",
    "clicks": "clicks", "link_clicks": "clicks",
    "impressions": "impressions", "impr.": "impressions", "impr": "impressions",
    "cost": "cost", "spend": "cost", "amount_spent": "cost",
    "currency": "currency", "currency_code": "currency",
}
REQUIRED = ("date", "source", "cost")


class CostProblem(ValueError):
    """A cost file that cannot be imported: ``problems`` lists (line, message)."""

    def __init__(self, problems: list[tuple[int, str]]) -> None:
        self.problems = problems
        first = "; ".join(f"line {line}: {msg}" for line, msg in problems[:5])
        more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
        super().__init__(f"{len(problems)} rows refused, nothing imported: {first}{more}")


@dataclass(frozen=True)
class CostRow:
    day: str  # YYYY-MM-DD, the ad platform's day (the account's time zone)
    source: str
    medium: str
    campaign: str
    keyword: str
    clicks: int
    impressions: int
    cost: float
    currency: str

    def to_json(self) -> dict[str, Any]:
        return {
            "date": self.day, "source": self.source, "medium": self.medium, "campaign": self.campaign, "keyword": self.keyword,
            "clicks": self.clicks, "impressions": self.impressions, "cost": self.cost, "currency": self.currency,
        }


def _key(name: str) -> str:
    return name.strip().lower().replace(" ", "_").replace("-", "_")


def _day(value: str) -> str:
    value = value.strip()
    for fmt in ("%Y-%m-%d", "%Y/%m/%d", "%m/%d/%Y", "%d.%m.%Y"):
        try:
            return datetime.strptime(value, fmt).date().isoformat()
        except ValueError:
            continue
    raise ValueError(f"date {value[:30]!r} is not YYYY-MM-DD (or MM/DD/YYYY, DD.MM.YYYY)")


def _number(value: str, name: str, *, integer: bool) -> Any:
    text = value.strip().replace("\u00a0", "").replace(" ", "")
    if text == "":
        return 0
    if "," in text and "." not in text and text.count(",") == 1 and len(text.split(",")[1]) != 3:
        text = text.replace(",", ".")  # a decimal comma (12,50), not a thousands separator (1,250)
    text = text.replace(",", "")
    try:
        number = Decimal(text)
    except InvalidOperation:
        raise ValueError(f"{name} {value[:30]!r} is not a number") from None
    if not number.is_finite() or number < 0:
        raise ValueError(f"{name} must be a number of at least 0")
    if integer:
        if number != number.to_integral_value():
            raise ValueError(f"{name} must be a whole number")
        return int(number)
    result = float(round(number, 2))
    if not math.isfinite(result) or result > 1e12:
        raise ValueError(f"{name} is too large")
    return result


def _text(value: str | None, name: str, *, default: str = "") -> str:
    text = (value or "").strip()
    if len(text) > MAX_TEXT:
        raise ValueError(f"{name} is longer than {MAX_TEXT} characters")
    if has_control(text):
        # PostgreSQL refuses NUL in text (a 500 there, found by tests/security/test_schemathesis.py).
        raise ValueError(f"{name} contains control characters")
    return text.lower() if name in ("source", "medium") else (text or default)


def read_costs(lines: Iterable[str], *, currency: str) -> list[CostRow]:
    """Every row of a cost CSV, or CostProblem listing every bad one (nothing is half-read).

    ``currency``: the account's; a row in another currency is refused (calltrack does not
    convert money: convert before importing)."""
    reader = csv.reader(lines)
    header = next(reader, None)
    if header is None:
        raise CostProblem([(1, "the file is empty")])
    fields = [_ALIASES.get(_key(h)) for h in header]
    missing = [f for f in REQUIRED if f not in fields]
    if missing:
        raise CostProblem([(1, f"missing column {missing[0]!r} (columns: date, source, medium, campaign, keyword, clicks, impressions, cost, currency)")])
    rows: list[CostRow] = []
    problems: list[tuple[int, str]] = []
    seen: dict[tuple[str, str, str, str, str], int] = {}
    for number, record in enumerate(reader, start=2):
        if not any(cell.strip() for cell in record):
            continue
        if len(rows) + len(problems) >= MAX_ROWS:
            problems.append((number, f"more than {MAX_ROWS} rows; split the file"))
            break
        values = {f: record[i] for i, f in enumerate(fields) if f is not None and i < len(record)}
        try:
            row_currency = (values.get("currency") or currency).strip().upper()
            if row_currency != currency.upper():
                raise ValueError(f"currency {row_currency[:10]} is not the account's ({currency.upper()}); convert before importing")
            source = _text(values.get("source"), "source")
            if not source:
                raise ValueError("source is empty")
            row = CostRow(
                day=_day(values.get("date", "")), source=source, medium=_text(values.get("medium"), "medium"),
                campaign=_text(values.get("campaign"), "campaign"), keyword=_text(values.get("keyword"), "keyword"),
                clicks=_number(values.get("clicks", ""), "clicks", integer=True),
                impressions=_number(values.get("impressions", ""), "impressions", integer=True),
                cost=_number(values.get("cost", ""), "cost", integer=False), currency=currency.upper(),
            )
        except ValueError as e:
            problems.append((number, str(e)))
            continue
        key = (row.day, row.source, row.medium, row.campaign, row.keyword)
        if key in seen:
            problems.append((number, f"the same day, source, medium, campaign and keyword as line {seen[key]}"))
            continue
        seen[key] = number
        rows.append(row)
    if problems:
        raise CostProblem(problems)
    if not rows:
        raise CostProblem([(2, "no cost rows")])
    return rows


def period(rows: list[CostRow]) -> tuple[str, str, list[str]]:
    """(first day, last day, sources): what an import replaces."""
    days = [r.day for r in rows]
    return min(days), max(days), sorted({r.source for r in rows})


@dataclass(frozen=True)
class PricingModel:
    """Bought leads: a price per click, per lead, or per action (a lead reaching ``stage``),
    for the leads of a source (and, when given, medium and campaign)."""

    source: str
    medium: str
    campaign: str
    model: str
    price: float
    stage: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"source": self.source, "medium": self.medium, "campaign": self.campaign, "model": self.model, "price": self.price, "stage": self.stage}


def read_pricing(doc: Any) -> PricingModel:
    if not isinstance(doc, dict):
        raise ValueError("a pricing model is a JSON object")
    unknown = sorted(set(doc) - {"source", "medium", "campaign", "model", "price", "stage"})
    if unknown:
        raise ValueError(f"unknown field {unknown[0]!r}")
    source = _text(doc.get("source") if isinstance(doc.get("source"), str) else None, "source")
    if not source:
        raise ValueError("source is required")
    model = doc.get("model")
    if model not in PRICING_MODELS:
        raise ValueError(f"model must be one of {', '.join(PRICING_MODELS)}")
    price = doc.get("price")
    if isinstance(price, bool) or not isinstance(price, (int, float)) or not math.isfinite(price) or not 0 <= price <= 1e9:
        raise ValueError("price must be a number between 0 and 1e9")
    stage = doc.get("stage")
    if model == "per_action":
        if stage not in ACTION_STAGES:
            raise ValueError(f"a per_action price needs a stage: {', '.join(ACTION_STAGES)}")
    elif stage is not None:
        raise ValueError("stage applies to per_action prices only")
    for key in ("medium", "campaign"):
        if doc.get(key) is not None and not isinstance(doc.get(key), str):
            raise ValueError(f"{key} must be text")
    return PricingModel(source, _text(doc.get("medium"), "medium"), _text(doc.get("campaign"), "campaign"), model, float(round(price, 2)), stage)
