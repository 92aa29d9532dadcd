"""``/v1/sources``: inbound sources (vendor + verification). POST answers the hook URL, and the secret
once when callgate generated it."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway import render
from gateway import sources as service
from gateway.api import schemas
from gateway.api.common import json_response, read_model, services, tenant_principal
from gateway.api.declare import Answer, DocumentedAs, Operation, declare, one_of
from gateway.pull import source as pull_source
from gateway.pull.source import PullIn
from gateway.signing import VerificationConfig

# Validated by ``gateway.sources`` (which names the failing part, ``verification.hmac.template``), shown in
# the document as what it accepts: one of the four schemes.
Verification = Annotated[dict[str, Any] | None, DocumentedAs(VerificationConfig | None)]


class SourceIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=200)
    vendor: str = Field(min_length=1, max_length=40, json_schema_extra=one_of("vendors"))
    verification: Verification = Field(
        default=None, description="omitted or null: the vendor's default scheme with a generated secret"
    )
    enabled: bool = True
    pull: PullIn | None = Field(default=None, description="the vendor's read API (optional): reconciliation")


class SourcePatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(default=None, min_length=1, max_length=200)
    verification: Verification = Field(default=None, description="the whole new verification")
    enabled: bool | None = None
    pull: PullIn | None = Field(default=None, description="the read API's settings; null removes them")


@declare(
    Operation(
        summary="Create a source",
        tag="sources",
        description="One webhook URL for one vendor. `secret` (and `api_key` for LiveKit) are in the answer "
        "only when callgate generated them, and only here.",
        body=SourceIn,
        body_example={"name": "prod livekit", "vendor": "livekit"},
        answers=[Answer(201, "the source, its hook URL and any generated secret", schemas.SourceCreated)],
    )
)
async def create_source(request: Request) -> Response:
    svc = services(request)
    _, tenant_id = await tenant_principal(request)
    body = await read_model(request, SourceIn)
    pull = None
    if body.pull is not None:
        pull = await pull_source.stored_values(body.vendor, body.pull, svc.targets, svc.crm.vault, None)
    row, generated, api_key = await service.create(
        svc.db,
        svc.adapters,
        svc.clock,
        tenant_id=tenant_id,
        name=body.name,
        vendor=body.vendor,
        verification=body.verification,
        enabled=body.enabled,
        pull=pull,
    )
    shown = render.source(row, svc.settings.base_url)
    if generated is not None:
        shown["secret"] = generated
    if api_key is not None:
        shown["api_key"] = api_key
    return json_response(shown, 201)


@declare(
    Operation(
        summary="List sources",
        tag="sources",
        answers=[Answer(200, "every source of the tenant", schemas.SourceList)],
    )
)
async def list_sources(request: Request) -> Response:
    svc = services(request)
    _, tenant_id = await tenant_principal(request)
    rows = await service.list_for_tenant(svc.db, tenant_id)
    return json_response({"data": [render.source(r, svc.settings.base_url) for r in rows]})


@declare(
    Operation(
        summary="One source",
        tag="sources",
        answers=[Answer(200, "the source", schemas.Source)],
        errors={404: ["not_found"]},
    )
)
async def get_source(request: Request) -> Response:
    svc = services(request)
    _, tenant_id = await tenant_principal(request)
    row = await service.get(svc.db, tenant_id, request.path_params["source_id"])
    return json_response(render.source(row, svc.settings.base_url))


@declare(
    Operation(
        summary="Change a source",
        tag="sources",
        description="Only what is given changes. A process caches a source's settings for "
        "`CALLGATE_SOURCE_CACHE_SECONDS`: this process applies the change at once, others within that time.",
        body=SourcePatch,
        body_example={"enabled": False},
        answers=[Answer(200, "the source", schemas.Source)],
        errors={404: ["not_found"]},
    )
)
async def patch_source(request: Request) -> Response:
    svc = services(request)
    _, tenant_id = await tenant_principal(request)
    body = await read_model(request, SourcePatch)
    pull = None
    if "pull" in body.model_fields_set:
        current = await service.get(svc.db, tenant_id, request.path_params["source_id"])
        pull = pull_source.CLEARED
        if body.pull is not None:
            pull = await pull_source.stored_values(
                current["vendor"], body.pull, svc.targets, svc.crm.vault, current
            )
    row = await service.modify(
        svc.db,
        svc.sources,
        svc.adapters,
        svc.clock(),
        tenant_id=tenant_id,
        source_id=request.path_params["source_id"],
        name=body.name,
        enabled=body.enabled,
        verification=body.verification,
        pull=pull,
    )
    return json_response(render.source(row, svc.settings.base_url))


@declare(
    Operation(
        summary="Retire a source",
        tag="sources",
        description="Its raw events and calls stay; its hook URL answers 404.",
        answers=[Answer(204, "retired")],
        errors={404: ["not_found"]},
    )
)
async def delete_source(request: Request) -> Response:
    svc = services(request)
    _, tenant_id = await tenant_principal(request)
    await service.delete(
        svc.db, svc.sources, svc.clock(), tenant_id=tenant_id, source_id=request.path_params["source_id"]
    )
    return Response(status_code=204)


routes = [
    Route("/v1/sources", create_source, methods=["POST"]),
    Route("/v1/sources", list_sources, methods=["GET"]),
    Route("/v1/sources/{source_id}", get_source, methods=["GET"]),
    Route("/v1/sources/{source_id}", patch_source, methods=["PATCH"]),
    Route("/v1/sources/{source_id}", delete_source, methods=["DELETE"]),
]
