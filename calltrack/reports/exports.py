"""Conversions and leads for ad platforms and CRMs, formatted. Pure: rows in, bytes out.

What is exported
----------------
A *conversion* is a lead (not spam) that reached a chosen stage within a period [from, to):

- ``lead``: the lead was created then;
- ``mql``, ``sql``, ``customer``: the first time the lead entered that stage or a later one,
  from its stage history (a lead now lost still counts for the stage it reached).

Each carries the lead's value and currency (the account's currency when the lead has none;
``value`` may be replaced by one fixed value per conversion), and its conversion time. Google's
files give the time in the account's time zone (``accounts.timezone``), named in the
``Parameters:TimeZone=<tz id>`` first row (a tz id, not an offset, so daylight saving is
Google's to resolve); Microsoft's bulk file in UTC; GA4 as unix microseconds.

The click: the ad platform's click id of the touchpoint that created the lead
(``leads.touchpoint_id``), else the most recent touchpoint of the person's visitors that
carries one. Either way the click must lie within the 90 days before the conversion (Google
and Microsoft refuse older clicks) and not after it. Google rows carry exactly one
identifier: the gclid, else the gbraid, else the wbraid of the chosen touchpoint, each in its
own column (``Google Click ID``, ``GBRAID``, ``WBRAID``). A click id that is not made of the
characters click ids are made of (letters, digits, ``-``, ``_``) is junk someone typed into a
URL and counts as no click id.

Enhanced conversions for leads carry the person's email and phone, normalised (trimmed,
lower-cased; dots removed from the local part of gmail.com/googlemail.com addresses; phones
in E.164 with their ``+``) and SHA-256 hashed (lower-case hex). Withheld callers have no phone
(they are stored as null, and the carriers' keypad spellings are refused here too); a lead
with neither email nor phone is left out.

GA4 Measurement Protocol events need the ``client_id`` of the visitor's Google Analytics
cookie (``_ga`` = ``GA1.1.<random>.<timestamp>`` → ``<random>.<timestamp>``). calltrack does
not read that cookie: a site that wants GA4 events adds a hidden form field named ``_ga`` or
``ga_client_id`` (and ``ga_session_id`` for the session), and leads without one are left out.
GA4 takes events backdated at most 72 hours, so older conversions are left out as well.

The leads export for CRMs is every lead (not spam) created in the period, with its stage,
score, owner, value, contact, source and the click ids of the touchpoint that created it;
times in ISO 8601 UTC (``2026-01-31T09:00:00Z``).

Periods given as dates or date-times without an offset are in the account's time zone; plain
numbers are unix seconds (since 2000, so ``20260131`` is refused rather than read as 1970).

Every CSV goes through :mod:`calltrack.reports.spreadsheet`: a text cell starting with
``=``, ``+``, ``-`` or ``@`` gets a leading apostrophe. In the CRM leads CSV that includes
E.164 phone numbers (shown as ``'+14155550100``); the JSON has them bare.

Every function returns what it left out and why (lead ids per reason), so the command can
say so instead of dropping rows in silence.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from calltrack.leads.contacts import WITHHELD_DIGITS
from calltrack.reports.spreadsheet import rows_to_csv
from calltrack.text import has_control

STAGES = ("lead", "mql", "sql", "customer")
# Lead stages (leads.stage / lead_events.new) that mean a conversion stage was reached.
REACHED = {"mql": ("mql", "sql", "customer"), "sql": ("sql", "customer"), "customer": ("customer",)}
DAY = 86400.0
CLICK_WINDOW = 90 * DAY  # Google and Microsoft refuse clicks older than 90 days
GA4_MAX_AGE = 72 * 3600.0  # GA4 takes events backdated at most 72 hours
MAX_PERIOD_DAYS = 731
GOOGLE_KEYS = ("gclid", "gbraid", "wbraid")  # in order of preference
MICROSOFT_KEYS = ("msclkid",)

GOOGLE_ADS_HEADER = ("Google Click ID", "GBRAID", "WBRAID", "Conversion Name", "Conversion Time", "Conversion Value", "Conversion Currency")
ENHANCED_HEADER = ("Email", "Phone Number", "Conversion Name", "Conversion Time", "Conversion Value", "Conversion Currency", "Google Click ID")
MICROSOFT_HEADER = (
    "Type", "Status", "Id", "Parent Id", "Client Id", "Name", "Conversion Currency Code", "Conversion Name", "Conversion Time",
    "Conversion Value", "Microsoft Click Id",
)
MICROSOFT_FORMAT_VERSION = "6.0"
LEAD_COLUMNS = (
    "id", "created_at", "stage", "score", "temperature", "owner", "value", "currency", "contact_name", "contact_phone",
    "contact_email", "kind", "form_type", "channel", "source", "medium", "campaign", "keyword", "placement", "landing_page",
    "gclid", "gbraid", "wbraid", "msclkid", "fbclid", "first_response_at", "converted_at", "loss_reason",
)
GA4_LEAD_SOURCE = {"call": "phone_call", "callback": "callback", "form": "form"}
# GA4's recommended lead events, by the stage reached.
GA4_DEFAULT_EVENT = {"lead": "generate_lead", "mql": "qualify_lead", "sql": "qualify_lead", "customer": "close_convert_lead"}
GA4_ENGAGEMENT_MSEC = 100

_CLICK_ID = re.compile(r"^[A-Za-z0-9_\-]{1,200}$")
_E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")
_GA_CLIENT = re.compile(r"^(?:GA\d+\.\d+\.)?(\d{1,20}\.\d{1,20})$")
_GA_SESSION = re.compile(r"^\d{1,20}$")
_GA4_EVENT_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,39}$")
_GA4_RESERVED_PREFIXES = ("_", "firebase_", "ga_", "google_", "gtag.")
_FORMULA_START = ("=", "+", "-", "@")
_CENTS = Decimal("0.01")
_YEAR_2000 = 946_684_800.0


class ExportError(ValueError):
    """Input an export cannot use; the message says which and why."""


# -- what the store reads ------------------------------------------------------------------------


@dataclass(frozen=True)
class Touch:
    """A touchpoint's time and ad click ids (as stored; checked when picked)."""

    ts: float
    gclid: str | None = None
    gbraid: str | None = None
    wbraid: str | None = None
    msclkid: str | None = None


@dataclass(frozen=True)
class Conversion:
    lead_id: int
    at: float  # UTC seconds: when the lead reached the stage
    value: float | None
    currency: str
    kind: str
    email: str | None = None
    phone: str | None = None
    lead_touch: Touch | None = None  # the touchpoint that created the lead
    touches: tuple[Touch, ...] = ()  # the person's visitors' touchpoints carrying a click id
    ga_client_id: str | None = None  # raw form field (_ga or ga_client_id)
    ga_session_id: str | None = None
    call_duration: int | None = None  # the first call's talk time, for leads that came by call


@dataclass(frozen=True)
class LeadRow:
    """One lead for a CRM; times are UTC seconds."""

    id: int
    created_at: float
    stage: str
    score: int | None
    temperature: str | None
    owner: str | None
    value: float | None
    currency: str | None
    contact_name: str | None
    contact_phone: str | None
    contact_email: str | None
    kind: str
    form_type: str | None
    channel: str | None
    source: str | None
    medium: str | None
    campaign: str | None
    keyword: str | None
    placement: str | None
    landing_page: str | None
    gclid: str | None
    gbraid: str | None
    wbraid: str | None
    msclkid: str | None
    fbclid: str | None
    first_response_at: float | None
    converted_at: float | None
    loss_reason: str | None


@dataclass
class Export:
    """An export's bytes, how many rows it holds, and the leads left out, by reason."""

    payload: bytes
    rows: int
    left_out: dict[str, list[int]] = field(default_factory=dict)

    def leave_out(self, reason: str, lead_id: int) -> None:
        self.left_out.setdefault(reason, []).append(lead_id)

    def summary(self) -> dict[str, Any]:
        return {"rows": self.rows, "left_out": {k: len(v) for k, v in self.left_out.items()}}


# -- reading the user's input ----------------------------------------------------------------------


def read_stage(value: str | None) -> str:
    stage = (value or "").strip().lower()
    if stage not in STAGES:
        raise ExportError(f"unknown stage {value!r}: one of {', '.join(STAGES)}")
    return stage


def zone(tz: str) -> ZoneInfo:
    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise ExportError(f"unknown time zone {tz!r} (an IANA name such as America/New_York)") from None


def read_time(value: str, name: str, tz: str) -> float:
    """Unix seconds, an ISO 8601 date (midnight in the account's time zone) or date and time
    (in the account's time zone unless it carries an offset or Z)."""
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        if not math.isfinite(seconds) or seconds < _YEAR_2000:
            raise ExportError(f"{name} {value!r} is not a date: as a number it must be unix seconds (since 2000); write dates as 2026-01-31")
        return seconds
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            dt = datetime(day.year, day.month, day.day)
        else:
            dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ExportError(f"{name} {value!r} is not a date: write 2026-01-31, 2026-01-31T09:00, 2026-01-31T09:00Z or unix seconds") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=zone(tz))
    return dt.timestamp()


def read_period(since: str | None, until: str | None, *, tz: str, now: float, default_days: int = 30) -> tuple[float, float]:
    """[from, to): ``to`` defaults to ``now``, ``from`` to ``default_days`` before ``to``."""
    end = read_time(until, "--to", tz) if until else now
    start = read_time(since, "--from", tz) if since else end - default_days * DAY
    if start >= end:
        raise ExportError("--from must be before --to")
    if end - start > MAX_PERIOD_DAYS * DAY:
        raise ExportError(f"a period of at most {MAX_PERIOD_DAYS} days")
    return start, end


def read_conversion_name(value: str | None, platform: str) -> str:
    """The conversion action's (goal's) name, exactly as the ad platform has it."""
    name = (value or "").strip()
    if not name:
        raise ExportError(f"--conversion-name is required: the name of the conversion {'goal' if platform == 'Microsoft Advertising' else 'action'} in {platform}, exactly as it is there")
    if len(name) > 200:
        raise ExportError("--conversion-name is longer than 200 characters")
    if has_control(name):
        raise ExportError("--conversion-name must not contain control characters")
    if name.startswith(_FORMULA_START):
        raise ExportError("--conversion-name must not start with = + - or @ (a spreadsheet reads that as a formula, so it could not be written as given)")
    return name


def read_value(value: str | None) -> float | None:
    """A fixed value for every conversion (``--value``), or None to use each lead's own."""
    if value is None or value == "":
        return None
    try:
        number = float(value)
    except ValueError:
        raise ExportError(f"--value {value!r} is not a number") from None
    if not math.isfinite(number) or number < 0:
        raise ExportError("--value must be a number of at least 0")
    return number


def read_event_name(value: str | None, stage: str) -> str:
    name = (value or "").strip() or GA4_DEFAULT_EVENT[stage]
    if not _GA4_EVENT_NAME.match(name):
        raise ExportError(f"GA4 event name {name!r}: start with a letter; letters, digits and _ only; at most 40 characters")
    if name.lower().startswith(_GA4_RESERVED_PREFIXES):
        raise ExportError(f"GA4 event name {name!r} uses a prefix Google reserves ({', '.join(_GA4_RESERVED_PREFIXES)})")
    return name


# -- the pieces ------------------------------------------------------------------------------------


def normalise_email(raw: str | None) -> str | None:
    """Google's normalisation for hashing: trimmed, lower-cased, and for gmail.com and
    googlemail.com addresses the dots of the local part removed."""
    if not raw:
        return None
    text = raw.strip().lower()
    local, at, domain = text.rpartition("@")
    if not at or not local or not domain or any(c.isspace() for c in text):
        return None
    if domain in ("gmail.com", "googlemail.com"):
        local = local.replace(".", "")
    return f"{local}@{domain}"


def normalise_phone(raw: str | None) -> str | None:
    """E.164 with its ``+``, or None (a withheld caller's keypad spelling is no phone)."""
    if not raw:
        return None
    text = re.sub(r"[\s().\-]", "", raw)
    if not _E164.match(text) or text[1:] in WITHHELD_DIGITS:
        return None
    return text


def sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def ga_client_id(raw: str | None) -> str | None:
    """``GA1.1.123.456`` (the _ga cookie) or ``123.456`` (gtag's client_id) → ``123.456``."""
    if not raw:
        return None
    m = _GA_CLIENT.match(raw.strip())
    return m.group(1) if m else None


def ga_session_id(raw: str | None) -> str | None:
    if not raw:
        return None
    text = raw.strip()
    return text if _GA_SESSION.match(text) else None


def is_click_id(value: str | None) -> bool:
    return bool(value) and bool(_CLICK_ID.match(value or ""))


def pick_click(conversion: Conversion, keys: Sequence[str], *, window: float = CLICK_WINDOW) -> tuple[str, str] | None:
    """(column, click id) for a conversion: the lead's own touchpoint if it carries one of
    ``keys`` in the window, else the most recent touchpoint of the person that does; within a
    touchpoint the first of ``keys`` present wins."""

    def ids(touch: Touch) -> tuple[str, str] | None:
        if not conversion.at - window <= touch.ts <= conversion.at:
            return None
        for key in keys:
            value = getattr(touch, key)
            if is_click_id(value):
                return key, value
        return None

    if conversion.lead_touch is not None:
        found = ids(conversion.lead_touch)
        if found is not None:
            return found
    for touch in sorted(conversion.touches, key=lambda t: t.ts, reverse=True):
        found = ids(touch)
        if found is not None:
            return found
    return None


def money(value: float | None) -> Decimal | None:
    """Two decimals, as a number (so the CSV writer never takes it for text)."""
    if value is None:
        return None
    amount = Decimal(repr(float(value))).quantize(_CENTS, rounding=ROUND_HALF_UP)
    return abs(amount) if amount == 0 else amount  # no "-0.00"


def local_time(ts: float, tz: ZoneInfo) -> str:
    """Google's ``yyyy-MM-dd HH:mm:ss``, in the zone the file's first row names."""
    return datetime.fromtimestamp(ts, tz).strftime("%Y-%m-%d %H:%M:%S")


def microsoft_time(ts: float) -> str:
    """Microsoft's bulk format, in UTC: ``4/1/2020 6:50:54 PM``."""
    dt = datetime.fromtimestamp(ts, UTC)
    hour = dt.hour % 12 or 12
    return f"{dt.month}/{dt.day}/{dt.year} {hour}:{dt.minute:02d}:{dt.second:02d} {'AM' if dt.hour < 12 else 'PM'}"


def iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _value(conversion: Conversion, fixed: float | None) -> Decimal | None:
    return money(fixed if fixed is not None else conversion.value)


def _cell(amount: Decimal | None) -> Decimal | str:
    """A value cell: blank when unknown (the conversion action's default value applies)."""
    return "" if amount is None else amount


def _timezone_row(tz: str) -> bytes:
    zone(tz)  # a name Google would not know is refused before anything is written
    if not re.match(r"^[A-Za-z0-9_/+\-]+$", tz):
        raise ExportError(f"time zone {tz!r} cannot be written in the file's first row")
    return f"Parameters:TimeZone={tz}\n".encode()


# -- the formats -----------------------------------------------------------------------------------


def google_ads_csv(conversions: Iterable[Conversion], *, conversion_name: str, tz: str, value: float | None = None) -> Export:
    """Google Ads click conversions (file import): a time-zone row, then
    ``Google Click ID,GBRAID,WBRAID,Conversion Name,Conversion Time,Conversion Value,Conversion Currency``
    with exactly one of the three identifiers per row."""
    zi = zone(tz)
    head = _timezone_row(tz)
    out = Export(b"", 0)
    rows = []
    for c in conversions:
        click = pick_click(c, GOOGLE_KEYS)
        if click is None:
            out.leave_out("no Google click id (gclid, gbraid, wbraid) within 90 days before the conversion", c.lead_id)
            continue
        key, click_id = click
        ids = [click_id if key == k else "" for k in GOOGLE_KEYS]
        rows.append([*ids, conversion_name, local_time(c.at, zi), _cell(_value(c, value)), c.currency])
    out.payload = head + rows_to_csv(GOOGLE_ADS_HEADER, rows)
    out.rows = len(rows)
    return out


def enhanced_conversions_csv(conversions: Iterable[Conversion], *, conversion_name: str, tz: str, value: float | None = None) -> Export:
    """Enhanced conversions for leads: a time-zone row, then
    ``Email,Phone Number,Conversion Name,Conversion Time,Conversion Value,Conversion Currency,Google Click ID``
    with the email and phone normalised and SHA-256 hashed (blank when unknown) and the gclid
    when the conversion has one."""
    zi = zone(tz)
    head = _timezone_row(tz)
    out = Export(b"", 0)
    rows = []
    for c in conversions:
        email, phone = normalise_email(c.email), normalise_phone(c.phone)
        if email is None and phone is None:
            out.leave_out("no email or phone (withheld caller, or none given)", c.lead_id)
            continue
        click = pick_click(c, ("gclid",))
        rows.append([
            sha256_hex(email) if email else "", sha256_hex(phone) if phone else "", conversion_name, local_time(c.at, zi),
            _cell(_value(c, value)), c.currency, click[1] if click else "",
        ])
    out.payload = head + rows_to_csv(ENHANCED_HEADER, rows)
    out.rows = len(rows)
    return out


def microsoft_ads_csv(conversions: Iterable[Conversion], *, conversion_name: str, value: float | None = None) -> Export:
    """Microsoft Advertising offline conversions, Bulk API CSV (format version 6.0); times in
    UTC; ``Client Id`` names the lead (``lead-<id>``), so the bulk results file points back."""
    out = Export(b"", 0)
    rows: list[list[Any]] = [["Format Version", "", "", "", "", MICROSOFT_FORMAT_VERSION, "", "", "", "", ""]]
    for c in conversions:
        click = pick_click(c, MICROSOFT_KEYS)
        if click is None:
            out.leave_out("no Microsoft click id (msclkid) within 90 days before the conversion", c.lead_id)
            continue
        rows.append([
            "Offline Conversion", "", "", "", f"lead-{c.lead_id}", "", c.currency, conversion_name, microsoft_time(c.at),
            _cell(_value(c, value)), click[1],
        ])
    out.payload = rows_to_csv(MICROSOFT_HEADER, rows)
    out.rows = len(rows) - 1
    return out


@dataclass(frozen=True)
class Ga4Event:
    """One Measurement Protocol request body (one conversion), and the lead it is for."""

    lead_id: int
    body: dict[str, Any]


def ga4_events(
    conversions: Iterable[Conversion], *, event_name: str, as_of: float, value: float | None = None
) -> tuple[list[Ga4Event], Export]:
    """A Measurement Protocol body per conversion:
    ``{"client_id", "timestamp_micros", "events": [{"name", "params": {...}}]}`` with
    currency, value, lead_source, session_id (when the form carried one),
    engagement_time_msec, call_duration (calls) and calltrack_lead_id. The Export's payload
    is the bodies as JSON lines (what would be sent), with what was left out."""
    events: list[Ga4Event] = []
    out = Export(b"", 0)
    for c in conversions:
        client = ga_client_id(c.ga_client_id)
        if client is None:
            out.leave_out("no GA client id (no _ga or ga_client_id form field)", c.lead_id)
            continue
        if c.at < as_of - GA4_MAX_AGE:
            out.leave_out("older than 72 hours (GA4 takes events backdated at most 72 hours)", c.lead_id)
            continue
        if c.at > as_of:
            out.leave_out("in the future", c.lead_id)
            continue
        params: dict[str, Any] = {"currency": c.currency}
        amount = _value(c, value)
        if amount is not None:
            params["value"] = float(amount)
        params["lead_source"] = GA4_LEAD_SOURCE.get(c.kind, c.kind)
        if c.call_duration is not None and c.kind == "call":
            params["call_duration"] = int(c.call_duration)
        session = ga_session_id(c.ga_session_id)
        if session is not None:
            params["session_id"] = session
        params["engagement_time_msec"] = GA4_ENGAGEMENT_MSEC
        params["calltrack_lead_id"] = str(c.lead_id)
        body = {"client_id": client, "timestamp_micros": int(round(c.at * 1_000_000)), "events": [{"name": event_name, "params": params}]}
        events.append(Ga4Event(c.lead_id, body))
    out.payload = b"".join(json.dumps(e.body, sort_keys=True, separators=(",", ":")).encode() + b"\n" for e in events)
    out.rows = len(events)
    return events, out


def _lead_record(lead: LeadRow) -> dict[str, Any]:
    record = {name: getattr(lead, name) for name in LEAD_COLUMNS}
    for name in ("created_at", "first_response_at", "converted_at"):
        record[name] = iso(record[name])
    return record


def leads_csv(leads: Iterable[LeadRow]) -> Export:
    """The leads for a CRM, one row each, columns as ``LEAD_COLUMNS``; times ISO 8601 UTC."""
    rows = []
    for lead in leads:
        record = _lead_record(lead)
        record["value"] = money(lead.value)
        rows.append(["" if record[name] is None else record[name] for name in LEAD_COLUMNS])
    return Export(rows_to_csv(LEAD_COLUMNS, rows), len(rows))


def leads_json(leads: Iterable[LeadRow], *, since: float, until: float, tz: str) -> Export:
    """``{"from", "to", "timezone", "count", "leads": [{…LEAD_COLUMNS…}]}``; nulls kept."""
    records = [_lead_record(lead) for lead in leads]
    document = {"from": iso(since), "to": iso(until), "timezone": tz, "count": len(records), "leads": records}
    return Export((json.dumps(document, indent=2, ensure_ascii=False) + "\n").encode("utf-8"), len(records))


def describe(export: Export) -> list[str]:
    """Lines for the user: each reason with its count and the first lead ids."""
    lines = []
    for reason, ids in export.left_out.items():
        shown = ", ".join(str(i) for i in ids[:10]) + (", …" if len(ids) > 10 else "")
        lines.append(f"  left out {len(ids)}: {reason} (leads {shown})")
    return lines


def window_start(since: float) -> float:
    """The oldest click a conversion in a period starting at ``since`` may use."""
    return since - CLICK_WINDOW
