"""Whatever arrives, an adapter answers with an event, InvalidEvent or BadSignature: never
another exception (which would be a 500 and, for Twilio, a caller hearing an error)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from calltrack.telephony import cdr, pbx, telnyx, twilio
from calltrack.telephony.events import BadSignature, CallEvent, InvalidEvent

FAST = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
NOW = 1_767_225_600

# Any text, lone surrogates included (a lenient decoder upstream could let them through).
any_text = st.text(st.characters(min_codepoint=0, max_codepoint=0x10FFFF, exclude_categories=()), max_size=40)
plausible = st.sampled_from(
    ["", "0", "3", "-1", "49", "1000001", "CA00000000000000000000000000000001", "+14155550100", "anonymous",
     "completed", "ringing", "in-progress", "busy", "outbound-dial", "inbound", "https://x.example/r", "javascript:x",
     "Sun, 25 Mar 2018 09:53:19 +0000", "garbage", "2026-01-01T00:00:00Z", "ANSWERED", "NO ANSWER", "1767225600"]
)
value = st.one_of(any_text, plausible)
TWILIO_NAMES = ["CallSid", "ParentCallSid", "AccountSid", "From", "To", "Caller", "Called", "CallStatus", "Direction",
                "SequenceNumber", "Timestamp", "CallDuration", "RecordingSid", "RecordingStatus", "RecordingUrl",
                "RecordingDuration", "CallerName", "FromCity"]
twilio_params = st.dictionaries(
    st.one_of(st.sampled_from(TWILIO_NAMES), any_text), st.lists(value, max_size=3), max_size=20
)
json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), any_text, plausible),
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.one_of(any_text, plausible), inner, max_size=4)),
    max_leaves=20,
)


def only_expected(call: Callable[[], Any], *allowed: type[Exception]) -> Any:
    try:
        result = call()
    except allowed:
        return None
    assert result is None or isinstance(result, (CallEvent, int)), result
    return result


@FAST
@given(params=twilio_params)
def test_twilio_parsers(params: dict[str, list[str]]) -> None:
    """Any form params: each Twilio parser gives an event or InvalidEvent."""
    for parse in (twilio.parse_voice, twilio.parse_status, twilio.parse_recording):
        only_expected(lambda: parse(params), InvalidEvent)


# Valid payloads, from which the "near valid" tests change, drop or add a few fields.
TWILIO_VALID = {
    "CallSid": "CA00000000000000000000000000000002", "ParentCallSid": "CA00000000000000000000000000000001",
    "AccountSid": "AC00000000000000000000000000000001", "From": "+14155550100", "To": "+14155550123",
    "CallStatus": "completed", "Direction": "outbound-dial", "SequenceNumber": "3", "CallDuration": "49",
    "Timestamp": "Sun, 25 Mar 2018 09:53:19 +0000", "RecordingSid": "RE00000000000000000000000000000001",
    "RecordingStatus": "completed", "RecordingUrl": "https://api.twilio.com/r/RE1", "RecordingDuration": "48",
}


def mutated(base: dict[str, Any], names: list[str], values: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    """``base`` with some fields replaced by ``values`` or removed (``...``)."""
    changes = st.dictionaries(st.sampled_from(names), st.one_of(st.just(...), values), max_size=4)
    return changes.map(lambda c: {k: v for k, v in {**base, **c}.items() if v is not ...})


@FAST
@given(fields=mutated(TWILIO_VALID, TWILIO_NAMES, value))
def test_twilio_parsers_near_valid(fields: dict[str, str]) -> None:
    """Payloads that are almost right reach the deeper checks; still only InvalidEvent."""
    params = {k: [v] for k, v in fields.items()}
    for parse in (twilio.parse_voice, twilio.parse_status, twilio.parse_recording):
        only_expected(lambda: parse(params), InvalidEvent)


@FAST
@given(
    url=st.one_of(any_text, st.just("https://ct.example.com:443/x?bodySHA256=ab")),
    params=twilio_params,
    signature=st.one_of(st.none(), any_text),
    token=any_text,
    raw=st.one_of(st.none(), st.binary(max_size=40)),
    json_body=st.booleans(),
)
def test_twilio_signature(
    url: str, params: dict[str, list[str]], signature: str | None, token: str, raw: bytes | None, json_body: bool
) -> None:
    """Any URL, params and header: verified or BadSignature."""
    only_expected(lambda: twilio.verify_signature(url, params, signature, token, raw_body=raw, json_body=json_body), BadSignature)


@FAST
@given(raw=st.binary(max_size=200))
def test_json_parsers_on_bytes(raw: bytes) -> None:
    """Arbitrary bytes: InvalidEvent (or, for Telnyx, an untracked None)."""
    only_expected(lambda: telnyx.parse_event(raw), InvalidEvent)
    only_expected(lambda: pbx.parse_event(raw), InvalidEvent)


@FAST
@given(doc=json_values)
def test_json_parsers_on_any_json(doc: Any) -> None:
    """Any JSON value, nested or not: InvalidEvent or an event."""
    raw = json.dumps(doc).encode()
    only_expected(lambda: telnyx.parse_event(raw), InvalidEvent)
    only_expected(lambda: pbx.parse_event(raw), InvalidEvent)


TELNYX_PAYLOAD = {
    "call_control_id": "v3:abc", "call_leg_id": "leg-1", "call_session_id": "session-1", "connection_id": "7267",
    "from": "+14155550100", "to": "+14155550123", "direction": "incoming", "caller_id_name": "Alice",
    "start_time": "2018-02-02T22:25:27.521992Z", "end_time": "2018-02-02T22:26:27Z", "hangup_cause": "normal_clearing",
    "sip_hangup_cause": "200", "recording_urls": {"mp3": "https://x.example/r.mp3"},
    "public_recording_urls": {"wav": "https://x.example/r.wav"}, "recording_started_at": "2018-02-02T22:25:30Z",
    "recording_ended_at": "2018-02-02T22:26:00Z",
}
TELNYX_DATA = {"event_type": "call.hangup", "id": "e1", "occurred_at": "2018-02-02T22:25:27.521992Z"}


@FAST
@given(
    data=mutated(TELNYX_DATA, list(TELNYX_DATA), json_values),
    payload=mutated(TELNYX_PAYLOAD, list(TELNYX_PAYLOAD), json_values),
    event_type=st.sampled_from(telnyx.TRACKED),
)
def test_telnyx_near_valid(data: dict[str, Any], payload: dict[str, Any], event_type: str) -> None:
    """Telnyx-shaped bodies with wild field values: InvalidEvent, None or an event."""
    raw = json.dumps({"data": {"event_type": event_type, **data, "payload": payload}}).encode()
    only_expected(lambda: telnyx.parse_event(raw), InvalidEvent)


PBX_VALID = {
    "event": "call.completed", "call_id": "c1", "from": "+14155550100", "to": "+14155550123",
    "started_at": "2026-01-01T00:00:00Z", "answered_at": 1767225607, "ended_at": 1767225667.5, "duration": 67,
    "billsec": 60, "disposition": "ANSWERED", "recording_url": "https://pbx.example/r.wav", "caller_name": "Alice",
    "recording_duration": 60,
}


@FAST
@given(body=mutated(PBX_VALID, list(PBX_VALID), json_values), event=st.sampled_from(list(pbx.EVENTS)))
def test_pbx_near_valid(body: dict[str, Any], event: str) -> None:
    """PBX-shaped bodies with wild field values: InvalidEvent or an event."""
    raw = json.dumps({**body, "event": event}).encode()
    only_expected(lambda: pbx.parse_event(raw), InvalidEvent)


@FAST
@given(
    raw=st.binary(max_size=80),
    signature=st.one_of(st.none(), any_text),
    timestamp=st.one_of(st.none(), any_text, st.just(str(NOW))),
    keys=st.lists(any_text, max_size=3),
)
def test_telnyx_signature(raw: bytes, signature: str | None, timestamp: str | None, keys: list[str]) -> None:
    """Any headers and stored keys: a key index or BadSignature."""
    only_expected(lambda: telnyx.verify_signature(raw, signature, timestamp, keys, now=NOW), BadSignature)


@FAST
@given(header=st.one_of(st.none(), any_text, any_text.map(lambda s: f"t={NOW},v1={s}")), raw=st.binary(max_size=80),
       secrets=st.lists(any_text, max_size=3))
def test_pbx_signature(header: str | None, raw: bytes, secrets: list[str]) -> None:
    """Any header and secrets: a secret index or BadSignature."""
    only_expected(lambda: pbx.verify_signature(header, raw, secrets, now=NOW), BadSignature)


csv_field = st.one_of(value, st.sampled_from(['"', '""', ",", "\n", "\r", "\x00", "2026-01-05 10:00:00", "0000-00-00 00:00:00"]))


@FAST
@given(
    lines=st.lists(st.one_of(any_text, st.lists(csv_field, max_size=20).map(",".join)), max_size=8),
    header=st.sampled_from(["", "call_id,from,to,started_at,billsec,disposition\n", "src,dst,start,end,billsec,uniqueid\n"]),
)
def test_cdr_any_lines(lines: list[str], header: str) -> None:
    """Any lines: every item is an event or a problem with a line number, nothing is raised."""
    for item in cdr.read_cdr([header, *lines] if header else lines):
        assert isinstance(item, CallEvent) or (isinstance(item, cdr.CdrProblem) and item.line >= 1)


MASTER_ROW = ["", "4155550100", "4155550123", "from-trunk", '"Alice" <4155550100>', "PJSIP/t-1", "PJSIP/100-2", "Dial",
              "PJSIP/100,30", "2026-01-05 10:00:00", "2026-01-05 10:00:07", "2026-01-05 10:02:07", "127", "120",
              "ANSWERED", "DOCUMENTATION", "1767625200.1", ""]


def csv_line(fields: list[str]) -> str:
    out = io.StringIO()
    csv.writer(out).writerow(fields)
    return out.getvalue()


@FAST
@given(rows=st.lists(st.lists(st.tuples(st.integers(0, len(MASTER_ROW) - 1), csv_field), max_size=4), min_size=1, max_size=4))
def test_cdr_near_valid_rows(rows: list[list[tuple[int, str]]]) -> None:
    """Master.csv rows with a few fields replaced: an event or a problem per row, in order."""
    lines = []
    for changes in rows:
        fields = list(MASTER_ROW)
        for index, text in changes:
            fields[index] = text
        lines.append(csv_line(fields))
    items = list(cdr.read_cdr(io.StringIO("".join(lines), newline="")))
    assert all(isinstance(i, CallEvent) or isinstance(i, cdr.CdrProblem) for i in items)
    problem_lines = [i.line for i in items if isinstance(i, cdr.CdrProblem)]
    assert problem_lines == sorted(problem_lines)
