"""Known crawlers and bots: they get the site's own number and never hold a pool number. Pure."""

from __future__ import annotations

import re
from functools import lru_cache

# Crawlers identify themselves; these patterns cover the search, social, SEO and uptime robots
# that visit landing pages. HTTP libraries (curl, requests…) are not listed: servers and people
# testing with curl are real callers of the API; a headless browser that does not say it is a
# bot is a visitor.
_BOT_RE = re.compile(
    r"bot(?:[/\-;)]|$)|crawler|spider|slurp|crawl|facebookexternalhit|facebookcatalog|embedly|"
    r"preview|pingdom|uptimerobot|statuscake|site24x7|lighthouse|pagespeed|gtmetrix|"
    r"scrapy|phantomjs|"
    r"mediapartners-google|adsbot-google|feedfetcher|google-read-aloud|bingpreview|yandex",
    re.IGNORECASE,
)


@lru_cache(maxsize=4096)
def is_bot(user_agent: str | None) -> bool:
    """True for a user agent that names a crawler or bot; an empty one too.

    Cached: a site's visitors share a few hundred user agents, and the pattern costs more
    than the rest of a returning visitor's request.
    """
    if not user_agent or not user_agent.strip():
        return True
    return _BOT_RE.search(user_agent) is not None
