"""GA4 Measurement Protocol over real HTTP: a local http.server stands in for
www.google-analytics.com, answering /mp/collect as Google does (204, no body, whatever was
sent) and /debug/mp/collect with the validation server's shape
({"validationMessages": [{"fieldPath", "description", "validationCode"}]})."""

from __future__ import annotations

import json
import re
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from calltrack.reports import exports, ga4
from calltrack.reports.exports import ExportError, Ga4Event

SECRET = "s3cr3t-Api_key"
MID = "G-TEST1234"
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,39}$")


def validation_messages(body: Any) -> list[dict[str, str]]:
    """What the validation server says of a body: the checks we rely on."""
    out = []
    if not isinstance(body, dict):
        return [{"fieldPath": "", "description": "Unable to parse Measurement Protocol JSON payload.", "validationCode": "VALUE_INVALID"}]
    if not body.get("client_id"):
        out.append({"fieldPath": "client_id", "description": "Measurement requires a client_id.", "validationCode": "VALUE_REQUIRED"})
    for i, event in enumerate(body.get("events") or []):
        if not _NAME.match(str(event.get("name", ""))):
            out.append({"fieldPath": f"events[{i}].name", "description": f"Event name {event.get('name')!r} is invalid.", "validationCode": "NAME_INVALID"})
        params = event.get("params") or {}
        if "value" in params and "currency" not in params:
            out.append({"fieldPath": f"events[{i}].params.currency", "description": "currency is required with value.", "validationCode": "VALUE_REQUIRED"})
    if not isinstance(body.get("timestamp_micros", 0), int):
        out.append({"fieldPath": "timestamp_micros", "description": "timestamp_micros must be an integer.", "validationCode": "VALUE_INVALID"})
    return out


class Google:
    """The recording fake. ``fail`` makes /mp/collect answer that status."""

    def __init__(self) -> None:
        self.got: list[dict[str, Any]] = []
        self.fail: int | None = None
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                parts = urlsplit(self.path)
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                try:
                    body = json.loads(raw)
                except ValueError:
                    body = None
                owner.got.append({"path": parts.path, "query": parse_qs(parts.query), "body": body, "content_type": self.headers.get("Content-Type")})
                if parts.path == "/debug/mp/collect":
                    answer = json.dumps({"validationMessages": validation_messages(body)}).encode()
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(answer)))
                    self.end_headers()
                    self.wfile.write(answer)
                elif parts.path == "/mp/collect":
                    self.send_response(owner.fail or 204)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                else:
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def google() -> Iterator[Google]:
    g = Google()
    yield g
    g.close()


def events() -> list[Ga4Event]:
    rows = [
        exports.Conversion(lead_id=1, at=1_767_229_200.0, value=150.0, currency="USD", kind="call", call_duration=184, ga_client_id="GA1.1.1234567890.1700000000", ga_session_id="1700000000"),
        exports.Conversion(lead_id=2, at=1_767_229_260.0, value=None, currency="EUR", kind="form", ga_client_id="42.1700000001"),
    ]
    found, _ = exports.ga4_events(rows, event_name="generate_lead", as_of=1_767_229_300.0)
    return found


def test_events_are_posted_to_collect_with_the_measurement_id_and_secret(google: Google) -> None:
    sent = events()
    results = ga4.send(sent, measurement_id=MID, api_secret=SECRET, base_url=google.url)
    assert [r.to_json() for r in results] == [
        {"lead_id": 1, "ok": True, "status": 204, "error": None, "validation_messages": []},
        {"lead_id": 2, "ok": True, "status": 204, "error": None, "validation_messages": []},
    ]
    assert [g["path"] for g in google.got] == ["/mp/collect", "/mp/collect"]
    assert google.got[0]["query"] == {"measurement_id": [MID], "api_secret": [SECRET]}
    assert google.got[0]["content_type"] == "application/json"
    assert [g["body"] for g in google.got] == [e.body for e in sent]
    first = google.got[0]["body"]
    assert first["client_id"] == "1234567890.1700000000" and first["timestamp_micros"] == 1_767_229_200_000_000
    assert first["events"] == [{"name": "generate_lead", "params": {
        "currency": "USD", "value": 150.0, "lead_source": "phone_call", "call_duration": 184, "session_id": "1700000000",
        "engagement_time_msec": 100, "calltrack_lead_id": "1",
    }}]


def test_validate_posts_to_the_debug_endpoint_and_reports_its_messages(google: Google) -> None:
    good = events()
    bad = [Ga4Event(9, {"timestamp_micros": 1, "events": [{"name": "1-bad name", "params": {"value": 3.0}}]})]
    results = ga4.send(good + bad, measurement_id=MID, api_secret=SECRET, validate=True, base_url=google.url + "/")
    assert [g["path"] for g in google.got] == ["/debug/mp/collect"] * 3
    assert [r.ok for r in results] == [True, True, False]
    assert results[2].status == 200 and [m["validationCode"] for m in results[2].messages] == ["VALUE_REQUIRED", "NAME_INVALID", "VALUE_REQUIRED"]
    assert results[2].messages[1] == {"fieldPath": "events[0].name", "description": "Event name '1-bad name' is invalid.", "validationCode": "NAME_INVALID"}


def test_a_refusal_or_an_unreachable_server_is_a_failed_result_without_the_secret(google: Google) -> None:
    google.fail = 500
    (refused,) = ga4.send(events()[:1], measurement_id=MID, api_secret=SECRET, base_url=google.url)
    assert not refused.ok and refused.status == 500
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{s.getsockname()[1]}"
    results = ga4.send(events(), measurement_id=MID, api_secret=SECRET, base_url=closed, timeout=2)
    assert [r.ok for r in results] == [False, False] and all(r.status is None for r in results)
    assert "ConnectionError" in results[0].error and SECRET not in results[0].error and "***" in results[0].error


def test_settings_are_checked_before_anything_is_sent() -> None:
    assert ga4.check_settings(" G-ABC123 ", "x", None) == ("G-ABC123", "x", ga4.GOOGLE)
    for mid, secret, base, fault in (
        (None, "x", None, "--measurement-id is required"), ("UA-1234-1", "x", None, "not a GA4 measurement id"),
        ("G-ABC123", "", None, "--api-secret is required"), ("G-ABC123", "a b", None, "--api-secret"),
        ("G-ABC123", "x", "ftp://example.com", "--base-url"), ("G-ABC123", "x", "http://h/?a=1", "--base-url"),
    ):
        with pytest.raises(ExportError, match=re.escape(fault)):
            ga4.check_settings(mid, secret, base)
