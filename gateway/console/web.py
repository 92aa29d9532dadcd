"""What every console page shares: the templates, the guard (signed in, CSRF on every POST, errors as
pages), and the headers that keep the pages private.

A page handler is ``async (request, Console) -> Response`` wrapped by ``page``. The guard re-checks the
session's API key on every request, so a revoked key loses its sessions at once; an unsigned-in visitor
is sent to the sign-in page with where they were going. A POST's form is read here (with small limits) and
its ``csrf`` field checked before the handler runs; a missing or wrong one is a 403 page. A
``CallgateError`` (404 of another tenant's object, a 422 of a bad field…) becomes the same error as an HTML
page: the status code the API would answer, never a 500.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import jinja2
import structlog
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.templating import Jinja2Templates

from gateway.api.common import services
from gateway.auth import principal_of_key
from gateway.console import session as sessions
from gateway.console.session import Session
from gateway.errors import CallgateError, Unauthorized
from gateway.services import Services

log = structlog.get_logger("callgate.console")

HERE = Path(__file__).parent
STATIC = HERE / "static"
FORM_LIMIT = 64 * 1024  # a console form is a few fields; bigger bodies are refused before parsing
_FORM_FIELDS = 40

# Pages, styles and scripts are our own: nothing from elsewhere, no inline script or style.
SECURITY_HEADERS = {
    "content-security-policy": (
        "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self' data:; connect-src 'self'; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "same-origin",
    "cache-control": "no-store",  # pages show tenant data, and sometimes a secret shown once
}

# Fixed messages a redirect can ask for (``?notice=``): never text from the query itself.
NOTICES = {
    "signed_out": "You are signed out.",
    "expired": "Your session expired. Sign in again.",
    "revoked": "The API key of that session is no longer valid. Sign in with another.",
    "retried": "The delivery is queued to be sent again now.",
    "ping": "A test delivery (ping) is queued.",
    "paused": "The subscription is paused: nothing is delivered to it until it is resumed.",
    "resumed": "The subscription is active again.",
}


def _static_version() -> str:
    """Changes when a static file does, so browsers fetch the new one (the files are cached)."""
    digest = hashlib.sha256()
    for path in sorted(STATIC.iterdir()):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:10]


def when(value: str | datetime | None, short: bool = False) -> str:
    """An ISO time (what ``gateway.render`` gives) as people read it, in UTC; ``short`` for table cells
    (to the minute: the cell's ``title`` has the whole time)."""
    if value is None or value == "":
        return "-"
    moment = datetime.fromisoformat(value.replace("Z", "+00:00")) if isinstance(value, str) else value
    return moment.strftime("%Y-%m-%d %H:%M" if short else "%Y-%m-%d %H:%M:%S UTC")


def pretty(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True, default=str)


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,  # a misspelt name fails the page's test, not the customer
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["when"] = when
    env.filters["pretty"] = pretty
    env.globals["static_version"] = _static_version()
    return env


templates = Jinja2Templates(env=_environment())


def secure(base_url: str) -> bool:
    """The cookie is ``Secure`` when the gateway is reached over HTTPS."""
    return base_url.startswith("https://")


def html(
    request: Request,
    name: str,
    context: Mapping[str, Any],
    status_code: int = 200,
    *,
    headers: Mapping[str, str] | None = None,
) -> Response:
    """A template rendered with the page's common context and the console's headers."""
    values: dict[str, Any] = {
        "console": None,
        "section": "",
        "notice": NOTICES.get(request.query_params.get("notice", "")),
        **context,
    }
    return templates.TemplateResponse(
        request, name, values, status_code, headers={**SECURITY_HEADERS, **(headers or {})}
    )


def error_page(request: Request, status_code: int, message: str, console: Console | None = None) -> Response:
    titles = {400: "Bad request", 401: "Not signed in", 403: "Forbidden", 404: "Not found", 413: "Too large"}
    title = titles.get(status_code, "Cannot do that" if status_code < 500 else "Unavailable")
    context = {"console": console, "title": title, "message": message, "status_code": status_code}
    return html(request, "error.html", context, status_code)


def redirect(url: str) -> Response:
    return RedirectResponse(url, status_code=303, headers=SECURITY_HEADERS)


def safe_next(raw: str | None) -> str:
    """Where to go after signing in: a console path only (never another site, never the sign-in page)."""
    if (
        raw
        and (raw == "/console" or raw.startswith(("/console/", "/console?")))
        and not raw.startswith("/console/login")
        and "\\" not in raw
        and len(raw) <= 2000
    ):
        return raw
    return "/console/calls"


def login_url(request: Request, notice: str | None = None) -> str:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    params = {"next": target if request.method == "GET" else "/console/calls"}
    if notice:
        params["notice"] = notice
    return "/console/login?" + urlencode(params)


@dataclass(frozen=True, slots=True)
class Console:
    """The signed-in session a page runs for."""

    services: Services
    session: Session
    tenant_id: str
    key_id: str
    csrf: str

    def url(self, path: str, **params: str | None) -> str:
        """A console URL with the given non-empty query parameters."""
        shown = {k: v for k, v in params.items() if v}
        return path + ("?" + urlencode(shown) if shown else "")


Handler = Callable[[Request, Console], Awaitable[Response]]


async def signed_in(request: Request) -> tuple[Console | None, str | None]:
    """The request's console session, checked against the key it names; else (None, why: a notice)."""
    svc = services(request)
    try:
        current = sessions.load(request, svc.console)
    except sessions.Expired:
        return None, "expired"
    if current is None or current.tenant_id is None or current.key_id is None:
        return None, None
    try:
        principal = await principal_of_key(svc.db, current.key_id)
    except Unauthorized:
        return None, "revoked"
    if principal.tenant_id != current.tenant_id:
        return None, "revoked"
    token = sessions.csrf_token(svc.console, current)
    return Console(svc, current, current.tenant_id, current.key_id, token), None


async def read_form(request: Request) -> FormData:
    """The POST's form: urlencoded or multipart without files, a few small fields."""
    return await request.form(max_files=0, max_fields=_FORM_FIELDS, max_part_size=FORM_LIMIT)


def page(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    """The guard every console page goes through (see the module's docstring)."""

    async def guarded(request: Request) -> Response:
        console, why = await signed_in(request)
        if console is None:
            response = redirect(login_url(request, why))
            if why is not None:  # a stale cookie: drop it
                sessions.clear(response, secure=secure(services(request).settings.base_url))
            return response
        try:
            if request.method == "POST":
                form = await read_form(request)
                token = form.get("csrf")
                if not sessions.csrf_valid(console.services.console, console.session, str(token or "")):
                    log.warning("console_csrf_refused", path=request.url.path, tenant_id=console.tenant_id)
                    return csrf_refused(request, console)
            return await handler(request, console)
        except CallgateError as exc:
            return error_page(request, exc.status_code, exc.message, console)
        except HTTPException as exc:
            return error_page(request, exc.status_code, str(exc.detail), console)

    guarded.__name__ = handler.__name__
    guarded.__doc__ = handler.__doc__
    return guarded


def csrf_refused(request: Request, console: Console | None = None) -> Response:
    cookies = "" if console is not None else " The console needs cookies: allow them for this site."
    return error_page(
        request,
        403,
        "This form did not come from this console session (its security token is missing or wrong). "
        "Nothing was changed. Go back, reload the page and try again." + cookies,
        console,
    )


def field(form: FormData, name: str) -> str:
    """A text field of the form, stripped; empty when absent."""
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


def prefers_html(request: Request) -> bool:
    """Whether the client asks for HTML over JSON (a browser's navigation does; curl and SDKs send
    ``*/*`` or ``application/json`` and keep getting JSON)."""
    html_q = json_q = 0.0
    for item in request.headers.get("accept", "").split(","):
        media, _, params = item.strip().partition(";")
        quality = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        media = media.strip().lower()
        if media in ("text/html", "application/xhtml+xml"):
            html_q = max(html_q, quality)
        elif media == "application/json":
            json_q = max(json_q, quality)
    return html_q > 0 and html_q > json_q
