"""``GET /ct.js`` (the swap script, compacted once at start, with an ETag and gzip) and
``GET|POST /demo`` (a demo landing page that uses it)."""

from __future__ import annotations

import gzip
import hashlib
import re
from importlib import resources

import jinja2
from twisted.web.server import Request

from calltrack.accounts.service import AccountsService
from calltrack.demo import DEMO_ACCOUNT
from calltrack.phones import format_national
from calltrack.web import params
from calltrack.web.errors import ApiError
from calltrack.web.resource import Response, Router, query_params

STATIC = resources.files("calltrack") / "static"


def compact_js(source: str) -> str:
    """Drop the header comment, comment lines, trailing ``// words`` and indentation.

    Conservative on purpose (no renaming, nothing inside a line that holds a quote or a
    slash is touched): the served script stays readable, and gzip does the rest.
    """
    source = re.sub(r"\A/\*.*?\*/\n", "", source, flags=re.S)
    lines = []
    for line in source.splitlines():
        text = line.strip()
        if not text or text.startswith("//"):
            continue
        lines.append(re.sub(r"\s+//\s[^\"'/]*$", "", text))
    return "\n".join(lines) + "\n"


class Script:
    def __init__(self, source: str) -> None:
        self.body = compact_js(source).encode("utf-8")
        self.gzipped = gzip.compress(self.body, 9, mtime=0)
        self.etag = '"' + hashlib.sha256(self.body).hexdigest()[:20] + '"'


class PageResources:
    def __init__(self, accounts: AccountsService, base_url: str) -> None:
        self._accounts = accounts
        self._base_url = base_url
        self.script = Script((STATIC / "ct.js").read_text(encoding="utf-8"))
        env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
        self._demo = env.from_string((STATIC / "demo.html").read_text(encoding="utf-8"))

    def register(self, router: Router) -> None:
        router.add("GET", r"/ct\.js", self.ct_js, name="/ct.js")
        router.add("GET", r"/demo", self.demo, name="/demo")
        router.add("POST", r"/demo", self.demo, name="/demo")

    async def ct_js(self, request: Request) -> Response:
        headers = {
            # Short: a fixed script reaches every site within minutes; the ETag makes the
            # revalidation a 304.
            "Cache-Control": "public, max-age=300",
            "ETag": self.script.etag,
            "Vary": "Accept-Encoding",
            "Access-Control-Allow-Origin": "*",
        }
        if self.script.etag in (request.getHeader("if-none-match") or ""):
            return Response(304, None, headers=headers)
        if "gzip" in (request.getHeader("accept-encoding") or ""):
            headers["Content-Encoding"] = "gzip"
            return Response(200, self.script.gzipped, content_type="application/javascript; charset=utf-8", headers=headers)
        return Response(200, self.script.body, content_type="application/javascript; charset=utf-8", headers=headers)

    async def demo(self, request: Request) -> Response:
        # Checked like every site key (a NUL in it made PostgreSQL fail: a 500, found by schemathesis).
        key = params.string(query_params(request).get("site"), "site", required=False, max_length=100)
        site = await (self._accounts.site_by_key(key) if key else self._accounts.first_site_of_account_named(DEMO_ACCOUNT))
        if site is None:
            raise ApiError(404, "unknown_site", "no such site; run `calltrack demo seed` or pass ?site=SITE_KEY")
        html = self._demo.render(
            site_key=site.site_key,
            site_name=site.name,
            number_e164=site.own_number,
            number_national=format_national(site.own_number),
            number_dashes=format_national(site.own_number).replace("(", "").replace(") ", "-"),
            sent=request.method == b"POST",
        )
        return Response(200, html.encode("utf-8"), content_type="text/html; charset=utf-8", headers={"Cache-Control": "no-store"})
