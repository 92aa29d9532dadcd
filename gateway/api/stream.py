"""``GET /v1/stream``: the tenant's call changes as server-sent events, live.

Each message is one ``call.*`` type of one change, in the envelope deliveries use (``type``, ``timestamp``,
``data: {call, version, previous_status, changed}``), with ``id: <timeline row>:<n>``. A client that
reconnects with ``Last-Event-ID`` (the header, or ``?last_event_id=`` where it cannot set headers) resumes
right after that message, from the stored timeline, so nothing is missed while it was away; without one, the
stream starts at now. ``call`` is the call as stored when the message is sent (it may be a later version
than ``version``, the change's). A comment line every ``HEARTBEAT`` seconds keeps proxies from cutting an
idle stream; the edge closes streams when the server shuts down (``gateway.edge``), and clients reconnect.

Changes are found by polling the timeline (``POLL`` seconds, at once when this process stored one), so a
stream sees the changes of every process sharing the database.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import AsyncIterator
from typing import Any

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from gateway import render
from gateway.api.common import services, tenant_principal
from gateway.api.declare import Answer, Operation, Param, declare
from gateway.errors import BadRequest
from gateway.model import format_ts
from gateway.store import calls as store

POLL = 1.0
HEARTBEAT = 15.0
PAGE = 200
_EVENT_ID = re.compile(r"(cev_[0-9A-Z]{1,40})(?::(\d{1,3}))?")


def resume_point(request: Request) -> tuple[str, int] | None:
    """(timeline row, index of the last type sent in it) from ``Last-Event-ID``, or None to start now."""
    raw = request.headers.get("last-event-id") or request.query_params.get("last_event_id")
    if not raw:
        return None
    match = _EVENT_ID.fullmatch(raw.strip())
    if match is None:
        raise BadRequest("Last-Event-ID is not an id this stream sent", field="last_event_id")
    return match.group(1), int(match.group(2) or 999)


def message(event_id: str, event_type: str, data: dict[str, Any]) -> bytes:
    body = json.dumps(data, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    return f"id: {event_id}\nevent: {event_type}\ndata: {body}\n\n".encode()


@declare(
    Operation(
        summary="Live call changes (server-sent events)",
        tag="stream",
        description="Each message is one `call.*` type of one change, in the delivery envelope, with "
        "`id: <timeline entry>:<n>`. Without `Last-Event-ID` the stream starts now; with it, it resumes "
        "right after that message from the stored timeline. `: keep-alive` every 15 s; `retry: 2000`.",
        query=(
            Param(
                "last_event_id",
                "the last message's `id`, for clients that cannot send the `Last-Event-ID` header",
                rejects=(400, "bad_request"),
            ),
            Param(
                "Last-Event-ID",
                "the last message's `id`: resume right after it",
                location="header",
                rejects=(400, "bad_request"),
            ),
        ),
        answers=[Answer(200, "an endless event stream", media_type="text/event-stream")],
    )
)
async def stream(request: Request) -> Response:
    _, tenant_id = await tenant_principal(request)
    return await tenant_stream(request, tenant_id)


async def tenant_stream(request: Request, tenant_id: str) -> Response:
    """The stream of one tenant's changes, for a caller already authenticated as that tenant: ``/v1/stream``
    (an API key) and the console's ``/console/stream`` (its session cookie: ``EventSource`` cannot send a
    header) share it."""
    svc = services(request)
    resume = resume_point(request)
    if resume is None:  # from now: after the newest change at connect time (or from the first, if none)
        async with svc.db.reading() as conn:
            resume = (await store.latest_change_id(conn, tenant_id) or "", 999)
    resume_row, sent_in_row = resume

    async def events() -> AsyncIterator[bytes]:
        cursor = resume_row or None
        yield b"retry: 2000\n\n"
        quiet_since = time.monotonic()
        while True:
            async with svc.db.reading() as conn:
                rows = await store.changes_after(conn, tenant_id, cursor, PAGE)
                calls = await store.calls_by_ids(conn, tenant_id, sorted({r["call_id"] for r in rows}))
            chunks = [
                message(f"{row['id']}:{index}", event_type, envelope(row, event_type, calls[row["call_id"]]))
                for row in rows
                if row["call_id"] in calls
                for index, event_type in enumerate(row["types"])
                if not (row["id"] == resume_row and index <= sent_in_row)
            ]
            cursor = rows[-1]["id"] if rows else cursor
            if chunks:
                quiet_since = time.monotonic()
                yield b"".join(chunks)
            if len(rows) == PAGE:
                continue  # more waiting: no pause
            if time.monotonic() - quiet_since >= HEARTBEAT:
                quiet_since = time.monotonic()
                yield b": keep-alive\n\n"
            await svc.changes.wait(POLL)

    headers = {"cache-control": "no-cache", "x-accel-buffering": "no"}
    return StreamingResponse(events(), media_type="text/event-stream", headers=headers)


def envelope(row: Any, event_type: str, call: Any) -> dict[str, Any]:
    """The delivery envelope of one type of one change, with the call as stored now."""
    data = {
        "call": render.call(call),
        "version": row["version"],
        "previous_status": row["previous_status"],
        "changed": row["changed"],
    }
    return {"type": event_type, "timestamp": format_ts(row["created_at"]), "data": data}


routes = [Route("/v1/stream", stream, methods=["GET"])]
