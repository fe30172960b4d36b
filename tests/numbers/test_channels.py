"""calltrack/numbers/channels.py: a visit's marketing channel, and the referrer's host."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from calltrack.numbers.channels import (
    CHANNELS,
    CLICK_IDS,
    PAID_SEARCH_CLICK_IDS,
    derive_channel,
    referrer_host,
)

# --- referrer_host ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("referrer", "host"),
    [
        ("https://www.google.com/search?q=plumber", "google.com"),
        ("https://WWW.Example.COM:8080/x", "example.com"),
        ("http://m.facebook.com/", "m.facebook.com"),
        ("https://www2.example.com/", "www2.example.com"),  # only the "www." prefix is dropped
        ("https://www.www.example.com/", "www.example.com"),  # ...once
        ("https://user:pw@blog.example.org/p", "blog.example.org"),
        ("android-app://com.google.android.gm/", "com.google.android.gm"),
        ("", ""),
        (None, ""),
        ("example.com", ""),  # not a URL: no host
        ("/relative/path", ""),
        ("http://[bad", ""),  # malformed IPv6 literal: no exception, no host
    ],
)
def test_referrer_host(referrer: str | None, host: str) -> None:
    assert referrer_host(referrer) == host


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=60))
def test_referrer_host_never_raises_and_is_lower_case(text: str) -> None:
    host = referrer_host(text)
    assert host == host.lower()
    assert not host.startswith("www.")


# --- click ids win ------------------------------------------------------------------------------


@pytest.mark.parametrize("click_id", PAID_SEARCH_CLICK_IDS)
def test_paid_search_click_ids(click_id: str) -> None:
    assert derive_channel(click_ids={click_id: "abc123"}) == "paid_search"


def test_gclid_wins_over_tags_and_referrer() -> None:
    # An auto-tagged ad has a gclid and often no utm at all; a stray medium does not change it.
    assert derive_channel(utm_source="newsletter", utm_medium="email", click_ids={"gclid": "x"}) == "paid_search"
    assert derive_channel(referrer="https://www.facebook.com/", click_ids={"msclkid": "x"}) == "paid_search"


@pytest.mark.parametrize("empty", ["", None])
def test_empty_click_ids_are_ignored(empty: str | None) -> None:
    assert derive_channel(referrer="https://www.google.com/", click_ids={"gclid": empty}) == "organic_search"
    assert derive_channel(click_ids={"gclid": empty, "fbclid": empty}) == "direct"


def test_fbclid_alone_is_organic_social() -> None:
    # Facebook adds fbclid to outbound links whether or not they are ads.
    assert derive_channel(click_ids={"fbclid": "x"}) == "organic_social"
    assert derive_channel(click_ids={"fbclid": "x"}, referrer="https://l.facebook.com/") == "organic_social"
    assert derive_channel(click_ids={"fbclid": "x"}, utm_medium="social") == "organic_social"


def test_fbclid_with_paid_medium_is_paid_social() -> None:
    assert derive_channel(click_ids={"fbclid": "x"}, utm_medium="paid_social") == "paid_social"
    assert derive_channel(click_ids={"fbclid": "x"}, utm_source="facebook", utm_medium="cpc") == "paid_social"


def test_fbclid_with_other_tags_follows_the_tags() -> None:
    assert derive_channel(click_ids={"fbclid": "x"}, utm_medium="email") == "email"


# --- paid media ---------------------------------------------------------------------------------


@pytest.mark.parametrize("medium", ["cpc", "CPC", " ppc ", "paid", "paidsearch", "paid_search", "paid-search", "sem"])
def test_paid_media_are_paid_search(medium: str) -> None:
    assert derive_channel(utm_source="google", utm_medium=medium) == "paid_search"


@pytest.mark.parametrize("source", ["facebook", "Facebook", "fb", "instagram", "ig", "linkedin", "tiktok", "meta", "x"])
def test_paid_medium_from_a_social_source_is_paid_social(source: str) -> None:
    assert derive_channel(utm_source=source, utm_medium="cpc") == "paid_social"


@pytest.mark.parametrize("medium", ["paid_social", "paidsocial", "paid-social"])
def test_paid_social_medium_is_paid_social_whatever_the_source(medium: str) -> None:
    assert derive_channel(utm_source="newsletter_partner", utm_medium=medium) == "paid_social"


@pytest.mark.parametrize("medium", ["cpm", "cpv", "paid_display", "paid-display"])
def test_paid_display_media(medium: str) -> None:
    assert derive_channel(utm_source="google", utm_medium=medium) == "display"


def test_cpm_on_a_social_source_is_paid_social() -> None:
    assert derive_channel(utm_source="facebook", utm_medium="cpm") == "paid_social"


# --- other tags ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("medium", "channel"),
    [
        ("display", "display"),
        ("banner", "display"),
        ("programmatic", "display"),
        ("email", "email"),
        ("E-Mail", "email"),
        ("newsletter", "email"),
        ("affiliate", "affiliate"),
        ("partner", "affiliate"),
        ("social", "organic_social"),
        ("social-network", "organic_social"),
        ("social-media", "organic_social"),
        ("sm", "organic_social"),
        ("organic", "organic_search"),
        ("referral", "referral"),
        ("print", "other"),
        ("qr", "other"),
    ],
)
def test_medium_decides(medium: str, channel: str) -> None:
    assert derive_channel(utm_source="whatever", utm_medium=medium) == channel


def test_source_without_medium_is_other() -> None:
    assert derive_channel(utm_source="billboard") == "other"


def test_tags_win_over_the_referrer() -> None:
    assert derive_channel(utm_source="google", referrer="https://www.facebook.com/") == "other"
    assert derive_channel(utm_medium="email", referrer="https://www.google.com/") == "email"
    assert derive_channel(utm_medium="referral", referrer="https://www.google.com/") == "referral"


def test_blank_tags_count_as_absent() -> None:
    assert derive_channel(utm_source="  ", utm_medium="", referrer="https://www.bing.com/") == "organic_search"


# --- referrer only ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "referrer",
    [
        "https://www.google.com/",
        "https://www.google.co.uk/search?q=x",
        "https://google.de/",
        "https://www.bing.com/search?q=x",
        "https://search.yahoo.com/search?p=x",
        "https://duckduckgo.com/",
        "https://yandex.ru/search/?text=x",
        "https://www.baidu.com/s?wd=x",
        "https://www.ecosia.org/search?q=x",
        "https://search.brave.com/search?q=x",
    ],
)
def test_search_engine_referrer_without_click_id_is_organic_search(referrer: str) -> None:
    assert derive_channel(referrer=referrer) == "organic_search"


@pytest.mark.parametrize(
    "referrer",
    [
        "https://www.facebook.com/",
        "https://m.facebook.com/",
        "https://l.facebook.com/l.php?u=x",
        "https://t.co/abc",
        "https://x.com/acme",
        "https://www.linkedin.com/feed/",
        "https://lnkd.in/abc",
        "https://www.pinterest.com/pin/1",
        "https://pinterest.co.uk/",
        "https://www.reddit.com/r/plumbing",
        "https://www.youtube.com/watch?v=x",
        "https://www.instagram.com/",
    ],
)
def test_social_referrer_is_organic_social(referrer: str) -> None:
    assert derive_channel(referrer=referrer) == "organic_social"


@pytest.mark.parametrize(
    "referrer",
    [
        "https://blog.example.org/post",
        "https://www.yelp.com/biz/acme",
        "https://notgoogle.com/",  # a lookalike is not a search engine
        "https://googleusercontent.com/",
        "https://bing.com.evil.example/",
        "https://mybing.com/",
        "https://notfacebook.com/",
        "https://tx.co/",
        "https://box.com/",
    ],
)
def test_other_referrers_are_referral(referrer: str) -> None:
    assert derive_channel(referrer=referrer) == "referral"


@pytest.mark.parametrize("referrer", [None, "", "not a url", "http://[bad"])
def test_no_usable_referrer_is_direct(referrer: str | None) -> None:
    assert derive_channel(referrer=referrer) == "direct"


@pytest.mark.parametrize(
    "referrer",
    ["https://acme.com/services", "https://www.acme.com/", "https://shop.acme.com/cart", "https://ACME.com:443/x"],
)
def test_own_site_referrer_is_direct(referrer: str) -> None:
    assert derive_channel(referrer=referrer, own_host="acme.com") == "direct"


def test_lookalike_of_own_site_is_referral() -> None:
    assert derive_channel(referrer="https://evilacme.com/", own_host="acme.com") == "referral"
    assert derive_channel(referrer="https://acme.com.evil.example/", own_host="acme.com") == "referral"


def test_own_site_that_is_a_search_engine_domain_is_still_direct() -> None:
    # A referrer from the site itself counts as no referrer, before any other rule.
    assert derive_channel(referrer="https://maps.google.com/x", own_host="maps.google.com") == "direct"


def test_without_own_host_a_referrer_is_not_direct() -> None:
    assert derive_channel(referrer="https://acme.com/", own_host=None) == "referral"
    assert derive_channel(referrer="https://acme.com/", own_host="") == "referral"


# --- properties ---------------------------------------------------------------------------------

_text = st.one_of(st.none(), st.text(max_size=15), st.sampled_from(["cpc", "email", "facebook", "google", "paid", "social"]))


@settings(max_examples=200, deadline=None)
@given(
    utm_source=_text,
    utm_medium=_text,
    referrer=st.one_of(st.none(), st.text(max_size=30), st.sampled_from(["https://www.google.com/", "https://t.co/x"])),
    own_host=st.one_of(st.none(), st.sampled_from(["", "acme.com"])),
    click_ids=st.one_of(
        st.none(), st.dictionaries(st.sampled_from(CLICK_IDS), st.one_of(st.none(), st.text(max_size=5)), max_size=3)
    ),
)
def test_channel_is_always_a_known_channel(
    utm_source: str | None,
    utm_medium: str | None,
    referrer: str | None,
    own_host: str | None,
    click_ids: dict[str, str | None] | None,
) -> None:
    channel = derive_channel(
        utm_source=utm_source, utm_medium=utm_medium, referrer=referrer, own_host=own_host, click_ids=click_ids
    )
    assert channel in CHANNELS
    if click_ids and any(click_ids.get(k) for k in PAID_SEARCH_CLICK_IDS):
        assert channel == "paid_search"


@settings(max_examples=100, deadline=None)
@given(
    utm_source=st.sampled_from(["Google", "FACEBOOK", "Newsletter", ""]),
    utm_medium=st.sampled_from(["CPC", "Email", "Social", "Paid_Social", "CPM", "Organic", ""]),
)
def test_tags_are_case_and_space_insensitive(utm_source: str, utm_medium: str) -> None:
    assert derive_channel(utm_source=f" {utm_source} ", utm_medium=f"  {utm_medium}") == derive_channel(
        utm_source=utm_source.lower(), utm_medium=utm_medium.lower()
    )
