"""Operator and tenant administration: ``POST /v1/tenants`` and ``POST /v1/api-keys``."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway import auth
from gateway.api import schemas
from gateway.api.common import any_principal, json_response, read_model, services
from gateway.api.declare import Answer, Key, Operation, declare
from gateway.errors import Forbidden


class TenantIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=200)


class ApiKeyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(default="api key", min_length=1, max_length=200)
    tenant_id: str | None = Field(default=None, description="an operator key: the tenant to issue it for")
    operator: bool = Field(default=False, description="an operator key: issue another operator key")


@declare(
    Operation(
        summary="Create a tenant",
        tag="administration",
        description="With its first API key, shown only here. Operator keys only.",
        key=Key.OPERATOR,
        body=TenantIn,
        body_example={"name": "acme"},
        answers=[Answer(201, "the tenant and its key", schemas.TenantCreated)],
    )
)
async def create_tenant(request: Request) -> Response:
    svc = services(request)
    principal = await any_principal(request)
    if not principal.is_operator:
        raise Forbidden("only an operator key can create tenants")
    body = await read_model(request, TenantIn)
    tenant_id, key = await auth.create_tenant(svc.db, body.name, svc.clock)
    return json_response({"tenant_id": tenant_id, "name": body.name, "api_key": key.api_key}, 201)


@declare(
    Operation(
        summary="Create an API key",
        tag="administration",
        description="An operator key gives `tenant_id` (a key for that tenant) or `operator: true` (another "
        "operator key); a tenant key only creates keys for its own tenant. The key is shown only here.",
        key=Key.EITHER,
        body=ApiKeyIn,
        body_example={"name": "ci"},
        answers=[Answer(201, "the key", schemas.ApiKeyCreated)],
        errors={403: ["forbidden"], 404: ["not_found"]},
    )
)
async def create_api_key(request: Request) -> Response:
    """An operator may issue keys for any tenant (or another operator key); a tenant only for itself."""
    svc = services(request)
    principal = await any_principal(request)
    body = await read_model(request, ApiKeyIn)
    if principal.is_operator:
        tenant_id = None if body.operator else body.tenant_id
        if tenant_id is None and not body.operator:
            raise Forbidden("give tenant_id, or operator: true for another operator key")
    else:
        if body.operator or (body.tenant_id not in (None, principal.tenant_id)):
            raise Forbidden("a tenant key can only create keys for its own tenant")
        tenant_id = principal.tenant_id
    key = await auth.create_api_key(svc.db, tenant_id, body.name, svc.clock)
    return json_response(
        {
            "id": key.key_id,
            "tenant_id": key.tenant_id,
            "operator": key.tenant_id is None,
            "api_key": key.api_key,
        },
        201,
    )


routes = [
    Route("/v1/tenants", create_tenant, methods=["POST"]),
    Route("/v1/api-keys", create_api_key, methods=["POST"]),
]
