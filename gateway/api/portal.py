"""Portal links (Svix's App Portal idea): a tenant hands the owner of one endpoint a time-limited link that
shows that subscription's deliveries and lets them retry one, and nothing else of the tenant.

``POST /v1/subscriptions/{id}/portal-link`` (a tenant key) answers ``{"url", "expires_at"}``. The
link's token is ``itsdangerous``-signed (``URLSafeTimedSerializer``, its own salt, the gateway's secret
key) and holds the tenant, the subscription and the lifetime; nothing is stored, so a link ends early only
when its subscription is deleted or ``CALLGATE_SECRET_KEY`` changes (which ends every link).
``GET /portal/{token}`` and ``POST /portal/{token}/deliveries/{id}/retry`` take no API key: the token is
the credential. A bad, altered or expired token is 401.

A browser (a request that prefers ``text/html``) gets the same as pages (``gateway.console.portal``): the
subscription and its deliveries with a retry button, a 401 page for a bad or expired link, and a retry
that goes back to the page. Those forms need no CSRF token of their own: they post to the link itself, so
another site would need the token to forge one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from itsdangerous import BadData, SignatureExpired
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.engine import RowMapping
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway import outbox, render
from gateway.api import schemas
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
from gateway.api.declare import CURSOR, Answer, Key, Operation, choice, declare, page_limit
from gateway.console import portal as pages
from gateway.console.web import prefers_html
from gateway.errors import CallgateError, NotFound, Unauthorized, found
from gateway.model import format_ts
from gateway.services import Services
from gateway.store import deliveries as delivery_store
from gateway.store import subscriptions as subscription_store

DEFAULT_TTL = 3600
MAX_TTL = 7 * 86_400
STATUSES = {"pending", "succeeded", "dead"}


class PortalLinkIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    ttl_seconds: int = Field(default=DEFAULT_TTL, ge=60, le=MAX_TTL, description="the link's lifetime")


@declare(
    Operation(
        summary="Create a portal link",
        tag="portal",
        description="A time-limited link for the owner of this endpoint: its deliveries, a retry button, and "
        "nothing else of the tenant. Nothing is stored: the link's signed token is the credential.",
        body=PortalLinkIn,
        body_example={"ttl_seconds": 3600},
        answers=[Answer(201, "the link", schemas.PortalLink)],
        errors={404: ["not_found"]},
    )
)
async def create_link(request: Request) -> Response:
    svc = services(request)
    _, tenant_id = await tenant_principal(request)
    body = await read_model(request, PortalLinkIn)
    url, expires = await issue_link(svc, tenant_id, request.path_params["subscription_id"], body.ttl_seconds)
    return json_response({"url": url, "expires_at": format_ts(expires)}, 201)


async def issue_link(
    svc: Services, tenant_id: str, subscription_id: str, ttl_seconds: int
) -> tuple[str, datetime]:
    """(the link, when it expires) for one of the tenant's subscriptions; another's is ``NotFound``. The
    API's route and the console's button both make links here."""
    async with svc.db.reading() as conn:
        found(await subscription_store.get(conn, tenant_id, subscription_id), "subscription")
    token = svc.portal.dumps({"t": tenant_id, "s": subscription_id, "ttl": ttl_seconds})
    return f"{svc.settings.base_url}/portal/{token}", svc.clock() + timedelta(seconds=ttl_seconds)


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


@dataclass(frozen=True, slots=True)
class View:
    subscription: RowMapping
    deliveries: Sequence[RowMapping]
    next_cursor: str | None


@declare(
    Operation(
        summary="A portal link's view",
        tag="portal",
        description="No API key: the token in the path is the credential. A bad, altered or expired link, "
        "or one whose subscription is gone, is 401. A browser (`Accept` preferring `text/html`) gets the "
        "same as an HTML page, and its errors as HTML pages.",
        key=Key.NONE,
        query=(choice("status", "`pending`, `succeeded` or `dead`", sorted(STATUSES)), page_limit(), CURSOR),
        answers=[
            Answer(
                200,
                "the subscription (no secret) and its deliveries",
                schemas.PortalView,
                also=("text/html",),
            )
        ],
        errors={401: ["unauthorized"]},
    )
)
async def show(request: Request) -> Response:
    """The subscription (no secret) and its deliveries, newest first; ``status``, ``limit``, ``cursor``."""
    if prefers_html(request):
        try:
            shown = await _view(request)
        except CallgateError as exc:
            return pages.problem(request, exc.status_code, exc.message)
        rendered = [render.delivery(r) for r in shown.deliveries]
        return pages.page(request, render.subscription(shown.subscription), rendered, shown.next_cursor)
    shown = await _view(request)
    return json_response(
        {
            "subscription": render.subscription(shown.subscription),
            "deliveries": [render.delivery(r) for r in shown.deliveries],
            "next_cursor": shown.next_cursor,
        }
    )


async def _view(request: Request) -> View:
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
    return View(row, rows[:limit], next_cursor(request, rows, limit))


@declare(
    Operation(
        summary="Retry a delivery from a portal link",
        tag="portal",
        description="No API key: the token is the credential. A delivery of any other subscription is 404. "
        "A browser's form post is answered with a page instead.",
        key=Key.NONE,
        answers=[Answer(202, "queued again", schemas.Retried)],
        errors={401: ["unauthorized"], 404: ["not_found"]},
    )
)
async def retry(request: Request) -> Response:
    if prefers_html(request):  # the page's retry button: back to the page
        try:
            delivery_id = await _retry(request)
        except CallgateError as exc:
            return pages.problem(request, exc.status_code, exc.message)
        return pages.retried(request, delivery_id)
    return json_response({"id": await _retry(request), "status": "pending"}, 202)


async def _retry(request: Request) -> str:
    svc = services(request)
    tenant_id, subscription_id = _holder(request)
    delivery_id = request.path_params["delivery_id"]
    async with svc.db.reading() as conn:
        row = await delivery_store.get_delivery(conn, tenant_id, delivery_id)
    if row is None or row["subscription_id"] != subscription_id:
        raise NotFound("no such delivery")  # another subscription's is simply not found
    await outbox.retry(svc.db, tenant_id, delivery_id, svc.clock())
    svc.wake_worker()
    return str(delivery_id)


routes = [
    Route("/v1/subscriptions/{subscription_id}/portal-link", create_link, methods=["POST"]),
    Route("/portal/{token}", show, methods=["GET"]),
    Route("/portal/{token}/deliveries/{delivery_id}/retry", retry, methods=["POST"]),
]
