"""Helpers every route module uses: services, auth, JSON in and out, the error envelope."""

from __future__ import annotations

import json
from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any, TypeVar, cast

from itsdangerous import BadData
from pydantic import BaseModel, ValidationError
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Match, Route

from gateway import storable, when
from gateway.auth import Principal, authenticate
from gateway.errors import BadRequest, CallgateError, Forbidden, PayloadTooLarge, ValidationFailed
from gateway.services import Services

M = TypeVar("M", bound=BaseModel)


def services(request: Request) -> Services:
    return cast(Services, request.state.services)  # put there by the lifespan


def json_response(payload: Any, status_code: int = 200) -> Response:
    body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()
    return Response(body, status_code=status_code, media_type="application/json")


def request_id(request: Request) -> str:
    return str(request.scope.get("state", {}).get("request_id", ""))


def error_response(
    request: Request, status_code: int, code: str, message: str, field: str | None
) -> Response:
    error: dict[str, Any] = {"code": code, "message": message}
    if field:
        error["field"] = field
    error["request_id"] = request_id(request)
    return json_response({"error": error}, status_code)


async def handle_callgate_error(request: Request, exc: Exception) -> Response:
    if not isinstance(exc, CallgateError):  # registered for CallgateError only
        raise exc
    return error_response(request, exc.status_code, exc.code, exc.message, exc.field)


HTTP_CODES = {404: "not_found", 405: "method_not_allowed", 400: "bad_request"}


async def handle_http_error(request: Request, exc: Exception) -> Response:
    if not isinstance(exc, HTTPException):
        raise exc
    code = HTTP_CODES.get(exc.status_code, "http_error")
    response = error_response(request, exc.status_code, code, str(exc.detail), None)
    if exc.status_code == 405:
        response.headers["allow"] = allowed_methods(request)
    return response


def allowed_methods(request: Request) -> str:
    """``Allow`` for a 405 (RFC 9110 requires it): the methods of every route at this path. Starlette's own
    names only the first route that matched the path, and a path here has one route per method."""
    methods: set[str] = set()
    for route in request.app.routes:
        if isinstance(route, Route) and route.methods and route.matches(request.scope)[0] is not Match.NONE:
            methods |= route.methods
    return ", ".join(sorted(methods))


async def tenant_principal(request: Request) -> tuple[Principal, str]:
    """The caller, who must be a tenant key: (principal, tenant id)."""
    principal = await authenticate(services(request).db, request.headers.get("authorization"))
    if principal.tenant_id is None:
        raise Forbidden("operator keys manage tenants; use a tenant's API key for tenant data")
    return principal, principal.tenant_id


async def any_principal(request: Request) -> Principal:
    return await authenticate(services(request).db, request.headers.get("authorization"))


async def read_limited(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"body over {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise PayloadTooLarge(f"body over {limit} bytes")
            chunks.append(chunk)
    except ClientDisconnect:
        raise BadRequest("client disconnected before the body was complete") from None
    return b"".join(chunks)


API_BODY_LIMIT = 64 * 1024  # API requests are small; webhooks have their own, larger limit


def _not_json_number(constant: str) -> Any:
    raise ValueError(f"{constant} is not JSON")


async def read_model(request: Request, model: type[M]) -> M:
    """The body as ``model``. Strict JSON (no ``NaN``), nesting within ``storable.MAX_DEPTH``, text that
    every store keeps (a lone surrogate or NUL in a name or a secret is refused, not silently changed)."""
    raw = await read_limited(request, API_BODY_LIMIT)
    try:
        data = json.loads(raw, parse_constant=_not_json_number) if raw.strip() else {}
    except (ValueError, RecursionError):
        raise BadRequest("request body is not valid JSON") from None
    if not isinstance(data, dict):
        raise BadRequest("request body must be a JSON object")
    try:
        _, repaired = storable.document(data)
    except storable.TooDeep as exc:
        raise BadRequest(f"request body is {exc}") from None
    if repaired:
        raise ValidationFailed("text must be valid Unicode without NUL characters", field=repaired[0])
    try:
        return model.model_validate(data, strict=True)  # JSON's own types: "yes" is not a bool, "5" no int
    except ValidationError as exc:
        error = exc.errors()[0]
        field = ".".join(str(p) for p in error["loc"]) or None
        raise ValidationFailed(error["msg"], field=field) from None


# --- query parameters shared by the list routes --------------------------------------------------------


def time_value(raw: str, name: str, now: datetime) -> datetime:
    """A time in a query or a body: any form ``gateway.when`` reads, an age (``6h``) included."""
    try:
        return when.parse_when(raw, now)
    except ValueError as exc:
        raise ValidationFailed(f"{name} {exc}", field=name) from None


def query_time(request: Request, name: str) -> datetime | None:
    raw = request.query_params.get(name)
    if not raw:
        return None
    return time_value(raw, name, services(request).clock())


def query_choice(request: Request, name: str, allowed: Collection[str]) -> str | None:
    """One of ``allowed``, or None when absent; anything else is a 422 (never a silently empty list)."""
    value = request.query_params.get(name)
    if value and value not in allowed:
        raise ValidationFailed(f"{name} must be one of {', '.join(sorted(allowed))}", field=name)
    return value or None


def query_limit(request: Request, maximum: int, default: int = 50) -> int:
    raw = request.query_params.get("limit", str(default))
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 6 and 1 <= int(raw) <= maximum):
        raise ValidationFailed(f"limit must be 1-{maximum}", field="limit")
    return int(raw)


def query_cursor(request: Request) -> str | None:
    """The id to continue before, from a signed ``cursor`` (one a list route handed out)."""
    raw = request.query_params.get("cursor")
    if not raw:
        return None
    try:
        return str(services(request).cursors.loads(raw)["before"])
    except (BadData, KeyError, TypeError):
        raise BadRequest("cursor is not valid", field="cursor") from None


def next_cursor(request: Request, rows: Sequence[Any], limit: int) -> str | None:
    """Rows were fetched with ``limit + 1``: a cursor when there is another page."""
    if len(rows) <= limit:
        return None
    return str(services(request).cursors.dumps({"before": rows[limit - 1]["id"]}))
