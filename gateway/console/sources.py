"""Sources: the list with each hook URL, and creating one with the vendor's default verification. The
generated secret (and LiveKit's API key) is on the answer to the create form, once, as ``POST
/v1/sources`` answers it; it is never shown again."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from gateway import render
from gateway import sources as service
from gateway.console.web import Console, field, html, read_form
from gateway.errors import ValidationFailed

NAME_MAX = 200


def _context(console: Console, **extra: Any) -> dict[str, Any]:
    return {
        "console": console,
        "section": "sources",
        "title": "Sources",
        "vendors": sorted(console.services.adapters),
        "form": {"name": "", "vendor": ""},
        "error": None,
        **extra,
    }


async def _listed(console: Console) -> list[dict[str, Any]]:
    svc = console.services
    rows = await service.list_for_tenant(svc.db, console.tenant_id)
    return [render.source(r, svc.settings.base_url) for r in rows]


async def list_page(request: Request, console: Console) -> Response:
    return html(request, "sources.html", _context(console, sources=await _listed(console)))


async def create(request: Request, console: Console) -> Response:
    svc = console.services
    form = await read_form(request)
    name, vendor = field(form, "name"), field(form, "vendor")
    try:
        if not name or len(name) > NAME_MAX:
            raise ValidationFailed(f"give the source a name (at most {NAME_MAX} characters)", field="name")
        row, secret, api_key = await service.create(
            svc.db,
            svc.adapters,
            svc.clock,
            tenant_id=console.tenant_id,
            name=name,
            vendor=vendor,
            verification=None,
        )
    except ValidationFailed as exc:
        context = _context(
            console, sources=await _listed(console), form={"name": name, "vendor": vendor}, error=exc
        )
        return html(request, "sources.html", context, exc.status_code)
    context = {
        "console": console,
        "section": "sources",
        "title": "Source created",
        "source": render.source(row, svc.settings.base_url),
        "secret": secret,
        "api_key": api_key,
    }
    return html(request, "source_created.html", context, 201)
