"""Helpers shared by the browser tests (plain functions; the fixtures are in conftest.py)."""

from __future__ import annotations

import json
import re
import socket
from dataclasses import dataclass, field
from typing import Any

from playwright.sync_api import ConsoleMessage, Error, Page

OWN_E164 = "+14155550100"  # the demo site's own number, (415) 555-0100
PAID_POOL = {f"+141555501{n}" for n in range(10, 14)}  # "Google Ads" (channel paid_search)
ORGANIC_POOL = {f"+141555501{n}" for n in range(20, 28)}  # "All visitors"
GOOGLEBOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"


def free_port() -> int:
    """A loopback port nothing listens on (a moment ago)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_number(page: Page, timeout: float = 10_000) -> str:
    """The tracking number ct.js has applied (``calltrack.number()``), once there is one."""
    handle = page.wait_for_function("() => window.calltrack && window.calltrack.number()", timeout=timeout)
    value = handle.json_value()
    assert isinstance(value, str) and re.fullmatch(r"\+1\d{10}", value), value
    return value


# Playwright does not report every beacon (not those sent while a page unloads): an init
# script records each navigator.sendBeacon call in sessionStorage, where the next page of the
# same origin can read it.
SPY_ON_BEACONS = """(() => {
  const orig = navigator.sendBeacon.bind(navigator);
  navigator.sendBeacon = (url, body) => {
    const ok = orig(url, body);
    const seen = JSON.parse(sessionStorage.getItem('ct_test_beacons') || '[]');
    sessionStorage.setItem('ct_test_beacons', JSON.stringify(seen.concat([[url, String(body), ok]])));
    return ok;
  };
})()"""


def beacons(page: Page) -> list[tuple[str, str, bool]]:
    """The sendBeacon calls recorded by SPY_ON_BEACONS on this origin: (url, body, queued)."""
    raw = page.evaluate("() => sessionStorage.getItem('ct_test_beacons')")
    return [tuple(b) for b in json.loads(raw or "[]")]  # type: ignore[misc]


def last4(e164: str) -> str:
    return e164[-4:]


def national(e164: str) -> str:
    """(415) 555-0123 for +14155550123."""
    d = e164[-10:]
    return f"({d[:3]}) {d[3:6]}-{d[6:]}"


def text(page: Page, selector: str) -> str:
    value = page.text_content(selector)
    assert value is not None, selector
    return value


def cookies_by_name(page: Page) -> dict[str, str]:
    return {c["name"]: c["value"] for c in page.context.cookies()}


@dataclass
class Console:
    """Everything a page said on its console, and every uncaught exception."""

    messages: list[ConsoleMessage] = field(default_factory=list)
    errors: list[Error] = field(default_factory=list)

    @classmethod
    def watch(cls, page: Page) -> Console:
        c = cls()
        page.on("console", lambda m: c.messages.append(m))
        page.on("pageerror", lambda e: c.errors.append(e))
        return c

    def unexpected(self) -> list[str]:
        """Console lines other than the browser's own network-failure notices."""
        out = []
        for m in self.messages:
            t = m.text
            if t.startswith("Failed to load resource") or "net::ERR_" in t:
                continue
            out.append(f"{m.type}: {t}")
        return out

    def assert_clean(self) -> None:
        assert not self.errors, [str(e) for e in self.errors]
        assert not self.unexpected(), self.unexpected()


def number_answer(e164: str, **extra: Any) -> dict[str, Any]:
    """A /v1/number answer as the server would give it (for routes that fake the server)."""
    a = {
        "phoneNumber": e164,
        "formattedPhoneNumber": national(e164),
        "ttl": 1800,
        "vid": "fakevisitor0001",
        "sid": "fakesession0001",
        "lease": True,
        "siteNumber": OWN_E164,
        "siteFormattedNumber": national(OWN_E164),
    }
    a.update(extra)
    return a
