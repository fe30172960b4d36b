"""Which browser origins may call a site's public endpoints, and the CORS headers they get.

A site lists its allowed domains; a domain allows itself and its subdomains
(``example.com`` allows ``www.example.com`` and ``shop.example.com``). A request with no
Origin, Referer or landing URL (curl, a server) is not a browser on someone else's page and
is let through; anything that names a host outside the list is refused.
"""

from __future__ import annotations

from functools import lru_cache
from urllib.parse import urlsplit


@lru_cache(maxsize=4096)
def host_of(url_or_origin: str | None) -> str | None:
    """The lower-case host of an origin or URL (port dropped), or None."""
    if not url_or_origin or url_or_origin == "null":
        return None
    text = url_or_origin if "//" in url_or_origin else "//" + url_or_origin
    try:
        host = urlsplit(text).hostname
    except ValueError:
        return None
    return host.lower() if host else None


def host_allowed(host: str, allowed_domains: tuple[str, ...] | list[str]) -> bool:
    for domain in allowed_domains:
        d = domain.split(":")[0]
        if host == d or host.endswith("." + d):
            return True
    return False


def cors_headers(origin: str) -> dict[str, str]:
    return {
        "Access-Control-Allow-Origin": origin,
        "Access-Control-Allow-Credentials": "false",
        "Vary": "Origin",
    }


PREFLIGHT_HEADERS = {
    "Access-Control-Allow-Methods": "GET, POST, OPTIONS",
    "Access-Control-Allow-Headers": "Content-Type",
    "Access-Control-Max-Age": "600",
}
