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
from gateway.api import schemas
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
from gateway.api.declare import CURSOR, Answer, Operation, declare, one_of, page_limit

NOT_FOUND = {404: ["not_found"]}
CREDENTIALS = (
    "what the kind needs (docs/crm.md): HubSpot `{access_token}`; Salesforce `{access_token}` or "
    "`{client_id, client_secret}`; Pipedrive `{api_token}`. Write-only: never returned"
)


class ConnectionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: str = Field(min_length=1, max_length=40, json_schema_extra=one_of("kinds"))
    name: str | None = Field(
        default=None, min_length=1, max_length=200, description="default `<kind> connection`"
    )
    base_url: str | None = Field(
        default=None,
        min_length=1,
        max_length=2000,
        description="default the CRM's public API (Salesforce: required)",
    )
    credentials: dict[str, Any] = Field(description=CREDENTIALS)
    options: dict[str, Any] = Field(default_factory=dict, description="the kind's options (docs/crm.md)")
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
    since: str = Field(
        min_length=1, max_length=64, description="a time or an age (`6h`), as the list filters take"
    )  # read by ``gateway.when``


@declare(
    Operation(
        summary="Create a CRM connection",
        tag="connections",
        description="Each call that ends (or reaches the statuses in `options.statuses`) becomes one CRM "
        "record, kept at the call's latest state. `base_url` is checked by the SSRF guard.",
        body=ConnectionIn,
        body_example={"kind": "hubspot", "credentials": {"access_token": "pat-na1-…"}},
        answers=[Answer(201, "the connection (no credentials)", schemas.Connection)],
    )
)
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


@declare(
    Operation(
        summary="List CRM connections",
        tag="connections",
        query=(page_limit(), CURSOR),
        answers=[Answer(200, "a page of connections", schemas.ConnectionPage)],
    )
)
async def list_connections(request: Request) -> Response:
    svc = services(request)
    _, tenant_id = await tenant_principal(request)
    limit = query_limit(request, 200)
    rows = await service.list_for_tenant(svc.db, tenant_id, before_id=query_cursor(request), limit=limit + 1)
    page = [render.connection(r) for r in rows[:limit]]
    return json_response({"data": page, "next_cursor": next_cursor(request, rows, limit)})


@declare(
    Operation(
        summary="One CRM connection",
        tag="connections",
        answers=[Answer(200, "the connection and how many calls it synced", schemas.ConnectionDetail)],
        errors=NOT_FOUND,
    )
)
async def get_connection(request: Request) -> Response:
    svc = services(request)
    _, tenant_id = await tenant_principal(request)
    row, synced = await service.get(svc.db, tenant_id, request.path_params["connection_id"])
    return json_response(render.connection(row, synced))


@declare(
    Operation(
        summary="Change a CRM connection",
        tag="connections",
        description="Only what is given changes. New credentials, or re-enabling, clear `auth_failed`.",
        body=ConnectionPatch,
        body_example={"enabled": True},
        answers=[Answer(200, "the connection", schemas.Connection)],
        errors=NOT_FOUND,
    )
)
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


@declare(
    Operation(
        summary="Delete a CRM connection",
        tag="connections",
        description="Its pending syncs stop; the record mapping and the delivery log stay.",
        answers=[Answer(204, "deleted")],
        errors=NOT_FOUND,
    )
)
async def delete_connection(request: Request) -> Response:
    svc = services(request)
    _, tenant_id = await tenant_principal(request)
    await service.delete(
        svc.db, svc.clock(), tenant_id=tenant_id, connection_id=request.path_params["connection_id"]
    )
    return Response(status_code=204)


@declare(
    Operation(
        summary="Check a connection's credentials",
        tag="connections",
        description="One harmless authenticated read against the CRM; a refusal is `ok: false`, no error.",
        answers=[Answer(200, "whether the CRM accepted the credentials", schemas.ConnectionCheck)],
        errors=NOT_FOUND,
    )
)
async def test_connection(request: Request) -> Response:
    svc = services(request)
    _, tenant_id = await tenant_principal(request)
    result = await service.test(svc.db, svc.crm, tenant_id, request.path_params["connection_id"])
    return json_response(result)


@declare(
    Operation(
        summary="Sync earlier calls again",
        tag="connections",
        description="Every call changed since `since`, in a status the connection syncs, is queued again "
        "(still one record per call).",
        body=ResyncIn,
        body_example={"since": "7d"},
        answers=[Answer(202, "how many calls were queued", schemas.Queued)],
        errors=NOT_FOUND,
    )
)
async def resync(request: Request) -> Response:
    svc = services(request)
    _, tenant_id = await tenant_principal(request)
    body = await read_model(request, ResyncIn)
    since = time_value(body.since, "since", svc.clock())
    count = await outbox.resync(svc.db, tenant_id, request.path_params["connection_id"], since, svc.clock())
    svc.wake_worker()
    return json_response({"queued": count}, 202)


@declare(
    Operation(
        summary="Which CRM record holds each call",
        tag="connections",
        query=(page_limit(), CURSOR),
        answers=[Answer(200, "a page of call -> record mappings", schemas.CrmRecordPage)],
        errors=NOT_FOUND,
    )
)
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
