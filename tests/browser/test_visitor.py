"""Who the visitor is: the same visitor keeps their number; an ad click gets the paid-search
pool and its gclid is recorded; consent mode stores nothing and holds no number until
consent; crawlers get the site's own number and no lease."""

from __future__ import annotations

import pytest

from tests.browser.helpers import (
    GOOGLEBOT,
    ORGANIC_POOL,
    OWN_E164,
    PAID_POOL,
    Console,
    cookies_by_name,
    last4,
    text,
    wait_number,
)

pytestmark = pytest.mark.browser

PAGE = '<header><a id="call" href="tel:+14155550100">(415) 555-0100</a></header><p id="body">Call 415-555-0100 now.</p>'
STATIC_BILLBOARD = "+14155550150"  # demo static number: source billboard, medium offline


def test_same_visitor_keeps_the_number_across_reloads_and_pages(ct_server, site_pages, page):
    first = site_pages.add("/keep/one", PAGE + '<a id="next" href="/keep/two">next</a>')
    site_pages.add("/keep/two", '<p id="body">Page two: (415) 555-0100</p>')
    page.goto(first)
    number = wait_number(page)
    vid = cookies_by_name(page)["ct_vid"]
    assert text(page, "#body") == f"Call 415-555-{last4(number)} now."

    asked: list[str] = []
    page.on("request", lambda r: asked.append(r.url) if "/v1/number?" in r.url else None)
    page.reload()
    assert wait_number(page) == number
    assert asked == [], "the answer is cached for its TTL: a reload does not ask again"
    assert text(page, "#body") == f"Call 415-555-{last4(number)} now."
    assert page.get_attribute("#call", "href") == f"tel:{number}"

    page.click("#next")
    page.wait_for_url("**/keep/two")
    assert wait_number(page) == number
    page.wait_for_function("() => !document.getElementById('body').textContent.includes('0100')")
    assert text(page, "#body") == f"Page two: (415) 555-{last4(number)}"

    # A second tab of the same browser is the same visitor too.
    other = page.context.new_page()
    other.goto(first)
    assert wait_number(other) == number

    assert cookies_by_name(page)["ct_vid"] == vid
    leases = ct_server.leases_of(vid)
    assert len(leases) == 1, leases
    assert leases[0]["number"] == number and leases[0]["ended_at"] is None


def test_ad_click_gets_paid_pool_and_gclid_is_recorded(ct_server, site_pages, browser):
    url = site_pages.add("/landing", PAGE)
    paid_ctx = browser.new_context()
    organic_ctx = browser.new_context()
    try:
        paid = paid_ctx.new_page()
        paid.goto(url + "?utm_source=google&utm_medium=cpc&utm_campaign=emergency&gclid=TESTCLICK")
        paid_number = wait_number(paid)
        assert paid_number in PAID_POOL
        assert text(paid, "#body") == f"Call 415-555-{last4(paid_number)} now."
        paid_vid = cookies_by_name(paid)["ct_vid"]
        rows = ct_server.query("SELECT gclid, channel, utm_source, utm_medium, utm_campaign FROM touchpoints WHERE vid = ?", paid_vid)
        assert rows == [("TESTCLICK", "paid_search", "google", "cpc", "emergency")]

        # Browsing on without the tags keeps the paid source (the first touch's tags go with
        # any request) and number.
        asked: list[str] = []
        paid.on("request", lambda r: asked.append(r.url) if "/v1/number?" in r.url else None)
        paid.goto(url + "?page=2")
        assert wait_number(paid) == paid_number
        paid.evaluate("() => localStorage.removeItem('ct_num')")
        paid.goto(url + "?page=3")  # no cached answer now: it asks, with the first touch's tags
        assert wait_number(paid) == paid_number
        assert asked and all("gclid=TESTCLICK" in u and "utm_source=google" in u for u in asked), asked
        tps = ct_server.query("SELECT gclid, channel FROM touchpoints WHERE vid = ?", paid_vid)
        assert set(tps) == {("TESTCLICK", "paid_search")}, tps

        organic = organic_ctx.new_page()
        organic.goto(url)
        organic_number = wait_number(organic)
        assert organic_number in ORGANIC_POOL
        assert text(organic, "#body") == f"Call 415-555-{last4(organic_number)} now."
        organic_vid = cookies_by_name(organic)["ct_vid"]
        assert ct_server.query("SELECT gclid, channel FROM touchpoints WHERE vid = ?", organic_vid) == [(None, "direct")]
        assert [lease["number"] for lease in ct_server.leases_of(paid_vid)] == [paid_number]
        assert [lease["number"] for lease in ct_server.leases_of(organic_vid)] == [organic_number]
    finally:
        paid_ctx.close()
        organic_ctx.close()


def _storage(page) -> dict:
    return page.evaluate("() => Object.fromEntries(Object.keys(localStorage).map(k => [k, localStorage.getItem(k)]))")


@pytest.mark.parametrize(
    ("query", "before"),
    [("", OWN_E164), ("?utm_source=billboard&utm_medium=offline", STATIC_BILLBOARD)],
    ids=["own-number", "static-number"],
)
def test_consent_required_waits_for_consent(ct_server, site_pages, page, query, before):
    console = Console.watch(page)
    url = site_pages.add("/consent", PAGE, attrs='data-consent="required"')
    leases_before = len(ct_server.leases())
    with page.expect_response(lambda r: "/v1/number?" in r.url) as answered:
        page.goto(url + query)
    request_url = answered.value.request.url
    assert "consent=0" in request_url and "vid=" not in request_url and "sid=" not in request_url
    assert answered.value.json()["lease"] is False
    page.wait_for_function(f"() => calltrack.number() === '{before}'")  # ct.js applied the answer

    # Nothing stored, nothing held; only a static number standing for the source may show.
    assert cookies_by_name(page) == {}
    assert _storage(page) == {}
    assert len(ct_server.leases()) == leases_before
    assert page.evaluate("calltrack.number()") == before
    assert text(page, "#body") == f"Call 415-555-{last4(before)} now."
    assert page.get_attribute("#call", "href") == f"tel:{before}"

    page.evaluate("calltrack.consent(true)")
    page.wait_for_function(f"() => calltrack.number() !== '{before}'")
    number = page.evaluate("calltrack.number()")
    assert number in ORGANIC_POOL
    vid = cookies_by_name(page)["ct_vid"]
    assert _storage(page)["ct_vid"] == f'"{vid}"'
    assert [lease["number"] for lease in ct_server.leases_of(vid)] == [number]
    page.wait_for_function("() => !document.getElementById('body').textContent.includes('" + last4(before) + "')")
    assert text(page, "#body") == f"Call 415-555-{last4(number)} now."
    assert text(page, "#call") == f"(415) 555-{last4(number)}"
    assert page.get_attribute("#call", "href") == f"tel:{number}"
    console.assert_clean()


def test_late_anonymous_answer_does_not_undo_consent(ct_server, site_pages, page):
    url = site_pages.add("/consent-race", PAGE, attrs='data-consent="required"')
    held = []

    def hold_anonymous(route):
        if "consent=0" in route.request.url:
            held.append(route)  # answered below, after the consented request
        else:
            route.continue_()

    page.route("**/v1/number?*", hold_anonymous)
    page.goto(url)
    page.wait_for_function("() => window.calltrack")
    for _ in range(100):
        if held:
            break
        page.wait_for_timeout(10)
    assert held, "the anonymous request was not made"
    page.evaluate("calltrack.consent(true)")  # e.g. a consent manager restoring consent at load
    number = wait_number(page)
    assert number in ORGANIC_POOL
    page.wait_for_function("() => !document.getElementById('body').textContent.includes('0100')")
    with page.expect_response(lambda r: "consent=0" in r.url):
        held[0].continue_()  # the older, anonymous answer arrives last (well within ct.js's 2 s timeout)
    page.wait_for_timeout(150)
    assert page.evaluate("calltrack.number()") == number
    assert text(page, "#body") == f"Call 415-555-{last4(number)} now."


def test_crawler_gets_the_site_number_and_no_lease(ct_server, site_pages, browser):
    url = site_pages.add("/bot", PAGE)
    ctx = browser.new_context(user_agent=GOOGLEBOT)
    try:
        page = ctx.new_page()
        console = Console.watch(page)
        leases_before = [lease["id"] for lease in ct_server.leases()]
        with page.expect_response(lambda r: "/v1/number?" in r.url) as answered:
            page.goto(url + "?utm_source=google&utm_medium=cpc&gclid=BOTCLICK")
        assert answered.value.request.headers["user-agent"] == GOOGLEBOT
        answer = answered.value.json()
        assert answer["phoneNumber"] == OWN_E164 and answer["lease"] is False
        page.wait_for_function(f"() => calltrack.number() === '{OWN_E164}'")
        assert text(page, "#body") == "Call 415-555-0100 now."
        assert page.get_attribute("#call", "href") == "tel:+14155550100"
        assert [lease["id"] for lease in ct_server.leases()] == leases_before
        assert ct_server.query("SELECT count(*) FROM touchpoints WHERE gclid = 'BOTCLICK'") == [(0,)]
        console.assert_clean()
    finally:
        ctx.close()
