"""``/v1/sources``: inbound sources (vendor + verification). POST answers the hook URL, and the secret
once when callgate generated it."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway import sources as service
from gateway.api.common import json_response, read_model, services, tenant_principal
from gateway.errors import NotFound
from gateway.store import sources as store


class SourceIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=200)
    vendor: str = Field(min_length=1, max_length=40)
    verification: dict[str, Any] | None = None
    enabled: bool = True


class SourcePatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(default=None, min_length=1, max_length=200)
    verification: dict[str, Any] | None = None
    enabled: bool | None = None


async def create_source(request: Request) -> Response:
    svc = services(request)
    _, tenant_id = await tenant_principal(request)
    body = await read_model(request, SourceIn)
    row, generated, api_key = await service.create(
        svc.db,
        svc.adapters,
        svc.clock,
        tenant_id=tenant_id,
        name=body.name,
        vendor=body.vendor,
        verification=body.verification,
        enabled=body.enabled,
    )
    shown = service.render(row, svc.settings.base_url)
    if generated is not None:
        shown["secret"] = generated
    if api_key is not None:
        shown["api_key"] = api_key
    return json_response(shown, 201)


async def list_sources(request: Request) -> Response:
    svc = services(request)
    _, tenant_id = await tenant_principal(request)
    async with svc.db.reading() as conn:
        rows = await store.list_for_tenant(conn, tenant_id)
    return json_response({"data": [service.render(r, svc.settings.base_url) for r in rows]})


async def get_source(request: Request) -> Response:
    svc = services(request)
    _, tenant_id = await tenant_principal(request)
    async with svc.db.reading() as conn:
        row = await store.get(conn, tenant_id, request.path_params["source_id"])
    if row is None:
        raise NotFound("no such source")
    return json_response(service.render(row, svc.settings.base_url))


async def patch_source(request: Request) -> Response:
    svc = services(request)
    _, tenant_id = await tenant_principal(request)
    source_id = request.path_params["source_id"]
    body = await read_model(request, SourcePatch)
    async with svc.db.writing() as conn:
        row = await store.get(conn, tenant_id, source_id)
        if row is None:
            raise NotFound("no such source")
        values: dict[str, Any] = {"updated_at": svc.clock()}
        if body.name is not None:
            values["name"] = body.name
        if body.enabled is not None:
            values["enabled"] = body.enabled
        if body.verification is not None:
            adapter = svc.adapters[row["vendor"]]
            config, _, _ = service.build_verification(adapter, body.verification)
            values["verification"] = config.model_dump()
        await store.modify(conn, tenant_id, source_id, values)
        row = await store.get(conn, tenant_id, source_id)
    svc.sources.invalidate(source_id)
    if row is None:
        raise NotFound("no such source")
    return json_response(service.render(row, svc.settings.base_url))


async def delete_source(request: Request) -> Response:
    svc = services(request)
    _, tenant_id = await tenant_principal(request)
    source_id = request.path_params["source_id"]
    async with svc.db.writing() as conn:
        deleted = await store.soft_delete(conn, tenant_id, source_id, svc.clock())
    svc.sources.invalidate(source_id)
    if not deleted:
        raise NotFound("no such source")
    return Response(status_code=204)


routes = [
    Route("/v1/sources", create_source, methods=["POST"]),
    Route("/v1/sources", list_sources, methods=["GET"]),
    Route("/v1/sources/{source_id}", get_source, methods=["GET"]),
    Route("/v1/sources/{source_id}", patch_source, methods=["PATCH"]),
    Route("/v1/sources/{source_id}", delete_source, methods=["DELETE"]),
]
