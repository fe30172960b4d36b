"""Running the HTTP service: one process on the reactor, or several sharing one socket.

With ``--workers N`` the parent binds the socket and starts N children that adopt it
(``reactor.adoptStreamPort``); the kernel spreads connections across them. The parent only
supervises: it restarts a child that dies and forwards SIGTERM/SIGINT for a graceful stop.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import time
from typing import Any

from twisted.internet import defer, task

from calltrack.app import build_app
from calltrack.config import CalltrackConfig

logger = logging.getLogger(__name__)

_DRAIN_SECONDS = 10.0


def serve(config: CalltrackConfig, *, bind: str = "127.0.0.1", port: int = 8080, inherited_fd: int | None = None) -> None:
    """Serve until SIGTERM/SIGINT, then stop accepting, finish what is in flight, and exit."""
    from twisted.internet import reactor

    app = build_app(config, reactor=reactor)
    app.start()
    # Leads whose scoring a process that died had pending (SIGKILL, power loss) are scored now.
    app.scoring.in_background(app.scoring.catch_up(), "scoring the leads left unscored")
    if inherited_fd is not None:
        probe = socket.socket(fileno=os.dup(inherited_fd))
        family = probe.family
        probe.close()
        listening = reactor.adoptStreamPort(inherited_fd, family, app.site)  # type: ignore[attr-defined]
        os.close(inherited_fd)
    else:
        listening = reactor.listenTCP(port, app.site, interface=bind, backlog=1024)  # type: ignore[attr-defined]
    where = listening.getHost()
    logger.info("serving on http://%s:%s (pid %d)", where.host, where.port, os.getpid(), extra={"pid": os.getpid()})

    async def shutdown() -> None:
        logger.info("stopping: no new connections; finishing %d requests in flight", app.router.in_flight)
        await defer.maybeDeferred(listening.stopListening)
        deadline = time.monotonic() + _DRAIN_SECONDS
        while (app.router.in_flight or app.db.queue_depth()) and time.monotonic() < deadline:
            await task.deferLater(reactor, 0.05, lambda: None)
        if app.router.in_flight:
            logger.warning("%d requests still in flight after %.0fs; stopping anyway", app.router.in_flight, _DRAIN_SECONDS)
        await app.scoring.drain()  # the leads touched in the last second are scored before we go
        app.stop()
        logger.info("stopped")

    reactor.addSystemEventTrigger("before", "shutdown", lambda: defer.ensureDeferred(shutdown()))  # type: ignore[attr-defined]
    reactor.run()  # type: ignore[attr-defined]


def serve_workers(
    config: CalltrackConfig, *, bind: str, port: int, workers: int, config_path: str | None = None
) -> None:
    family = socket.AF_INET6 if ":" in bind else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((bind, port))
    sock.listen(1024)
    sock.setblocking(False)
    fd = sock.fileno()
    env = dict(os.environ)
    if config_path:
        env["CALLTRACK_CONFIG"] = config_path
    cmd = [sys.executable, "-m", "calltrack", "serve", "--inherit-fd", str(fd)]
    stopping = False

    def spawn() -> subprocess.Popen[bytes]:
        return subprocess.Popen(cmd, pass_fds=[fd], env=env)

    def on_signal(signum: int, _frame: Any) -> None:
        nonlocal stopping
        stopping = True
        for child in children:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)

    children = [spawn() for _ in range(workers)]
    started = [time.monotonic()] * workers
    logger.info("serving on http://%s:%d with %d worker processes", bind, port, workers)
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    quick_deaths = 0
    while not stopping:
        time.sleep(0.2)
        for i, child in enumerate(children):
            code = child.poll()
            if code is None or stopping:
                continue
            quick_deaths = quick_deaths + 1 if time.monotonic() - started[i] < 5 else 0
            if quick_deaths > 3:
                logger.error("workers keep dying at start (last exit status %s); giving up", code)
                on_signal(signal.SIGTERM, None)
                break
            logger.warning("worker %d exited with status %s; starting another", child.pid, code)
            children[i] = spawn()
            started[i] = time.monotonic()
    deadline = time.monotonic() + _DRAIN_SECONDS + 5
    for child in children:
        try:
            child.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.kill()
    sock.close()
    if quick_deaths > 3:
        sys.exit(1)

