"""GET /ct.js itself, the public API, the heartbeat that holds the lease, and form capture
(on the demo page, as a new user sees it)."""

from __future__ import annotations

import gzip
import json
import time

import pytest

from tests.browser.helpers import (
    ORGANIC_POOL,
    SPY_ON_BEACONS,
    Console,
    beacons,
    cookies_by_name,
    last4,
    national,
    text,
    wait_number,
)

pytestmark = pytest.mark.browser

PAGE = '<a id="call" href="tel:+14155550100">(415) 555-0100</a><p id="body">Call 415-555-0100 now.</p>'


def test_ct_js_is_small_cached_and_revalidates(ct_server):
    status, headers, gz = ct_server.get("/ct.js", {"Accept-Encoding": "gzip"})
    assert status == 200
    assert headers["content-encoding"] == "gzip"
    assert headers["content-type"].startswith("application/javascript")
    assert len(gz) < 4096, f"ct.js is {len(gz)} bytes gzipped"
    status, plain_headers, plain = ct_server.get("/ct.js")
    assert status == 200 and "content-encoding" not in plain_headers
    assert gzip.decompress(gz) == plain
    etag = headers["etag"]
    assert etag and etag == plain_headers["etag"]
    assert "max-age" in headers["cache-control"]
    status, not_modified_headers, body = ct_server.get("/ct.js", {"If-None-Match": etag, "Accept-Encoding": "gzip"})
    assert (status, body) == (304, b"")
    assert not_modified_headers["etag"] == etag
    assert ct_server.get("/ct.js", {"If-None-Match": '"something-else"'})[0] == 200


def test_public_api_number_and_run(ct_server, site_pages, page):
    console = Console.watch(page)
    url = site_pages.add("/api", PAGE)
    page.goto(url)
    number = wait_number(page)
    assert number in ORGANIC_POOL
    assert page.get_attribute("#call", "href") == f"tel:{number}"
    assert text(page, "#call") == national(number)
    vid = cookies_by_name(page)["ct_vid"]
    assert [lease["number"] for lease in ct_server.leases_of(vid)] == [number]
    # run() swaps at once (the MutationObserver would only get to it a frame later).
    swapped = page.evaluate(
        """() => { const p = document.createElement('p'); p.textContent = '415-555-0100'; document.body.append(p);
                   calltrack.run(); return p.textContent; }"""
    )
    assert swapped == f"415-555-{last4(number)}"
    console.assert_clean()


def pings_served(ct_server) -> float:
    """Pings the server has answered (200), once the count is still for 200 ms (earlier tests'
    closing pages send pings too)."""
    last = ct_server.requests_served("POST", "/v1/ping")
    while True:
        time.sleep(0.2)
        now = ct_server.requests_served("POST", "/v1/ping")
        if now == last:
            return now
        last = now


def wait_served(ct_server, count: float) -> None:
    """Until the server has answered `count` pings in all; fails if it answers more."""
    deadline = time.monotonic() + 5
    while ct_server.requests_served("POST", "/v1/ping") < count and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.1)
    assert ct_server.requests_served("POST", "/v1/ping") == count


def _pings(requests: list) -> list:
    return [r for r in requests if "/v1/ping" in r.url]


def test_heartbeat_while_visible_stops_when_hidden(ct_server, site_pages, page):
    url = site_pages.add("/heartbeat", PAGE)
    page.clock.install()  # time runs as usual; fast_forward jumps to the next heartbeat
    page.goto(url)
    number = wait_number(page)
    vid, sid = cookies_by_name(page)["ct_vid"], cookies_by_name(page)["ct_sid"]
    requests: list = []
    page.on("request", lambda r: requests.append(r))

    # Visible: a ping at the heartbeat interval (ttl / 3, at most 300 s). (A keepalive fetch:
    # Playwright reports the request but not its response.)
    with page.expect_request(lambda r: "/v1/ping" in r.url) as beat:
        page.clock.fast_forward(301_000)
    assert beat.value.method == "POST"
    assert beat.value.url == f"{ct_server.base}/v1/ping?site={ct_server.site_key}"
    assert json.loads(beat.value.post_data or "{}") == {"site": ct_server.site_key, "vid": vid, "sid": sid}

    # Hidden: no more pings.
    page.evaluate(
        """() => { Object.defineProperty(document, 'visibilityState', {configurable: true, get: () => 'hidden'});
                   document.dispatchEvent(new Event('visibilitychange')); }"""
    )
    requests.clear()
    page.clock.fast_forward(301_000)
    page.clock.fast_forward(301_000)
    page.wait_for_timeout(200)
    assert _pings(requests) == []

    # Visible again: a ping at once, then the heartbeat resumes.
    with page.expect_request(lambda r: "/v1/ping" in r.url) as back:
        page.evaluate(
            """() => { Object.defineProperty(document, 'visibilityState', {configurable: true, get: () => 'visible'});
                       document.dispatchEvent(new Event('visibilitychange')); }"""
        )
    assert json.loads(back.value.post_data or "{}")["vid"] == vid
    with page.expect_request(lambda r: "/v1/ping" in r.url):
        page.clock.fast_forward(301_000)
    assert [lease["number"] for lease in ct_server.leases_of(vid)] == [number]


def test_leaving_the_page_sends_a_beacon(ct_server, site_pages, page):
    url = site_pages.add("/leave", PAGE)
    site_pages.add("/elsewhere", "<p>no phone here</p>", script=False)
    page.add_init_script(SPY_ON_BEACONS)
    page.goto(url)
    wait_number(page)
    vid, sid = cookies_by_name(page)["ct_vid"], cookies_by_name(page)["ct_sid"]

    # Navigating away.
    served = pings_served(ct_server)
    page.goto(site_pages.origin + "/elsewhere")
    sent = beacons(page)
    assert len(sent) == 1, sent
    beacon_url, body, queued = sent[0]
    assert beacon_url == f"{ct_server.base}/v1/ping?site={ct_server.site_key}" and queued is True
    assert json.loads(body) == {"site": ct_server.site_key, "vid": vid, "sid": sid}
    wait_served(ct_server, served + 1)

    # Closing the tab.
    page.goto(url)
    wait_number(page)
    page.close()
    wait_served(ct_server, served + 2)


def test_demo_page_swaps_and_captures_its_form(ct_server, page):
    console = Console.watch(page)
    forms_before = ct_server.forms()
    page.add_init_script(SPY_ON_BEACONS)
    page.goto(ct_server.base + "/demo")
    number = wait_number(page)
    n = last4(number)
    page.wait_for_function("() => !document.getElementById('body-text').textContent.includes('0100')")
    assert text(page, "#header-phone") == national(number)
    assert page.get_attribute("#header-phone", "href") == f"tel:{number}"
    assert page.get_attribute("#call-button", "href") == f"tel:{number}"
    assert page.get_attribute("#footer-phone", "href") == f"tel:{number}"
    assert f"415-555-{n}" in text(page, "#body-text")
    assert text(page, "#intl") == f"+1 415 555 {n}"
    assert text(page, "#other-number") == "Billing questions: (415) 555-0188 (Mon–Fri)."
    assert text(page, "#no-swap") == "Our number for the record: (415) 555-0100"
    vid = cookies_by_name(page)["ct_vid"]

    page.fill("#name", "Pat Visitor")
    page.fill("#phone", "(415) 555-0142")
    page.fill("#message", "Kitchen sink is blocked")
    with page.expect_navigation():
        page.click("#contact button[type=submit]")
    assert text(page, ".thanks") == "Thanks! We'll call you back shortly."  # the form itself went through
    form_beacons = [b for b in beacons(page) if "/v1/forms" in b[0]]  # (leaving also pings)
    assert len(form_beacons) == 1, beacons(page)
    beacon_url, body, queued = form_beacons[0]
    assert beacon_url == f"{ct_server.base}/v1/forms?site={ct_server.site_key}" and queued is True
    sent = json.loads(body)
    assert sent["vid"] == vid and sent["site"] == ct_server.site_key
    assert sent["fields"] == {"name": "Pat Visitor", "phone": "(415) 555-0142", "email": "", "message": "Kitchen sink is blocked"}

    deadline = time.monotonic() + 5
    while len(ct_server.forms()) == len(forms_before) and time.monotonic() < deadline:
        time.sleep(0.05)
    new = [f for f in ct_server.forms() if f not in forms_before]
    assert len(new) == 1, new
    assert new[0]["phone"] == "+14155550142"
    assert new[0]["vid"] == vid
    assert new[0]["name"] == "Pat Visitor"
    assert new[0]["url"].startswith(ct_server.base + "/demo")
    console.assert_clean()


def test_form_without_phone_or_email_posts_nothing(ct_server, site_pages, page):
    url = site_pages.add(
        "/newsletter-less",
        PAGE
        + '<form id="f" method="post" action="/thanks"><input name="name" value="Pat">'
        + '<textarea name="message">Just browsing</textarea><button type="submit">Send</button></form>',
        attrs='data-forms="auto"',
    )
    page.add_init_script(SPY_ON_BEACONS)
    page.goto(url)
    wait_number(page)
    forms_before = ct_server.forms()
    requests: list = []
    page.context.on("request", lambda r: requests.append(r.url))
    posts_before = len(site_pages.posts)
    with page.expect_navigation():
        page.click("#f button")
    assert text(page, "#thanks") == "Thanks, we got it."
    assert site_pages.posts[posts_before:] == [("/thanks", b"name=Pat&message=Just+browsing")]
    page.wait_for_timeout(300)
    assert [b for b in beacons(page) if "/v1/forms" in b[0]] == []
    assert [b for b in beacons(page) if "/v1/ping" in b[0]], "the spy saw no beacon at all (the leaving ping)"
    assert [u for u in requests if "/v1/forms" in u] == []
    assert ct_server.forms() == forms_before
