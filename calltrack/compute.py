"""A thread pool for CPU-heavy pure work (pool sizing, later attribution and reports), so it
never runs on the reactor thread. Inline when ``synchronous`` (tests with a fake clock)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from twisted.internet import threads
from twisted.python.threadpool import ThreadPool

T = TypeVar("T")


class ComputePool:
    def __init__(self, reactor: Any, *, max_threads: int = 2, synchronous: bool = False) -> None:
        self._reactor = reactor
        self._synchronous = synchronous
        self._pool = ThreadPool(minthreads=0, maxthreads=max_threads, name="compute")
        self._started = False

    def start(self) -> None:
        if not self._synchronous and not self._started:
            self._pool.start()
            self._started = True

    def stop(self) -> None:
        if self._started:
            self._pool.stop()
            self._started = False

    async def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        if self._synchronous:
            return fn(*args, **kwargs)
        self.start()
        result: T = await threads.deferToThreadPool(self._reactor, self._pool, fn, *args, **kwargs)
        return result

