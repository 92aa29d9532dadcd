"""A call's recording, as a link that keeps playing: ``GET /v1/calls/{id}/recording`` (API key) and
``GET /recordings/{token}`` (a signed, expiring link for people without a key: a CRM user, a support
ticket) both redirect to a playable URL fetched fresh from the vendor when needed
(``gateway.pull.recordings``). ``POST /v1/calls/{id}/recording-link`` hands out the signed link."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from itsdangerous import BadData, SignatureExpired
from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from gateway.api import schemas
from gateway.api.common import json_response, read_model, services, tenant_principal
from gateway.api.declare import Answer, Key, Operation, declare
from gateway.errors import NotFound, Unauthorized, found
from gateway.model import format_ts
from gateway.services import Services
from gateway.store import calls as call_store
from gateway.store import sources as source_store

DEFAULT_TTL = 7 * 86_400
MAX_TTL = 90 * 86_400
_NO_REFERRER = {"cache-control": "no-store", "referrer-policy": "no-referrer"}  # the URL is a credential


class RecordingLinkIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    ttl_seconds: int = Field(default=DEFAULT_TTL, ge=60, le=MAX_TTL, description="the link's lifetime")


async def _redirect(svc: Services, tenant_id: str, call_id: str) -> Response:
    async with svc.db.reading() as conn:
        call = found(await call_store.get_call(conn, tenant_id, call_id), "call")
        source = await source_store.get(conn, tenant_id, call["source_id"])
    url = await svc.playable.for_call(svc.crm.client, svc.crm.vault, source, call, svc.clock())
    if url is None:
        raise NotFound("no playable recording for this call")
    return RedirectResponse(url, status_code=302, headers=_NO_REFERRER)


@declare(
    Operation(
        summary="Play a call's recording",
        tag="calls",
        description="A redirect to a URL that plays now: for a source with read-API settings (`callsv1`, "
        "`voicecalls`) a link the vendor signs fresh when the last one is about to expire; otherwise the "
        "link the webhooks gave, while it has not expired.",
        answers=[Answer(302, "to the playable URL (`Location`)", headers={"location": "the playable URL"})],
        errors={404: ["not_found"], 502: ["vendor_error", "vendor_auth_failed"], 503: ["vendor_retry_later"]},
    )
)
async def play(request: Request) -> Response:
    svc = services(request)
    _, tenant_id = await tenant_principal(request)
    return await _redirect(svc, tenant_id, request.path_params["call_id"])


@declare(
    Operation(
        summary="Create a recording link",
        tag="calls",
        description="A signed link to the call's recording that needs no API key and keeps playing until it "
        "expires (it fetches a fresh vendor link on every click). Nothing is stored: the token is the "
        "credential.",
        body=RecordingLinkIn,
        body_example={"ttl_seconds": 604800},
        answers=[Answer(201, "the link", schemas.RecordingLink)],
        errors={404: ["not_found"]},
    )
)
async def create_link(request: Request) -> Response:
    svc = services(request)
    _, tenant_id = await tenant_principal(request)
    body = await read_model(request, RecordingLinkIn)
    call_id = request.path_params["call_id"]
    async with svc.db.reading() as conn:
        found(await call_store.get_call(conn, tenant_id, call_id), "call")
    token = svc.recordings.dumps({"t": tenant_id, "c": call_id, "ttl": body.ttl_seconds})
    expires = svc.clock() + timedelta(seconds=body.ttl_seconds)
    return json_response(
        {"url": f"{svc.settings.base_url}/recordings/{token}", "expires_at": format_ts(expires)}, 201
    )


@declare(
    Operation(
        summary="Play a recording from a link",
        tag="calls",
        description="No API key: the token in the path is the credential. An altered or expired link is 401.",
        key=Key.NONE,
        answers=[Answer(302, "to the playable URL (`Location`)", headers={"location": "the playable URL"})],
        errors={
            401: ["unauthorized"],
            404: ["not_found"],
            502: ["vendor_error", "vendor_auth_failed"],
            503: ["vendor_retry_later"],
        },
    )
)
async def play_link(request: Request) -> Response:
    svc = services(request)
    token = request.path_params["token"]
    try:
        claims: Any = svc.recordings.loads(token, max_age=MAX_TTL)
        svc.recordings.loads(token, max_age=int(claims["ttl"]))  # each link's own lifetime
        tenant_id, call_id = str(claims["t"]), str(claims["c"])
    except SignatureExpired:
        raise Unauthorized("this recording link has expired: ask for a new one") from None
    except (BadData, KeyError, TypeError, ValueError):
        raise Unauthorized("this is not a valid recording link") from None
    return await _redirect(svc, tenant_id, call_id)


routes = [
    Route("/v1/calls/{call_id}/recording", play, methods=["GET"]),
    Route("/v1/calls/{call_id}/recording-link", create_link, methods=["POST"]),
    Route("/recordings/{token}", play_link, methods=["GET"]),
]
