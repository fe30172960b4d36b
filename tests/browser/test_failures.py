"""When calltrack is down, slow or broken the page keeps its own number, and ct.js says
nothing: no exception, no console output beyond the browser's own network notices."""

from __future__ import annotations

import contextlib
import json
import time

import pytest
from playwright.sync_api import Error as PlaywrightError

from tests.browser.helpers import Console, free_port, number_answer, text

pytestmark = pytest.mark.browser

PAGE = (
    '<header><a id="call" href="tel:+14155550100">(415) 555-0100</a></header>'
    '<p id="body">Call 415-555-0100 now.</p><p id="dots">or 415.555.0100</p>'
)


def assert_original(page) -> None:
    assert text(page, "#body") == "Call 415-555-0100 now."
    assert text(page, "#dots") == "or 415.555.0100"
    assert text(page, "#call") == "(415) 555-0100"
    assert page.get_attribute("#call", "href") == "tel:+14155550100"
    assert page.evaluate("window.calltrack.number()") is None


def test_server_down_leaves_the_page_alone(ct_server, site_pages, page):
    closed = free_port()  # nothing listens there
    url = site_pages.add("/down", PAGE, attrs=f'data-api="http://127.0.0.1:{closed}"')
    console = Console.watch(page)
    with page.expect_event("requestfailed", lambda r: "/v1/number?" in r.url) as failed:
        page.goto(url)
    assert failed.value.url.startswith(f"http://127.0.0.1:{closed}/v1/number?")
    page.wait_for_timeout(200)
    assert_original(page)
    console.assert_clean()


def test_slow_server_times_out_and_a_late_answer_changes_nothing(ct_server, site_pages, page):
    url = site_pages.add("/slow", PAGE)
    console = Console.watch(page)
    held = []
    page.route("**/v1/number?*", lambda route: held.append(route))
    failed = []
    page.on("requestfailed", lambda r: failed.append((r.url, r.failure)))
    start = time.monotonic()
    page.goto(url)
    page.wait_for_function("() => window.calltrack")
    page.wait_for_timeout(max(0, 2500 - (time.monotonic() - start) * 1000))
    assert len(held) == 1
    assert_original(page)
    assert [f for u, f in failed if "/v1/number?" in u] == ["net::ERR_ABORTED"], "ct.js did not abort the slow request"

    page.wait_for_timeout(max(0, 5000 - (time.monotonic() - start) * 1000))
    # The answer finally arrives 5 s after the request (ct.js gave up on it; Playwright may
    # refuse to answer an aborted request).
    with contextlib.suppress(PlaywrightError):
        held[0].fulfill(
            status=200,
            content_type="application/json",
            headers={"Access-Control-Allow-Origin": site_pages.origin},
            body=json.dumps(number_answer("+14155550177")),
        )
    page.wait_for_timeout(300)
    assert_original(page)
    console.assert_clean()


@pytest.mark.parametrize(
    ("status", "content_type", "body"),
    [
        (500, "application/json", '{"error": {"code": "internal", "message": "boom"}}'),
        (503, "text/html", "<h1>Service Unavailable</h1>"),
        (200, "text/html", "<html>not json</html>"),
        (200, "application/json", '{"error": "no number"}'),
        (404, "application/json", '{"error": {"code": "unknown_site", "message": "no site has this site key"}}'),
    ],
    ids=["500", "503-html", "200-html", "200-no-number", "404"],
)
def test_error_answers_leave_the_page_alone(ct_server, site_pages, page, status, content_type, body):
    url = site_pages.add("/broken", PAGE)
    console = Console.watch(page)
    # With the CORS header the server would send, so that ct.js gets to read the answer.
    cors = {"Access-Control-Allow-Origin": site_pages.origin}
    page.route(
        "**/v1/number?*", lambda route: route.fulfill(status=status, content_type=content_type, headers=cors, body=body)
    )
    with page.expect_response(lambda r: "/v1/number?" in r.url):
        page.goto(url)
    page.wait_for_timeout(200)
    assert_original(page)
    console.assert_clean()


def test_control_a_routed_answer_is_applied(ct_server, site_pages, page):
    """The faked answers above would be applied if ct.js accepted them (so those tests can fail)."""
    url = site_pages.add("/routed", PAGE)
    cors = {"Access-Control-Allow-Origin": site_pages.origin}
    answer = json.dumps(number_answer("+14155550177", lease=False))
    page.route(
        "**/v1/number?*",
        lambda route: route.fulfill(status=200, content_type="application/json", headers=cors, body=answer),
    )
    page.goto(url)
    page.wait_for_function("() => window.calltrack && calltrack.number() === '+14155550177'")
    assert text(page, "#body") == "Call 415-555-0177 now."
    assert text(page, "#dots") == "or 415.555.0177"
    assert page.get_attribute("#call", "href") == "tel:+14155550177"
