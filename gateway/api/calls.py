"""``/v1/calls``: list with filters and cursor pagination, one call, and its timeline."""

from __future__ import annotations

from datetime import UTC, datetime

from itsdangerous import BadData
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway import render
from gateway.api.common import json_response, services, tenant_principal
from gateway.errors import BadRequest, NotFound, ValidationFailed
from gateway.model import Direction, Status
from gateway.phones import to_e164
from gateway.store import calls as store

MAX_LIMIT = 200


def _time(request: Request, name: str) -> datetime | None:
    raw = request.query_params.get(name)
    if not raw:
        return None
    try:
        value = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise ValidationFailed(f"{name} must be an ISO-8601 time", field=name) from None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def _choice(request: Request, name: str, allowed: set[str]) -> str | None:
    value = request.query_params.get(name)
    if value and value not in allowed:
        raise ValidationFailed(f"{name} must be one of {', '.join(sorted(allowed))}", field=name)
    return value or None


async def list_calls(request: Request) -> Response:
    svc = services(request)
    _, tenant_id = await tenant_principal(request)
    params = request.query_params
    raw_limit = params.get("limit", "50")
    if not raw_limit.isdigit() or not 1 <= int(raw_limit) <= MAX_LIMIT:
        raise ValidationFailed(f"limit must be 1-{MAX_LIMIT}", field="limit")
    limit = int(raw_limit)
    number = params.get("number")
    if number:
        e164 = to_e164(number, svc.settings.default_region)
        if e164 is None:
            raise ValidationFailed("number is not a phone number", field="number")
        number = e164
    before_id = None
    if params.get("cursor"):
        try:
            before_id = str(svc.cursors.loads(params["cursor"])["before"])
        except (BadData, KeyError, TypeError):
            raise BadRequest("cursor is not valid", field="cursor") from None
    async with svc.db.reading() as conn:
        rows = await store.list_calls(
            conn,
            tenant_id,
            status=_choice(request, "status", {s.value for s in Status}),
            direction=_choice(request, "direction", {d.value for d in Direction}),
            vendor=params.get("vendor") or None,
            number=number,
            since=_time(request, "since"),
            until=_time(request, "until"),
            before_id=before_id,
            limit=limit + 1,
        )
    page = rows[:limit]
    next_cursor = svc.cursors.dumps({"before": page[-1]["id"]}) if len(rows) > limit else None
    return json_response({"data": [render.call(r) for r in page], "next_cursor": next_cursor})


async def get_call(request: Request) -> Response:
    svc = services(request)
    _, tenant_id = await tenant_principal(request)
    async with svc.db.reading() as conn:
        row = await store.get_call(conn, tenant_id, request.path_params["call_id"])
    if row is None:
        raise NotFound("no such call")
    return json_response(render.call(row))


async def call_events(request: Request) -> Response:
    svc = services(request)
    _, tenant_id = await tenant_principal(request)
    call_id = request.path_params["call_id"]
    async with svc.db.reading() as conn:
        if await store.get_call(conn, tenant_id, call_id) is None:
            raise NotFound("no such call")
        rows = await store.list_call_events(conn, tenant_id, call_id)
    return json_response({"data": [render.call_event(r) for r in rows]})


routes = [
    Route("/v1/calls", list_calls, methods=["GET"]),
    Route("/v1/calls/{call_id}", get_call, methods=["GET"]),
    Route("/v1/calls/{call_id}/events", call_events, methods=["GET"]),
]
