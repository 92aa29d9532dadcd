"""``/`` (an index), ``/healthz`` (the process answers), ``/readyz`` (the database and the writer),
``/metrics`` (Prometheus, operator keys)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway import __version__
from gateway.api import schemas
from gateway.api.common import any_principal, json_response, services
from gateway.api.declare import Answer, Key, Operation, declare
from gateway.errors import Forbidden, StorageUnavailable
from gateway.metrics import CONTENT_TYPE, snapshot


@declare(
    Operation(
        summary="What this is",
        tag="operations",
        key=Key.NONE,
        storage=False,
        answers=[Answer(200, "name, version and where to go next", schemas.Index)],
    )
)
async def index(request: Request) -> Response:
    """``GET /``: what this is and where to go next."""
    return json_response(
        {
            "name": "callgate",
            "version": __version__,
            "links": {
                "health": "/healthz",
                "metrics": "/metrics",
                "ready": "/readyz",
                "calls": "/v1/calls",
                "sources": "/v1/sources",
                "subscriptions": "/v1/subscriptions",
                "connections": "/v1/connections",
                "deliveries": "/v1/deliveries",
            },
            "auth": "the /v1 routes take Authorization: Bearer <api key>",
        }
    )


@declare(
    Operation(
        summary="Liveness",
        tag="operations",
        description="The process answers; nothing else is checked.",
        key=Key.NONE,
        storage=False,
        answers=[Answer(200, "alive", schemas.Health)],
    )
)
async def healthz(request: Request) -> Response:
    return json_response({"status": "ok", "version": __version__})


@declare(
    Operation(
        summary="Readiness",
        tag="operations",
        description="The database answers (within 2 s) and the ingest writer runs; else 503.",
        key=Key.NONE,
        answers=[Answer(200, "ready", schemas.Ready)],
    )
)
async def readyz(request: Request) -> Response:
    svc = services(request)
    try:
        await svc.db.ping()
    except StorageUnavailable:
        raise StorageUnavailable("database unreachable") from None
    except TimeoutError:
        raise StorageUnavailable("database did not answer in time") from None
    if not svc.writer.running:
        raise StorageUnavailable("the ingest writer is not running")
    return json_response({"status": "ready", "database": "ok"})


@declare(
    Operation(
        summary="Prometheus metrics",
        tag="operations",
        description="Every tenant's totals, so operator keys only (docs/operations.md lists each metric).",
        key=Key.OPERATOR,
        answers=[Answer(200, "Prometheus text exposition", media_type="text/plain")],
    )
)
async def metrics(request: Request) -> Response:
    """``GET /metrics``: Prometheus text, for an operator key (it shows every tenant's totals)."""
    svc = services(request)
    principal = await any_principal(request)
    if not principal.is_operator:
        raise Forbidden("metrics are for operator keys")
    body = svc.metrics.render(await snapshot(svc.db, svc.clock()))
    return Response(body, media_type=CONTENT_TYPE)


routes = [
    Route("/", index, methods=["GET"]),
    Route("/healthz", healthz, methods=["GET"]),
    Route("/readyz", readyz, methods=["GET"]),
    Route("/metrics", metrics, methods=["GET"]),
]
