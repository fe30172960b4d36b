"""Operations endpoints: ``GET /healthz`` and ``GET /metrics``."""

from __future__ import annotations

import sqlalchemy as sa
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from twisted.web.server import Request

from calltrack.db.pool import DBPool
from calltrack.web.resource import Response, Router


def _ping_txn(conn: sa.Connection) -> int:
    return int(conn.execute(sa.text("SELECT 1")).scalar_one())


class OpsResources:
    def __init__(self, db: DBPool, registry: CollectorRegistry) -> None:
        self._db = db
        self._registry = registry

    def register(self, router: Router) -> None:
        router.add("GET", r"/healthz", self.healthz)
        router.add("GET", r"/metrics", self.metrics)

    async def healthz(self, request: Request) -> Response:
        """200 when the database answers; 503 otherwise (a load balancer takes us out)."""
        try:
            await self._db.run("healthz", _ping_txn)
        except Exception as e:  # noqa: BLE001 - any failure means unhealthy
            return Response(503, {"status": "unhealthy", "database": type(e).__name__}, headers={"Cache-Control": "no-store"})
        return Response(
            200, {"status": "ok", "database": "ok", "db_queue": self._db.queue_depth()}, headers={"Cache-Control": "no-store"}
        )

    async def metrics(self, request: Request) -> Response:
        return Response(200, generate_latest(self._registry), content_type=CONTENT_TYPE_LATEST)
