"""CRM connections: the list, one with the calls it holds records of, creating one (credentials as a small
JSON object, write-only like the API's), and the test button (one harmless authenticated read)."""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from gateway import connections as service
from gateway import render
from gateway.console.web import Console, field, html, read_form
from gateway.errors import ValidationFailed

NAME_MAX = 200
URL_MAX = 2000
RECORDS = 50


def _kinds(console: Console) -> list[dict[str, Any]]:
    """Each kind with its credential shapes and default base URL, for the form's hints."""
    return [
        {
            "kind": spec.kind,
            "base_url": spec.default_base_url,
            "credentials": [sorted(shape) for shape in spec.credential_keys],
        }
        for spec in sorted(console.services.crm.specs.values(), key=lambda s: s.kind)
    ]


def _context(console: Console, **extra: Any) -> dict[str, Any]:
    return {
        "console": console,
        "section": "connections",
        "title": "CRM connections",
        "kinds": _kinds(console),
        "form": {"kind": "", "name": "", "base_url": ""},
        "error": None,
        **extra,
    }


async def _listed(console: Console) -> list[dict[str, Any]]:
    rows = await service.list_for_tenant(console.services.db, console.tenant_id, before_id=None, limit=200)
    return [render.connection(r) for r in rows]


async def list_page(request: Request, console: Console) -> Response:
    return html(request, "connections.html", _context(console, connections=await _listed(console)))


def _credentials(raw: str) -> dict[str, Any]:
    try:
        value = json.loads(raw)
    except ValueError:
        raise ValidationFailed("credentials must be a JSON object", field="credentials") from None
    if not isinstance(value, dict):
        raise ValidationFailed("credentials must be a JSON object", field="credentials")
    return value


async def create(request: Request, console: Console) -> Response:
    svc = console.services
    form = await read_form(request)
    given = {name: field(form, name) for name in ("kind", "name", "base_url")}
    try:
        if len(given["name"]) > NAME_MAX or len(given["base_url"]) > URL_MAX:
            raise ValidationFailed("name or base URL too long", field="name")
        row = await service.create(
            svc.db,
            svc.crm.specs,
            svc.crm.vault,
            svc.targets,
            svc.clock(),
            tenant_id=console.tenant_id,
            kind=given["kind"],
            name=given["name"] or None,
            base_url=given["base_url"] or None,
            credentials=_credentials(field(form, "credentials")),
        )
    except ValidationFailed as exc:  # the credentials are not sent back into the form
        context = _context(console, connections=await _listed(console), form=given, error=exc)
        return html(request, "connections.html", context, exc.status_code)
    svc.wake_worker()
    return await _detail(request, console, row["id"], created=True)


async def _detail(
    request: Request,
    console: Console,
    connection_id: str,
    *,
    created: bool = False,
    test: dict[str, Any] | None = None,
) -> Response:
    db = console.services.db
    row, synced = await service.get(db, console.tenant_id, connection_id)
    records = await service.records(db, console.tenant_id, connection_id, before_call_id=None, limit=RECORDS)
    context = {
        "console": console,
        "section": "connections",
        "title": f"Connection {connection_id}",
        "connection": render.connection(row, synced),
        "records": [render.crm_record(r) for r in records],
        "created": created,
        "test": test,
    }
    return html(request, "connection.html", context, 201 if created else 200)


async def detail(request: Request, console: Console) -> Response:
    return await _detail(request, console, request.path_params["connection_id"])


async def test(request: Request, console: Console) -> Response:
    svc = console.services
    connection_id = request.path_params["connection_id"]
    result = await service.test(svc.db, svc.crm, console.tenant_id, connection_id)
    return await _detail(request, console, connection_id, test=result)
