"""PBX call logs (CDR) in CSV, read as completed-call events for a bulk import. Pure.

Reads three shapes:

* a CSV with a header of Asterisk CDR variable names (``clid src dst … uniqueid userfield``,
  plus ``linkedid``), as cdr_custom/cdr_adaptive_odbc exports write;
* a CSV with a header of our simple names (``call_id, from, to, started_at, answered_at,
  ended_at, duration, billsec, disposition, recording_url``);
* Asterisk's headerless ``Master.csv`` (cdr_csv), recognised when the first row is no header.

Asterisk logs local time, so times without an offset are read in the account's ``tz``. A bad
row becomes a :class:`CdrProblem` and the import goes on; rows are streamed, never collected.
"""

from __future__ import annotations

import csv
import hashlib
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, tzinfo

from calltrack.telephony.events import CallEvent, InvalidEvent, check_ref, check_text, check_url, parse_time
from calltrack.telephony.pbx import disposition_status

ASTERISK_COLUMNS = frozenset(
    "clid src dst dcontext channel dstchannel lastapp lastdata start answer end duration billsec "
    "disposition amaflags accountcode uniqueid userfield linkedid peeraccount sequence".split()
)
# Our simple names, as the Asterisk name each one means.
SIMPLE_COLUMNS = {
    "call_id": "uniqueid",
    "from": "src",
    "to": "dst",
    "started_at": "start",
    "answered_at": "answer",
    "ended_at": "end",
    "recording_url": "recording_url",
    "caller_name": "caller_name",
}
# cdr_csv's column order; uniqueid and userfield only with loguniqueid/loguserfield.
MASTER_CSV = (
    "accountcode src dst dcontext clid channel dstchannel lastapp lastdata start answer end "
    "duration billsec disposition amaflags uniqueid userfield"
).split()
MASTER_CSV_MIN = 16
MAX_DURATION = 7 * 86400
_EXTRA = ("dcontext", "channel", "dstchannel", "lastapp", "accountcode", "userfield", "linkedid")
_COUNT = re.compile(r"[0-9]{1,7}")
_CLID = re.compile(r'\s*"?([^"<>]*)"?\s*<[^<>]*>\s*')


@dataclass(frozen=True)
class CdrProblem:
    """A row that could not be imported: its first line number (1-based) and why."""

    line: int
    message: str


def read_cdr(lines: Iterable[str], *, tz: tzinfo = UTC) -> Iterator[CallEvent | CdrProblem]:
    """Each CSV row as a completed-call event, or a problem naming the row's line.

    ``call_ref`` is the row's uniqueid (else linkedid); a log without either gets a digest of
    caller, number dialled and start time, so importing the same file again names the same
    calls and the import is idempotent.
    """
    reader = csv.reader(lines)
    columns: list[str] | None = None
    header = False
    last_line = 0
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as e:
            yield CdrProblem(last_line + 1, f"unreadable CSV: {e}")
            if reader.line_num == last_line:  # the reader made no progress: stop, not spin
                return
            last_line = reader.line_num
            continue
        line, last_line = last_line + 1, reader.line_num
        if not any(field.strip() for field in row):
            continue
        if columns is None:
            names = [field.strip().lstrip("\ufeff").strip().lower() for field in row]
            known = [SIMPLE_COLUMNS.get(name, name) for name in names]
            if sum(name in ASTERISK_COLUMNS or name in SIMPLE_COLUMNS for name in names) >= 2:
                columns, header = known, True
                if "dst" not in columns or "start" not in columns:
                    yield CdrProblem(line, "the header needs a to/dst and a started_at/start column")
                    return
                continue
            columns = MASTER_CSV
        if header and len(row) != len(columns):
            yield CdrProblem(line, f"expected {len(columns)} fields as in the header, found {len(row)}")
            continue
        if not header and len(row) < MASTER_CSV_MIN:
            yield CdrProblem(line, f"expected at least {MASTER_CSV_MIN} fields as in Master.csv, found {len(row)}")
            continue
        record: dict[str, str] = {}
        for name, value in zip(columns, row):
            record.setdefault(name, value.strip())
        try:
            yield _event(record, tz)
        except InvalidEvent as e:
            yield CdrProblem(line, str(e))


def _event(record: dict[str, str], tz: tzinfo) -> CallEvent:
    caller = check_text(record.get("src"), "src") or ""  # blank src: the caller withheld it
    called = check_text(record.get("dst"), "dst")
    if called is None:
        raise InvalidEvent("dst (the number dialled) is empty")
    start = record.get("start", "")
    started_at = _time(start, "start", tz)
    if started_at is None:
        raise InvalidEvent("start is empty")
    answered_at = _time(record.get("answer"), "answer", tz)
    ended_at = _time(record.get("end"), "end", tz)
    billsec = _count(record.get("billsec"), "billsec")
    total = _count(record.get("duration"), "duration")
    if disposition := record.get("disposition"):
        status = disposition_status(disposition)
    else:
        status = "completed" if billsec or answered_at is not None else "no-answer"
    if ref := record.get("uniqueid") or record.get("linkedid"):
        call_ref = check_ref(ref, "uniqueid")
    else:
        call_ref = "cdr-" + hashlib.sha256(f"{caller}|{called}|{start}".encode()).hexdigest()[:40]
    extra = {name: check_text(record.get(name), name, truncate=True) for name in _EXTRA}
    if total is not None:
        extra["total_duration"] = str(total)
    recording_url = record.get("recording_url")
    return CallEvent(
        # The same provider as the PBX's live webhooks (call_id = uniqueid): a backfill adds to
        # the call they made instead of making another.
        provider="pbx",
        call_ref=call_ref,
        event_ref="cdr",
        kind="completed",
        status=status,
        occurred_at=ended_at or started_at,
        caller_raw=caller,
        called_raw=called,
        started_at=started_at,
        answered_at=answered_at,
        ended_at=ended_at,
        duration=billsec,
        recording_url=check_url(recording_url, "recording_url") if recording_url else None,
        caller_name=check_text(record.get("caller_name"), "caller_name", truncate=True) or _clid_name(record, caller),
        extra={name: value for name, value in extra.items() if value},
    )


def _time(value: str | None, name: str, tz: tzinfo) -> float | None:
    # MySQL-backed CDRs write a zero date for "never answered".
    if not value or value.startswith("0000-00-00"):
        return None
    return parse_time(value, name, tz=tz)


def _count(value: str | None, name: str) -> int | None:
    if not value:
        return None
    if not _COUNT.fullmatch(value) or int(value) > MAX_DURATION:
        raise InvalidEvent(f"{name} must be whole seconds from 0 to {MAX_DURATION}")
    return int(value)


def _clid_name(record: dict[str, str], caller: str | None) -> str | None:
    """The name in a clid such as ``"Alice Smith" <4155550100>``, when it is not the number."""
    match = _CLID.fullmatch(record.get("clid", ""))
    name = check_text(match.group(1), "clid", truncate=True) if match else None
    return name if name and name != caller else None
