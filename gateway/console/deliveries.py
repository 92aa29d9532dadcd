"""Deliveries: the log (the filters and cursor of ``GET /v1/deliveries``), one delivery with its payload and
every attempt, and the retry button (``POST /v1/deliveries/{id}/retry``'s ``outbox.retry``)."""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from gateway import outbox, render
from gateway.api.common import next_cursor, query_choice, query_cursor, query_limit, query_time
from gateway.api.deliveries import STATUSES
from gateway.console.web import Console, html, redirect
from gateway.errors import CallgateError, found
from gateway.store import deliveries as store

PAGE = 50
FILTERS = ("status", "subscription_id", "connection_id", "call_id", "since", "until")


async def list_page(request: Request, console: Console) -> Response:
    params = request.query_params
    shown = {name: params.get(name, "") for name in FILTERS}
    error: CallgateError | None = None
    deliveries: list[dict[str, Any]] = []
    older = None
    try:
        limit = query_limit(request, 200, default=PAGE)
        query: dict[str, Any] = {
            "subscription_id": shown["subscription_id"] or None,
            "connection_id": shown["connection_id"] or None,
            "call_id": shown["call_id"] or None,
            "status": query_choice(request, "status", STATUSES),
            "since": query_time(request, "since"),
            "until": query_time(request, "until"),
            "before_id": query_cursor(request),
        }
    except CallgateError as exc:
        error = exc
    else:
        async with console.services.db.reading() as conn:
            rows = await store.list_deliveries(conn, console.tenant_id, **query, limit=limit + 1)
        deliveries = [render.delivery(r) for r in rows[:limit]]
        cursor = next_cursor(request, rows, limit)
        if cursor is not None:
            older = console.url("/console/deliveries", **shown, limit=params.get("limit"), cursor=cursor)
    context = {
        "console": console,
        "section": "deliveries",
        "title": "Deliveries",
        "deliveries": deliveries,
        "filters": shown,
        "statuses": sorted(STATUSES),
        "older": older,
        "error": error.message if error else None,
        "error_field": error.field if error else None,
    }
    return html(request, "deliveries.html", context, error.status_code if error else 200)


def _payload(raw: bytes) -> str:
    try:
        return json.dumps(json.loads(raw), indent=2, ensure_ascii=False)
    except ValueError:
        return bytes(raw).decode("utf-8", errors="replace")


async def detail(request: Request, console: Console) -> Response:
    async with console.services.db.reading() as conn:
        row = found(
            await store.get_delivery(conn, console.tenant_id, request.path_params["delivery_id"]), "delivery"
        )
        attempts = await store.list_attempts(conn, row["id"])
    context = {
        "console": console,
        "section": "deliveries",
        "title": f"Delivery {row['id']}",
        "delivery": render.delivery(row),
        "payload": _payload(row["payload"]),
        "attempts": [render.attempt(a) for a in attempts],
    }
    return html(request, "delivery.html", context)


async def retry(request: Request, console: Console) -> Response:
    svc = console.services
    delivery_id = request.path_params["delivery_id"]
    await outbox.retry(svc.db, console.tenant_id, delivery_id, svc.clock())
    svc.wake_worker()
    return redirect(f"/console/deliveries/{delivery_id}?notice=retried")
