"""The router: matching, 404/405, and running handlers' coroutines (answered at once when they
never wait, after the awaited Deferred fires when they do)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from prometheus_client import CollectorRegistry
from treq.testing import StubTreq
from twisted.internet import defer

from calltrack.web.errors import ApiError
from calltrack.web.resource import HttpMetrics, Response, Router
from tests.conftest import resolve


class Harness:
    def __init__(self) -> None:
        self.router = Router(HttpMetrics(CollectorRegistry()))
        self.stub = StubTreq(self.router)

    def send(self, method: str, path: str) -> defer.Deferred[Any]:
        return self.stub.request(method, "http://calltrack.test" + path)

    def answer(self, d: defer.Deferred[Any]) -> tuple[int, Any, Any]:
        self.stub.flush()
        resp = resolve(d)
        body = resolve(resp.content())
        return resp.code, (json.loads(body) if body else None), resp.headers


@pytest.fixture
def h() -> Harness:
    return Harness()


def test_a_handler_that_never_waits_is_answered_at_once(h: Harness) -> None:
    async def handler(request: Any) -> Response:
        return Response(200, {"ok": True})

    h.router.add("GET", r"/v1/now", handler)
    code, body, headers = h.answer(h.send("GET", "/v1/now"))
    assert (code, body) == (200, {"ok": True})
    assert headers.getRawHeaders("content-type") == ["application/json"]
    assert h.router.in_flight == 0


def test_a_handler_that_waits_is_answered_when_its_deferreds_fire(h: Harness) -> None:
    first: defer.Deferred[int] = defer.Deferred()
    second: defer.Deferred[int] = defer.Deferred()

    async def handler(request: Any) -> Response:
        a = await first
        b = await second
        return Response(200, {"sum": a + b})

    h.router.add("GET", r"/v1/later", handler)
    d = h.send("GET", "/v1/later")
    h.stub.flush()
    assert h.router.in_flight == 1
    first.callback(2)
    h.stub.flush()
    assert h.router.in_flight == 1
    second.callback(40)
    assert h.answer(d)[:2] == (200, {"sum": 42})
    assert h.router.in_flight == 0


def test_a_failed_deferred_raises_inside_the_handler(h: Harness) -> None:
    waited: defer.Deferred[int] = defer.Deferred()

    async def handler(request: Any) -> Response:
        try:
            await waited
        except KeyError as e:
            raise ApiError(404, "not_found", f"no {e.args[0]}") from None
        return Response(200, {})

    h.router.add("GET", r"/v1/fails", handler)
    d = h.send("GET", "/v1/fails")
    h.stub.flush()
    waited.errback(KeyError("thing"))
    code, body, _ = h.answer(d)
    assert code == 404 and body["error"]["message"] == "no thing"
    assert h.router.in_flight == 0


def test_an_unexpected_error_after_waiting_is_a_500_that_tells_nothing(h: Harness) -> None:
    waited: defer.Deferred[int] = defer.Deferred()

    async def handler(request: Any) -> Response:
        await waited
        raise RuntimeError("secret detail")

    h.router.add("GET", r"/v1/boom", handler)
    d = h.send("GET", "/v1/boom")
    h.stub.flush()
    waited.callback(1)
    code, body, _ = h.answer(d)
    assert code == 500 and body["error"]["code"] == "internal_error"
    assert "secret" not in json.dumps(body)
    assert h.router.in_flight == 0


def test_awaiting_something_other_than_a_deferred_is_a_500(h: Harness) -> None:
    class NotADeferred:
        def __await__(self):  # type: ignore[no-untyped-def]
            yield "not a Deferred"

    async def handler(request: Any) -> Response:
        await NotADeferred()
        return Response(200, {})

    h.router.add("GET", r"/v1/odd", handler)
    code, _, _ = h.answer(h.send("GET", "/v1/odd"))
    assert code == 500
    assert h.router.in_flight == 0


def test_literal_paths_and_patterns_keep_first_match_order(h: Harness) -> None:
    def named(name: str) -> Any:
        async def handler(request: Any, **params: str) -> Response:
            return Response(200, {"handler": name, **params})

        return handler

    h.router.add("GET", r"/v1/items/(?P<item>[a-z]+)", named("pattern"))
    h.router.add("GET", r"/v1/items/special", named("literal shadowed by the pattern"))
    h.router.add("GET", r"/v1/other", named("literal"))
    h.router.add("POST", r"/v1/other", named("literal post"))
    assert h.answer(h.send("GET", "/v1/items/special"))[1] == {"handler": "pattern", "item": "special"}
    assert h.answer(h.send("GET", "/v1/other"))[1] == {"handler": "literal"}
    assert h.answer(h.send("POST", "/v1/other"))[1] == {"handler": "literal post"}
    code, _, headers = h.answer(h.send("HEAD", "/v1/other"))
    assert code == 200
    code, body, headers = h.answer(h.send("DELETE", "/v1/other"))
    assert code == 405 and body["error"]["allowed"] == ["GET", "POST"]
    assert headers.getRawHeaders("allow") == ["GET, POST"]
    assert h.answer(h.send("GET", "/v1/nothing"))[0] == 404
