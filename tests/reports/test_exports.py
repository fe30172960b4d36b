"""The export formats, field by field, from rows built by hand (no database): the reference's
hashing vectors, exact headers and time formats, one Google identifier per row, the 90-day
click window, neutralised cells, GA4 bodies, and bad input."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime

import pytest

from calltrack.reports import exports
from calltrack.reports.exports import Conversion, ExportError, LeadRow, Touch
from tests.test_layering import _parse, clock_and_random_calls, heavy_imports, imported_modules

DAY = 86400.0
# 2026-02-01 15:30:00 in New York (EST, UTC-5) = 20:30:00Z
AT = datetime(2026, 2, 1, 20, 30, tzinfo=UTC).timestamp()


def conv(lead_id: int = 1, **kw) -> Conversion:
    base = dict(lead_id=lead_id, at=AT, value=150.0, currency="USD", kind="form")
    return Conversion(**(base | kw))


def lines(payload: bytes) -> list[str]:
    return payload.decode("utf-8").split("\n")


def table(payload: bytes, skip: int = 0) -> list[list[str]]:
    return list(csv.reader(io.StringIO("\n".join(lines(payload)[skip:]))))


def test_the_module_is_pure() -> None:
    tree = _parse("calltrack/reports/exports.py")
    assert heavy_imports(tree) == [] and clock_and_random_calls(tree) == []


def test_the_store_and_the_sender_never_import_twisted() -> None:
    for rel in ("calltrack/reports/export_store.py", "calltrack/reports/ga4.py"):
        assert [m for m, _ in imported_modules(_parse(rel)) if m.split(".")[0] in ("twisted", "treq")] == [], rel


def test_hashing_follows_the_reference_vectors() -> None:
    assert exports.normalise_email(" Jane.Doe@Gmail.com ") == "janedoe@gmail.com"
    assert exports.sha256_hex("janedoe@gmail.com") == "d6117306485ed0e50afab3ac871e98f81699151f30281527d63ff5f233656c69"
    assert exports.sha256_hex(exports.normalise_phone("+14155550100")) == "40d3f4e02db27d66cf4cfdda506c2c945f115a7955cc8491dda98ce5beabcda0"
    # Dots stay outside gmail; googlemail loses them too; case and spaces always go.
    assert exports.normalise_email("John.Smith@Example.COM") == "john.smith@example.com"
    assert exports.normalise_email("a.b.c@googlemail.com") == "abc@googlemail.com"
    for bad in (None, "", "no-at-sign", "@example.com", "a b@example.com"):
        assert exports.normalise_email(bad) is None
    assert exports.normalise_phone("+1 415 555 0100") == "+14155550100"
    for bad in (None, "", "4155550100", "+266696687", "+7378742833", "+0123456789", "anonymous"):
        assert exports.normalise_phone(bad) is None, bad


def test_google_ads_file_header_time_zone_and_one_identifier_per_row() -> None:
    rows = [
        conv(1, lead_touch=Touch(AT - 3600, gclid="Cj0KCQjw-example", gbraid="0AAAAAgb", msclkid="f894f652ea334e739002f7167ab8f8e3")),
        conv(2, value=None, lead_touch=Touch(AT - 3600, gbraid="0AAAAA-gbraid_1", wbraid="wb1")),
        conv(3, value=0.0, currency="EUR", lead_touch=Touch(AT - 3600, wbraid="CjwKwbraid")),
        conv(4, value=99.999, touches=(Touch(AT - 5 * DAY, gclid="older"), Touch(AT - DAY, gclid="newer"), Touch(AT + 60, gclid="after"))),
        conv(5, lead_touch=Touch(AT - 3600, msclkid="f894f652ea334e739002f7167ab8f8e3")),  # Microsoft only
        conv(6),  # no click at all
    ]
    out = exports.google_ads_csv(rows, conversion_name="Qualified Call", tz="America/New_York")
    text = lines(out.payload)
    assert text[0] == "Parameters:TimeZone=America/New_York"
    assert text[1] == "Google Click ID,GBRAID,WBRAID,Conversion Name,Conversion Time,Conversion Value,Conversion Currency"
    assert text[2] == "Cj0KCQjw-example,,,Qualified Call,2026-02-01 15:30:00,150.00,USD"
    assert text[3] == ",0AAAAA-gbraid_1,,Qualified Call,2026-02-01 15:30:00,,USD"  # no value: the action's default applies
    assert text[4] == ",,CjwKwbraid,Qualified Call,2026-02-01 15:30:00,0.00,EUR"
    assert text[5] == "newer,,,Qualified Call,2026-02-01 15:30:00,100.00,USD"  # the most recent click before the conversion
    assert text[6:] == [""]
    assert out.rows == 4 and sum(len(v) for v in out.left_out.values()) == 2
    (reason,) = out.left_out
    assert "gclid" in reason and out.left_out[reason] == [5, 6]
    for row in table(out.payload, skip=1)[1:]:
        assert sum(1 for cell in row[:3] if cell) == 1


def test_summer_time_is_written_in_the_named_zone() -> None:
    july = datetime(2026, 7, 1, 19, 0, tzinfo=UTC).timestamp()  # EDT, UTC-4
    out = exports.google_ads_csv([conv(at=july, lead_touch=Touch(july - 60, gclid="g"))], conversion_name="x", tz="America/New_York")
    assert lines(out.payload)[2].split(",")[4] == "2026-07-01 15:00:00"
    berlin = exports.google_ads_csv([conv(lead_touch=Touch(AT - 60, gclid="g"))], conversion_name="x", tz="Europe/Berlin")
    assert lines(berlin.payload)[0] == "Parameters:TimeZone=Europe/Berlin" and "2026-02-01 21:30:00" in lines(berlin.payload)[2]


def test_the_click_window_is_90_days_before_the_conversion_and_the_lead_touch_comes_first() -> None:
    in_window = Touch(AT - 89 * DAY, gclid="lead-touch")
    too_old = Touch(AT - 91 * DAY, gclid="too-old")
    recent = Touch(AT - DAY, gclid="recent")
    assert exports.pick_click(conv(lead_touch=in_window, touches=(recent,)), exports.GOOGLE_KEYS) == ("gclid", "lead-touch")
    assert exports.pick_click(conv(lead_touch=too_old, touches=(recent,)), exports.GOOGLE_KEYS) == ("gclid", "recent")
    assert exports.pick_click(conv(lead_touch=too_old, touches=(too_old,)), exports.GOOGLE_KEYS) is None
    assert exports.pick_click(conv(touches=(Touch(AT - 90 * DAY, gclid="edge"),)), exports.GOOGLE_KEYS) == ("gclid", "edge")
    # A lead touch with only a Microsoft click does not hide a Google click elsewhere, and the other way round.
    ms_only = Touch(AT - 60, msclkid="f894f652ea334e739002f7167ab8f8e3")
    assert exports.pick_click(conv(lead_touch=ms_only, touches=(recent,)), exports.GOOGLE_KEYS) == ("gclid", "recent")
    assert exports.pick_click(conv(lead_touch=recent, touches=(ms_only,)), exports.MICROSOFT_KEYS) == ("msclkid", "f894f652ea334e739002f7167ab8f8e3")
    # Junk typed into a URL is no click id.
    junk = Touch(AT - 60, gclid='=HYPERLINK("http://evil")')
    assert exports.pick_click(conv(lead_touch=junk, touches=(recent,)), exports.GOOGLE_KEYS) == ("gclid", "recent")


def test_enhanced_conversions_hash_and_leave_out_people_without_contact_data() -> None:
    rows = [
        conv(1, email=" Jane.Doe@Gmail.com ", phone="+14155550100", lead_touch=Touch(AT - 60, gclid="Cj0KCQjw-example")),
        conv(2, email=None, phone="+14155550100", kind="call", value=None),
        conv(3, email="bo@example.com", phone=None, lead_touch=Touch(AT - 60, gbraid="gb")),  # gbraid is not an EC column
        conv(4, email=None, phone="+266696687"),  # a withheld caller's keypad spelling: no phone at all
        conv(5, email=None, phone=None),
    ]
    out = exports.enhanced_conversions_csv(rows, conversion_name="Qualified lead", tz="America/New_York")
    text = lines(out.payload)
    assert text[0] == "Parameters:TimeZone=America/New_York"
    assert text[1] == "Email,Phone Number,Conversion Name,Conversion Time,Conversion Value,Conversion Currency,Google Click ID"
    jane, phone = "d6117306485ed0e50afab3ac871e98f81699151f30281527d63ff5f233656c69", "40d3f4e02db27d66cf4cfdda506c2c945f115a7955cc8491dda98ce5beabcda0"
    assert text[2] == f"{jane},{phone},Qualified lead,2026-02-01 15:30:00,150.00,USD,Cj0KCQjw-example"
    assert text[3] == f",{phone},Qualified lead,2026-02-01 15:30:00,,USD,"
    assert text[4] == f"{exports.sha256_hex('bo@example.com')},,Qualified lead,2026-02-01 15:30:00,150.00,USD,"
    assert text[5:] == [""]
    assert list(out.left_out.values()) == [[4, 5]] and "withheld" in next(iter(out.left_out))


def test_microsoft_bulk_file_exactly_as_documented() -> None:
    at = datetime(2020, 4, 1, 18, 50, 54, tzinfo=UTC).timestamp()
    rows = [
        conv(7, at=at, value=10.0, lead_touch=Touch(at - 3600, gclid="g", msclkid="f894f652ea334e739002f7167ab8f8e3")),
        conv(8, at=at + 6 * 3600, value=None, currency="EUR", touches=(Touch(at, msclkid="abc123"),)),  # 00:50:54 next day → 12 AM
        conv(9, at=at, lead_touch=Touch(at - 60, gclid="google-only")),
    ]
    out = exports.microsoft_ads_csv(rows, conversion_name="My Goal Name")
    assert lines(out.payload) == [
        "Type,Status,Id,Parent Id,Client Id,Name,Conversion Currency Code,Conversion Name,Conversion Time,Conversion Value,Microsoft Click Id",
        "Format Version,,,,,6.0,,,,,",
        "Offline Conversion,,,,lead-7,,USD,My Goal Name,4/1/2020 6:50:54 PM,10.00,f894f652ea334e739002f7167ab8f8e3",
        "Offline Conversion,,,,lead-8,,EUR,My Goal Name,4/2/2020 12:50:54 AM,,abc123",
        "",
    ]
    assert out.rows == 2 and list(out.left_out.values()) == [[9]] and "msclkid" in next(iter(out.left_out))
    assert exports.microsoft_time(datetime(2026, 1, 5, 12, 0, 0, tzinfo=UTC).timestamp()) == "1/5/2026 12:00:00 PM"


def test_a_fixed_value_replaces_each_leads_own() -> None:
    rows = [conv(1, value=None, lead_touch=Touch(AT - 60, gclid="a")), conv(2, value=900.0, lead_touch=Touch(AT - 60, gclid="b"))]
    out = exports.google_ads_csv(rows, conversion_name="MQL", tz="UTC", value=50.0)
    assert [r[5] for r in table(out.payload, skip=1)[1:]] == ["50.00", "50.00"]


def test_cells_that_start_a_formula_are_neutralised() -> None:
    # Only a caller bypassing pick_click's check could get such an id here; the writer still guards.
    row = conv(1, lead_touch=Touch(AT - 60, gclid="-x"))
    out = exports.google_ads_csv([row], conversion_name="Call", tz="UTC")
    assert lines(out.payload)[2].startswith("'-x,")
    lead = LeadRow(
        id=3, created_at=AT, stage="mql", score=120, temperature="hot", owner="+Eve", value=-0.0, currency="USD",
        contact_name="@SUM(A1:A9)", contact_phone="+14155550100", contact_email="ann@example.com", kind="form", form_type="estimate",
        channel="paid_search", source="google", medium="cpc", campaign='=HYPERLINK("http://evil","x")', keyword="-1+1",
        placement=None, landing_page="https://acme.example/?a=1", gclid="Cj0", gbraid=None, wbraid=None, msclkid=None, fbclid=None,
        first_response_at=AT + 300, converted_at=None, loss_reason=None,
    )
    (header, cells) = table(exports.leads_csv([lead]).payload)[:2]
    record = dict(zip(header, cells, strict=True))
    assert header == list(exports.LEAD_COLUMNS)
    assert record["campaign"] == '\'=HYPERLINK("http://evil","x")' and record["contact_name"] == "'@SUM(A1:A9)"
    assert record["keyword"] == "'-1+1" and record["owner"] == "'+Eve" and record["contact_phone"] == "'+14155550100"
    assert record["value"] == "0.00" and record["created_at"] == "2026-02-01T20:30:00Z" and record["first_response_at"] == "2026-02-01T20:35:00Z"
    assert record["placement"] == "" and record["converted_at"] == ""
    doc = json.loads(exports.leads_json([lead], since=AT - DAY, until=AT + DAY, tz="UTC").payload)
    assert doc["count"] == 1 and doc["leads"][0]["contact_phone"] == "+14155550100" and doc["leads"][0]["placement"] is None
    assert doc["leads"][0]["campaign"].startswith("=HYPERLINK")  # JSON is data, not a spreadsheet
    assert list(doc["leads"][0]) == list(exports.LEAD_COLUMNS)


def test_ga4_bodies_follow_the_measurement_protocol() -> None:
    as_of = AT + 3600
    rows = [
        conv(1, kind="call", call_duration=184, ga_client_id="GA1.1.1234567890.1700000000", ga_session_id="1700000000"),
        conv(2, value=None, ga_client_id="555.666"),
        conv(3, ga_client_id=None),
        conv(4, ga_client_id="not-a-client-id"),
        conv(5, at=as_of - 73 * 3600, ga_client_id="1.2"),
    ]
    events, out = exports.ga4_events(rows, event_name="generate_lead", as_of=as_of)
    assert [e.lead_id for e in events] == [1, 2]
    assert events[0].body == {
        "client_id": "1234567890.1700000000", "timestamp_micros": int(AT) * 1_000_000,
        "events": [{"name": "generate_lead", "params": {
            "currency": "USD", "value": 150.0, "lead_source": "phone_call", "call_duration": 184, "session_id": "1700000000",
            "engagement_time_msec": 100, "calltrack_lead_id": "1",
        }}],
    }
    assert events[1].body["events"][0]["params"] == {"currency": "USD", "lead_source": "form", "engagement_time_msec": 100, "calltrack_lead_id": "2"}
    assert sorted(sum(out.left_out.values(), [])) == [3, 4, 5]
    assert any("72 hours" in reason for reason in out.left_out)
    assert [json.loads(line) for line in out.payload.decode().splitlines()] == [e.body for e in events]


def test_user_input_is_checked_with_clear_messages() -> None:
    assert exports.read_stage(" MQL ") == "mql"
    with pytest.raises(ExportError, match="unknown stage 'won': one of lead, mql, sql, customer"):
        exports.read_stage("won")
    ny = "America/New_York"
    assert exports.read_time("2026-02-01", "--from", ny) == datetime(2026, 2, 1, 5, tzinfo=UTC).timestamp()
    assert exports.read_time("2026-02-01T10:00", "--from", ny) == datetime(2026, 2, 1, 15, tzinfo=UTC).timestamp()
    assert exports.read_time("2026-02-01T10:00Z", "--from", ny) == datetime(2026, 2, 1, 10, tzinfo=UTC).timestamp()
    assert exports.read_time("1769900000", "--from", ny) == 1769900000.0
    for bad in ("yesterday", "2026-13-01", "01/02/2026", "nan", "-5", "20260131"):
        with pytest.raises(ExportError, match="--from"):
            exports.read_time(bad, "--from", ny)
    assert exports.read_period(None, None, tz=ny, now=AT) == (AT - 30 * DAY, AT)
    with pytest.raises(ExportError, match="before"):
        exports.read_period("2026-02-02", "2026-02-01", tz=ny, now=AT)
    with pytest.raises(ExportError, match="731 days"):
        exports.read_period("2020-01-01", "2026-02-01", tz=ny, now=AT)
    with pytest.raises(ExportError, match="time zone"):
        exports.google_ads_csv([], conversion_name="x", tz="Mars/Olympus")
    assert exports.read_conversion_name("  Qualified Call ", "Google Ads") == "Qualified Call"
    for bad, fault in ((None, "required"), ("   ", "required"), ("=cmd|' /C calc'!A0", "formula"), ("a\x00b", "control"), ("x" * 201, "longer")):
        with pytest.raises(ExportError, match=fault):
            exports.read_conversion_name(bad, "Google Ads")
    assert exports.read_value("12.5") == 12.5 and exports.read_value(None) is None
    for bad in ("ten", "-1", "inf"):
        with pytest.raises(ExportError, match="--value"):
            exports.read_value(bad)
    assert exports.read_event_name(None, "customer") == "close_convert_lead" and exports.read_event_name("phone_call_lead", "lead") == "phone_call_lead"
    for bad in ("1lead", "lead-now", "x" * 41, "ga_lead", "firebase_x", "_x"):
        with pytest.raises(ExportError, match="event name"):
            exports.read_event_name(bad, "lead")


def test_an_empty_period_is_a_file_with_its_headers() -> None:
    assert exports.google_ads_csv([], conversion_name="x", tz="UTC").payload == (
        b"Parameters:TimeZone=UTC\nGoogle Click ID,GBRAID,WBRAID,Conversion Name,Conversion Time,Conversion Value,Conversion Currency\n"
    )
    assert lines(exports.microsoft_ads_csv([], conversion_name="x").payload)[1] == "Format Version,,,,,6.0,,,,,"
    assert exports.leads_csv([]).payload.decode() == ",".join(exports.LEAD_COLUMNS) + "\n"
