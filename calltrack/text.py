"""Checks on text that comes from outside. Pure.

PostgreSQL refuses NUL in text (and in JSON), so a control character that reached a query
would be a 500 there and not on SQLite; names, tags and rule values have no use for any of
them. Free-text parameters may keep tabs and line breaks.
"""

from __future__ import annotations

import re

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_CONTROL_BUT_WHITESPACE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def has_control(text: str, *, allow_whitespace: bool = False) -> bool:
    """Whether ``text`` holds a C0 control character or DEL (``allow_whitespace``: tab, line
    feed and carriage return are not counted)."""
    pattern = _CONTROL_BUT_WHITESPACE if allow_whitespace else _CONTROL
    return pattern.search(text) is not None
