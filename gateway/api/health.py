"""``/`` (an index), ``/healthz`` (the process answers), ``/readyz`` (the database and the writer),
``/metrics`` (Prometheus, operator keys)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway import __version__
from gateway.api.common import any_principal, json_response, services
from gateway.errors import Forbidden, StorageUnavailable
from gateway.metrics import CONTENT_TYPE, snapshot


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


async def healthz(request: Request) -> Response:
    return json_response({"status": "ok", "version": __version__})


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
