"""A local LiveKit-based Voice API (seed 001): sessions, their status and their recordings, with the
seed's bearer auth, offset pagination and per-endpoint rate limits.

What it imitates (the seed names the routes, parameters and limits; it shows no body, so the shapes are
the ones ``gateway.pull.voiceapi`` documents as assumed):

- ``GET /voice/sessions`` - ``agent_id``, ``status``, ``limit`` (default 20, max 100), ``offset``,
  ``start_date``/``end_date`` (on ``started_at``); ``{"data": [session], "total", "limit", "offset"}``;
  "List sessions 30/min".
- ``GET /voice/sessions/{session_id}`` and ``GET /voice/status/{session_id}`` - "Get status 60/min".
- ``GET /voice/recording/{recording_id}`` - ``{"recording_id", "session_id", "url", "expires_at"}``: a
  signed link to ``/media/{recording_id}.mp3`` that expires (``link_seconds``) and is refused after.
- Bearer auth (401), 429 with ``Retry-After``, errors ``{"error": {"code", "message"}}``.
"""

from __future__ import annotations

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
    Limiter,
    Log,
    SignedLinks,
    WallClock,
    bearer,
    optional_time,
    started_in,
)

LINK_NAMES = {"expires": "expires", "nonce": "n", "sig": "signature"}


@dataclass(slots=True)
class State:
    tokens: set[str] = field(default_factory=lambda: {"va-test-token"})
    clock: FakeClock = field(default_factory=FakeClock)
    list_per_minute: int | None = 30
    get_per_minute: int | None = 60
    link_seconds: int = 3600  # not in the seed
    sessions: dict[str, JSON] = field(default_factory=dict)
    recordings: dict[str, tuple[str, bytes]] = field(default_factory=dict)  # id -> (session, audio)
    faults: Faults = field(default_factory=Faults)
    log: Log = field(default_factory=Log)
    links: SignedLinks = field(default_factory=SignedLinks)
    _limits: dict[str, Limiter] = field(default_factory=dict)

    def add_session(self, session_id: str, *, status: str = "completed", **fields: Any) -> JSON:
        """A session: the dial request's fields plus ``status``, ``started_at``, ``answered_at``,
        ``ended_at``, ``duration``, ``end_reason``, ``recording_id``, ``error`` as the test gives them."""
        session: JSON = {"session_id": session_id, "status": status, **fields}
        self.sessions[session_id] = session
        return session

    def set_recording(self, recording_id: str, session_id: str, audio: bytes) -> None:
        self.recordings[recording_id] = (session_id, audio)

    def limited(self, kind: str) -> int | None:
        """Seconds to wait when the ``list`` or ``get`` budget of this minute is spent, else None."""
        per_minute = self.list_per_minute if kind == "list" else self.get_per_minute
        if per_minute is None:
            return None
        limiter = self._limits.setdefault(kind, Limiter(per_minute, 60.0))
        return limiter.wait(kind, self.clock())


def error(status: int, code: str, message: str, **headers: str) -> Response:
    return JSONResponse({"error": {"code": code, "message": message}}, status, headers=headers)


def _int(request: Request, name: str, default: int, lowest: int, highest: int) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    if not raw.isdigit() or not lowest <= int(raw) <= highest:
        raise ValueError(f"{name} must be an integer in {lowest}..{highest}")
    return int(raw)


async def list_sessions(request: Request, state: State) -> Response:
    query = request.query_params
    try:
        limit = _int(request, "limit", 20, 1, 100)
        offset = _int(request, "offset", 0, 0, 10**9)
        since, until = optional_time(query.get("start_date")), optional_time(query.get("end_date"))
    except ValueError as exc:
        return error(422, "invalid_parameter", str(exc))
    wanted = {k: query[k] for k in ("agent_id", "status") if k in query}
    rows = sorted(
        (
            s
            for s in state.sessions.values()
            if all(str(s.get(k)) == v for k, v in wanted.items())
            and started_in(s.get("started_at"), since, until)
        ),
        key=lambda s: (str(s.get("started_at")), s["session_id"]),
        reverse=True,
    )
    return JSONResponse(
        {"data": rows[offset : offset + limit], "total": len(rows), "limit": limit, "offset": offset}
    )


async def get_session(request: Request, state: State) -> Response:
    found = state.sessions.get(request.path_params["session_id"])
    if found is None:
        return error(404, "not_found", "Session not found")
    return JSONResponse(found)


async def get_status(request: Request, state: State) -> Response:
    found = state.sessions.get(request.path_params["session_id"])
    if found is None:
        return error(404, "not_found", "Session not found")
    return JSONResponse({"session_id": found["session_id"], "status": found["status"]})


async def get_recording(request: Request, state: State) -> Response:
    recording_id = request.path_params["recording_id"]
    if recording_id not in state.recordings:
        return error(404, "not_found", "Recording not found")
    expires = (state.clock() + timedelta(seconds=state.link_seconds)).replace(microsecond=0)
    path = f"/media/{recording_id}.mp3"
    url = f"{str(request.base_url).rstrip('/')}{path}?{state.links.sign(path, expires, LINK_NAMES)}"
    session_id = state.recordings[recording_id][0]
    body = {
        "recording_id": recording_id,
        "session_id": session_id,
        "url": url,
        "expires_at": format_ts(expires),
    }
    return JSONResponse(body)


async def media(request: Request, state: State) -> Response:
    """The signed link itself: no bearer, the signature is the auth."""
    state.log.record(request)
    recording_id = request.path_params["recording_id"]
    verdict = state.links.check(request.url.path, request.query_params, state.clock(), LINK_NAMES)
    if verdict != "ok" or recording_id not in state.recordings:
        return error(403, "forbidden", f"link {verdict}")
    return Response(state.recordings[recording_id][1], media_type="audio/mpeg")


def app(state: State) -> Starlette:
    def route(path: str, handler: Any, kind: str) -> Route:
        async def endpoint(request: Request) -> Response:
            state.log.record(request)
            if bearer(request) not in state.tokens:
                return error(401, "unauthorized", "A valid Bearer token is required")
            wait = state.limited(kind)
            if wait is not None:
                return error(429, "rate_limited", "Too many requests", **{"Retry-After": str(wait)})
            scripted = state.faults.take(request.url.path)
            if scripted is not None:
                return scripted
            response: Response = await handler(request, state)
            return response

        return Route(path, endpoint, methods=["GET"])

    async def media_route(request: Request) -> Response:
        return await media(request, state)

    return Starlette(
        routes=[
            route("/voice/sessions", list_sessions, "list"),
            route("/voice/sessions/{session_id}", get_session, "get"),
            route("/voice/status/{session_id}", get_status, "get"),
            route("/voice/recording/{recording_id}", get_recording, "get"),
            Route("/media/{recording_id}.mp3", media_route, methods=["GET"]),
        ]
    )


def _demo_state() -> State:
    state = State(clock=WallClock())
    now = format_ts(state.clock())
    state.add_session(
        "vs_demo", agent_id="agt_demo", direction="web", started_at=now, recording_id="rec_demo"
    )
    state.set_recording("rec_demo", "vs_demo", b"ID3demo")
    return state


if __name__ == "__main__":
    main("vendors.voiceapi", app(_demo_state()), 9202)
