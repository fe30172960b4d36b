"""calltrack/numbers/bots.py: crawlers get the site's own number; people and HTTP clients do not."""

from __future__ import annotations

import pytest

from calltrack.numbers.bots import is_bot

BOTS = {
    "googlebot": "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "googlebot_smartphone": "Mozilla/5.0 (Linux; Android 6.0.1; Nexus 5X Build/MMB29P) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Chrome/120.0.6099.71 Mobile Safari/537.36 (compatible; Googlebot/2.1; "
    "+http://www.google.com/bot.html)",
    "bingbot": "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
    "adsbot_google": "AdsBot-Google (+http://www.google.com/adsbot.html)",
    "adsbot_google_mobile": "Mozilla/5.0 (iPhone; CPU iPhone OS 14_7_1 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/14.1.2 Mobile/15E148 Safari/604.1 (compatible; AdsBot-Google-Mobile; "
    "+http://www.google.com/mobile/adsbot.html)",
    "mediapartners": "Mediapartners-Google",
    "google_read_aloud": "Mozilla/5.0 (Linux; Android 7.0; SM-G930V Build/NRD90M) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Chrome/59.0.3071.125 Mobile Safari/537.36 (compatible; Google-Read-Aloud; "
    "+https://support.google.com/webmasters/answer/1061943)",
    "feedfetcher": "FeedFetcher-Google; (+http://www.google.com/feedfetcher.html)",
    "yandexbot": "Mozilla/5.0 (compatible; YandexBot/3.0; +http://yandex.com/bots)",
    "slurp": "Mozilla/5.0 (compatible; Yahoo! Slurp; http://help.yahoo.com/help/us/ysearch/slurp)",
    "duckduckbot": "DuckDuckBot/1.1; (+http://duckduckgo.com/duckduckbot.html)",
    "baiduspider": "Mozilla/5.0 (compatible; Baiduspider/2.0; +http://www.baidu.com/search/spider.html)",
    "applebot": "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_5) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/13.1.1 Safari/605.1.15 (Applebot/0.1; +http://www.apple.com/go/applebot)",
    "facebookexternalhit": "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
    "twitterbot": "Twitterbot/1.0",
    "slackbot": "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)",
    "ahrefs": "Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)",
    "semrush": "Mozilla/5.0 (compatible; SemrushBot/7~bl; +http://www.semrush.com/bot.html)",
    "gptbot": "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; GPTBot/1.0; +https://openai.com/gptbot)",
    "screaming_frog": "Screaming Frog SEO Spider/19.4",
    "scrapy": "Scrapy/2.11.0 (+https://scrapy.org)",
    "pingdom": "Pingdom.com_bot_version_1.4_(http://www.pingdom.com/)",
    "uptimerobot": "Mozilla/5.0+(compatible; UptimeRobot/2.0; http://www.uptimerobot.com/)",
    # Headless crawlers that say what they are.
    "lighthouse": "Mozilla/5.0 (Linux; Android 11; moto g power (2022)) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/119.0.0.0 Mobile Safari/537.36 Chrome-Lighthouse",
    "gtmetrix": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 "
    "Safari/537.36 GTmetrix",
    "phantomjs": "Mozilla/5.0 (Unknown; Linux x86_64) AppleWebKit/538.1 (KHTML, like Gecko) PhantomJS/2.1.1 Safari/538.1",
    "headless_crawler": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "HeadlessChrome/120.0.0.0 Safari/537.36 (compatible; AcmeCrawler/1.0)",
}

PEOPLE = {
    "chrome_windows": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36",
    "chrome_android": "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Mobile Safari/537.36",
    "chrome_ios": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "CriOS/124.0.6367.88 Mobile/15E148 Safari/604.1",
    "firefox_windows": "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:125.0) Gecko/20100101 Firefox/125.0",
    "firefox_android": "Mozilla/5.0 (Android 14; Mobile; rv:125.0) Gecko/125.0 Firefox/125.0",
    "safari_iphone": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
    "safari_ipad": "Mozilla/5.0 (iPad; CPU OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.4 Mobile/15E148 Safari/604.1",
    "safari_mac": "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.4 Safari/605.1.15",
    "edge": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 "
    "Safari/537.36 Edg/124.0.2478.51",
    "opera": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 "
    "Safari/537.36 OPR/109.0.0.0",
    "samsung_internet": "Mozilla/5.0 (Linux; Android 14; SAMSUNG SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) "
    "SamsungBrowser/24.0 Chrome/117.0.0.0 Mobile Safari/537.36",
    "yandex_browser": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/122.0.0.0 YaBrowser/24.4.0.0 Safari/537.36",
    "facebook_in_app_ios": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Mobile/21E219 [FBAN/FBIOS;FBAV/460.0.0.38.108;FBBV/577423346;FBDV/iPhone15,2;"
    "FBMD/iPhone;FBSN/iOS;FBSV/17.4;FBSS/3;FBID/phone;FBLC/en_US;FBOP/5]",
    "instagram_in_app": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Mobile/15E148 Instagram 326.0.3.30.91 (iPhone14,5; iOS 17_4; en_US; en; scale=3.00; "
    "1170x2532; 585829093)",
    "google_app_ios": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) GSA/309.0.616685607 Mobile/15E148 Safari/604.1",
    "android_webview": "Mozilla/5.0 (Linux; Android 13; SM-A536B Build/TP1A.220624.014; wv) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Version/4.0 Chrome/120.0.6099.210 Mobile Safari/537.36",
}

HTTP_CLIENTS = {
    "curl": "curl/8.5.0",
    "wget": "Wget/1.21.4",
    "python_requests": "python-requests/2.31.0",
    "httpie": "HTTPie/3.2.2",
    "okhttp": "okhttp/4.12.0",
}


@pytest.mark.parametrize("ua", list(BOTS.values()), ids=list(BOTS))
def test_crawlers_are_bots(ua: str) -> None:
    assert is_bot(ua) is True


@pytest.mark.parametrize("ua", list(PEOPLE.values()), ids=list(PEOPLE))
def test_real_browsers_are_not_bots(ua: str) -> None:
    assert is_bot(ua) is False


@pytest.mark.parametrize("ua", list(HTTP_CLIENTS.values()), ids=list(HTTP_CLIENTS))
def test_http_libraries_are_not_bots(ua: str) -> None:
    # Documented: servers and people testing with curl are real callers of the API.
    assert is_bot(ua) is False


def test_headless_browser_that_does_not_say_it_is_a_bot_is_a_visitor() -> None:
    # Documented in bots.py: "a headless browser that does not say it is a bot is a visitor".
    ua = (
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "HeadlessChrome/120.0.0.0 Safari/537.36"
    )
    assert is_bot(ua) is False


@pytest.mark.parametrize("ua", [None, "", " ", "\t\n"])
def test_empty_user_agent_is_a_bot(ua: str | None) -> None:
    assert is_bot(ua) is True


@pytest.mark.parametrize("ua", ["GOOGLEBOT/2.1", "googlebot/2.1", "BingBot/2.0", "ADSBOT-GOOGLE"])
def test_case_insensitive(ua: str) -> None:
    assert is_bot(ua) is True


def test_cubot_phone_is_not_a_bot() -> None:
    ua = (
        "Mozilla/5.0 (Linux; Android 10; CUBOT X30 Build/QP1A.190711.020; wv) AppleWebKit/537.36 "
        "(KHTML, like Gecko) Version/4.0 Chrome/120.0.6099.210 Mobile Safari/537.36"
    )
    assert is_bot(ua) is False
