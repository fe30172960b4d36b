"""Property tests through the HTTP layer: a correctly signed delivery of any content is
answered 200 or a clean 4xx JSON error, never a 500, and what was stored stays consistent."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.numbers.helpers import rows
from tests.telephony.helpers import STATIC_NUMBER, TWILIO_SID, pbx_post, setup_phones, twilio_post

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=40)
json_scalar = st.one_of(st.none(), st.booleans(), st.integers(-(2**40), 2**40), st.floats(allow_nan=False, allow_infinity=False), text)
pbx_body = st.fixed_dictionaries(
    {"event": st.sampled_from(["call.started", "call.ringing", "call.answered", "call.completed", "call.recording", "call.other"])},
    optional={
        "call_id": st.one_of(text, st.sampled_from(["c1", "c2", "c3"])),
        "from": st.one_of(text, st.sampled_from(["+14155550100", "anonymous", "4155550101", ""])),
        "to": st.one_of(text, st.just(STATIC_NUMBER)),
        "started_at": st.one_of(json_scalar, st.just("2026-01-01T00:00:00Z")),
        "answered_at": json_scalar,
        "ended_at": json_scalar,
        "billsec": json_scalar,
        "duration": json_scalar,
        "disposition": st.one_of(text, st.sampled_from(["ANSWERED", "NO ANSWER", "BUSY"])),
        "recording_url": st.one_of(text, st.just("https://pbx.example/r.wav")),
        "caller_name": json_scalar,
    },
)


@pytest.fixture
def phones(app, tenant):
    return setup_phones(app, tenant)


def assert_clean(status: int, body: object) -> None:
    assert status == 200 or (400 <= status < 500 and isinstance(body, dict) and body["error"]["code"]), (status, body)


@SETTINGS
@given(body=pbx_body)
def test_any_signed_pbx_event_is_200_or_a_clean_4xx(app, http, phones, clock, body):
    status, answer, _ = pbx_post(http, phones.pbx_secret, body, now=clock.seconds())
    assert_clean(status, answer)
    for call in rows(app, "SELECT status, started_at, duration FROM calls"):
        assert call.status in ("queued", "ringing", "in-progress", "completed", "busy", "no-answer", "failed", "canceled")
        assert call.started_at is not None and (call.duration is None or call.duration >= 0)


@SETTINGS
@given(raw=st.binary(max_size=300) | st.recursive(json_scalar, lambda c: st.lists(c, max_size=3) | st.dictionaries(text, c, max_size=3), max_leaves=20).map(lambda v: json.dumps(v).encode()))
def test_any_signed_pbx_bytes_are_200_or_a_clean_4xx(http, phones, clock, raw):
    status, answer, _ = pbx_post(http, phones.pbx_secret, {}, now=clock.seconds(), raw=raw)
    assert_clean(status, answer)


@SETTINGS
@given(
    params=st.dictionaries(
        st.sampled_from(["CallSid", "From", "To", "CallStatus", "ParentCallSid", "SequenceNumber", "Timestamp", "CallDuration",
                         "Direction", "RecordingSid", "RecordingUrl", "RecordingStatus", "RecordingDuration", "Junk"]),
        st.one_of(text, st.sampled_from(["CA" + "1" * 32, "+14155550100", STATIC_NUMBER, "completed", "in-progress", "3", "-1"])),
        max_size=10,
    ),
    path=st.sampled_from(["voice", "status", "recording"]),
)
def test_any_signed_twilio_form_is_200_or_a_clean_4xx(http, phones, params, path):
    status, answer, _ = twilio_post(http, f"/v1/webhooks/twilio/{path}", params | {"AccountSid": TWILIO_SID})
    if status != 200:
        assert_clean(status, answer)
