"""Derive a visit's marketing channel from its utm tags, click ids and referrer. Pure."""

from __future__ import annotations

from urllib.parse import urlsplit

UTM_FIELDS = ("utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content")
CLICK_IDS = ("gclid", "gbraid", "wbraid", "msclkid", "yclid", "fbclid")
PAID_SEARCH_CLICK_IDS = ("gclid", "gbraid", "wbraid", "msclkid", "yclid")

CHANNELS = (
    "paid_search",
    "paid_social",
    "display",
    "organic_search",
    "organic_social",
    "email",
    "affiliate",
    "referral",
    "direct",
    "other",
)

SEARCH_ENGINES = ("google.", "bing.com", "yahoo.", "duckduckgo.com", "yandex.", "baidu.com", "ecosia.org", "search.brave.com")
SOCIAL_SITES = (
    "facebook.com",
    "instagram.com",
    "t.co",
    "twitter.com",
    "x.com",
    "linkedin.com",
    "lnkd.in",
    "pinterest.",
    "reddit.com",
    "tiktok.com",
    "youtube.com",
    "vk.com",
)
SOCIAL_SOURCES = ("facebook", "fb", "instagram", "ig", "twitter", "x", "linkedin", "pinterest", "reddit", "tiktok", "youtube", "vk", "meta")
PAID_MEDIA = ("cpc", "ppc", "paid", "paidsearch", "paid_search", "cpm", "cpv", "paid-search", "sem")


def referrer_host(referrer: str | None) -> str:
    if not referrer:
        return ""
    try:
        host = urlsplit(referrer).hostname or ""
    except ValueError:
        return ""
    return host.lower().removeprefix("www.")


def _host_in(host: str, suffixes: tuple[str, ...]) -> bool:
    for s in suffixes:
        if s.endswith("."):
            if host.startswith(s) or ("." + s) in "." + host:
                return True
        elif host == s or host.endswith("." + s):
            return True
    return False


def derive_channel(
    *,
    utm_source: str | None = None,
    utm_medium: str | None = None,
    referrer: str | None = None,
    own_host: str | None = None,
    click_ids: dict[str, str | None] | None = None,
) -> str:
    """The channel of one visit, one of :data:`CHANNELS`.

    Click ids win over tags (an auto-tagged ad has a gclid and often no utm at all), tags win
    over the referrer, and a referrer from the site itself counts as no referrer.
    """
    ids = {k: v for k, v in (click_ids or {}).items() if v}
    medium = (utm_medium or "").strip().lower()
    source = (utm_source or "").strip().lower()
    if any(k in ids for k in PAID_SEARCH_CLICK_IDS):
        return "paid_search"
    if medium in PAID_MEDIA or medium.startswith("paid"):
        if source in SOCIAL_SOURCES or "social" in medium:
            return "paid_social"
        if medium in ("cpm", "cpv") or "display" in medium:
            return "display"
        return "paid_search"
    if "fbclid" in ids and medium in ("", "social", "paid_social"):
        return "paid_social" if medium == "paid_social" else "organic_social"
    if medium in ("display", "banner", "programmatic"):
        return "display"
    if medium in ("email", "e-mail", "newsletter"):
        return "email"
    if medium in ("affiliate", "partner"):
        return "affiliate"
    if medium in ("social", "social-network", "social-media", "sm"):
        return "organic_social"
    if medium == "organic":
        return "organic_search"
    if medium == "referral":
        return "referral"
    if medium or source:
        return "other"
    host = referrer_host(referrer)
    if not host or (own_host and (host == own_host or host.endswith("." + own_host))):
        return "direct"
    if _host_in(host, SEARCH_ENGINES):
        return "organic_search"
    if _host_in(host, SOCIAL_SITES):
        return "organic_social"
    return "referral"
