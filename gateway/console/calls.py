"""Calls: the list (the filters and cursor of ``GET /v1/calls``, live), one call with its timeline, raw
events and deliveries, and the cookie-authenticated stream the list's script listens to."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Mapping, Sequence
from typing import Any

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from gateway import render
from gateway.api.calls import MAX_LIMIT, call_filters
from gateway.api.common import next_cursor, query_cursor, query_limit
from gateway.api.stream import tenant_stream
from gateway.console.web import Console, html, signed_in
from gateway.errors import CallgateError, found
from gateway.model import Direction, EventType, Status
from gateway.store import calls as store
from gateway.store import deliveries as delivery_store
from gateway.store import events as event_store

PAGE = 50
FILTERS = ("status", "direction", "vendor", "number", "since", "until")
RAW_SHOWN = 64 * 1024  # characters of a raw body shown; the rest is cut (the API has it whole)
STREAM_TYPES = sorted(t.value for t in EventType)


async def list_page(request: Request, console: Console) -> Response:
    svc = console.services
    params = request.query_params
    shown = {name: params.get(name, "") for name in FILTERS}
    error: CallgateError | None = None
    calls: list[dict[str, Any]] = []
    older: str | None = None
    try:
        filters = call_filters(request)
        limit = query_limit(request, MAX_LIMIT, default=PAGE)
        before_id = query_cursor(request)
    except CallgateError as exc:
        error = exc
    else:
        async with svc.db.reading() as conn:
            rows = await store.list_calls(
                conn, console.tenant_id, **filters, before_id=before_id, limit=limit + 1
            )
        calls = [render.call(r) for r in rows[:limit]]
        cursor = next_cursor(request, rows, limit)
        if cursor is not None:
            older = console.url("/console/calls", **shown, limit=params.get("limit"), cursor=cursor)
    context = {
        "console": console,
        "section": "calls",
        "title": "Calls",
        "calls": calls,
        "filters": shown,
        "error": error.message if error else None,
        "error_field": error.field if error else None,
        "statuses": [s.value for s in Status],
        "directions": [d.value for d in Direction],
        "vendors": sorted(svc.adapters),
        "older": older,
        "newest": console.url("/console/calls", **shown) if params.get("cursor") else None,
        "here": console.url("/console/calls", **shown),
        # new calls are prepended only where they belong: the first page, unfiltered
        "prepend": not any(shown.values()) and not params.get("cursor"),
        "stream_types": json.dumps(STREAM_TYPES),
    }
    return html(request, "calls.html", context, error.status_code if error else 200)


async def row(request: Request, console: Console) -> Response:
    """One call's row of the list: the live script asks for it when the call changes."""
    async with console.services.db.reading() as conn:
        call = await store.get_call(conn, console.tenant_id, request.path_params["call_id"])
    return html(request, "_call_row.html", {"console": console, "call": render.call(found(call, "call"))})


def raw_text(body: bytes) -> str:
    """A raw body as text to read: pretty JSON when it is JSON, cut at ``RAW_SHOWN`` characters."""
    text = body.decode("utf-8", errors="replace")
    with contextlib.suppress(ValueError):
        text = json.dumps(json.loads(text), indent=2, ensure_ascii=False)
    if len(text) > RAW_SHOWN:
        return text[:RAW_SHOWN] + f"\n… ({len(text) - RAW_SHOWN} more characters)"
    return text


def timeline(events: Sequence[Mapping[Any, Any]], raws: Sequence[Mapping[Any, Any]]) -> list[dict[str, Any]]:
    by_id = {r["id"]: r for r in raws}
    shown = []
    for event in events:
        entry = render.call_event(event)
        raw = by_id.get(event["raw_event_id"])
        entry["raw"] = raw_text(bytes(raw["body"])) if raw is not None else None
        shown.append(entry)
    return shown


async def detail(request: Request, console: Console) -> Response:
    call_id = request.path_params["call_id"]
    async with console.services.db.reading() as conn:
        stored = found(await store.get_call(conn, console.tenant_id, call_id), "call")
        events = await store.list_call_events(conn, console.tenant_id, call_id)
        raws = await event_store.raw_event_bodies(
            conn, console.tenant_id, sorted({e["raw_event_id"] for e in events})
        )
        deliveries = await delivery_store.list_deliveries(conn, console.tenant_id, call_id=call_id, limit=50)
    call = render.call(stored)
    context = {
        "console": console,
        "section": "calls",
        "title": f"Call {call['id']}",
        "call": call,
        "events": timeline(events, raws),
        "deliveries": [render.delivery(d) for d in deliveries],
        "stream_types": json.dumps(STREAM_TYPES),
    }
    return html(request, "call.html", context)


async def stream(request: Request) -> Response:
    """``GET /v1/stream`` for the signed-in tenant, by its cookie. No redirect when signed out: an
    ``EventSource`` would follow it to a page; a 401 makes it stop."""
    console, _ = await signed_in(request)
    if console is None:
        return PlainTextResponse("sign in to the console first", status_code=401)
    return await tenant_stream(request, console.tenant_id)
