"""``/v1/deliveries``: the delivery log. Every attempt is kept (time, status, latency, error, the first
8 KiB of the response); a delivery can be sent again by hand."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway import subscriptions as service
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
from gateway.errors import NotFound
from gateway.render import ts
from gateway.store import outbox as store

STATUSES = {"pending", "succeeded", "dead"}


def render_delivery(row: Mapping[Any, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "subscription_id": row["subscription_id"],
        "call_id": row["call_id"],
        "event_type": row["event_type"],
        "call_version": row["call_version"],
        "status": row["status"],
        "attempts": row["attempts"],
        "next_attempt_at": ts(row["next_attempt_at"]) if row["status"] == "pending" else None,
        "last_status_code": row["last_status_code"],
        "last_error": row["last_error"],
        "created_at": ts(row["created_at"]),
        "completed_at": ts(row["completed_at"]),
    }


def render_attempt(row: Mapping[Any, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "attempted_at": ts(row["attempted_at"]),
        "status_code": row["status_code"],
        "latency_ms": row["latency_ms"],
        "error": row["error"],
        "response_body": row["response_body"],
        "next_attempt_at": ts(row["next_attempt_at"]),
    }


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
            status=query_choice(request, "status", STATUSES),
            call_id=params.get("call_id") or None,
            since=query_time(request, "since"),
            until=query_time(request, "until"),
            before_id=query_cursor(request),
            limit=limit + 1,
        )
    page = [render_delivery(r) for r in rows[:limit]]
    return json_response({"data": page, "next_cursor": next_cursor(request, rows, limit)})


async def get_delivery(request: Request) -> Response:
    svc = services(request)
    _, tenant_id = await tenant_principal(request)
    async with svc.db.reading() as conn:
        row = await store.get_delivery(conn, tenant_id, request.path_params["delivery_id"])
        if row is None:
            raise NotFound("no such delivery")
        attempts = await store.list_attempts(conn, row["id"])
    shown = render_delivery(row)
    shown["payload"] = json.loads(row["payload"])
    shown["attempts_log"] = [render_attempt(a) for a in attempts]
    return json_response(shown)


async def retry_delivery(request: Request) -> Response:
    svc = services(request)
    _, tenant_id = await tenant_principal(request)
    delivery_id = request.path_params["delivery_id"]
    await service.retry_delivery(svc.db, tenant_id, delivery_id, svc.clock())
    svc.wake_worker()
    async with svc.db.reading() as conn:
        row = await store.get_delivery(conn, tenant_id, delivery_id)
    if row is None:
        raise NotFound("no such delivery")
    return json_response(render_delivery(row), 202)


routes = [
    Route("/v1/deliveries", list_deliveries, methods=["GET"]),
    Route("/v1/deliveries/{delivery_id}", get_delivery, methods=["GET"]),
    Route("/v1/deliveries/{delivery_id}/retry", retry_delivery, methods=["POST"]),
]
