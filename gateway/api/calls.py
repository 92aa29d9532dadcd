"""``/v1/calls``: list with filters and cursor pagination, an export of the same (CSV or NDJSON, streamed),
one call, and its timeline."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import AsyncIterator, Iterable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from gateway import render
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
from gateway.errors import ValidationFailed, found
from gateway.model import Direction, Status
from gateway.phones import to_e164
from gateway.store import calls as store

MAX_LIMIT = 200

FILTERS = (
    choice("status", "the call's status", [s.value for s in Status]),
    choice("direction", "the call's direction", [d.value for d in Direction]),
    choice("vendor", "the vendor", vocabulary="vendors"),
    Param(
        "number",
        "matches either end; any notation `phonenumbers` reads, normalized to E.164 "
        "(`CALLGATE_DEFAULT_REGION` for numbers without `+`)",
        rejects=(422, "validation_error"),
        example="+14155550123",
    ),
    SINCE,
    UNTIL,
)


def call_filters(request: Request) -> dict[str, Any]:
    """The list filters, read and checked once (the list and the export take the same ones)."""
    svc = services(request)
    number = request.query_params.get("number")
    if number:
        e164 = to_e164(number, svc.settings.default_region)
        if e164 is None:
            raise ValidationFailed("number is not a phone number", field="number")
        number = e164
    return {
        "status": query_choice(request, "status", {s.value for s in Status}),
        "direction": query_choice(request, "direction", {d.value for d in Direction}),
        "vendor": query_choice(request, "vendor", svc.adapters.keys()),
        "number": number,
        "since": query_time(request, "since"),
        "until": query_time(request, "until"),
    }


@declare(
    Operation(
        summary="List calls",
        tag="calls",
        description="Newest first; the filters combine (AND).",
        query=(*FILTERS, page_limit(MAX_LIMIT), CURSOR),
        answers=[Answer(200, "a page of calls", schemas.CallPage)],
    )
)
async def list_calls(request: Request) -> Response:
    svc = services(request)
    _, tenant_id = await tenant_principal(request)
    limit = query_limit(request, MAX_LIMIT)
    filters = call_filters(request)
    before_id = query_cursor(request)
    async with svc.db.reading() as conn:
        rows = await store.list_calls(conn, tenant_id, **filters, before_id=before_id, limit=limit + 1)
    page = rows[:limit]
    return json_response(
        {"data": [render.call(r) for r in page], "next_cursor": next_cursor(request, rows, limit)}
    )


@declare(
    Operation(
        summary="One call",
        tag="calls",
        answers=[Answer(200, "the call", schemas.Call)],
        errors={404: ["not_found"]},
    )
)
async def get_call(request: Request) -> Response:
    svc = services(request)
    _, tenant_id = await tenant_principal(request)
    async with svc.db.reading() as conn:
        row = found(await store.get_call(conn, tenant_id, request.path_params["call_id"]), "call")
    return json_response(render.call(row))


@declare(
    Operation(
        summary="A call's timeline",
        tag="calls",
        description="One entry per vendor event applied to the call, oldest first, whether or not it "
        "changed anything (`types` is empty when it did not).",
        answers=[Answer(200, "the timeline", schemas.Timeline)],
        errors={404: ["not_found"]},
    )
)
async def call_events(request: Request) -> Response:
    svc = services(request)
    _, tenant_id = await tenant_principal(request)
    call_id = request.path_params["call_id"]
    async with svc.db.reading() as conn:
        found(await store.get_call(conn, tenant_id, call_id), "call")
        rows = await store.list_call_events(conn, tenant_id, call_id)
    return json_response({"data": [render.call_event(r) for r in rows]})


EXPORT_PAGE = 500  # rows read per query: memory stays constant however many calls match
CSV_COLUMNS = (
    "id", "source_id", "vendor", "vendor_call_id", "status", "direction", "from_number", "to_number",
    "started_at", "answered_at", "ended_at", "duration_seconds", "talk_time_seconds", "end_reason",
    "outcome", "campaign_id", "agent_id", "version", "created_at", "updated_at",
)  # fmt: skip
FORMATS = {"csv": "text/csv; charset=utf-8", "ndjson": "application/x-ndjson"}


@declare(
    Operation(
        summary="Export calls",
        tag="calls",
        description="Every call matching the list's filters (no `limit`), newest first, streamed a page at a "
        "time. `ndjson`: one whole call per line, as `GET /v1/calls/{call_id}` shows it. `csv`: a header "
        "and the scalar fields; a cell that would start a spreadsheet formula is prefixed with `'`.",
        query=(choice("format", "`ndjson` (the default) or `csv`", list(FORMATS), empty="ndjson"), *FILTERS),
        answers=[
            Answer(
                200,
                "an attachment, `calls.ndjson` or `calls.csv`",
                media_type="application/x-ndjson",
                also=("text/csv",),
                headers={"content-disposition": 'attachment; filename="calls.<format>"'},
            )
        ],
    )
)
async def export_calls(request: Request) -> Response:
    """``GET /v1/calls/export?format=csv|ndjson`` with the list's filters, newest first, streamed a page
    at a time. CSV has the scalar fields (``CSV_COLUMNS``); NDJSON has every call whole, one per line."""
    svc = services(request)
    _, tenant_id = await tenant_principal(request)
    fmt = query_choice(request, "format", FORMATS.keys()) or "ndjson"
    filters = call_filters(request)

    async def pages() -> AsyncIterator[list[dict[str, Any]]]:
        before_id: str | None = None
        while True:
            async with svc.db.reading() as conn:  # a connection per page, not for the whole download
                page = await store.list_calls(
                    conn, tenant_id, **filters, before_id=before_id, limit=EXPORT_PAGE
                )
            if page:
                yield [render.call(row) for row in page]
            if len(page) < EXPORT_PAGE:
                return
            before_id = page[-1]["id"]

    async def chunks() -> AsyncIterator[bytes]:
        """One chunk per page of calls."""
        if fmt == "csv":
            yield _csv_lines([CSV_COLUMNS])
            async for page in pages():
                yield _csv_lines([_csv_value(call.get(c)) for c in CSV_COLUMNS] for call in page)
        else:
            async for page in pages():
                yield "".join(_json_line(call) for call in page).encode()

    name = f"calls.{fmt}"
    headers = {"content-disposition": f'attachment; filename="{name}"'}
    return StreamingResponse(chunks(), media_type=FORMATS[fmt], headers=headers)


def _csv_value(value: Any) -> str:
    if value is None:
        return ""
    text = str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@") and not _NUMBER.fullmatch(text) else text


_NUMBER = re.compile(r"[+-]?\d+(\.\d+)?")  # E.164 numbers and negative values are data, not formulas


def _csv_lines(rows: Iterable[Iterable[str]]) -> bytes:
    out = io.StringIO()
    csv.writer(out).writerows(rows)
    return out.getvalue().encode()


def _json_line(call: dict[str, Any]) -> str:
    return json.dumps(call, separators=(",", ":"), ensure_ascii=False, allow_nan=False) + "\n"


routes = [
    Route("/v1/calls", list_calls, methods=["GET"]),
    Route("/v1/calls/export", export_calls, methods=["GET"]),
    Route("/v1/calls/{call_id}", get_call, methods=["GET"]),
    Route("/v1/calls/{call_id}/events", call_events, methods=["GET"]),
]
