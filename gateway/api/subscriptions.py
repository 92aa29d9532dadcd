"""``/v1/subscriptions``: customer endpoints. POST answers the ``whsec_`` secret once; ``rotate-secret``
answers the new one once; ``test`` queues a ping; ``recover`` re-queues dead deliveries since a time."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway import outbox, render
from gateway import subscriptions as service
from gateway.api.common import json_response, read_model, services, tenant_principal, time_value
from gateway.errors import found
from gateway.outbound.ssrf import check_target
from gateway.store import subscriptions as store


class SubscriptionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: str = Field(min_length=1, max_length=2000)
    event_types: list[str] = Field(default=["call.*"], max_length=50)
    description: str = Field(default="", max_length=500)
    enabled: bool = True
    rate_limit_per_second: float | None = Field(default=None, gt=0, le=1000)
    max_concurrency: int | None = Field(default=None, ge=1, le=100)


class SubscriptionPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: str | None = Field(default=None, min_length=1, max_length=2000)
    event_types: list[str] | None = Field(default=None, max_length=50)
    description: str | None = Field(default=None, max_length=500)
    enabled: bool | None = None
    rate_limit_per_second: float | None = Field(default=None, gt=0, le=1000)
    max_concurrency: int | None = Field(default=None, ge=1, le=100)


class RecoverIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    since: str = Field(min_length=1, max_length=64)  # a time or an age, read by ``gateway.when``


async def create_subscription(request: Request) -> Response:
    svc = services(request)
    _, tenant_id = await tenant_principal(request)
    body = await read_model(request, SubscriptionIn)
    row, secret = await service.create(
        svc.db,
        svc.targets,
        svc.clock(),
        tenant_id=tenant_id,
        url=body.url,
        event_types=body.event_types,
        description=body.description,
        rate_limit_per_second=body.rate_limit_per_second,
        max_concurrency=body.max_concurrency,
        enabled=body.enabled,
    )
    return json_response({**render.subscription(row), "secret": secret}, 201)


async def list_subscriptions(request: Request) -> Response:
    svc = services(request)
    _, tenant_id = await tenant_principal(request)
    async with svc.db.reading() as conn:
        rows = await store.list_for_tenant(conn, tenant_id)
    return json_response({"data": [render.subscription(r) for r in rows]})


async def get_subscription(request: Request) -> Response:
    svc = services(request)
    _, tenant_id = await tenant_principal(request)
    async with svc.db.reading() as conn:
        row = found(await store.get(conn, tenant_id, request.path_params["subscription_id"]), "subscription")
    return json_response(render.subscription(row))


async def patch_subscription(request: Request) -> Response:
    svc = services(request)
    _, tenant_id = await tenant_principal(request)
    body = await read_model(request, SubscriptionPatch)
    values: dict[str, Any] = {"updated_at": svc.clock()}
    if body.url is not None:
        await check_target(svc.targets, body.url)
        values["url"] = body.url
    if body.event_types is not None:
        values["event_types"] = service.validate_event_types(body.event_types)
    for name in ("description", "rate_limit_per_second", "max_concurrency"):
        if name in body.model_fields_set:
            values[name] = getattr(body, name) if name != "description" else (body.description or "")
    if body.enabled is not None:
        values["enabled"] = body.enabled
        if body.enabled:  # re-enabled by its owner: the failure streak starts over
            values |= {"disabled_reason": None, "failing_since": None}
    row = await service.modify(svc.db, tenant_id, request.path_params["subscription_id"], values)
    svc.wake_worker()
    return json_response(render.subscription(row))


async def delete_subscription(request: Request) -> Response:
    svc = services(request)
    _, tenant_id = await tenant_principal(request)
    now = svc.clock()
    await service.modify(
        svc.db, tenant_id, request.path_params["subscription_id"], {"deleted_at": now, "enabled": False}
    )
    return Response(status_code=204)


async def rotate_secret(request: Request) -> Response:
    svc = services(request)
    _, tenant_id = await tenant_principal(request)
    row, secret = await service.rotate(
        svc.db,
        tenant_id,
        request.path_params["subscription_id"],
        svc.clock(),
        svc.settings.secret_rotation_seconds,
    )
    return json_response({**render.subscription(row), "secret": secret})


async def send_test(request: Request) -> Response:
    svc = services(request)
    _, tenant_id = await tenant_principal(request)
    row = await outbox.send_ping(svc.db, tenant_id, request.path_params["subscription_id"], svc.clock())
    svc.wake_worker()
    return json_response(render.delivery(row), 202)


async def recover(request: Request) -> Response:
    svc = services(request)
    _, tenant_id = await tenant_principal(request)
    body = await read_model(request, RecoverIn)
    since = time_value(body.since, "since", svc.clock())
    count = await outbox.recover(
        svc.db, tenant_id, request.path_params["subscription_id"], since, svc.clock()
    )
    svc.wake_worker()
    return json_response({"requeued": count}, 202)


routes = [
    Route("/v1/subscriptions", create_subscription, methods=["POST"]),
    Route("/v1/subscriptions", list_subscriptions, methods=["GET"]),
    Route("/v1/subscriptions/{subscription_id}", get_subscription, methods=["GET"]),
    Route("/v1/subscriptions/{subscription_id}", patch_subscription, methods=["PATCH"]),
    Route("/v1/subscriptions/{subscription_id}", delete_subscription, methods=["DELETE"]),
    Route("/v1/subscriptions/{subscription_id}/rotate-secret", rotate_secret, methods=["POST"]),
    Route("/v1/subscriptions/{subscription_id}/test", send_test, methods=["POST"]),
    Route("/v1/subscriptions/{subscription_id}/recover", recover, methods=["POST"]),
]
