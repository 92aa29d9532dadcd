"""``/`` (an index), ``/healthz`` (the process answers), ``/readyz`` (the database and the writer)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway import __version__
from gateway.api.common import json_response, services
from gateway.errors import StorageUnavailable


async def index(request: Request) -> Response:
    """``GET /``: what this is and where to go next."""
    return json_response(
        {
            "name": "callgate",
            "version": __version__,
            "links": {
                "health": "/healthz",
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


routes = [
    Route("/", index, methods=["GET"]),
    Route("/healthz", healthz, methods=["GET"]),
    Route("/readyz", readyz, methods=["GET"]),
]
