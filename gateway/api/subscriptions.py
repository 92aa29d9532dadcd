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
from gateway.api import schemas
from gateway.api.common import json_response, read_model, services, tenant_principal, time_value
from gateway.api.declare import Answer, Operation, declare
from gateway.errors import found
from gateway.outbound.ssrf import check_target
from gateway.store import subscriptions as store

# What ``service.validate_event_types`` accepts, for the document: each a type, ``call.*`` or ``*``.
EVENT_TYPES_SHOWN: dict[str, Any] = {
    "items": {"type": "string", "enum": ["*", "call.*", *sorted(outbox.EVENT_TYPES)]},
    "minItems": 1,
}
URL_SHOWN = (
    "`http` or `https`, no `user:password@`; resolved and checked against the SSRF guard now (a private, "
    "loopback or unresolvable host is 422 `url refused: …`) and again before every attempt"
)


class SubscriptionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: str = Field(min_length=1, max_length=2000, description=URL_SHOWN)
    event_types: list[str] = Field(default=["call.*"], max_length=50, json_schema_extra=EVENT_TYPES_SHOWN)
    description: str = Field(default="", max_length=500)
    enabled: bool = True
    rate_limit_per_second: float | None = Field(default=None, gt=0, le=1000)
    max_concurrency: int | None = Field(default=None, ge=1, le=100)


class SubscriptionPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: str | None = Field(default=None, min_length=1, max_length=2000, description=URL_SHOWN)
    event_types: list[str] | None = Field(default=None, max_length=50, json_schema_extra=EVENT_TYPES_SHOWN)
    description: str | None = Field(default=None, max_length=500)
    enabled: bool | None = None
    rate_limit_per_second: float | None = Field(default=None, gt=0, le=1000)
    max_concurrency: int | None = Field(default=None, ge=1, le=100)


class RecoverIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    since: str = Field(
        min_length=1, max_length=64, description="a time or an age (`6h`), as the list filters take"
    )  # read by ``gateway.when``


@declare(
    Operation(
        summary="Create a subscription",
        tag="subscriptions",
        description="A customer endpoint that receives every matching call change as a signed Standard "
        "Webhooks delivery. The answer carries its `whsec_` secret: the only time it is shown.",
        body=SubscriptionIn,
        body_example={"url": "https://crm-bridge.example.com/hook", "event_types": ["call.completed"]},
        answers=[Answer(201, "the subscription and its secret", schemas.SubscriptionWithSecret)],
    )
)
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


@declare(
    Operation(
        summary="List subscriptions",
        tag="subscriptions",
        answers=[Answer(200, "every subscription of the tenant", schemas.SubscriptionList)],
    )
)
async def list_subscriptions(request: Request) -> Response:
    svc = services(request)
    _, tenant_id = await tenant_principal(request)
    async with svc.db.reading() as conn:
        rows = await store.list_for_tenant(conn, tenant_id)
    return json_response({"data": [render.subscription(r) for r in rows]})


@declare(
    Operation(
        summary="One subscription",
        tag="subscriptions",
        answers=[Answer(200, "the subscription", schemas.Subscription)],
        errors={404: ["not_found"]},
    )
)
async def get_subscription(request: Request) -> Response:
    svc = services(request)
    _, tenant_id = await tenant_principal(request)
    async with svc.db.reading() as conn:
        row = found(await store.get(conn, tenant_id, request.path_params["subscription_id"]), "subscription")
    return json_response(render.subscription(row))


@declare(
    Operation(
        summary="Change a subscription",
        tag="subscriptions",
        description="Only what is given changes (`null` removes a limit); a new `url` is checked again. "
        '`{"enabled": true}` also clears `disabled_reason` and `failing_since`.',
        body=SubscriptionPatch,
        body_example={"enabled": True},
        answers=[Answer(200, "the subscription", schemas.Subscription)],
        errors={404: ["not_found"]},
    )
)
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
        values |= service.enabled_change(body.enabled)
    row = await service.modify(svc.db, tenant_id, request.path_params["subscription_id"], values)
    svc.wake_worker()
    return json_response(render.subscription(row))


@declare(
    Operation(
        summary="Delete a subscription",
        tag="subscriptions",
        description="It gets no new deliveries and its pending ones are not sent; its delivery log stays.",
        answers=[Answer(204, "deleted")],
        errors={404: ["not_found"]},
    )
)
async def delete_subscription(request: Request) -> Response:
    svc = services(request)
    _, tenant_id = await tenant_principal(request)
    now = svc.clock()
    await service.modify(
        svc.db, tenant_id, request.path_params["subscription_id"], {"deleted_at": now, "enabled": False}
    )
    return Response(status_code=204)


@declare(
    Operation(
        summary="Rotate the signing secret",
        tag="subscriptions",
        description="A new secret, shown once. The previous one keeps signing for "
        "`CALLGATE_SECRET_ROTATION_SECONDS` (24 h): until then every delivery carries both signatures.",
        answers=[Answer(200, "the subscription and its new secret", schemas.SubscriptionWithSecret)],
        errors={404: ["not_found"]},
    )
)
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


@declare(
    Operation(
        summary="Send a test ping",
        tag="subscriptions",
        description="Queues a `ping` delivery, whatever the `event_types`; sent, retried and logged like any "
        "other.",
        answers=[Answer(202, "the queued delivery", schemas.Delivery)],
        errors={404: ["not_found"]},
    )
)
async def send_test(request: Request) -> Response:
    svc = services(request)
    _, tenant_id = await tenant_principal(request)
    row = await outbox.send_ping(svc.db, tenant_id, request.path_params["subscription_id"], svc.clock())
    svc.wake_worker()
    return json_response(render.delivery(row), 202)


@declare(
    Operation(
        summary="Re-queue dead deliveries",
        tag="subscriptions",
        description="The subscription's `dead` deliveries created at or after `since` are pending again, "
        "due now, on a fresh retry schedule.",
        body=RecoverIn,
        body_example={"since": "6h"},
        answers=[Answer(202, "how many were re-queued", schemas.Requeued)],
        errors={404: ["not_found"]},
    )
)
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
