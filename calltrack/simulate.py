"""``calltrack simulate``: replay a realistic stream of visitors, calls and forms against a
running server, for a demo.

Everything goes through the server's public endpoints, as the real senders would:

- visitors ask ``/v1/number`` (as ct.js does, with the site's domain as Origin), some view a
  second page or send a heartbeat (``/v1/ping``);
- callers ring the number they were shown: the provider's webhooks, signed with the account's
  credential (Twilio: the voice webhook, then the child leg's status callbacks with
  ``ParentCallSid`` and ``SequenceNumber``, as our ``<Dial><Number statusCallback>`` asks;
  PBX: our signed JSON events);
- form fillers post ``/v1/forms``.

What happens is planned from ``--seed`` alone (:func:`plan_visitors`: sources, who calls,
how calls end, callers' numbers and names), so two runs with one seed tell the same story.
Ids that must be new on every run (CallSids, form ids) are random, or a second run would be
refused as duplicates. The run is compressed: events carry the time they are sent, and the
simulated talk time travels in ``CallDuration`` / ``billsec``.

The summary comes from the client's own counts and from the database (the calls, forms and
leads this run made), so the two can be compared.
"""

from __future__ import annotations

import argparse
import hashlib
import ipaddress
import itertools
import json
import random
import secrets
import sys
import threading
import time
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email.utils import format_datetime
from typing import Any
from urllib.parse import urlencode, urlsplit

import requests
import sqlalchemy as sa

from calltrack.config import CalltrackConfig
from calltrack.db.schema import calls, form_submissions, leads
from calltrack.telephony import pbx, twilio
from calltrack.telephony.service import CREDENTIALS_TTL
from calltrack.telephony.store import Credential

PROVIDERS = ("twilio", "pbx")
HTTP_TIMEOUT = 15.0
# After adding a credential, how long the server may take to see it (its credential cache).
CREDENTIAL_WAIT = CREDENTIALS_TTL + 5.0

# -- the plan (pure: everything from the seed) ---------------------------------------------------

# (label, weight): the traffic mix of a small local business with ads.
SOURCE_MIX: tuple[tuple[str, float], ...] = (
    ("google_cpc", 0.32),
    ("bing_cpc", 0.07),
    ("facebook_paid", 0.12),
    ("google_organic", 0.24),
    ("newsletter", 0.07),
    ("direct", 0.18),
)
GOOGLE_CAMPAIGNS = {
    "emergency-plumber": ("emergency plumber", "24 hour plumber near me", "burst pipe repair"),
    "boiler-service-spring": ("boiler repair", "boiler service cost", "combi boiler installation"),
    "water-heaters": ("water heater installation", "tankless water heater", "water heater repair near me"),
    "brand": ("demo plumbing co", "demo plumbing reviews"),
}
BING_CAMPAIGNS = {"bing-emergency": ("emergency plumber", "plumber open now"), "bing-drains": ("blocked drain", "drain cleaning")}
FACEBOOK_CAMPAIGNS = {"fb-spring-offer": ("carousel-a", "video-15s"), "fb-retargeting": ("testimonial", "discount-10")}
PAGES = ("/", "/services/boiler-repair", "/services/emergency", "/services/water-heaters", "/about", "/reviews", "/contact")
USER_AGENTS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0",
)
# Area code → (city, state, a ZIP there). Callers get 555-0100…0199 numbers, the range the
# North American Numbering Plan keeps for fiction in every area code (and which parses as valid).
AREA_CODES = {
    "212": ("NEW YORK", "NY", "10001"), "646": ("NEW YORK", "NY", "10011"), "718": ("BROOKLYN", "NY", "11201"),
    "312": ("CHICAGO", "IL", "60601"), "773": ("CHICAGO", "IL", "60614"), "415": ("SAN FRANCISCO", "CA", "94103"),
    "510": ("OAKLAND", "CA", "94607"), "213": ("LOS ANGELES", "CA", "90012"), "619": ("SAN DIEGO", "CA", "92101"),
    "206": ("SEATTLE", "WA", "98101"), "503": ("PORTLAND", "OR", "97204"), "303": ("DENVER", "CO", "80202"),
    "512": ("AUSTIN", "TX", "78701"), "713": ("HOUSTON", "TX", "77002"), "214": ("DALLAS", "TX", "75201"),
    "602": ("PHOENIX", "AZ", "85004"), "702": ("LAS VEGAS", "NV", "89101"), "305": ("MIAMI", "FL", "33130"),
    "404": ("ATLANTA", "GA", "30303"), "617": ("BOSTON", "MA", "02108"), "202": ("WASHINGTON", "DC", "20001"),
    "215": ("PHILADELPHIA", "PA", "19103"), "612": ("MINNEAPOLIS", "MN", "55401"), "313": ("DETROIT", "MI", "48226"),
}
WITHHELD_CALLER_IDS = ("anonymous", "+266696687", "Restricted")
FIRST_NAMES = (
    "Maria", "James", "Aisha", "Wei", "Carlos", "Emily", "Olusegun", "Priya", "Tom", "Sofia", "Kenji", "Hannah",
    "Diego", "Grace", "Mohammed", "Chloe", "Ivan", "Fatima", "Liam", "Ana", "Noah", "Yuki", "Daniel", "Zara",
)
LAST_NAMES = (
    "Garcia", "Smith", "Okafor", "Chen", "Martinez", "Johnson", "Adeyemi", "Patel", "Brown", "Rossi", "Tanaka",
    "Miller", "Lopez", "Kim", "Haddad", "Dubois", "Petrov", "Khan", "Murphy", "Silva", "Nguyen", "Sato", "Cohen",
)
EMAIL_DOMAINS = ("example.com", "example.net", "example.org")
FORM_MESSAGES = (
    "Our boiler stopped working this morning, can someone come today?",
    "Looking for a quote to replace a 50 gallon water heater.",
    "Kitchen sink drain is blocked, what does a visit cost?",
    "Please call me back about a leak under the bathroom floor.",
    "Do you service tankless heaters? Need an annual check.",
    "Want an estimate for re-piping a 1950s house.",
)
FORM_TYPES = ("contact", "quote", "callback")
WITHHELD_SHARE = 0.06  # of calls
MISSED_SHARE = 0.18  # of first calls: nobody picked up (no-answer)
SHORT_SHARE = 0.1  # of answered calls: a few seconds (wrong number, hang-up)
REPEAT_SHARE = 0.08  # of identified callers who got through: ring again later
REPEAT_AFTER_MISSED_SHARE = 0.5  # of those nobody answered: ring back


@dataclass(frozen=True)
class CallPlan:
    caller: str  # E.164, or a withheld caller id ("anonymous", "+266696687"…)
    withheld: bool
    answered: bool
    talk_seconds: int  # 0 when missed
    ring_seconds: int
    caller_name: str | None  # what a CNAM lookup would show
    city: str | None
    state: str | None
    zip: str | None
    repeat: bool = False  # a second call of the same caller


@dataclass(frozen=True)
class FormPlan:
    form_type: str
    page: str
    fields: dict[str, str]
    before_calls: bool


@dataclass(frozen=True)
class VisitorPlan:
    index: int
    source: str  # a label of SOURCE_MIX
    channel: str  # what the server should derive (for the summary)
    params: dict[str, str]  # the first /v1/number request's tags, click ids, url, ref
    user_agent: str
    address: str  # the visitor's address (X-Forwarded-For; TEST-NET ranges)
    second_page: str | None
    ping: bool
    calls: tuple[CallPlan, ...] = ()
    form: FormPlan | None = None


CHANNELS = {
    "google_cpc": "paid_search", "bing_cpc": "paid_search", "facebook_paid": "paid_social",
    "google_organic": "organic_search", "newsletter": "email", "direct": "direct",
}


def _token(rng: random.Random, alphabet: str, n: int) -> str:
    return "".join(rng.choice(alphabet) for _ in range(n))


_B64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
_HEX = "0123456789abcdef"


def _visit_params(rng: random.Random, source: str, origin: str) -> dict[str, str]:
    page = rng.choice(PAGES[:4])
    p: dict[str, str] = {}
    if source == "google_cpc":
        campaign = rng.choice(sorted(GOOGLE_CAMPAIGNS))
        p = {
            "utm_source": "google", "utm_medium": "cpc", "utm_campaign": campaign,
            "utm_term": rng.choice(GOOGLE_CAMPAIGNS[campaign]), "gclid": "Cj0KCQiA" + _token(rng, _B64URL, 64),
        }
    elif source == "bing_cpc":
        campaign = rng.choice(sorted(BING_CAMPAIGNS))
        p = {
            "utm_source": "bing", "utm_medium": "cpc", "utm_campaign": campaign,
            "utm_term": rng.choice(BING_CAMPAIGNS[campaign]), "msclkid": _token(rng, _HEX, 32),
        }
    elif source == "facebook_paid":
        campaign = rng.choice(sorted(FACEBOOK_CAMPAIGNS))
        p = {
            "utm_source": "facebook", "utm_medium": "paid_social", "utm_campaign": campaign,
            "utm_content": rng.choice(FACEBOOK_CAMPAIGNS[campaign]), "fbclid": "IwAR" + _token(rng, _B64URL, 56),
        }
    elif source == "google_organic":
        p = {"ref": "https://www.google.com/"}
    elif source == "newsletter":
        p = {"utm_source": "newsletter", "utm_medium": "email", "utm_campaign": rng.choice(("march-newsletter", "winter-checklist"))}
    query = urlencode({k: v for k, v in p.items() if k != "ref"})
    p["url"] = origin + page + ("?" + query if query else "")
    return p


def _callers(rng: random.Random, exclude: frozenset[str]) -> Iterator[str]:
    """Distinct fictional numbers in random order; once all are used, they come round again."""
    numbers = [f"+1{ac}5550{n:03d}" for ac in sorted(AREA_CODES) for n in range(100, 200)]
    numbers = [n for n in numbers if n not in exclude]
    rng.shuffle(numbers)
    return itertools.cycle(numbers)


def _address(index: int) -> str:
    """A visitor's address from the documentation ranges (RFC 5737): 762 distinct ones, then
    they come round again."""
    nets = ("192.0.2.0", "198.51.100.0", "203.0.113.0")
    block, host = divmod(index % (3 * 254), 254)
    return str(ipaddress.IPv4Address(nets[block]) + 1 + host)


def _call(rng: random.Random, caller: str, person: tuple[str, str], *, repeat: bool = False) -> CallPlan:
    withheld = not repeat and rng.random() < WITHHELD_SHARE
    ac = caller[2:5]
    city, state, zip_code = AREA_CODES.get(ac, (None, None, None))
    answered = repeat or rng.random() >= MISSED_SHARE  # one who rings back gets through
    if not answered:
        talk = 0
    elif not repeat and rng.random() < SHORT_SHARE:
        talk = rng.randint(2, 9)
    else:
        talk = min(1800, int(rng.lognormvariate(4.6, 0.8)) + 15)  # median ~ 2 minutes
    return CallPlan(
        caller=rng.choice(WITHHELD_CALLER_IDS) if withheld else caller,
        withheld=withheld,
        answered=answered,
        talk_seconds=talk,
        ring_seconds=rng.randint(8, 30) if not answered else rng.randint(3, 18),
        caller_name=None if withheld or rng.random() < 0.6 else f"{person[1]} {person[0]}".upper()[:15],
        city=None if withheld else city,
        state=None if withheld else state,
        zip=None if withheld else zip_code,
        repeat=repeat,
    )


def plan_visitors(
    seed: int | None,
    visitors: int,
    *,
    call_rate: float,
    form_rate: float,
    origin: str,
    exclude_numbers: Sequence[str] = (),
) -> list[VisitorPlan]:
    """What each simulated visitor does, from ``seed`` alone (no clock, no global randomness).

    ``origin`` is the site's page origin (``https://<allowed domain>``); ``exclude_numbers``
    are the account's own numbers, which no caller may have.
    """
    root = random.Random(seed)
    callers = _callers(random.Random(root.getrandbits(64)), frozenset(exclude_numbers))
    labels = [s for s, _ in SOURCE_MIX]
    weights = [w for _, w in SOURCE_MIX]
    plans: list[VisitorPlan] = []
    for i in range(visitors):
        # A generator per visitor: the rates change who calls or writes, not everyone else's story.
        rng = random.Random(root.getrandbits(64))
        source = rng.choices(labels, weights)[0]
        params = _visit_params(rng, source, origin)
        person = (rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES))
        phone = next(callers)
        calls_: list[CallPlan] = []
        if rng.random() < call_rate:
            first = _call(rng, phone, person)
            calls_.append(first)
            if not first.withheld and rng.random() < (REPEAT_SHARE if first.answered else REPEAT_AFTER_MISSED_SHARE):
                calls_.append(_call(rng, phone, person, repeat=True))
        form = None
        if rng.random() < form_rate:
            fields = {"name": f"{person[0]} {person[1]}", "email": f"{person[0]}.{person[1]}{rng.randint(1, 99)}@{rng.choice(EMAIL_DOMAINS)}".lower()}
            if rng.random() < 0.8:  # most leave a phone number: their own, so a call and a form are one person
                fields["phone"] = f"({phone[2:5]}) {phone[5:8]}-{phone[8:]}"
            fields["message"] = rng.choice(FORM_MESSAGES)
            form = FormPlan(rng.choice(FORM_TYPES), origin + "/contact", fields, before_calls=rng.random() < 0.5)
        plans.append(
            VisitorPlan(
                index=i,
                source=source,
                channel=CHANNELS[source],
                params=params,
                user_agent=rng.choice(USER_AGENTS),
                address=_address(i),
                second_page=origin + rng.choice(PAGES[3:]) if rng.random() < 0.35 else None,
                ping=rng.random() < 0.4,
                calls=tuple(calls_),
                form=form,
            )
        )
    return plans


# -- running it against a server -----------------------------------------------------------------


class Unreachable(Exception):
    """The server did not answer at all."""


@dataclass
class Tally:
    """What the client saw; shared by the worker threads (``lock``)."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    visits: int = 0
    channels: Counter[str] = field(default_factory=Counter)
    leases: int = 0
    second_pages: int = 0
    pings: int = 0
    calls_placed: int = 0
    answered: int = 0
    missed: int = 0
    short: int = 0
    withheld: int = 0
    repeat: int = 0
    not_forwarded: int = 0
    forms_posted: int = 0
    form_duplicates: int = 0
    webhooks: int = 0
    call_refs: list[str] = field(default_factory=list)
    form_refs: list[str] = field(default_factory=list)
    http_errors: Counter[str] = field(default_factory=Counter)  # "POST /v1/forms 429" → count
    connection_errors: Counter[str] = field(default_factory=Counter)

    def add(self, **counts: int) -> None:
        with self.lock:
            for name, n in counts.items():
                setattr(self, name, getattr(self, name) + n)


class Simulator:
    """Sends each visitor's journey; one ``requests.Session`` per worker thread."""

    def __init__(
        self,
        *,
        base_url: str,
        public_base_url: str,
        site: Any,
        origin: str,
        provider: str,
        credential: Credential,
        tally: Tally,
    ) -> None:
        self.base = base_url.rstrip("/")
        self.public = public_base_url.rstrip("/")
        self.site = site
        self.origin = origin
        self.provider = provider
        self.credential = credential
        self.tally = tally
        self._local = threading.local()
        self._pbx_ids = itertools.count(secrets.randbelow(10**6) * 1000)
        self._run_epoch = int(time.time())

    # -- HTTP

    def _session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()
        return session

    def _send(self, method: str, path: str, **kwargs: Any) -> requests.Response | None:
        """One request; a non-2xx answer or a connection error is counted, not raised (None)."""
        label = f"{method} {path}"
        try:
            r = self._session().request(method, self.base + path, timeout=HTTP_TIMEOUT, **kwargs)
        except requests.RequestException as e:
            with self.tally.lock:
                self.tally.connection_errors[f"{label}: {type(e).__name__}"] += 1
            return None
        if not 200 <= r.status_code < 300:
            with self.tally.lock:
                self.tally.http_errors[f"{label} {r.status_code}"] += 1
            return None
        return r

    def _browser_headers(self, plan: VisitorPlan, referer: str | None = None) -> dict[str, str]:
        headers = {"Origin": self.origin, "User-Agent": plan.user_agent, "X-Forwarded-For": plan.address}
        if referer:
            headers["Referer"] = referer
        return headers

    # -- a visitor

    def visit(self, plan: VisitorPlan) -> None:
        t = self.tally
        t.add(visits=1)
        with t.lock:
            t.channels[plan.channel] += 1
        r = self._send("GET", "/v1/number", params={"site": self.site.site_key, **plan.params}, headers=self._browser_headers(plan))
        if r is None:
            return
        answer = r.json()
        vid, sid, number = answer.get("vid"), answer.get("sid"), answer["phoneNumber"]
        if answer.get("lease"):
            t.add(leases=1)
        if plan.second_page and vid:
            # ct.js sends the first touch's tags, click ids, referrer and landing page again.
            r = self._send(
                "GET", "/v1/number", params={"site": self.site.site_key, "vid": vid, "sid": sid, **plan.params},
                headers=self._browser_headers(plan, plan.second_page),
            )
            if r is not None:
                t.add(second_pages=1)
                number = r.json().get("phoneNumber", number)
        if plan.ping and vid:
            ping = {"site": self.site.site_key, "vid": vid, "sid": sid}
            if self._send("POST", "/v1/ping", json=ping, headers=self._browser_headers(plan)) is not None:
                t.add(pings=1)
        if plan.form is not None and plan.form.before_calls:
            self.form(plan, vid, sid)
        for call in plan.calls:
            if self.provider == "twilio":
                self.twilio_call(call, number)
            else:
                self.pbx_call(call, number)
        if plan.form is not None and not plan.form.before_calls:
            self.form(plan, vid, sid)

    def form(self, plan: VisitorPlan, vid: str | None, sid: str | None) -> None:
        assert plan.form is not None
        ref = "f" + secrets.token_hex(12)
        body = {
            "site": self.site.site_key, "vid": vid, "sid": sid, "id": ref, "url": plan.form.page,
            "form_type": plan.form.form_type, "fields": plan.form.fields,
        }
        r = self._send("POST", "/v1/forms", json=body, headers=self._browser_headers(plan, plan.form.page))
        if r is None:
            return
        with self.tally.lock:
            self.tally.form_refs.append(ref)
            if r.status_code == 201:
                self.tally.forms_posted += 1
            else:
                self.tally.form_duplicates += 1

    def _count_call(self, call: CallPlan, ref: str) -> None:
        with self.tally.lock:
            self.tally.call_refs.append(ref)
            self.tally.calls_placed += 1
            self.tally.withheld += call.withheld
            self.tally.repeat += call.repeat

    def _count_end(self, call: CallPlan) -> None:
        if call.answered:
            self.tally.add(answered=1, short=int(call.talk_seconds < 10))
        else:
            self.tally.add(missed=1)

    # -- Twilio: the voice webhook, then the child leg's status callbacks

    def _twilio_post(self, url: str, params: dict[str, str]) -> requests.Response | None:
        """Post to ``url``'s path on the server we drive, signed for ``url`` as Twilio signs."""
        path = urlsplit(url).path
        signature = twilio.compute_signature(url, params, self.credential.secret)
        self.tally.add(webhooks=1)
        return self._send(
            "POST", path, data=urlencode(params),
            headers={"Content-Type": "application/x-www-form-urlencoded", "X-Twilio-Signature": signature,
                     "User-Agent": "TwilioProxy/1.1", "I-Twilio-Idempotency-Token": secrets.token_hex(16)},
        )

    def twilio_call(self, call: CallPlan, number: str) -> None:
        account_sid = self.credential.provider_account or ""
        call_sid = "CA" + secrets.token_hex(16)
        voice = {
            "AccountSid": account_sid, "ApiVersion": "2010-04-01", "CallSid": call_sid, "CallStatus": "ringing",
            "Direction": "inbound", "From": call.caller, "Caller": call.caller, "To": number, "Called": number,
            "FromCity": call.city or "", "FromState": call.state or "", "FromZip": call.zip or "", "FromCountry": "US" if call.city else "",
            "ToCity": "", "ToState": "", "ToZip": "", "ToCountry": "US", "CallerCity": call.city or "", "CallerState": call.state or "",
            "CallerZip": call.zip or "", "CallerCountry": "US" if call.city else "", "CalledCountry": "US",
        }
        if call.caller_name:
            voice["CallerName"] = call.caller_name
        r = self._twilio_post(self.public + "/v1/webhooks/twilio/voice", voice)
        if r is None:
            return
        self._count_call(call, call_sid)
        try:
            dial_number = ET.fromstring(r.content).find("./Dial/Number")
        except ET.ParseError:
            dial_number = None
        if dial_number is None or not dial_number.text:  # <Reject/> or "not in service": no child leg
            self.tally.add(not_forwarded=1)
            return
        callback = dial_number.get("statusCallback") or self.public + "/v1/webhooks/twilio/status"
        child_sid = "CA" + secrets.token_hex(16)
        steps = ["initiated", "ringing"] + (["in-progress", "completed"] if call.answered else ["no-answer"])
        for seq, status in enumerate(steps):
            params = {
                "AccountSid": account_sid, "ApiVersion": "2010-04-01", "CallSid": child_sid, "ParentCallSid": call_sid,
                "CallStatus": status, "Direction": "outbound-dial", "From": call.caller, "To": dial_number.text,
                "CallbackSource": "call-progress-events", "SequenceNumber": str(seq), "Timestamp": _rfc2822(time.time()),
            }
            if status in ("completed", "no-answer"):
                params["CallDuration"] = str(call.talk_seconds)
            if self._twilio_post(callback, params) is None:
                return
        self._count_end(call)

    # -- PBX: our signed JSON events

    def _pbx_post(self, body: dict[str, Any]) -> requests.Response | None:
        data = json.dumps(body, separators=(",", ":")).encode()
        header = pbx.sign(self.credential.secret, data, timestamp=int(time.time()))
        self.tally.add(webhooks=1)
        return self._send("POST", "/v1/webhooks/calls", data=data, headers={"Content-Type": "application/json", pbx.HEADER: header})

    def pbx_call(self, call: CallPlan, number: str) -> None:
        call_id = f"{self._run_epoch}.{next(self._pbx_ids)}"  # Asterisk's uniqueid: <epoch>.<sequence>
        base = {"call_id": call_id, "from": call.caller, "to": number}
        if call.caller_name:
            base["caller_name"] = call.caller_name
        r = self._pbx_post({**base, "event": "call.started", "started_at": time.time()})
        if r is None:
            return
        self._count_call(call, call_id)
        answer = r.json()
        if answer.get("blocked") or not answer.get("forward_to"):
            self.tally.add(not_forwarded=1)
            self._pbx_post({**base, "event": "call.completed", "ended_at": time.time(), "disposition": "BUSY", "billsec": 0})
            return
        if self._pbx_post({**base, "event": "call.ringing"}) is None:
            return
        if call.answered:
            if self._pbx_post({**base, "event": "call.answered", "answered_at": time.time()}) is None:
                return
            end = {"disposition": "ANSWERED", "billsec": call.talk_seconds, "duration": call.ring_seconds + call.talk_seconds}
        else:
            end = {"disposition": "NO ANSWER", "billsec": 0, "duration": call.ring_seconds}
        if self._pbx_post({**base, "event": "call.completed", "ended_at": time.time(), **end}) is not None:
            self._count_end(call)

    # -- before the run

    def probe_signature(self) -> int:
        """A signed delivery the server must refuse as invalid (400), not as forged (403):
        proof that it knows our secret, with nothing stored. Returns the status."""
        if self.provider == "twilio":
            params = {"AccountSid": self.credential.provider_account or "", "CallSid": "CA" + "0" * 32, "CallStatus": "simulate-probe"}
            url = self.public + "/v1/webhooks/twilio/status"
            r = self._session().post(
                self.base + "/v1/webhooks/twilio/status", data=urlencode(params), timeout=HTTP_TIMEOUT,
                headers={"Content-Type": "application/x-www-form-urlencoded",
                         "X-Twilio-Signature": twilio.compute_signature(url, params, self.credential.secret)},
            )
        else:
            data = b'{"event":"simulate.probe"}'
            r = self._session().post(
                self.base + "/v1/webhooks/calls", data=data, timeout=HTTP_TIMEOUT,
                headers={"Content-Type": "application/json", pbx.HEADER: pbx.sign(self.credential.secret, data, timestamp=int(time.time()))},
            )
        return r.status_code


def check_health(url: str) -> None:
    """Raise Unreachable unless the server answers ``GET /healthz`` with 200."""
    try:
        r = requests.get(url + "/healthz", timeout=HTTP_TIMEOUT)
    except requests.RequestException as e:
        raise Unreachable(type(e).__name__) from None
    if r.status_code != 200:
        raise Unreachable(f"GET /healthz answered {r.status_code}")


def _rfc2822(ts: float) -> str:
    return format_datetime(datetime.fromtimestamp(int(ts), timezone.utc))


# -- the database side ---------------------------------------------------------------------------


def _max_lead_id_txn(conn: sa.Connection, account_id: int) -> int:
    return int(conn.execute(sa.select(sa.func.coalesce(sa.func.max(leads.c.id), 0)).where(leads.c.account_id == account_id)).scalar_one())


def _chunks(items: Sequence[str], n: int = 500) -> Iterator[Sequence[str]]:
    for i in range(0, len(items), n):
        yield items[i : i + n]


def summary_txn(
    conn: sa.Connection, account_id: int, provider: str, call_refs: Sequence[str], site_id: int, form_refs: Sequence[str], lead_floor: int
) -> dict[str, Any]:
    """What the database holds of this run: its calls (by match method and status), its form
    submissions, and the leads they created (ids above ``lead_floor``, the last one before)."""
    methods: Counter[str] = Counter()
    statuses: Counter[str] = Counter()
    lead_ids: set[int] = set()
    stored_calls = 0
    for chunk in _chunks(call_refs):
        rows = conn.execute(
            sa.select(calls.c.match_method, calls.c.status, calls.c.lead_id).where(
                calls.c.account_id == account_id, calls.c.provider == provider, calls.c.call_ref.in_(chunk)
            )
        ).all()
        for r in rows:
            stored_calls += 1
            methods[r.match_method or "none"] += 1
            statuses[r.status] += 1
            if r.lead_id is not None:
                lead_ids.add(r.lead_id)
    stored_forms = 0
    for chunk in _chunks(form_refs):
        rows = conn.execute(
            sa.select(form_submissions.c.lead_id).where(form_submissions.c.site_id == site_id, form_submissions.c.client_ref.in_(chunk))
        ).all()
        stored_forms += len(rows)
        lead_ids.update(r.lead_id for r in rows if r.lead_id is not None)
    created = [i for i in lead_ids if i > lead_floor]
    stages: Counter[str] = Counter()
    for chunk in _chunks([str(i) for i in created]):
        rows = conn.execute(sa.select(leads.c.stage).where(leads.c.id.in_([int(i) for i in chunk]))).all()
        stages.update(r.stage for r in rows)
    return {
        "calls_stored": stored_calls,
        "match_methods": dict(methods.most_common()),
        "call_statuses": dict(statuses.most_common()),
        "forms_stored": stored_forms,
        "leads_created": len(created),
        "leads_joined": len(lead_ids) - len(created),
        "lead_stages": dict(stages.most_common()),
    }


# -- the command ---------------------------------------------------------------------------------


def _share(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError("a share between 0 and 1")
    return value


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError("at least 1")
    return value


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Register ``calltrack simulate`` on the CLI's sub-command parsers."""
    p = sub.add_parser(
        "simulate",
        help="replay a realistic stream of visits, calls and forms against a running server (a demo)",
        description="Drive visitors (/v1/number, /v1/ping), calls (the provider's signed webhooks) and forms "
        "(/v1/forms) against a running `calltrack serve`, then summarise what the database made of them. "
        "Uses the database of this command's configuration to find (or add) the provider credential.",
    )
    p.add_argument("--url", help="the server to drive (default: http.public_base_url)")
    p.add_argument("--account", type=int, help="account id (default: the only account)")
    p.add_argument("--site", metavar="SITE_KEY", help="site key (default: the account's first site)")
    p.add_argument("--visitors", type=int, default=200, help="visitors to simulate (default 200)")
    p.add_argument("--call-rate", type=_share, default=0.3, help="share of visitors who call (default 0.3)")
    p.add_argument("--form-rate", type=_share, default=0.1, help="share of visitors who fill a form (default 0.1)")
    p.add_argument("--seed", type=int, help="plan the same visitors and calls again (default: a new story each run)")
    p.add_argument("--provider", choices=PROVIDERS, default="twilio", help="whose webhooks the calls come through (default twilio)")
    p.add_argument("--concurrency", type=_positive, default=8, help="visitors in flight at once (default 8)")
    # SUPPRESS: `calltrack --json simulate` keeps working; `simulate --json` works as well.
    p.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="print the summary as JSON")
    p.set_defaults(func=cmd_simulate)


def _ensure_credential(app: Any, account_id: int, provider: str, seed: int | None) -> tuple[Credential, bool]:
    """The account's active credential for ``provider``; one is added when there is none."""
    from calltrack.cli import run_now

    for cred in run_now(app.telephony.credentials_of(account_id)):
        if cred.provider == provider and cred.secret and (provider != "twilio" or cred.provider_account):
            return cred, False
    if provider == "twilio":
        # A stable AccountSid for a seed (the simulated Twilio account), a fresh auth token.
        digest = hashlib.sha256(f"calltrack-simulate:{seed}:{account_id}".encode()).hexdigest()
        sid = "AC" + (digest[:32] if seed is not None else secrets.token_hex(16))
        cred = run_now(app.telephony.add_credential(account_id, "twilio", provider_account=sid, secret=secrets.token_hex(16)))
    else:
        cred = run_now(app.telephony.add_credential(account_id, "pbx"))
    return cred, True


def _wait_for_signature(sim: Simulator, *, created: bool, url: str, public: str, provider: str) -> float:
    """Wait until the server accepts our signature (a new credential takes up to its cache
    time to be seen); returns the seconds waited, or raises CliError."""
    from calltrack.cli import CliError

    start = time.monotonic()
    deadline = start + (CREDENTIAL_WAIT if created else 3.0)
    while True:
        try:
            status = sim.probe_signature()
        except requests.RequestException as e:
            raise CliError(f"cannot reach calltrack at {url}: {type(e).__name__}") from None
        if status == 400:
            return time.monotonic() - start
        if status != 403:
            raise CliError(f"a signed probe to the {provider} webhook answered {status}, not 400 (invalid event): is {url} a calltrack server?")
        if time.monotonic() > deadline:
            hint = (
                f"Twilio signatures cover the public URL: the server must have http.public_base_url = {public}"
                if provider == "twilio" else "the PBX signature's timestamp must be within the server's tolerance"
            )
            raise CliError(
                f"the server at {url} refuses our {provider} signature (403). It must use the same database as this "
                f"command (CALLTRACK_DATABASE_URL), and {hint}."
            )
        time.sleep(0.5)


def _origin(site: Any) -> str:
    domains = list(site.allowed_domains)
    named = [d for d in domains if not d.replace(".", "").isdigit()]
    return "https://" + (named or domains)[0]


def cmd_simulate(config: CalltrackConfig, args: argparse.Namespace) -> None:
    from calltrack.cli import CliError, _account, _open_app, run_now

    as_json = bool(getattr(args, "json", False))
    if args.visitors < 0:
        raise CliError("--visitors must be 0 or more")
    app = _open_app(config)
    account = _account(app, args.account)
    if args.site:
        site = run_now(app.accounts.site_by_key(args.site))
        if site is None or site.account_id != account.id:
            raise CliError(f"account {account.id} has no site with the key {args.site}")
    else:
        sites = run_now(app.accounts.list_sites(account.id))
        if not sites:
            raise CliError(f"account {account.id} has no site: add one with `calltrack site add`")
        site = sites[0]
    url = (args.url or config.http.public_base_url).rstrip("/")
    public = config.http.public_base_url.rstrip("/")
    origin = _origin(site)
    # Callers must not have the account's own numbers (tracking, site and forwarding numbers).
    own = [n.e164 for n in run_now(app.numbers.list_numbers(account.id, include_retired=True))]
    own += [n for s in run_now(app.accounts.list_sites(account.id)) for n in (s.own_number, s.forward_to)]
    plans = plan_visitors(args.seed, args.visitors, call_rate=args.call_rate, form_rate=args.form_rate, origin=origin, exclude_numbers=own)

    # The server is checked before anything is written to the database.
    try:
        check_health(url)
    except Unreachable as e:
        raise CliError(f"cannot reach calltrack at {url} ({e}): start it with `calltrack serve`, or give --url") from None
    tally = Tally()

    credential, created = _ensure_credential(app, account.id, args.provider, args.seed)
    notes: list[str] = []
    if created:
        what = f"AccountSid {credential.provider_account}" if args.provider == "twilio" else f"credential {credential.id}"
        notes.append(f"added a {args.provider} credential to account {account.id} ({what}) to sign the simulated webhooks")
        # Said at once (a long run follows); in text the summary does not repeat it.
        print(f"calltrack simulate: {notes[-1]}", file=sys.stderr if as_json else sys.stdout, flush=True)
    sim = Simulator(base_url=url, public_base_url=public, site=site, origin=origin, provider=args.provider,
                    credential=credential, tally=tally)
    waited = _wait_for_signature(sim, created=created, url=url, public=public, provider=args.provider)
    if waited >= 1.0:
        notes.append(f"waited {waited:.0f}s for the server to load the new credential")

    lead_floor = app.db.run_sync("max_lead_id", _max_lead_id_txn, account.id)
    started = time.monotonic()
    _run(sim, plans, concurrency=args.concurrency, progress=not as_json and sys.stderr.isatty())
    elapsed = time.monotonic() - started
    db = app.db.run_sync(
        "simulate_summary", summary_txn, account.id, args.provider, list(tally.call_refs), site.id, list(tally.form_refs), lead_floor
    )
    summary = _summary(args, tally, db, url=url, site=site, account_id=account.id, elapsed=elapsed, notes=notes)
    if as_json:
        print(json.dumps(summary, indent=2, ensure_ascii=False))
    else:
        print(_text({**summary, "notes": notes[1:] if created else notes}))


def _run(sim: Simulator, plans: list[VisitorPlan], *, concurrency: int, progress: bool) -> None:
    from tqdm import tqdm  # here, not at the top: the rest of the CLI does not need it

    with tqdm(total=len(plans), desc="visitors", unit="visitor", file=sys.stderr, disable=not progress, leave=False) as bar:
        with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="simulate") as pool:
            futures = [pool.submit(sim.visit, plan) for plan in plans]
            for future in as_completed(futures):
                future.result()
                bar.update(1)


def _summary(
    args: argparse.Namespace, t: Tally, db: dict[str, Any], *, url: str, site: Any, account_id: int, elapsed: float, notes: list[str]
) -> dict[str, Any]:
    return {
        "url": url,
        "account_id": account_id,
        "site": {"id": site.id, "name": site.name, "site_key": site.site_key},
        "provider": args.provider,
        "seed": args.seed,
        "seconds": round(elapsed, 2),
        "visits": t.visits,
        "channels": dict(t.channels.most_common()),
        "leases": t.leases,
        "second_pages": t.second_pages,
        "pings": t.pings,
        "calls": {
            "placed": t.calls_placed,
            "answered": t.answered,
            "missed": t.missed,
            "short": t.short,
            "withheld": t.withheld,
            "repeat": t.repeat,
            "not_forwarded": t.not_forwarded,
        },
        "webhooks": t.webhooks,
        "forms": t.forms_posted,
        "form_duplicates": t.form_duplicates,
        "leads_created": db["leads_created"],
        "leads_joined": db["leads_joined"],
        "lead_stages": db["lead_stages"],
        "match_methods": db["match_methods"],
        "database": {"calls": db["calls_stored"], "call_statuses": db["call_statuses"], "forms": db["forms_stored"]},
        "errors": {"http": dict(t.http_errors.most_common()), "connection": dict(t.connection_errors.most_common())},
        "notes": notes,
    }


def _text(s: dict[str, Any]) -> str:
    c = s["calls"]
    channels = ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in s["channels"].items())
    unleased = s["visits"] - s["leases"]
    lines = [
        f"simulated {s['visits']} visitors against {s['url']} (site {s['site']['name']!r}, {s['provider']} webhooks, "
        f"seed {s['seed'] if s['seed'] is not None else 'none'}) in {s['seconds']:.1f}s",
        f"  visits   {s['visits']} ({channels or 'none'}); {s['second_pages']} second pages, {s['pings']} pings",
        f"  leases   {s['leases']} visitors held a tracking number"
        + (f"; {unleased} saw the site's own or an overflow number (pools full, or the per-address lease limit)" if unleased else ""),
        f"  calls    {c['placed']} placed: {c['answered']} answered ({c['short']} under 10 s), {c['missed']} missed; "
        f"{c['withheld']} withheld caller IDs, {c['repeat']} repeat calls"
        + (f", {c['not_forwarded']} not forwarded" if c["not_forwarded"] else ""),
        f"  forms    {s['forms']} posted" + (f" ({s['form_duplicates']} answered as duplicates)" if s["form_duplicates"] else ""),
        f"  leads    {s['leads_created']} created"
        + (f", {s['leads_joined']} existing joined" if s["leads_joined"] else "")
        + (f" (stages: {', '.join(f'{k} {v}' for k, v in s['lead_stages'].items())})" if s["lead_stages"] else ""),
        "  matched  " + (", ".join(f"{k} {v}" for k, v in s["match_methods"].items()) or "no calls"),
        f"  stored   {s['database']['calls']} calls, {s['database']['forms']} forms ({s['webhooks']} webhooks sent)",
    ]
    errors = s["errors"]
    if errors["http"] or errors["connection"]:
        parts = [f"{k} ×{v}" for k, v in {**errors["http"], **errors["connection"]}.items()]
        lines.append("  errors   " + "; ".join(parts))
    else:
        lines.append("  errors   none")
    lines += [f"  note     {n}" for n in s["notes"]]
    return "\n".join(lines)
