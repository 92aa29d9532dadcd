"""The quarantine: verified webhooks no adapter could read, kept whole. The list, one body with its
headers (credentials masked), and replay through the current adapters (``gateway.replay``, as ``POST
/v1/quarantine/{id}/replay``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from gateway import render
from gateway.api.common import next_cursor, query_choice, query_cursor, query_limit
from gateway.api.quarantine import STATUSES
from gateway.console.calls import raw_text
from gateway.console.web import Console, html
from gateway.errors import CallgateError, found
from gateway.logs import SENSITIVE
from gateway.replay import replay_quarantined
from gateway.store import events as store

PAGE = 50


def masked(headers: Mapping[str, Any]) -> dict[str, str]:
    """Headers to show: a value whose name looks like a credential is cut to its last 4 characters (a
    bearer source's secret rides in ``authorization``)."""
    shown: dict[str, str] = {}
    for name, value in sorted(headers.items()):
        text = str(value)
        if any(word in name.lower() for word in SENSITIVE):
            text = "…" + text[-4:] if len(text) > 8 else "…"
        shown[name] = text
    return shown


async def list_page(request: Request, console: Console) -> Response:
    params = request.query_params
    status_shown = params.get("status", "")
    error: CallgateError | None = None
    entries: list[dict[str, Any]] = []
    older = None
    try:
        limit = query_limit(request, 200, default=PAGE)
        status = query_choice(request, "status", STATUSES.keys())
        before_id = query_cursor(request)
    except CallgateError as exc:
        error = exc
    else:
        async with console.services.db.reading() as conn:
            rows = await store.list_quarantine(
                conn,
                console.tenant_id,
                source_id=params.get("source_id") or None,
                resolved=STATUSES[status] if status else None,
                before_id=before_id,
                limit=limit + 1,
            )
        entries = [render.quarantined(r) for r in rows[:limit]]
        cursor = next_cursor(request, rows, limit)
        if cursor is not None:
            older = console.url("/console/quarantine", status=status_shown, cursor=cursor)
    context = {
        "console": console,
        "section": "quarantine",
        "title": "Quarantine",
        "entries": entries,
        "status": status_shown,
        "statuses": sorted(STATUSES),
        "older": older,
        "error": error.message if error else None,
    }
    return html(request, "quarantine.html", context, error.status_code if error else 200)


async def _entry(console: Console, quarantine_id: str) -> dict[str, Any]:
    async with console.services.db.reading() as conn:
        row = found(await store.get_quarantine(conn, console.tenant_id, quarantine_id), "quarantined body")
    entry = render.quarantined(row)
    entry["headers"] = masked(row["headers"])
    entry["body"] = raw_text(bytes(row["body"]))
    entry["size"] = len(bytes(row["body"]))
    return entry


async def detail(request: Request, console: Console) -> Response:
    entry = await _entry(console, request.path_params["quarantine_id"])
    context = {
        "console": console,
        "section": "quarantine",
        "title": f"Quarantined {entry['id']}",
        "entry": entry,
        "outcome": None,
    }
    return html(request, "quarantined.html", context)


async def replay(request: Request, console: Console) -> Response:
    """The outcome on the entry's page: recovered (with the calls it changed), still unreadable (and
    why), or resolved before. A replay is idempotent, so sending the form again is harmless."""
    svc = console.services
    quarantine_id = request.path_params["quarantine_id"]
    summary, reason = await replay_quarantined(
        svc.db, svc.reparse, svc.clock, console.tenant_id, quarantine_id, svc.recording_links
    )
    if summary.recovered:
        svc.wake_worker()
        outcome = {"status": "recovered", "calls": [c.call_id for c in summary.changes], "error": None}
    elif summary.still_unreadable:
        outcome = {"status": "unreadable", "calls": [], "error": reason}
    else:
        outcome = {"status": "resolved", "calls": [], "error": None}
    context = {
        "console": console,
        "section": "quarantine",
        "title": f"Quarantined {quarantine_id}",
        "entry": await _entry(console, quarantine_id),
        "outcome": outcome,
    }
    return html(request, "quarantined.html", context)
