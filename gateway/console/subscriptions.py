"""Subscriptions: list, create (the ``whsec_`` secret shown once), one with its recent deliveries, and its
buttons: send a test (a ping), pause or resume, rotate the secret (the new one shown once), and make a
portal link for the endpoint's owner. Each goes through the function its API route calls."""

from __future__ import annotations

import re
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from gateway import outbox, render
from gateway import subscriptions as service
from gateway.api.portal import issue_link
from gateway.console.web import Console, field, html, read_form, redirect
from gateway.errors import ValidationFailed, found
from gateway.model import EventType, format_ts
from gateway.store import deliveries as delivery_store
from gateway.store import subscriptions as store

URL_MAX = 2000
DESCRIPTION_MAX = 500
LINK_TTLS = {"3600": "1 hour", "86400": "1 day", "604800": "7 days"}  # within the API's 60 s - 7 days
_SEPARATORS = re.compile(r"[\s,]+")


def _context(console: Console, **extra: Any) -> dict[str, Any]:
    return {
        "console": console,
        "section": "subscriptions",
        "title": "Subscriptions",
        "form": {"url": "", "event_types": "call.*", "description": ""},
        "event_types": ["call.*", *sorted(t.value for t in EventType)],
        "error": None,
        **extra,
    }


async def _listed(console: Console) -> list[dict[str, Any]]:
    async with console.services.db.reading() as conn:
        rows = await store.list_for_tenant(conn, console.tenant_id)
    return [render.subscription(r) for r in rows]


async def list_page(request: Request, console: Console) -> Response:
    return html(request, "subscriptions.html", _context(console, subscriptions=await _listed(console)))


async def create(request: Request, console: Console) -> Response:
    svc = console.services
    form = await read_form(request)
    given = {name: field(form, name) for name in ("url", "event_types", "description")}
    try:
        if not given["url"] or len(given["url"]) > URL_MAX:
            raise ValidationFailed("give the endpoint's URL", field="url")
        if len(given["description"]) > DESCRIPTION_MAX:
            raise ValidationFailed(f"at most {DESCRIPTION_MAX} characters", field="description")
        types = [t for t in _SEPARATORS.split(given["event_types"]) if t] or ["call.*"]
        row, secret = await service.create(
            svc.db,
            svc.targets,
            svc.clock(),
            tenant_id=console.tenant_id,
            url=given["url"],
            event_types=types[:50],
            description=given["description"],
        )
    except ValidationFailed as exc:
        context = _context(console, subscriptions=await _listed(console), form=given, error=exc)
        return html(request, "subscriptions.html", context, exc.status_code)
    return _secret_page(request, console, render.subscription(row), secret, created=True)


def _secret_page(
    request: Request, console: Console, subscription: dict[str, Any], secret: str, *, created: bool
) -> Response:
    context = {
        "console": console,
        "section": "subscriptions",
        "title": "Subscription created" if created else "Secret rotated",
        "subscription": subscription,
        "secret": secret,
        "created": created,
        "grace_hours": round(console.services.settings.secret_rotation_seconds / 3600, 1),
    }
    return html(request, "subscription_secret.html", context, 201 if created else 200)


async def _subscription(console: Console, subscription_id: str) -> dict[str, Any]:
    async with console.services.db.reading() as conn:
        row = found(await store.get(conn, console.tenant_id, subscription_id), "subscription")
    return render.subscription(row)


async def detail(request: Request, console: Console) -> Response:
    subscription_id = request.path_params["subscription_id"]
    subscription = await _subscription(console, subscription_id)
    async with console.services.db.reading() as conn:
        rows = await delivery_store.list_deliveries(
            conn, console.tenant_id, subscription_id=subscription_id, limit=20
        )
    context = {
        "console": console,
        "section": "subscriptions",
        "title": f"Subscription {subscription_id}",
        "subscription": subscription,
        "deliveries": [render.delivery(r) for r in rows],
        "link_ttls": LINK_TTLS,
    }
    return html(request, "subscription.html", context)


async def send_test(request: Request, console: Console) -> Response:
    svc = console.services
    subscription_id = request.path_params["subscription_id"]
    await outbox.send_ping(svc.db, console.tenant_id, subscription_id, svc.clock())
    svc.wake_worker()
    return redirect(f"/console/subscriptions/{subscription_id}?notice=ping")


async def set_enabled(request: Request, console: Console) -> Response:
    svc = console.services
    subscription_id = request.path_params["subscription_id"]
    enabled = field(await read_form(request), "enabled") == "true"
    values = {"updated_at": svc.clock(), **service.enabled_change(enabled)}
    await service.modify(svc.db, console.tenant_id, subscription_id, values)
    svc.wake_worker()
    notice = "resumed" if enabled else "paused"
    return redirect(f"/console/subscriptions/{subscription_id}?notice={notice}")


async def rotate(request: Request, console: Console) -> Response:
    svc = console.services
    row, secret = await service.rotate(
        svc.db,
        console.tenant_id,
        request.path_params["subscription_id"],
        svc.clock(),
        svc.settings.secret_rotation_seconds,
    )
    return _secret_page(request, console, render.subscription(row), secret, created=False)


async def portal_link(request: Request, console: Console) -> Response:
    subscription_id = request.path_params["subscription_id"]
    ttl = field(await read_form(request), "ttl_seconds")
    if ttl not in LINK_TTLS:
        raise ValidationFailed("choose how long the link works", field="ttl_seconds")
    url, expires = await issue_link(console.services, console.tenant_id, subscription_id, int(ttl))
    context = {
        "console": console,
        "section": "subscriptions",
        "title": "Portal link",
        "subscription": await _subscription(console, subscription_id),
        "url": url,
        "expires_at": format_ts(expires),
    }
    return html(request, "portal_link.html", context, 201)
