"""Portal links (Svix's App Portal idea): a tenant hands the owner of one endpoint a time-limited link that
shows that subscription's deliveries and lets them retry one, and nothing else of the tenant.

``POST /v1/subscriptions/{id}/portal-link`` (a tenant key) answers ``{"url", "expires_at"}``. The
link's token is ``itsdangerous``-signed (``URLSafeTimedSerializer``, its own salt, the gateway's secret
key) and holds the tenant, the subscription and the lifetime; nothing is stored, so a link ends early only
when its subscription is deleted or ``CALLGATE_SECRET_KEY`` changes (which ends every link).
``GET /portal/{token}`` and ``POST /portal/{token}/deliveries/{id}/retry`` take no API key: the token is
the credential. A bad, altered or expired token is 401.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from itsdangerous import BadData, SignatureExpired
from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway import outbox, render
from gateway.api.common import (
    json_response,
    next_cursor,
    query_choice,
    query_cursor,
    query_limit,
    read_model,
    services,
    tenant_principal,
)
from gateway.errors import NotFound, Unauthorized, found
from gateway.model import format_ts
from gateway.store import deliveries as delivery_store
from gateway.store import subscriptions as subscription_store

DEFAULT_TTL = 3600
MAX_TTL = 7 * 86_400
STATUSES = {"pending", "succeeded", "dead"}


class PortalLinkIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    ttl_seconds: int = Field(default=DEFAULT_TTL, ge=60, le=MAX_TTL)


async def create_link(request: Request) -> Response:
    svc = services(request)
    _, tenant_id = await tenant_principal(request)
    body = await read_model(request, PortalLinkIn)
    subscription_id = request.path_params["subscription_id"]
    async with svc.db.reading() as conn:
        found(await subscription_store.get(conn, tenant_id, subscription_id), "subscription")
    now = svc.clock()
    token = svc.portal.dumps({"t": tenant_id, "s": subscription_id, "ttl": body.ttl_seconds})
    expires = now + timedelta(seconds=body.ttl_seconds)
    url = f"{svc.settings.base_url}/portal/{token}"
    return json_response({"url": url, "expires_at": format_ts(expires)}, 201)


def _holder(request: Request) -> tuple[str, str]:
    """(tenant, subscription) the link's token names, or 401."""
    portal = services(request).portal
    token = request.path_params["token"]
    try:
        claims: Any = portal.loads(token, max_age=MAX_TTL)
        ttl = int(claims["ttl"])
        portal.loads(token, max_age=ttl)  # each link's own lifetime
        return str(claims["t"]), str(claims["s"])
    except SignatureExpired:
        raise Unauthorized("this portal link has expired: ask for a new one") from None
    except (BadData, KeyError, TypeError, ValueError):
        raise Unauthorized("this is not a valid portal link") from None


async def show(request: Request) -> Response:
    """The subscription (no secret) and its deliveries, newest first; ``status``, ``limit``, ``cursor``."""
    svc = services(request)
    tenant_id, subscription_id = _holder(request)
    limit = query_limit(request, 200)
    async with svc.db.reading() as conn:
        row = await subscription_store.get(conn, tenant_id, subscription_id)
        if row is None:
            raise Unauthorized("the subscription of this link is gone")
        rows = await delivery_store.list_deliveries(
            conn,
            tenant_id,
            subscription_id=subscription_id,
            status=query_choice(request, "status", STATUSES),
            before_id=query_cursor(request),
            limit=limit + 1,
        )
    return json_response(
        {
            "subscription": render.subscription(row),
            "deliveries": [render.delivery(r) for r in rows[:limit]],
            "next_cursor": next_cursor(request, rows, limit),
        }
    )


async def retry(request: Request) -> Response:
    svc = services(request)
    tenant_id, subscription_id = _holder(request)
    delivery_id = request.path_params["delivery_id"]
    async with svc.db.reading() as conn:
        row = await delivery_store.get_delivery(conn, tenant_id, delivery_id)
    if row is None or row["subscription_id"] != subscription_id:
        raise NotFound("no such delivery")  # another subscription's is simply not found
    await outbox.retry(svc.db, tenant_id, delivery_id, svc.clock())
    svc.wake_worker()
    return json_response({"id": delivery_id, "status": "pending"}, 202)


routes = [
    Route("/v1/subscriptions/{subscription_id}/portal-link", create_link, methods=["POST"]),
    Route("/portal/{token}", show, methods=["GET"]),
    Route("/portal/{token}/deliveries/{delivery_id}/retry", retry, methods=["POST"]),
]
