"""Importing PBX call logs: Asterisk CDR CSVs with and without a header, and our simple CSV."""

from __future__ import annotations

import io
from datetime import UTC
from zoneinfo import ZoneInfo

from calltrack.telephony.cdr import CdrProblem, read_cdr
from calltrack.telephony.events import CallEvent

NY = ZoneInfo("America/New_York")
# 2026-01-05 10:00:00 in New York is 15:00:00 UTC.
T0 = 1_767_625_200.0

# Asterisk cdr_csv Master.csv (loguniqueid and loguserfield on), as Asterisk writes it.
MASTER = '''\
"","4155550100","4155550123","from-trunk","""Alice Smith"" <4155550100>","PJSIP/trunk-00000001","PJSIP/100-00000002","Dial","PJSIP/100,30,tT","2026-01-05 10:00:00","2026-01-05 10:00:07","2026-01-05 10:02:07",127,120,"ANSWERED","DOCUMENTATION","1767625200.1",""
"","4155550101","4155550123","from-trunk","""4155550101"" <4155550101>","PJSIP/trunk-00000003","PJSIP/100-00000004","Dial","PJSIP/100,30,tT","2026-01-05 11:00:00","","2026-01-05 11:00:30",30,0,"NO ANSWER","DOCUMENTATION","1767628800.3",""
"","","4155550123","from-trunk","","PJSIP/trunk-00000005","","Dial","PJSIP/100,30,tT","2026-01-05 12:00:00","","2026-01-05 12:00:04",4,0,"BUSY","DOCUMENTATION","1767632400.5",""
'''

ASTERISK_HEADER = """\
clid,src,dst,dcontext,channel,dstchannel,lastapp,lastdata,start,answer,end,duration,billsec,disposition,amaflags,accountcode,uniqueid,userfield,linkedid
"""


def events(items: list[CallEvent | CdrProblem]) -> list[CallEvent]:
    return [i for i in items if isinstance(i, CallEvent)]


def problems(items: list[CallEvent | CdrProblem]) -> list[CdrProblem]:
    return [i for i in items if isinstance(i, CdrProblem)]


def test_headerless_master_csv() -> None:
    """Master.csv has no header: rows are read by cdr_csv's column order, in the account's zone."""
    out = list(read_cdr(io.StringIO(MASTER, newline=""), tz=NY))
    assert problems(out) == []
    answered, missed, busy = events(out)
    assert (answered.provider, answered.kind, answered.event_ref) == ("pbx", "completed", "cdr")
    assert (answered.call_ref, answered.status, answered.duration) == ("1767625200.1", "completed", 120)
    assert (answered.caller_raw, answered.called_raw, answered.caller_name) == ("4155550100", "4155550123", "Alice Smith")
    assert (answered.started_at, answered.answered_at, answered.ended_at) == (T0, T0 + 7, T0 + 127)
    assert answered.extra["dstchannel"] == "PJSIP/100-00000002" and answered.extra["total_duration"] == "127"
    assert (missed.status, missed.answered_at, missed.duration, missed.caller_name) == ("no-answer", None, 0, None)
    assert (busy.status, busy.caller_raw) == ("busy", "")  # blank src: a withheld caller ID


def test_asterisk_header_csv() -> None:
    """A header of CDR variable names may order columns freely; linkedid stands in for uniqueid."""
    text = ASTERISK_HEADER + (
        '"Bob" <4155550102>,4155550102,4155550123,from-trunk,PJSIP/t-1,PJSIP/100-2,Dial,PJSIP/100,'
        "2026-01-05 10:00:00,2026-01-05 10:00:05,2026-01-05 10:01:05,65,60,ANSWERED,DOCUMENTATION,acct-9,,,1767625200.7\n"
    )
    [event] = list(read_cdr(text.splitlines(keepends=True), tz=NY))
    assert isinstance(event, CallEvent)
    assert (event.call_ref, event.status, event.duration, event.caller_name) == ("1767625200.7", "completed", 60, "Bob")
    assert event.extra["accountcode"] == "acct-9" and event.extra["linkedid"] == "1767625200.7"


def test_simple_header_csv() -> None:
    """Our simple column names, with offsets or Z in the times (then tz does not matter)."""
    text = (
        "\ufeffcall_id,from,to,started_at,answered_at,ended_at,duration,billsec,disposition,recording_url\n"
        "pbx-1,+14155550100,+14155550123,2026-01-05T15:00:00Z,2026-01-05T10:00:07-05:00,2026-01-05 15:02:07+00:00,127,120,ANSWERED,https://pbx.example.com/r/1.wav\n"
        "pbx-2,+14155550101,+14155550123,2026-01-05T16:00:00Z,,,,,,\n"
    )
    first, second = list(read_cdr(io.StringIO(text), tz=NY))
    assert isinstance(first, CallEvent) and isinstance(second, CallEvent)
    assert (first.call_ref, first.started_at, first.answered_at, first.ended_at) == ("pbx-1", T0, T0 + 7, T0 + 127)
    assert first.recording_url == "https://pbx.example.com/r/1.wav"
    assert (second.call_ref, second.status, second.duration, second.occurred_at) == ("pbx-2", "no-answer", None, T0 + 3600)


def test_bad_rows_become_problems_and_the_import_goes_on() -> None:
    """Each bad row yields a problem with its line number; the good rows around it still import."""
    text = (
        "call_id,from,to,started_at,billsec,disposition\n"
        "ok-1,+14155550100,+14155550123,2026-01-05 10:00:00,10,ANSWERED\n"
        "bad-time,+14155550100,+14155550123,next tuesday,10,ANSWERED\n"
        "\n"
        "bad-billsec,+14155550100,+14155550123,2026-01-05 10:00:00,-3,ANSWERED\n"
        "bad-disposition,+14155550100,+14155550123,2026-01-05 10:00:00,3,MAYBE\n"
        "no-to,+14155550100,,2026-01-05 10:00:00,3,ANSWERED\n"
        "too,few,fields\n"
        '"multi\nline",+14155550100,+14155550123,2026-01-05 10:00:00,8,ANSWERED\n'
        "bad id,+14155550100,+14155550123,2026-01-05 10:00:00,3,ANSWERED\n"
        "huge-billsec,+14155550100,+14155550123,2026-01-05 10:00:00,1000000000,BUSY\n"
        "ok-3,+14155550100,+14155550123,1767625200,0,BUSY\n"
    )
    out = list(read_cdr(io.StringIO(text, newline=""), tz=UTC))
    # Line 4 is blank; the quoted "multi\nline" id spans lines 9-10 and is refused at 9.
    assert [p.line for p in problems(out)] == [3, 5, 6, 7, 8, 9, 11, 12]
    assert "start" in problems(out)[0].message and "billsec" in problems(out)[1].message
    assert [e.call_ref for e in events(out)] == ["ok-1", "ok-3"]


def test_header_without_needed_columns() -> None:
    """A header lacking the dialled number or the start time is one problem, then stop."""
    assert list(read_cdr(["call_id,from,billsec\n", "1,2,3\n"])) == [
        CdrProblem(1, "the header needs a to/dst and a started_at/start column")
    ]


def test_reimport_gives_identical_call_refs() -> None:
    """Importing the same log twice names the same calls, even when it has no uniqueid."""
    no_ids = MASTER.replace('"1767625200.1"', '""').replace('"1767628800.3"', '""')
    first = [e.call_ref for e in events(list(read_cdr(io.StringIO(no_ids, newline=""), tz=NY)))]
    second = [e.call_ref for e in events(list(read_cdr(io.StringIO(no_ids, newline=""), tz=NY)))]
    assert first == second and len(set(first)) == 3
    assert first[0].startswith("cdr-") and first[2] == "1767632400.5"
    assert list(read_cdr(io.StringIO(MASTER, newline=""), tz=NY)) == list(read_cdr(io.StringIO(MASTER, newline=""), tz=NY))


def test_dst_transitions_and_zero_dates() -> None:
    """Local times follow the zone's DST; a MySQL zero date for "answer" means not answered."""
    row = '"","4155550100","4155550123","c","","PJSIP/t-1","","Dial","","2026-07-05 10:00:00","0000-00-00 00:00:00","2026-07-05 10:00:30",30,0,"NO ANSWER","DOCUMENTATION"\n'
    [event] = list(read_cdr([row], tz=NY))
    assert isinstance(event, CallEvent)
    assert event.started_at == 1_783_260_000.0  # 14:00 UTC: New York is on EDT in July
    assert event.answered_at is None and event.call_ref.startswith("cdr-")


def test_empty_input() -> None:
    """No lines, or only blank ones, import nothing and report nothing."""
    assert list(read_cdr([])) == []
    assert list(read_cdr(["\n", "  ,  \n"])) == []
