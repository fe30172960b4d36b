"""CSV that a spreadsheet opens as data. Pure.

Campaign names, keywords and landing pages come from URLs anyone can type, and a cell that
starts with ``=``, ``+``, ``-`` or ``@`` (or a tab or carriage return, which some programs
strip first) is a formula to Excel, LibreOffice and Google Sheets. Such text cells get a
leading apostrophe (OWASP's advice): shown as typed, never run. Numbers are written as
numbers, so a negative value stays a number.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from typing import Any

import pandas as pd

_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: Any) -> Any:
    if isinstance(value, str) and value.startswith(_TRIGGERS):
        return "'" + value
    return value


def rows_to_csv(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([safe_cell(h) for h in header])
    for row in rows:
        writer.writerow([safe_cell(v) for v in row])
    return out.getvalue().encode("utf-8")


def frame_to_csv(frame: pd.DataFrame, *, float_format: str = "%.6f") -> bytes:
    """The frame with its index as the first column(s); floats at fixed precision, so the
    same figures give the same bytes."""
    flat = frame.reset_index()
    def cell(v: Any) -> Any:
        if isinstance(v, float):
            return "" if v != v else float_format % v
        return v
    return rows_to_csv([str(c) for c in flat.columns], ([cell(v) for v in row] for row in flat.itertuples(index=False, name=None)))
