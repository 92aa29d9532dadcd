"""A local camelCase Voice Calls API (seed 004): voice calls, their EPA survey and 15-minute SAS recording
URLs, with the seed's scopes and page pagination.

What it imitates:

- ``GET /api/v1/voice-calls`` [voice:read] - ``campaignId``, ``state``, ``direction``, ``dateFrom``/
  ``dateTo`` (on ``startTime``, else ``createdAt``), ``page`` (1-based), ``pageSize`` (default 20, at most
  100); ``{"data": [call without its transcript], "page", "pageSize", "totalCount"}`` (assumed).
- ``GET /api/v1/voice-calls/{id}`` [voice:read] - "a voice call with full transcript" (``epaResults``
  inline once surveyed).
- ``GET …/{id}/recording-url`` [audio:download] - ``{"recordingUrl", "expiresAt"}``, a new SAS-like URL on
  every call, valid ``link_minutes`` (the seed's 15) on the injected clock; the URL serves the audio
  without auth while valid, and Azure's 403 ``AuthenticationFailed`` after.
- ``GET …/{id}/epa-results`` [voice:read] - the ``epaResults`` object, 404 when there is none.
- Bearer tokens with scopes: unknown token 401, missing scope 403. Errors are RFC 7807 problem details
  (``{"type", "title", "status", "detail", "traceId"}``: assumed, the seed shows none).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from gateway.model import format_ts
from tests.doubles import main
from tests.doubles.vendors import (
    JSON,
    FakeClock,
    Faults,
    Log,
    SignedLinks,
    WallClock,
    bearer,
    optional_time,
    started_in,
)

BASE = "/api/v1/voice-calls"
LINK_NAMES = {"expires": "se", "nonce": "skn", "sig": "sig"}
AZURE_EXPIRED = (
    '<?xml version="1.0" encoding="utf-8"?><Error><Code>AuthenticationFailed</Code><Message>Server failed '
    "to authenticate the request. Signed expiry time must be after signed start time.</Message>"
    "<AuthenticationErrorDetail>Signature not valid in the specified time frame"
    "</AuthenticationErrorDetail></Error>"
)
ALL_SCOPES = frozenset({"voice:read", "audio:download"})


@dataclass(slots=True)
class State:
    tokens: dict[str, frozenset[str]] = field(default_factory=lambda: {"vc-test-token": ALL_SCOPES})
    clock: FakeClock = field(default_factory=FakeClock)
    link_minutes: int = 15  # "Generate recording SAS URL (15 min expiry)"
    calls: dict[str, JSON] = field(default_factory=dict)
    epa: dict[str, JSON] = field(default_factory=dict)
    recordings: dict[str, bytes] = field(default_factory=dict)
    faults: Faults = field(default_factory=Faults)
    log: Log = field(default_factory=Log)
    links: SignedLinks = field(default_factory=SignedLinks)
    issued: int = 0  # recording URLs handed out

    def add_call(self, call_id: str, *, state: str = "Completed", **fields: Any) -> JSON:
        """A voice call object in the seed's camelCase (``campaignId``, ``startTime``, ``outcome`` ...)."""
        call: JSON = {"id": call_id, "state": state, **fields}
        call.setdefault("createdAt", format_ts(self.clock()))
        self.calls[call_id] = call
        return call

    def set_transcript(self, call_id: str, lines: list[JSON]) -> None:
        self.calls[call_id]["transcript"] = lines

    def set_epa(self, call_id: str, epa: JSON) -> None:
        """The survey, at its endpoint and inline ("or access them inline via the voice call object")."""
        self.epa[call_id] = epa
        self.calls[call_id]["epaResults"] = epa

    def set_recording(self, call_id: str, audio: bytes) -> None:
        self.recordings[call_id] = audio


def problem(status: int, title: str, detail: str) -> Response:
    body = {"type": f"https://httpstatuses.io/{status}", "title": title, "status": status, "detail": detail}
    body["traceId"] = "00-" + secrets.token_hex(16) + "-" + secrets.token_hex(8) + "-01"
    return JSONResponse(body, status, media_type="application/problem+json")


def _int(raw: str | None, default: int, highest: int) -> int:
    if raw is None:
        return default
    if not raw.isdigit() or not 1 <= int(raw) <= highest:
        raise ValueError
    return int(raw)


async def list_calls(request: Request, state: State) -> Response:
    query = request.query_params
    try:
        page, size = _int(query.get("page"), 1, 10**9), _int(query.get("pageSize"), 20, 100)
        since, until = optional_time(query.get("dateFrom")), optional_time(query.get("dateTo"))
    except ValueError:
        return problem(400, "One or more validation errors occurred.", "page, pageSize or a date is invalid")
    wanted = {k: query[k] for k in ("campaignId", "state", "direction") if k in query}

    def when(call: JSON) -> Any:
        return call.get("startTime") or call.get("createdAt")

    rows = sorted(
        (
            c
            for c in state.calls.values()
            if all(c.get(k) == v for k, v in wanted.items()) and started_in(when(c), since, until)
        ),
        key=lambda c: (str(when(c)), c["id"]),
        reverse=True,
    )
    chunk = [{k: v for k, v in c.items() if k != "transcript"} for c in rows[(page - 1) * size : page * size]]
    return JSONResponse({"data": chunk, "page": page, "pageSize": size, "totalCount": len(rows)})


async def get_call(request: Request, state: State) -> Response:
    call = state.calls.get(request.path_params["call_id"])
    return JSONResponse(call) if call is not None else problem(404, "Not Found", "Voice call not found")


async def get_epa(request: Request, state: State) -> Response:
    call_id = request.path_params["call_id"]
    if call_id not in state.calls or call_id not in state.epa:
        return problem(404, "Not Found", "No survey results for this voice call")
    return JSONResponse(state.epa[call_id])


async def recording_url(request: Request, state: State) -> Response:
    call_id = request.path_params["call_id"]
    if call_id not in state.calls or call_id not in state.recordings:
        return problem(404, "Not Found", "No recording for this voice call")
    expires = (state.clock() + timedelta(minutes=state.link_minutes)).replace(microsecond=0)
    path = f"/recordings/{call_id}.wav"
    query = "sv=2024-08-04&sr=b&sp=r&" + state.links.sign(path, expires, LINK_NAMES)
    state.issued += 1
    return JSONResponse(
        {
            "recordingUrl": f"{str(request.base_url).rstrip('/')}{path}?{query}",
            "expiresAt": format_ts(expires),
        }
    )


async def blob(request: Request, state: State) -> Response:
    """The pre-signed blob: "no auth required, URL is pre-signed"."""
    state.log.record(request)
    call_id = request.path_params["call_id"]
    verdict = state.links.check(request.url.path, request.query_params, state.clock(), LINK_NAMES)
    if verdict != "ok" or call_id not in state.recordings:
        return Response(AZURE_EXPIRED, 403, media_type="application/xml")
    return Response(state.recordings[call_id], media_type="audio/wav")


def app(state: State) -> Starlette:
    def route(path: str, handler: Any, scope: str) -> Route:
        async def endpoint(request: Request) -> Response:
            state.log.record(request)
            token = bearer(request)
            if token is None or token not in state.tokens:
                return problem(401, "Unauthorized", "A valid bearer token is required")
            if scope not in state.tokens[token]:
                return problem(403, "Forbidden", f"The token lacks the {scope} scope")
            scripted = state.faults.take(request.url.path)
            if scripted is not None:
                return scripted
            response: Response = await handler(request, state)
            return response

        return Route(path, endpoint, methods=["GET"])

    async def blob_route(request: Request) -> Response:
        return await blob(request, state)

    return Starlette(
        routes=[
            route(BASE, list_calls, "voice:read"),
            route(f"{BASE}/{{call_id}}", get_call, "voice:read"),
            route(f"{BASE}/{{call_id}}/recording-url", recording_url, "audio:download"),
            route(f"{BASE}/{{call_id}}/epa-results", get_epa, "voice:read"),
            Route("/recordings/{call_id}.wav", blob_route, methods=["GET"]),
        ]
    )


def _demo_state() -> State:
    state = State(clock=WallClock())
    state.add_call("vc_demo", campaignId="camp_demo", direction="Inbound", startTime=format_ts(state.clock()))
    state.set_recording("vc_demo", b"RIFFdemo")
    return state


if __name__ == "__main__":
    main("vendors.voicecalls", app(_demo_state()), 9204)
