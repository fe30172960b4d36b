"""The HTTP glue: a small regex router over twisted.web, async handlers, errors as JSON.

Handlers are ``async def handler(request, **path_params) -> Response``. They parse, validate,
authenticate, call one service method and return a :class:`Response`; any :class:`ApiError`
becomes its JSON error, and anything else a logged 500 whose body tells nothing of the inside.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs

from prometheus_client import CollectorRegistry
from twisted.internet import defer
from twisted.python.failure import Failure
from twisted.web import server
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Request

from calltrack.metrics import ReactorCounter, ReactorHistogram
from calltrack.web.errors import ApiError

logger = logging.getLogger(__name__)

# Secrets that can sit in a path (a report link's token; a key pasted into a URL by mistake):
# a logged path keeps their prefix only.
# One encoder for every answer: json.dumps with options builds a new encoder on each call.
_encode_json = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode
_LITERAL_PATH = re.compile(r"[A-Za-z0-9_/\-]+")
_SECRET_IN_PATH = re.compile(r"\b(rpt|ctk|whsec)_[A-Za-z0-9_\-]+")


def loggable_path(uri: bytes) -> str:
    """The request's path as logs show it: no query string, no secrets, at most 200 characters."""
    path = uri.decode("utf-8", "replace").split("?", 1)[0]
    return _SECRET_IN_PATH.sub(lambda m: m.group(1) + "_…", path)[:200]


@dataclass
class Response:
    status: int = 200
    body: Any = None  # JSON-able, or bytes with content_type
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)


Handler = Callable[..., Awaitable[Response]]


@dataclass(frozen=True)
class Route:
    method: str
    regex: re.Pattern[str]
    handler: Handler
    name: str


class HttpMetrics:
    """Requests and latency per route; updated on the reactor thread only (``_finish``)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = ReactorCounter(
            "calltrack_http_requests", "HTTP requests answered", ["route", "method", "status"], registry=registry
        )
        self.latency = ReactorHistogram(
            "calltrack_http_request_duration_seconds",
            "Time from request to response",
            ["route"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0),
            registry=registry,
        )

    def observe(self, route: str, method: str, status: int, elapsed: float) -> None:
        self.requests.inc(route, method, str(status))
        self.latency.observe(elapsed, route)


class LimitedRequest(Request):
    """A Request that stops storing its body past the site's limit (answered with 413)."""

    body_size = 0
    body_too_large = False

    def handleContentChunk(self, data: bytes) -> None:  # noqa: N802 - Twisted's name
        self.body_size += len(data)
        limit = getattr(self.channel.site, "max_body_bytes", None) if self.channel else None
        if limit is not None and self.body_size > limit:
            self.body_too_large = True
            return
        super().handleContentChunk(data)


class CalltrackSite(server.Site):
    requestFactory = LimitedRequest

    def __init__(self, resource: Resource, *, max_body_bytes: int, access_log: bool = False) -> None:
        super().__init__(resource)
        self.max_body_bytes = max_body_bytes
        self.access_log = access_log

    def log(self, request: Request) -> None:
        # The router logs structured lines (and the metrics count every request); Twisted's
        # combined-log line would duplicate them on the hot path.
        return


class Router(Resource):
    """Dispatch ``(method, path)`` to the first matching route."""

    isLeaf = True

    def __init__(self, metrics: HttpMetrics, *, max_body_bytes: int = 64 * 1024, access_log: bool = False) -> None:
        super().__init__()
        self.max_body_bytes = max_body_bytes
        self.in_flight = 0
        self._routes: list[Route] = []
        self._literal: dict[str, dict[str, Route]] = {}  # path -> method -> route
        self._metrics = metrics
        self._access_log = access_log

    def add(self, method: str, pattern: str, handler: Handler, *, name: str | None = None) -> None:
        """Register ``handler`` for ``method`` on ``pattern`` (a regex with named groups)."""
        route = Route(method, re.compile("^" + pattern + "$"), handler, name or pattern)
        if _LITERAL_PATH.fullmatch(pattern) and not any(r.regex.match(pattern) for r in self._routes):
            # A path without groups is found by a dict lookup, not by trying every pattern in
            # turn; unless an earlier pattern matches it too (the first match wins), which
            # leaves it to the scan.
            self._literal.setdefault(pattern, {}).setdefault(method, route)
        self._routes.append(route)

    def routes(self) -> list[Route]:
        return list(self._routes)

    def _match(self, path: str, method: str) -> tuple[Route | None, dict[str, str], list[str]]:
        """The route for ``(method, path)`` and its path parameters; else the methods the path
        allows (for a 405)."""
        by_method = self._literal.get(path)
        if by_method is not None:
            route = by_method.get(method) or (by_method.get("GET") if method == "HEAD" else None)
            if route is not None:
                return route, {}, []
        allowed: list[str] = []
        for r in self._routes:
            m = r.regex.match(path)
            if m is None:
                continue
            if r.method == method or (method == "HEAD" and r.method == "GET"):
                return r, m.groupdict(), []
            allowed.append(r.method)
        return None, {}, allowed

    def render(self, request: Request) -> int:  # type: ignore[override]
        started = time.perf_counter()
        path = request.path.decode("utf-8", "replace")
        method = request.method.decode("ascii", "replace")
        route, params, allowed = self._match(path, method)
        if route is None:
            if allowed:
                err = ApiError(405, "method_not_allowed", f"{method} is not allowed here", details={"allowed": sorted(set(allowed))})
                err.headers["Allow"] = ", ".join(sorted(set(allowed)))
            else:
                err = ApiError(404, "not_found", f"no such endpoint: {path}")
            self._finish(request, _error_response(err), "unmatched", method, started)
            return NOT_DONE_YET
        self.in_flight += 1
        self._step(None, self._call(route, request, params), request, route.name, method, started)
        return NOT_DONE_YET

    def _step(
        self, result: object, coro: Coroutine[Any, Any, Response], request: Request, route: str, method: str, started: float
    ) -> None:
        """Run the handler's coroutine until it waits or ends.

        What ``defer.ensureDeferred`` does, without a Deferred per request: most number
        requests are answered from memory without ever waiting, and on that path Twisted's
        coroutine machinery cost more than the rest of the router. A coroutine that waits
        yields the Deferred it waits for (``Deferred.__await__``), and is resumed from that
        Deferred's callback with its result, or with its failure thrown in (as Twisted's own
        ``_inlineCallbacks`` does: the failure is handled there, not left in the Deferred).
        """
        try:
            if isinstance(result, Failure):
                waiting = result.throwExceptionIntoGenerator(coro)  # type: ignore[arg-type]
            else:
                waiting = coro.send(result)
        except StopIteration as done:
            try:
                self._finish(request, done.value, route, method, started)
            except Exception:
                self._unexpected(Failure(), request)
            return
        except BaseException:
            self._unexpected(Failure(), request)
            return
        if not isinstance(waiting, defer.Deferred):
            coro.close()
            self._unexpected(Failure(TypeError(f"a handler may only await Deferreds, not {waiting!r}")), request)
            return
        waiting.addBoth(self._step, coro, request, route, method, started)

    async def _call(self, route: Route, request: Request, params: dict[str, str]) -> Response:
        try:
            if getattr(request, "body_too_large", False) or _body_size(request) > self.max_body_bytes:
                raise ApiError(413, "body_too_large", "the request body is larger than this endpoint accepts")
            return await route.handler(request, **params)
        except ApiError as e:
            return _error_response(e)
        except UnicodeDecodeError:
            # Twisted decodes header values as UTF-8 when a handler reads them.
            return _error_response(ApiError(400, "malformed_header", "a request header is not valid UTF-8"))
        except Exception:
            logger.exception("unhandled error in %s %s", request.method.decode(), route.name)
            return _error_response(ApiError(500, "internal_error", "something went wrong on our side; it has been logged"))

    def _finish(self, request: Request, resp: Response, route: str, method: str, started: float) -> None:
        if route != "unmatched":
            self.in_flight -= 1
        if request._disconnected or request.finished:  # the client went away
            return
        request.setResponseCode(resp.status)
        for k, v in resp.headers.items():
            request.setHeader(k, v)
        if isinstance(resp.body, bytes):
            body = resp.body
        elif resp.body is None:
            body = b""
        else:
            body = _encode_json(resp.body).encode("utf-8")
        if resp.status != 204:
            request.setHeader(b"content-type", resp.content_type.encode("ascii"))
            # Known length: one write, no chunked transfer encoding.
            request.setHeader(b"content-length", b"%d" % len(body))
        request.setHeader(b"x-content-type-options", b"nosniff")
        if method != "HEAD":
            request.write(body)
        request.finish()
        elapsed = time.perf_counter() - started
        self._metrics.observe(route, method, resp.status, elapsed)
        if self._access_log or elapsed > 0.5 or resp.status >= 500:
            logger.info(
                "%s %s %d %.1fms",
                method,
                loggable_path(request.uri),
                resp.status,
                elapsed * 1000,
                extra={"route": route, "status": resp.status, "ms": round(elapsed * 1000, 2)},
            )

    def _unexpected(self, failure: Failure, request: Request) -> None:  # pragma: no cover
        self.in_flight -= 1
        logger.error("failure while answering %s", loggable_path(request.uri), exc_info=(failure.type, failure.value, failure.tb))
        if not request.finished and not request._disconnected:
            request.setResponseCode(500)
            request.finish()


def _body_size(request: Request) -> int:
    declared = request.getHeader("content-length")
    if declared is not None and declared.isdigit():
        return int(declared)
    if request.content is None:
        return 0
    return len(request.content.getvalue()) if hasattr(request.content, "getvalue") else 0


def _error_response(err: ApiError) -> Response:
    return Response(int(err.status), err.to_json(), headers=dict(err.headers))


def json_response(body: Any, status: int = HTTPStatus.OK, **headers: str) -> Response:
    return Response(int(status), body, headers=dict(headers))


# -- reading requests ------------------------------------------------------------------------


def query_params(request: Request) -> dict[str, str]:
    """The query string as ``{name: first value}`` (strings, undecodable bytes replaced)."""
    out: dict[str, str] = {}
    for k, vs in (request.args or {}).items():
        if vs:
            out.setdefault(k.decode("utf-8", "replace"), vs[0].decode("utf-8", "replace"))
    return out


def body_bytes(request: Request) -> bytes:
    if request.content is None:
        return b""
    request.content.seek(0)
    return request.content.read()


def json_body(request: Request, *, required: bool = True) -> dict[str, Any]:
    """The body as a JSON object; 400 when it is not one."""
    raw = body_bytes(request)
    if not raw.strip():
        if required:
            raise ApiError(400, "empty_body", "a JSON object body is required")
        return {}
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as e:
        raise ApiError(400, "malformed_json", f"the body is not valid JSON: {e}") from None
    except RecursionError:
        raise ApiError(400, "malformed_json", "the body nests too deeply") from None
    if not isinstance(data, dict):
        raise ApiError(400, "malformed_json", "the body must be a JSON object")
    if b"\\ud" in raw.lower():
        # "\ud800" escapes decode to lone surrogates, which no database or encoder takes.
        try:
            json.dumps(data, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            raise ApiError(400, "malformed_json", "the body holds a lone UTF-16 surrogate (\\ud800-\\udfff)") from None
    return data


def request_params(request: Request) -> dict[str, Any]:
    """Query parameters merged with a JSON or form body (the body wins)."""
    params: dict[str, Any] = query_params(request)
    if request.method == b"POST":
        ctype = (request.getHeader("content-type") or "").split(";")[0].strip().lower()
        raw = body_bytes(request)
        if raw.strip():
            if ctype == "application/x-www-form-urlencoded":
                try:
                    form = parse_qs(raw.decode("utf-8"), keep_blank_values=True)
                except UnicodeDecodeError:
                    raise ApiError(400, "malformed_body", "the form body is not UTF-8") from None
                params.update({k: v[0] for k, v in form.items()})
            else:
                # JSON is the default: sendBeacon posts text/plain, which is JSON here.
                params.update(json_body(request))
    return params


def client_address(request: Request, *, trust_forwarded_for: bool) -> str:
    if trust_forwarded_for:
        forwarded = request.getHeader("x-forwarded-for")
        if forwarded:
            return forwarded.split(",")[0].strip()
    addr = request.getClientAddress()
    return getattr(addr, "host", None) or "unknown"
