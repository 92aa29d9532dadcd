"""``/v1/connections``: CRM accounts. Credentials are write-only; ``test`` makes one harmless read;
``resync`` queues every call changed since a time; ``records`` is the call -> CRM record mapping."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway import connections as service
from gateway import outbox, render
from gateway.api.common import (
    json_response,
    next_cursor,
    query_cursor,
    query_limit,
    read_model,
    services,
    tenant_principal,
    time_value,
)


class ConnectionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: str = Field(min_length=1, max_length=40)
    name: str | None = Field(default=None, min_length=1, max_length=200)
    base_url: str | None = Field(default=None, min_length=1, max_length=2000)
    credentials: dict[str, Any]
    options: dict[str, Any] = Field(default_factory=dict)
    enabled: bool = True


class ConnectionPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(default=None, min_length=1, max_length=200)
    base_url: str | None = Field(default=None, min_length=1, max_length=2000)
    credentials: dict[str, Any] | None = None
    options: dict[str, Any] | None = None
    enabled: bool | None = None


class ResyncIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    since: str = Field(min_length=1, max_length=64)  # a time or an age, read by ``gateway.when``


async def create_connection(request: Request) -> Response:
    svc = services(request)
    _, tenant_id = await tenant_principal(request)
    body = await read_model(request, ConnectionIn)
    row = await service.create(
        svc.db,
        svc.crm.specs,
        svc.crm.vault,
        svc.targets,
        svc.clock(),
        tenant_id=tenant_id,
        kind=body.kind,
        name=body.name,
        base_url=body.base_url,
        credentials=body.credentials,
        options=body.options,
        enabled=body.enabled,
    )
    return json_response(render.connection(row), 201)


async def list_connections(request: Request) -> Response:
    svc = services(request)
    _, tenant_id = await tenant_principal(request)
    limit = query_limit(request, 200)
    rows = await service.list_for_tenant(svc.db, tenant_id, before_id=query_cursor(request), limit=limit + 1)
    page = [render.connection(r) for r in rows[:limit]]
    return json_response({"data": page, "next_cursor": next_cursor(request, rows, limit)})


async def get_connection(request: Request) -> Response:
    svc = services(request)
    _, tenant_id = await tenant_principal(request)
    row, synced = await service.get(svc.db, tenant_id, request.path_params["connection_id"])
    return json_response(render.connection(row, synced))


async def patch_connection(request: Request) -> Response:
    svc = services(request)
    _, tenant_id = await tenant_principal(request)
    body = await read_model(request, ConnectionPatch)
    row = await service.modify(
        svc.db,
        svc.crm.specs,
        svc.crm.vault,
        svc.targets,
        svc.clock(),
        tenant_id=tenant_id,
        connection_id=request.path_params["connection_id"],
        name=body.name,
        base_url=body.base_url,
        credentials=body.credentials,
        options=body.options,
        enabled=body.enabled,
    )
    svc.wake_worker()
    return json_response(render.connection(row))


async def delete_connection(request: Request) -> Response:
    svc = services(request)
    _, tenant_id = await tenant_principal(request)
    await service.delete(
        svc.db, svc.clock(), tenant_id=tenant_id, connection_id=request.path_params["connection_id"]
    )
    return Response(status_code=204)


async def test_connection(request: Request) -> Response:
    svc = services(request)
    _, tenant_id = await tenant_principal(request)
    result = await service.test(svc.db, svc.crm, tenant_id, request.path_params["connection_id"])
    return json_response(result)


async def resync(request: Request) -> Response:
    svc = services(request)
    _, tenant_id = await tenant_principal(request)
    body = await read_model(request, ResyncIn)
    since = time_value(body.since, "since", svc.clock())
    count = await outbox.resync(svc.db, tenant_id, request.path_params["connection_id"], since, svc.clock())
    svc.wake_worker()
    return json_response({"queued": count}, 202)


async def list_records(request: Request) -> Response:
    svc = services(request)
    _, tenant_id = await tenant_principal(request)
    limit = query_limit(request, 200)
    rows = await service.records(
        svc.db,
        tenant_id,
        request.path_params["connection_id"],
        before_call_id=query_cursor(request),
        limit=limit + 1,
    )
    page = [render.crm_record(r) for r in rows[:limit]]
    cursor = None
    if len(rows) > limit:
        cursor = str(svc.cursors.dumps({"before": rows[limit - 1]["call_id"]}))
    return json_response({"data": page, "next_cursor": cursor})


routes = [
    Route("/v1/connections", create_connection, methods=["POST"]),
    Route("/v1/connections", list_connections, methods=["GET"]),
    Route("/v1/connections/{connection_id}", get_connection, methods=["GET"]),
    Route("/v1/connections/{connection_id}", patch_connection, methods=["PATCH"]),
    Route("/v1/connections/{connection_id}", delete_connection, methods=["DELETE"]),
    Route("/v1/connections/{connection_id}/test", test_connection, methods=["POST"]),
    Route("/v1/connections/{connection_id}/resync", resync, methods=["POST"]),
    Route("/v1/connections/{connection_id}/records", list_records, methods=["GET"]),
]
