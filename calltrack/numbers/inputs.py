"""Parsing what people send about numbers and pools (API bodies, CSV files) into values the
service accepts; every refusal is an InvalidInput whose message names the field or line."""

from __future__ import annotations

import csv
import io
from typing import Any

from calltrack.numbers.rules import RuleError, parse_rules
from calltrack.numbers.store import NewNumber, Pool
from calltrack.phones import InvalidPhoneNumber, to_e164
from calltrack.text import has_control

# Column limits: anything longer is cut, never rejected (tags are often garbage).
TAG_MAX = 200
URL_MAX = 2048


class InvalidInput(ValueError):
    """The caller sent something we refuse; the message names it."""


# Control characters have no business in a tag; they are dropped, the rest kept as text.
_CONTROL = dict.fromkeys([*range(32), 0x7F])


def clean_text(value: Any, limit: int) -> str | None:
    if value is None:
        return None
    text = str(value)
    if not text.isprintable():  # the common case skips the copy
        text = text.translate(_CONTROL)
    return text.strip()[:limit] or None


NUMBER_CSV_COLUMNS = ("number", "forward_to", "pool", "source", "medium", "campaign", "keyword", "placement")


def parse_number_csv(text: str, *, region: str, pools_by_name: dict[str, Pool], default_forward: str | None) -> list[NewNumber]:
    """Read a CSV of numbers (header: number, forward_to, pool, source, medium, campaign,
    keyword, placement; only ``number`` is required). A row with a pool is a pool number,
    otherwise a static one. All rows are checked before anything is stored; errors name the
    line.
    """
    reader = csv.DictReader(io.StringIO(text))
    if reader.fieldnames is None or "number" not in [f.strip().lower() for f in reader.fieldnames]:
        raise InvalidInput("the CSV needs a header row with at least a 'number' column")
    unknown = [f for f in reader.fieldnames if f.strip().lower() not in NUMBER_CSV_COLUMNS]
    if unknown:
        raise InvalidInput(f"unknown column {unknown[0]!r} (known: {', '.join(NUMBER_CSV_COLUMNS)})")
    out: list[NewNumber] = []
    errors: list[str] = []
    for line, row in enumerate(reader, start=2):
        row = {k.strip().lower(): (v or "").strip() for k, v in row.items() if k is not None}
        try:
            out.append(_number_from_fields(row, region=region, pools_by_name=pools_by_name, default_forward=default_forward))
        except InvalidInput as e:
            errors.append(f"line {line}: {e}")
    if errors:
        raise InvalidInput("; ".join(errors[:20]) + (f" (and {len(errors) - 20} more)" if len(errors) > 20 else ""))
    if not out:
        raise InvalidInput("the CSV has no rows")
    return out


def _number_from_fields(
    row: dict[str, str], *, region: str, pools_by_name: dict[str, Pool], default_forward: str | None
) -> NewNumber:
    try:
        e164 = to_e164(row.get("number", ""), region)
    except InvalidPhoneNumber as e:
        raise InvalidInput(str(e)) from None
    forward_raw = row.get("forward_to") or default_forward
    if not forward_raw:
        raise InvalidInput("forward_to is required (or give the pool's site a forwarding number)")
    try:
        forward = to_e164(forward_raw, region)
    except InvalidPhoneNumber as e:
        raise InvalidInput(f"forward_to: {e}") from None
    pool_name = row.get("pool") or ""
    pool_id = None
    if pool_name:
        pool = pools_by_name.get(pool_name)
        if pool is None:
            raise InvalidInput(f"no pool named {pool_name!r}")
        pool_id = pool.id
    fields = {f: (clean_text(row.get(f), TAG_MAX) if row.get(f) else None) for f in ("source", "medium", "campaign", "keyword", "placement")}
    if pool_id is not None and any(fields.values()):
        raise InvalidInput("a pool number takes its source from the visitor; give source fields only to static numbers")
    return NewNumber(e164=e164, forward_to=forward, kind="pool" if pool_id else "static", pool_id=pool_id, **fields)


def new_number_from_json(
    body: dict[str, Any], *, region: str, pools_by_id: dict[int, Pool], default_forward: str | None
) -> NewNumber:
    """A number from an API body: {"number", "forward_to"?, "pool_id"?, "source"?, …}."""
    if not isinstance(body.get("number"), str):
        raise InvalidInput("'number' (a string) is required")
    row = {k: str(v) for k, v in body.items() if isinstance(v, (str, int)) and k != "pool_id"}
    pool_id = body.get("pool_id")
    by_name: dict[str, Pool] = {}
    if pool_id is not None:
        if not isinstance(pool_id, int) or pool_id not in pools_by_id:
            raise InvalidInput(f"pool {pool_id} not found")
        row["pool"] = pools_by_id[pool_id].name
        by_name = {pools_by_id[pool_id].name: pools_by_id[pool_id]}
    return _number_from_fields(row, region=region, pools_by_name=by_name, default_forward=default_forward)




POOL_FIELDS = ("name", "site_id", "rules", "priority", "hold_seconds", "cooldown_seconds", "overflow_number", "retired")


def pool_settings(body: dict[str, Any], *, region: str, creating: bool) -> dict[str, Any]:
    """Validate a pool body (create or PATCH) into keyword arguments for the service.

    ``rules``: ``{"all": true}`` or conditions such as ``{"channel": "paid_search",
    "utm_source": ["google", "bing"]}``; hold and cool-down are seconds.
    """
    unknown = sorted(set(body) - set(POOL_FIELDS))
    if unknown:
        raise InvalidInput(f"unknown field {unknown[0]!r} (known: {', '.join(POOL_FIELDS)})")
    out: dict[str, Any] = {}
    if creating or "name" in body:
        name = body.get("name")
        if not isinstance(name, str) or not name.strip() or len(name) > 100:
            raise InvalidInput("'name' must be a string of 1-100 characters")
        if has_control(name):
            raise InvalidInput("'name' contains control characters")  # PostgreSQL refuses NUL in text
        out["name"] = name.strip()
    if creating:
        site_id = body.get("site_id")
        if not isinstance(site_id, int) or isinstance(site_id, bool) or not 0 < site_id < 2**31:
            raise InvalidInput("'site_id' (an integer) is required")
        out["site_id"] = body["site_id"]
    elif "site_id" in body:
        raise InvalidInput("a pool cannot move to another site; create a new pool")
    if "rules" in body or creating:
        try:
            out["rules"] = parse_rules(body.get("rules"))
        except RuleError as e:
            raise InvalidInput(f"rules: {e}") from None
    for key, lo, hi in (("priority", -1_000_000, 1_000_000), ("hold_seconds", 60, 7 * 86400), ("cooldown_seconds", 0, 7 * 86400)):
        if key in body and body[key] is not None:
            value = body[key]
            if not isinstance(value, int) or isinstance(value, bool) or not lo <= value <= hi:
                raise InvalidInput(f"'{key}' must be an integer from {lo} to {hi}")
            out[key] = value
    if "overflow_number" in body:
        raw = body["overflow_number"]
        if raw is None or raw == "":
            out["overflow_number"] = None
        elif not isinstance(raw, str):
            raise InvalidInput("'overflow_number' must be a phone number string")
        else:
            try:
                out["overflow_number"] = to_e164(raw, region)
            except InvalidPhoneNumber as e:
                raise InvalidInput(f"overflow_number: {e}") from None
    if "retired" in body:
        if body["retired"] is not True:
            raise InvalidInput("'retired' may only be true (a retired pool stays retired)")
        if creating:
            raise InvalidInput("a new pool cannot be retired")
        out["retired"] = True
    return out

