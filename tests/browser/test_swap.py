"""What ct.js swaps and what it leaves alone: the number-format matching, run in the browser
against the live number endpoint; and swapping again when the page changes."""

from __future__ import annotations

import pytest

from tests.browser.helpers import (
    ORGANIC_POOL,
    Console,
    cookies_by_name,
    last4,
    national,
    text,
    wait_number,
)

pytestmark = pytest.mark.browser

# The site's own number as writers put it, and what each must become ({n}: the tracking
# number's last four digits; the demo pools differ from the site number only there).
TEXT_FORMATS = [
    ("(415) 555-0100", "(415) 555-{n}"),
    ("415-555-0100", "415-555-{n}"),
    ("415.555.0100", "415.555.{n}"),
    ("415 555 0100", "415 555 {n}"),
    ("+1 415 555 0100", "+1 415 555 {n}"),
    ("+1 (415) 555-0100", "+1 (415) 555-{n}"),
    ("1-415-555-0100", "1-415-555-{n}"),
    ("+14155550100", "+1415555{n}"),
    ("4155550100", "415555{n}"),
    ("+1\u00a0415\u00a0555\u00a00100", "+1\u00a0415\u00a0555\u00a0{n}"),
]
TEL_LINKS = ["tel:+14155550100", "tel:415-555-0100", "tel:(415)555-0100", "tel:1-415-555-0100", "tel:+1-415-555-0100;ext=2"]

UNTOUCHED = """
<p id="other">Billing questions: (415) 555-0188</p>
<a id="other-link" href="tel:+14155550188">(415) 555-0188</a>
<p id="order">Order 94155550100123 has shipped</p>
<p id="longer">Ref 41555501001</p>
<form><input id="input" name="phone" value="415-555-0100"><textarea id="textarea">415-555-0100</textarea>
  <select id="select"><option>415-555-0100</option></select></form>
<script id="script">window.inlineNumber = "415-555-0100";</script>
<style id="style">.x::after { content: "415-555-0100"; }</style>
<p class="ct-no-swap" id="no-swap">415-555-0100</p>
<div class="ct-no-swap"><span id="no-swap-child">415-555-0100</span></div>
<a class="ct-no-swap" id="no-swap-link" href="tel:+14155550100">415-555-0100</a>
<p class="phone_conversion" id="skip-class">415-555-0100</p>
<div contenteditable="true" id="editable">415-555-0100</div>
<code id="code">415-555-0100</code>
"""


def formats_page() -> str:
    rows = [f'<p id="f{i}">Call {written} today</p>' for i, (written, _) in enumerate(TEXT_FORMATS)]
    links = [f'<a id="t{i}" href="{href}">Call us</a>' for i, href in enumerate(TEL_LINKS)]
    mixed = '<p id="mixed"><a id="mixed-link" href="tel:415-555-0100">415-555-0100</a> or text <b>(415) 555-0100</b>, twice: 415-555-0100.</p>'
    return "\n".join(rows + links + [mixed, UNTOUCHED])


def test_swaps_every_format_in_its_own_style_and_nothing_else(ct_server, site_pages, page):
    console = Console.watch(page)
    url = site_pages.add("/formats", formats_page(), attrs='data-skip-class="phone_conversion"')
    page.goto(url)
    number = wait_number(page)
    assert number in ORGANIC_POOL
    n = last4(number)
    page.wait_for_function("() => !document.getElementById('f0').textContent.includes('0100')")

    for i, (written, expected) in enumerate(TEXT_FORMATS):
        assert text(page, f"#f{i}") == f"Call {expected.format(n=n)} today", written
    for i, href in enumerate(TEL_LINKS):
        assert page.get_attribute(f"#t{i}", "href") == f"tel:{number}", href
    assert page.get_attribute("#mixed-link", "href") == f"tel:{number}"
    assert text(page, "#mixed") == f"415-555-{n} or text (415) 555-{n}, twice: 415-555-{n}."

    # Other numbers, longer digit runs, form fields, code, and opted-out elements stay.
    assert text(page, "#other") == "Billing questions: (415) 555-0188"
    assert page.get_attribute("#other-link", "href") == "tel:+14155550188"
    assert text(page, "#other-link") == "(415) 555-0188"
    assert text(page, "#order") == "Order 94155550100123 has shipped"
    assert text(page, "#longer") == "Ref 41555501001"
    assert page.input_value("#input") == "415-555-0100"
    assert page.get_attribute("#input", "value") == "415-555-0100"
    assert page.input_value("#textarea") == "415-555-0100"
    assert text(page, "#textarea") == "415-555-0100"
    assert text(page, "#select option") == "415-555-0100"
    assert text(page, "#script") == 'window.inlineNumber = "415-555-0100";'
    assert text(page, "#style") == '.x::after { content: "415-555-0100"; }'
    assert text(page, "#no-swap") == "415-555-0100"
    assert text(page, "#no-swap-child") == "415-555-0100"
    assert text(page, "#no-swap-link") == "415-555-0100"
    assert page.get_attribute("#no-swap-link", "href") == "tel:+14155550100"
    assert text(page, "#skip-class") == "415-555-0100"
    assert text(page, "#editable") == "415-555-0100"
    assert text(page, "#code") == "415-555-0100"
    console.assert_clean()


def test_number_next_to_other_digits_is_swapped(ct_server, site_pages, page):
    url = site_pages.add(
        "/next-to-digits",
        '<p id="control">Call 415-555-0100 today</p>'
        '<p id="hours">Call 415-555-0100 24 hours a day</p>'
        '<p id="paren">Call (415) 555-0100 (24/7)</p>'
        '<p id="dash">415.555.0100 - 7 days a week</p>'
        '<p id="zip">1 Harbor Way, San Francisco, CA 94103 415-555-0100</p>',
    )
    page.goto(url)
    n = last4(wait_number(page))
    assert text(page, "#control") == f"Call 415-555-{n} today"
    assert {sel: text(page, sel) for sel in ("#hours", "#paren", "#dash", "#zip")} == {
        "#hours": f"Call 415-555-{n} 24 hours a day",
        "#paren": f"Call (415) 555-{n} (24/7)",
        "#dash": f"415.555.{n} - 7 days a week",
        "#zip": f"1 Harbor Way, San Francisco, CA 94103 415-555-{n}",
    }


def test_number_inserted_after_load_is_swapped(ct_server, site_pages, page):
    url = site_pages.add("/dynamic", '<p id="first">Call 415-555-0100</p><div id="later"></div>')
    page.goto(url)
    number = wait_number(page)
    n = last4(number)
    page.evaluate(
        """() => setTimeout(() => {
            const p = document.createElement('p'); p.id = 'added'; p.textContent = 'Call 415-555-0100';
            document.getElementById('later').appendChild(p);
            const a = document.createElement('a'); a.id = 'added-link'; a.href = 'tel:+14155550100'; a.textContent = '(415) 555-0100';
            document.body.appendChild(a);
            document.getElementById('first').firstChild.nodeValue = 'Now call 415.555.0100';
        }, 50)"""
    )
    page.wait_for_selector("#added-link", state="attached")
    page.wait_for_function(f"() => document.getElementById('added').textContent === 'Call 415-555-{n}'")
    assert page.get_attribute("#added-link", "href") == f"tel:{number}"
    page.wait_for_function(f"() => document.getElementById('added-link').textContent === '(415) 555-{n}'")
    page.wait_for_function(f"() => document.getElementById('first').textContent === 'Now call 415.555.{n}'")


def test_spa_route_change_asks_again_and_swaps_new_content(ct_server, site_pages, page):
    url = site_pages.add("/spa", '<p id="home">Call 415-555-0100</p><main id="view"></main>')
    page.goto(url)
    number = wait_number(page)
    vid = cookies_by_name(page)["ct_vid"]
    with page.expect_request(lambda r: "/v1/number?" in r.url) as asked:
        page.evaluate(
            """() => {
                history.pushState({}, '', '/spa/pricing?utm_source=newsletter&utm_medium=email&utm_campaign=spring');
                document.getElementById('view').innerHTML = '<p id="pricing">Questions? 415-555-0100</p>';
            }"""
        )
    q = asked.value.url
    assert "utm_source=newsletter" in q and "utm_medium=email" in q and "utm_campaign=spring" in q
    assert asked.value.response().status == 200
    after = page.wait_for_function(
        "() => { const t = document.getElementById('pricing').textContent; return !t.includes('0100') && t; }"
    ).json_value()
    new_number = page.evaluate("calltrack.number()")
    assert after == f"Questions? 415-555-{last4(new_number)}"
    assert new_number in ORGANIC_POOL
    assert text(page, "#home") == f"Call 415-555-{last4(new_number)}"
    # The server recorded the new campaign for the same visitor.
    rows = ct_server.query("SELECT utm_source, utm_medium, utm_campaign, channel, url FROM touchpoints WHERE vid = ? ORDER BY id", vid)
    assert len(rows) == 2, rows
    assert rows[0][:4] == (None, None, None, "direct")
    assert rows[1] == ("newsletter", "email", "spring", "email", site_pages.origin + "/spa/pricing?utm_source=newsletter&utm_medium=email&utm_campaign=spring")
    assert number in ORGANIC_POOL


def test_swapping_settles_with_a_data_ct_number_element(ct_server, site_pages, page):
    url = site_pages.add("/placeholder", '<p>Call <span id="slot" data-ct-number>our office</span></p>')
    page.goto(url)
    number = wait_number(page)
    page.wait_for_function(f"() => document.getElementById('slot').textContent === '{national(number)}'")
    page.wait_for_timeout(200)
    mutations = page.evaluate(
        """() => new Promise(done => {
            let n = 0;
            new MutationObserver(list => { n += list.length; }).observe(document.body, {childList: true, subtree: true, characterData: true});
            setTimeout(() => done(n), 500);
        })"""
    )
    assert mutations == 0
