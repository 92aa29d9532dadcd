"""A local graph8 Voice & Dialer read API (seed 000): calls, transcripts and gradings keyed by
``room_name``, with the seed's auth, page pagination, 5 rps limit and error envelope.

What it imitates:

- ``GET /api/v1/voice/dialer/calls`` - filters ``contact_id``, ``user_email``, ``campaign_id``,
  ``date_from``/``date_to`` (on ``started_at``), ``limit``, ``page`` (1-based); newest first;
  ``{"data": [call], "pagination": {"page", "page_size", "total_items"}}`` (the seed's sessions envelope).
- ``GET …/calls/{room_name}/transcript`` - ``{"status": "ready", "transcript": [{speaker, text,
  timestamp}]}``, or the seed's ``status: "empty"`` with ``transcript: []`` for a call never flushed.
- ``GET …/calls/{room_name}/grading`` - the grading object; 404 for an unknown or ungraded call.
- Auth: ``Authorization: Bearer <key>`` and ``X-Org-Id`` naming the key's org, else 401.
- "The 5 rps rate limit applies to every read endpoint": per org, on the injected clock; 429 with
  ``Retry-After`` (seconds).
- Errors: ``{"error": {"code", "message", "field", "request_id"}}`` (the seed's envelope); 422 for an
  unreadable parameter, with ``field``.

Not imitated: sessions, stats, numbers, agents, missed callbacks, the 402 credit errors.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
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
    WallClock,
    bearer,
    optional_time,
    started_in,
)

BASE = "/api/v1/voice/dialer"
MAX_LIMIT = 100  # not in the seed: a cap so a client cannot ask for everything at once


@dataclass(slots=True)
class State:
    """The double's data; tests seed it through the methods and read it directly."""

    keys: dict[str, str] = field(default_factory=lambda: {"g8-test-key": "org_123"})  # API key -> org
    clock: FakeClock = field(default_factory=FakeClock)
    rate_per_second: int | None = 5  # the seed's read limit; None: unlimited
    calls: dict[str, JSON] = field(default_factory=dict)
    transcripts: dict[str, JSON] = field(default_factory=dict)
    gradings: dict[str, JSON] = field(default_factory=dict)
    faults: Faults = field(default_factory=Faults)
    log: Log = field(default_factory=Log)
    _limiter: Limiter | None = None

    def add_call(
        self, room_name: str, *, status: str = "completed", started_at: str | None = None, **fields: Any
    ) -> JSON:
        """A call record in the seed's vocabulary (``room_name``, ``session_id``, ``from_phone`` ...)."""
        record: JSON = {
            "room_name": room_name,
            "status": status,
            "started_at": started_at or format_ts(self.clock()),
            **fields,
        }
        self.calls[room_name] = record
        return record

    def set_transcript(self, room_name: str, lines: list[JSON], *, status: str = "ready") -> None:
        self.transcripts[room_name] = {"status": status, "transcript": lines}

    def set_grading(self, room_name: str, grading: JSON) -> None:
        self.gradings[room_name] = grading

    def limiter(self) -> Limiter | None:
        if self.rate_per_second is None:
            return None
        if self._limiter is None or self._limiter.limit != self.rate_per_second:
            self._limiter = Limiter(self.rate_per_second, 1.0)
        return self._limiter


def error(status: int, code: str, message: str, field_name: str | None = None, **headers: str) -> Response:
    body = {"error": {"code": code, "message": message, "field": field_name, "request_id": _request_id()}}
    return JSONResponse(body, status, headers=headers)


def _request_id() -> str:
    return "req_" + secrets.token_hex(8)


def _guard(state: State, request: Request) -> Response | None:
    """Auth, then the org's rate limit, then any scripted fault."""
    state.log.record(request)
    token = bearer(request)
    if token is None or token not in state.keys:
        return error(401, "unauthorized", "Missing or invalid Authorization: Bearer header")
    org = request.headers.get("x-org-id")
    if org != state.keys[token]:
        return error(401, "unauthorized", "X-Org-Id does not match the API key's organization", "X-Org-Id")
    limiter = state.limiter()
    wait = limiter.wait(org, state.clock()) if limiter else None
    if wait is not None:
        return error(429, "rate_limited", "Rate limit (5 rps per org)", None, **{"Retry-After": str(wait)})
    return state.faults.take(request.url.path)


def _positive(request: Request, name: str, default: int) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    if not raw.isdigit() or int(raw) < 1:
        raise ValueError(name)
    return int(raw)


async def list_calls(request: Request, state: State) -> Response:
    query = request.query_params
    try:
        limit, page = _positive(request, "limit", 50), _positive(request, "page", 1)
        if limit > MAX_LIMIT:
            raise ValueError("limit")
    except ValueError as exc:
        return error(
            422, "validation_error", f"{exc} must be a positive integer (limit <= {MAX_LIMIT})", str(exc)
        )
    try:
        since, until = optional_time(query.get("date_from")), optional_time(query.get("date_to"))
    except ValueError:
        return error(422, "validation_error", "date_from/date_to must be ISO 8601", "date_from")
    wanted = {k: query[k] for k in ("contact_id", "user_email", "campaign_id") if k in query}

    def matches(record: JSON) -> bool:
        same = all(str(record.get(k)) == v for k, v in wanted.items())
        return same and started_in(record.get("started_at"), since, until)

    rows = sorted(
        (r for r in state.calls.values() if matches(r)),
        key=lambda r: (str(r.get("started_at")), r["room_name"]),
        reverse=True,
    )
    chunk = rows[(page - 1) * limit : page * limit]
    pagination = {"page": page, "page_size": limit, "total_items": len(rows)}
    return JSONResponse({"data": chunk, "pagination": pagination})


async def transcript(request: Request, state: State) -> Response:
    room = request.path_params["room_name"]
    if room not in state.calls:
        return error(404, "not_found", f"Call {room} doesn't exist")
    found = state.transcripts.get(room) or {"status": "empty", "transcript": []}
    return JSONResponse({"room_name": room, **found})


async def grading(request: Request, state: State) -> Response:
    room = request.path_params["room_name"]
    if room not in state.calls or room not in state.gradings:
        return error(404, "not_found", f"No grading for call {room}")
    return JSONResponse(state.gradings[room])


def app(state: State) -> Starlette:
    def route(path: str, handler: Any) -> Route:
        async def endpoint(request: Request) -> Response:
            refused = _guard(state, request)
            if refused is not None:
                return refused
            response: Response = await handler(request, state)
            return response

        return Route(path, endpoint, methods=["GET"])

    return Starlette(
        routes=[
            route(f"{BASE}/calls", list_calls),
            route(f"{BASE}/calls/{{room_name}}/transcript", transcript),
            route(f"{BASE}/calls/{{room_name}}/grading", grading),
        ]
    )


def _demo_state() -> State:
    state = State(clock=WallClock())
    state.add_call("rm_demo_1", status="completed", from_phone="+14155551234", to_phone="+14155550123")
    state.set_transcript(
        "rm_demo_1", [{"speaker": "agent", "text": "Hi!", "timestamp": format_ts(state.clock())}]
    )
    return state


if __name__ == "__main__":
    main("vendors.graph8", app(_demo_state()), 9201)
