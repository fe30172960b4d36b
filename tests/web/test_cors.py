"""calltrack/web/cors.py: which page hosts may call a site's public endpoints."""

from __future__ import annotations

import pytest

from calltrack.web.cors import PREFLIGHT_HEADERS, cors_headers, host_allowed, host_of


@pytest.mark.parametrize(
    ("value", "host"),
    [
        ("https://acme.example", "acme.example"),
        ("https://acme.example/", "acme.example"),
        ("https://Shop.ACME.example:8443", "shop.acme.example"),
        ("http://acme.example:80/landing?x=1#y", "acme.example"),
        ("acme.example", "acme.example"),  # a bare host
        ("acme.example:8080", "acme.example"),
        ("//acme.example", "acme.example"),
        ("https://user:pw@acme.example/x", "acme.example"),
        ("http://127.0.0.1:8080", "127.0.0.1"),
        ("http://[::1]:8080", "::1"),
    ],
)
def test_host_of(value: str, host: str) -> None:
    assert host_of(value) == host


@pytest.mark.parametrize("value", [None, "", "null", "https://[bad", "file:///etc/passwd"])
def test_host_of_nothing(value: str | None) -> None:
    # "null" is the Origin of sandboxed iframes and file:// pages: no host to check.
    assert host_of(value) is None


@pytest.mark.parametrize(
    ("host", "allowed", "ok"),
    [
        ("acme.example", ["acme.example"], True),
        ("www.acme.example", ["acme.example"], True),
        ("shop.eu.acme.example", ["acme.example"], True),
        ("evilacme.example", ["acme.example"], False),
        ("acme.example.evil.test", ["acme.example"], False),
        ("acme.exampl", ["acme.example"], False),
        ("example", ["acme.example"], False),
        ("acme.example", ["www.acme.example"], False),  # a subdomain does not allow its parent
        ("other.test", ["acme.example", "other.test"], True),
        ("acme.example", ["acme.example:8443"], True),  # ports in the list are ignored
        ("a.acme.example", ("acme.example:443",), True),
        ("127.0.0.1", ["127.0.0.1:8080"], True),
        ("acme.example", [], False),
    ],
)
def test_host_allowed(host: str, allowed: list[str], ok: bool) -> None:
    assert host_allowed(host, allowed) is ok


@pytest.mark.parametrize(
    ("origin", "ok"),
    [
        ("https://acme.example", True),
        ("https://www.acme.example:8443", True),
        ("https://evilacme.example", False),
        ("https://acme.example.evil.test", False),
        ("http://ACME.EXAMPLE", True),
    ],
)
def test_origin_through_host_of_and_host_allowed(origin: str, ok: bool) -> None:
    host = host_of(origin)
    assert host is not None
    assert host_allowed(host, ["acme.example"]) is ok


def test_cors_headers_echo_the_origin() -> None:
    h = cors_headers("https://www.acme.example")
    assert h["Access-Control-Allow-Origin"] == "https://www.acme.example"
    assert h["Vary"] == "Origin"
    assert h["Access-Control-Allow-Credentials"] == "false"


def test_preflight_headers() -> None:
    methods = {m.strip() for m in PREFLIGHT_HEADERS["Access-Control-Allow-Methods"].split(",")}
    assert {"GET", "POST", "OPTIONS"} <= methods
    assert "Content-Type" in PREFLIGHT_HEADERS["Access-Control-Allow-Headers"]
    assert int(PREFLIGHT_HEADERS["Access-Control-Max-Age"]) > 0
