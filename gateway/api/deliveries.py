"""``/v1/deliveries``: the delivery log. Every attempt is kept (time, status, latency, error, the first
8 KiB of the response); a delivery can be sent again by hand."""

from __future__ import annotations

import json

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway import outbox, render
from gateway.api import schemas
from gateway.api.common import (
    json_response,
    next_cursor,
    query_choice,
    query_cursor,
    query_limit,
    query_time,
    services,
    tenant_principal,
)
from gateway.api.declare import CURSOR, SINCE, UNTIL, Answer, Operation, Param, choice, declare, page_limit
from gateway.errors import found
from gateway.store import deliveries as store

STATUSES = {"pending", "succeeded", "dead"}
NOT_FOUND = {404: ["not_found"]}


@declare(
    Operation(
        summary="List deliveries",
        tag="deliveries",
        description="The delivery log, newest first: one delivery per (subscription, event type) of every "
        "stored change, and the CRM syncs.",
        query=(
            Param("subscription_id", "only this subscription's"),
            Param("connection_id", "only this CRM connection's"),
            Param("call_id", "only this call's"),
            choice("status", "`pending` (waiting or being sent), `succeeded`, `dead`", sorted(STATUSES)),
            SINCE,
            UNTIL,
            page_limit(),
            CURSOR,
        ),
        answers=[Answer(200, "a page of deliveries", schemas.DeliveryPage)],
    )
)
async def list_deliveries(request: Request) -> Response:
    svc = services(request)
    _, tenant_id = await tenant_principal(request)
    limit = query_limit(request, 200)
    params = request.query_params
    async with svc.db.reading() as conn:
        rows = await store.list_deliveries(
            conn,
            tenant_id,
            subscription_id=params.get("subscription_id") or None,
            connection_id=params.get("connection_id") or None,
            status=query_choice(request, "status", STATUSES),
            call_id=params.get("call_id") or None,
            since=query_time(request, "since"),
            until=query_time(request, "until"),
            before_id=query_cursor(request),
            limit=limit + 1,
        )
    page = [render.delivery(r) for r in rows[:limit]]
    return json_response({"data": page, "next_cursor": next_cursor(request, rows, limit)})


@declare(
    Operation(
        summary="One delivery and its attempts",
        tag="deliveries",
        answers=[Answer(200, "the delivery, its body and every attempt", schemas.DeliveryDetail)],
        errors=NOT_FOUND,
    )
)
async def get_delivery(request: Request) -> Response:
    svc = services(request)
    _, tenant_id = await tenant_principal(request)
    async with svc.db.reading() as conn:
        row = found(await store.get_delivery(conn, tenant_id, request.path_params["delivery_id"]), "delivery")
        attempts = await store.list_attempts(conn, row["id"])
    shown = render.delivery(row)
    shown["payload"] = json.loads(row["payload"])
    shown["attempts_log"] = [render.attempt(a) for a in attempts]
    return json_response(shown)


@declare(
    Operation(
        summary="Send a delivery again",
        tag="deliveries",
        description="Pending again, due at once, on a fresh schedule, whatever its status was (a succeeded "
        "one is sent again); it goes out while its subscription is enabled.",
        answers=[Answer(202, "the delivery, now pending", schemas.Delivery)],
        errors=NOT_FOUND,
    )
)
async def retry_delivery(request: Request) -> Response:
    svc = services(request)
    _, tenant_id = await tenant_principal(request)
    delivery_id = request.path_params["delivery_id"]
    await outbox.retry(svc.db, tenant_id, delivery_id, svc.clock())
    svc.wake_worker()
    async with svc.db.reading() as conn:
        row = found(await store.get_delivery(conn, tenant_id, delivery_id), "delivery")
    return json_response(render.delivery(row), 202)


routes = [
    Route("/v1/deliveries", list_deliveries, methods=["GET"]),
    Route("/v1/deliveries/{delivery_id}", get_delivery, methods=["GET"]),
    Route("/v1/deliveries/{delivery_id}/retry", retry_delivery, methods=["POST"]),
]
