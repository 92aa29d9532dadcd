"""``/v1/calls``: list with filters and cursor pagination, one call, and its timeline."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway import render
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
from gateway.errors import ValidationFailed, found
from gateway.model import Direction, Status
from gateway.phones import to_e164
from gateway.store import calls as store

MAX_LIMIT = 200


async def list_calls(request: Request) -> Response:
    svc = services(request)
    _, tenant_id = await tenant_principal(request)
    params = request.query_params
    limit = query_limit(request, MAX_LIMIT)
    number = params.get("number")
    if number:
        e164 = to_e164(number, svc.settings.default_region)
        if e164 is None:
            raise ValidationFailed("number is not a phone number", field="number")
        number = e164
    before_id = query_cursor(request)
    async with svc.db.reading() as conn:
        rows = await store.list_calls(
            conn,
            tenant_id,
            status=query_choice(request, "status", {s.value for s in Status}),
            direction=query_choice(request, "direction", {d.value for d in Direction}),
            vendor=query_choice(request, "vendor", svc.adapters.keys()),
            number=number,
            since=query_time(request, "since"),
            until=query_time(request, "until"),
            before_id=before_id,
            limit=limit + 1,
        )
    page = rows[:limit]
    return json_response(
        {"data": [render.call(r) for r in page], "next_cursor": next_cursor(request, rows, limit)}
    )


async def get_call(request: Request) -> Response:
    svc = services(request)
    _, tenant_id = await tenant_principal(request)
    async with svc.db.reading() as conn:
        row = found(await store.get_call(conn, tenant_id, request.path_params["call_id"]), "call")
    return json_response(render.call(row))


async def call_events(request: Request) -> Response:
    svc = services(request)
    _, tenant_id = await tenant_principal(request)
    call_id = request.path_params["call_id"]
    async with svc.db.reading() as conn:
        found(await store.get_call(conn, tenant_id, call_id), "call")
        rows = await store.list_call_events(conn, tenant_id, call_id)
    return json_response({"data": [render.call_event(r) for r in rows]})


routes = [
    Route("/v1/calls", list_calls, methods=["GET"]),
    Route("/v1/calls/{call_id}", get_call, methods=["GET"]),
    Route("/v1/calls/{call_id}/events", call_events, methods=["GET"]),
]
