"""Signing in with an API key, and out.

The key is checked like an ``Authorization`` header (``gateway.auth.authenticate_key``); what the cookie
keeps is the tenant and the key's id. The sign-in form has a CSRF token of its own anonymous session, so
another site cannot sign a visitor into its tenant. Nothing is logged of the key.
"""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from gateway.api.common import services
from gateway.auth import authenticate_key
from gateway.console import session as sessions
from gateway.console.session import Session
from gateway.console.web import (
    Console,
    csrf_refused,
    error_page,
    field,
    html,
    log,
    read_form,
    redirect,
    safe_next,
    secure,
    signed_in,
)
from gateway.errors import Unauthorized

KEY_MAX = 200


def _form(request: Request, anonymous: Session, next_url: str, error: str | None, status: int) -> Response:
    svc = services(request)
    context = {
        "title": "Sign in",
        "csrf": sessions.csrf_token(svc.console, anonymous),
        "next": next_url,
        "error": error,
    }
    response = html(request, "login.html", context, status)
    sessions.store(response, svc.console, anonymous, secure=secure(svc.settings.base_url))
    return response


async def login_form(request: Request) -> Response:
    current, _ = await signed_in(request)
    next_url = safe_next(request.query_params.get("next"))
    if current is not None:
        return redirect(next_url)
    try:
        anonymous = sessions.load(request, services(request).console)
    except sessions.Expired:
        anonymous = None
    if anonymous is None or anonymous.signed_in:  # a stale signed-in cookie is replaced, not kept
        anonymous = Session.anonymous()
    return _form(request, anonymous, next_url, None, 200)


async def login(request: Request) -> Response:
    svc = services(request)
    try:
        anonymous = sessions.load(request, svc.console)
    except sessions.Expired:
        anonymous = None
    try:
        form = await read_form(request)
    except HTTPException as exc:  # too many fields, or a body over the route's limit
        return error_page(request, exc.status_code, str(exc.detail))
    if anonymous is None or not sessions.csrf_valid(svc.console, anonymous, field(form, "csrf")):
        return csrf_refused(request)
    next_url = safe_next(field(form, "next"))
    key = field(form, "api_key")
    if not key or len(key) > KEY_MAX:
        return _form(request, anonymous, next_url, "Enter an API key (it starts with cgk_).", 422)
    try:
        principal = await authenticate_key(svc.db, key)
    except Unauthorized:
        return _form(request, anonymous, next_url, "That API key is unknown or revoked.", 401)
    if principal.tenant_id is None:
        message = "That is an operator key: operator keys manage tenants. Sign in with a tenant's API key."
        return _form(request, anonymous, next_url, message, 403)
    fresh = Session.of_key(principal.tenant_id, principal.key_id)  # a new id: no session fixation
    log.info("console_signed_in", tenant_id=principal.tenant_id, key_id=principal.key_id)
    response = redirect(next_url)
    sessions.store(response, svc.console, fresh, secure=secure(svc.settings.base_url))
    return response


async def logout(request: Request, console: Console) -> Response:
    response = redirect("/console/login?notice=signed_out")
    sessions.clear(response, secure=secure(console.services.settings.base_url))
    return response


async def home(request: Request, console: Console) -> Response:
    return redirect("/console/calls")
