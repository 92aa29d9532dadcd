"""``/v1/quarantine``: verified webhooks no adapter could read (or the store refused), kept whole. List them,
look at one (headers and body), and replay one through the current adapters after a fix."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway import render
from gateway.api import schemas
from gateway.api.common import (
    json_response,
    next_cursor,
    query_choice,
    query_cursor,
    query_limit,
    services,
    tenant_principal,
)
from gateway.api.declare import CURSOR, Answer, Operation, Param, choice, declare, page_limit
from gateway.errors import found
from gateway.replay import replay_quarantined
from gateway.store import events as store

STATUSES = {"open": False, "resolved": True}


@declare(
    Operation(
        summary="List quarantined webhooks",
        tag="quarantine",
        description="Verified webhooks the adapter could not read (answered 400) or the store refused, "
        "newest first.",
        query=(
            choice("status", "`open` or `resolved`", sorted(STATUSES)),
            Param("source_id", "only this source's"),
            page_limit(),
            CURSOR,
        ),
        answers=[Answer(200, "a page of quarantined bodies (without the bodies)", schemas.QuarantinePage)],
    )
)
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


@declare(
    Operation(
        summary="One quarantined webhook, whole",
        tag="quarantine",
        answers=[Answer(200, "the entry with its headers and body", schemas.QuarantinedWhole)],
        errors={404: ["not_found"]},
    )
)
async def get_quarantined(request: Request) -> Response:
    svc = services(request)
    _, tenant_id = await tenant_principal(request)
    async with svc.db.reading() as conn:
        row = await store.get_quarantine(conn, tenant_id, request.path_params["quarantine_id"])
    return json_response(render.quarantined(found(row, "quarantined body"), whole=True))


@declare(
    Operation(
        summary="Replay a quarantined webhook",
        tag="quarantine",
        description="Through the current adapter, like a new webhook (deduplicated as usual): the entry is "
        "resolved, or it stays open with why.",
        answers=[Answer(200, "recovered, still unreadable, or resolved before", schemas.Replayed)],
        errors={404: ["not_found"]},
    )
)
async def replay(request: Request) -> Response:
    """200 either way: ``recovered`` with the calls it changed, or ``unreadable`` with why (it stays)."""
    svc = services(request)
    _, tenant_id = await tenant_principal(request)
    quarantine_id = request.path_params["quarantine_id"]
    summary, reason = await replay_quarantined(
        svc.db, svc.reparse, svc.clock, tenant_id, quarantine_id, svc.recording_links
    )
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
