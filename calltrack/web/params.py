"""Validating request parameters into typed values, with 400s that name the parameter."""

from __future__ import annotations

import math
import re
from datetime import date, datetime, timedelta, timezone
from typing import Any

from calltrack.text import has_control
from calltrack.web.errors import ApiError

_ID_RE = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")


def visitor_id(value: Any, name: str) -> str | None:
    """A visitor or session id: 1-64 of [A-Za-z0-9_.-]; absent is None."""
    if value is None or value == "":
        return None
    if not isinstance(value, str) or not _ID_RE.match(value):
        raise ApiError(400, f"invalid_{name}", f"'{name}' must be 1-64 letters, digits, '_', '-' or '.'")
    return value


MAX_ID = 2**31 - 1


def path_id(value: str, what: str) -> int:
    """An id from the path (the route already matched digits); too large is not found."""
    n = int(value) if len(value) <= 10 else MAX_ID + 1
    if n > MAX_ID:
        raise ApiError(404, "not_found", f"{what} {value[:20]} not found")
    return n


def integer(value: Any, name: str, *, default: int | None = None, minimum: int | None = None, maximum: int | None = None) -> int:
    if value is None or value == "":
        if default is None:
            raise ApiError(400, "missing_parameter", f"'{name}' is required")
        return default
    if isinstance(value, bool):
        raise ApiError(400, "invalid_parameter", f"'{name}' must be an integer")
    try:
        n = int(value)
    except (TypeError, ValueError):
        raise ApiError(400, "invalid_parameter", f"'{name}' must be an integer") from None
    if maximum is None:
        maximum = MAX_ID
    if (minimum is not None and n < minimum) or n > maximum:
        raise ApiError(400, "invalid_parameter", f"'{name}' must be between {minimum} and {maximum}")
    return n


def timestamp(value: Any, name: str, *, default: float) -> float:
    """Unix seconds, or an ISO 8601 time (UTC when it has no offset)."""
    if value is None or value == "":
        return default
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        pass
    else:
        if not math.isfinite(seconds):
            raise ApiError(400, "invalid_parameter", f"'{name}' must be a finite time")
        return seconds
    try:
        dt = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise ApiError(400, "invalid_parameter", f"'{name}' must be unix seconds or an ISO 8601 time") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return dt.timestamp()


def string(value: Any, name: str, *, required: bool = True, max_length: int = 200) -> str | None:
    if value is None or value == "":
        if required:
            raise ApiError(400, "missing_parameter", f"'{name}' is required")
        return None
    if not isinstance(value, str):
        raise ApiError(400, "invalid_parameter", f"'{name}' must be a string")
    if len(value) > max_length:
        raise ApiError(400, "invalid_parameter", f"'{name}' is longer than {max_length} characters")
    if has_control(value, allow_whitespace=True):
        # PostgreSQL refuses NUL in text, and no parameter of ours has a use for control characters.
        raise ApiError(400, "invalid_parameter", f"'{name}' contains control characters")
    return value


def day(value: Any, name: str, *, default: date) -> date:
    """A calendar day, YYYY-MM-DD (in the account's time zone, by the caller's convention)."""
    if value is None or value == "":
        return default
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        raise ApiError(400, "invalid_parameter", f"'{name}' must be a day, YYYY-MM-DD") from None


def day_range(q: dict[str, Any], *, today: date, default_days: int, max_days: int) -> tuple[date, date]:
    """Whole days ``from``..``to`` (both included): ``to`` defaults to ``today``, ``from`` to
    ``default_days`` days ending there; at most ``max_days`` days."""
    last = day(q.get("to"), "to", default=today)
    first = day(q.get("from"), "from", default=last - timedelta(days=default_days - 1))
    if first > last:
        raise ApiError(400, "invalid_parameter", "'from' must be on or before 'to'")
    if (last - first).days + 1 > max_days:
        raise ApiError(400, "invalid_parameter", f"a period of at most {max_days} days")
    return first, last
