"""The columns between the store and the rules: the facts frame rules.score reads, assembled
from what the store read table by table, and the scores going back. Pure (numpy/pandas).

A backfill reads a million leads: the store hands over its drivers' plain tuples, one list per
query, and they are joined here with sorted-array look-ups instead of a dict and a new tuple
per lead (which cost as much as the queries did).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

# Facts held as true/false; the others are numbers (counts, seconds) or text.
BOOL_COLUMNS = frozenset(
    {"answered", "first_time_caller", "pricing_page", "has_phone", "has_email", "has_name", "has_company", "has_message"}
)
TEXT_COLUMNS = frozenset({"kind", "channel", "source", "medium", "campaign", "tracking_number", "form_type"})


@dataclass(frozen=True)
class FactPart:
    """Facts read by a grouped query: one tuple per key (``key_column`` value, *columns); keys
    with no tuple have 0 / false for every column (no call, no form, no touchpoint)."""

    key_column: str  # the leads column the first value matches: "id" or "contact_id"
    columns: tuple[str, ...]
    rows: list[tuple[Any, ...]]


@dataclass(frozen=True)
class FactRows:
    """One chunk of leads as read: ``rows`` are (id, contact_id, *columns) in id order."""

    columns: tuple[str, ...]
    rows: list[tuple[Any, ...]]
    parts: tuple[FactPart, ...] = ()

    @property
    def last_id(self) -> int:
        return int(self.rows[-1][0])

    def __len__(self) -> int:
        return len(self.rows)


@dataclass(frozen=True)
class Scores:
    """Scores by column, in the order of ``ids``; flags '' when none."""

    ids: list[int]
    score: list[int]
    temperature: list[str]
    flags: list[str]
    mql: list[bool]

    def __len__(self) -> int:
        return len(self.ids)


def facts_frame(facts: FactRows) -> pd.DataFrame:
    """The frame rules.score reads (index = lead id): the chunk's columns and its parts'. The
    chunk holds at least one lead."""
    lead_columns = list(zip(*facts.rows, strict=True))
    ids = np.fromiter(lead_columns[0], dtype=np.int64, count=len(facts.rows))
    keys = {"id": ids, "contact_id": np.fromiter(lead_columns[1], dtype=np.int64, count=len(facts.rows))}
    data: dict[str, np.ndarray] = {name: _array(name, values) for name, values in zip(facts.columns, lead_columns[2:], strict=True)}
    for part in facts.parts:
        data.update(_joined(part, keys[part.key_column]))
    return pd.DataFrame(data, index=pd.Index(ids, name="id"))


def _joined(part: FactPart, lead_keys: np.ndarray) -> dict[str, np.ndarray]:
    """The part's columns lined up with ``lead_keys`` (0 / false where it has no row)."""
    out = {name: np.zeros(len(lead_keys), dtype=_dtype(name)) for name in part.columns}
    if not part.rows:
        return out
    values = list(zip(*part.rows, strict=True))
    part_keys = np.fromiter(values[0], dtype=np.int64, count=len(part.rows))
    order = np.argsort(part_keys, kind="stable")
    sorted_keys = part_keys[order]
    at = np.searchsorted(sorted_keys, lead_keys).clip(max=len(sorted_keys) - 1)
    found = sorted_keys[at] == lead_keys
    source = order[at[found]]
    for name, column in zip(part.columns, values[1:], strict=True):
        out[name][found] = _array(name, column)[source]
    return out


def _dtype(name: str) -> Any:
    if name in BOOL_COLUMNS:
        return np.bool_
    if name in TEXT_COLUMNS:
        return object
    if name == "created_at":
        return np.float64
    return np.int64


def _array(name: str, values: tuple[Any, ...]) -> np.ndarray:
    dtype = _dtype(name)
    if dtype is object:  # np.asarray would make fixed-width strings of text, and 'None' of NULL
        array = np.empty(len(values), dtype=object)
        array[:] = values
        return array
    return np.asarray(values, dtype=dtype)


def scores_from(result: pd.DataFrame) -> Scores:
    """rules.score's frame as the columns the store writes back."""
    return Scores(
        result.index.tolist(), result["score"].tolist(), result["temperature"].tolist(), result["flags"].tolist(), result["mql"].tolist()
    )
