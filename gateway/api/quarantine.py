"""``/v1/quarantine``: verified webhooks no adapter could read (or the store refused), kept whole. List them,
look at one (headers and body), and replay one through the current adapters after a fix."""

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
    services,
    tenant_principal,
)
from gateway.errors import found
from gateway.replay import replay_quarantined
from gateway.store import events as store

STATUSES = {"open": False, "resolved": True}


async def list_quarantine(request: Request) -> Response:
    svc = services(request)
    _, tenant_id = await tenant_principal(request)
    limit = query_limit(request, 200)
    status = query_choice(request, "status", STATUSES.keys())
    async with svc.db.reading() as conn:
        rows = await store.list_quarantine(
            conn,
            tenant_id,
            source_id=request.query_params.get("source_id") or None,
            resolved=STATUSES[status] if status else None,
            before_id=query_cursor(request),
            limit=limit + 1,
        )
    page = [render.quarantined(r) for r in rows[:limit]]
    return json_response({"data": page, "next_cursor": next_cursor(request, rows, limit)})


async def get_quarantined(request: Request) -> Response:
    svc = services(request)
    _, tenant_id = await tenant_principal(request)
    async with svc.db.reading() as conn:
        row = await store.get_quarantine(conn, tenant_id, request.path_params["quarantine_id"])
    return json_response(render.quarantined(found(row, "quarantined body"), whole=True))


async def replay(request: Request) -> Response:
    """200 either way: ``recovered`` with the calls it changed, or ``unreadable`` with why (it stays)."""
    svc = services(request)
    _, tenant_id = await tenant_principal(request)
    quarantine_id = request.path_params["quarantine_id"]
    summary, reason = await replay_quarantined(svc.db, svc.reparse, svc.clock, tenant_id, quarantine_id)
    if summary.recovered:
        svc.wake_worker()
        calls = [{"id": c.call_id, "version": c.version, "status": c.status} for c in summary.changes]
        return json_response({"id": quarantine_id, "status": "recovered", "calls": calls})
    if summary.still_unreadable:
        return json_response({"id": quarantine_id, "status": "unreadable", "error": reason})
    return json_response({"id": quarantine_id, "status": "resolved", "calls": []})  # resolved before


routes = [
    Route("/v1/quarantine", list_quarantine, methods=["GET"]),
    Route("/v1/quarantine/{quarantine_id}", get_quarantined, methods=["GET"]),
    Route("/v1/quarantine/{quarantine_id}/replay", replay, methods=["POST"]),
]
