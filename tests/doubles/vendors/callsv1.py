"""A local ``/v1/calls`` agent platform (seed 002): the Call object, its transcript, grade, issue reports
and a short-lived signed recording URL, with offset pagination.

What it imitates (routes, parameters and objects from the seed; bodies the seed does not show are the
ones ``gateway.pull.callsv1`` documents as assumed):

- ``GET /v1/calls`` - ``limit`` 1-200 (default 50; else 422), ``offset``, ``agent_id``, ``direction``,
  ``status``, ``from_number``, ``to_number``, ``start_date``/``end_date`` (on ``start_time``);
  ``{"data": [Call], "total", "limit", "offset"}``, newest first.
- ``GET /v1/calls/{call_id}`` - the Call object with every documented field, "or 404 if the call does
  not belong to your organization" (an id that is not an integer is one of those).
- ``GET …/transcript`` ``{"call_id", "transcript": [{role, content_type, content, start_ms, end_ms}]}``;
  ``GET …/grade`` the latest grade row ``{score, status, summary, criteria}`` or 404 "if the call has not
  been graded"; ``GET …/issue-reports`` ``{"data": [Issue Report]}``.
- ``GET …/audio`` - ``{"url", "expires_at"}``: "a short-lived signed URL to the MP3 recording", served at
  ``/storage/…`` while valid and 403 after (``audio_seconds``); 404 "Call or recording not found".
- Bearer auth (the seed names none; 401); an optional per-minute limit (none documented) answering 429.
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

LINK_NAMES = {"expires": "Expires", "nonce": "GoogleAccessId", "sig": "Signature"}
CALL_FIELDS: JSON = {  # the seed's Call object table, every field, in its order
    "call_id": None,
    "agent_id": None,
    "direction": "outbound",
    "from_number": None,
    "to_number": None,
    "start_time": None,
    "end_time": None,
    "duration_seconds": None,
    "status": "completed",
    "end_reason": None,
    "recording_url": None,
    "is_test_call": False,
    "product": None,
    "voice": None,
    "billable_minutes": None,
    "billing_total_cents": None,
    "billed_at": None,
    "grade_score": None,
    "grade_status": None,
    "grade_updated_at": None,
    "issue_count": 0,
    "critical_issue_count": 0,
}


@dataclass(slots=True)
class State:
    tokens: set[str] = field(default_factory=lambda: {"c1-test-token"})
    clock: FakeClock = field(default_factory=FakeClock)
    per_minute: int | None = None  # the seed documents no limit
    audio_seconds: int = 900  # "short-lived": not in the seed
    calls: dict[int, JSON] = field(default_factory=dict)
    transcripts: dict[int, list[JSON]] = field(default_factory=dict)
    grades: dict[int, JSON] = field(default_factory=dict)
    issue_reports: dict[int, list[JSON]] = field(default_factory=dict)
    audio: dict[int, bytes] = field(default_factory=dict)
    faults: Faults = field(default_factory=Faults)
    log: Log = field(default_factory=Log)
    links: SignedLinks = field(default_factory=SignedLinks)
    _limiter: Limiter | None = None

    def add_call(self, call_id: int, **fields: Any) -> JSON:
        """A Call object: the seed's fields, defaulted, overridden by ``fields`` (any extra kept too)."""
        call = {**CALL_FIELDS, "start_time": format_ts(self.clock()), **fields, "call_id": call_id}
        self.calls[call_id] = call
        return call

    def set_transcript(self, call_id: int, rows: list[JSON]) -> None:
        self.transcripts[call_id] = rows

    def set_grade(
        self,
        call_id: int,
        *,
        score: float | None,
        status: str = "completed",
        summary: str | None = None,
        criteria: list[JSON] | None = None,
    ) -> None:
        """The latest grade row; the call's ``grade_*`` fields follow it, as the seed describes them."""
        row: JSON = {"score": score, "status": status, "summary": summary, "criteria": criteria or []}
        self.grades[call_id] = row
        call = self.calls[call_id]
        call["grade_status"] = status
        call["grade_updated_at"] = format_ts(self.clock())
        if status == "completed":
            call["grade_score"] = score

    def add_issue_report(self, call_id: int, report_id: str, title: str, severity: str, **more: Any) -> JSON:
        report = {"id": report_id, "title": title, "severity": severity, **more}
        self.issue_reports.setdefault(call_id, []).append(report)
        call = self.calls[call_id]
        call["issue_count"] = len(self.issue_reports[call_id])
        call["critical_issue_count"] = sum(
            1 for r in self.issue_reports[call_id] if r["severity"] == "critical"
        )
        return report

    def set_audio(self, call_id: int, audio: bytes) -> None:
        self.audio[call_id] = audio
        self.calls[call_id]["recording_url"] = (
            self.calls[call_id]["recording_url"] or f"gs://calls/{call_id}.mp3"
        )


def error(status: int, code: str, message: str, **headers: str) -> Response:
    return JSONResponse({"error": {"code": code, "message": message}}, status, headers=headers)


def _call(request: Request, state: State) -> JSON | None:
    raw = request.path_params["call_id"]
    return state.calls.get(int(raw)) if raw.isdigit() else None


async def list_calls(request: Request, state: State) -> Response:
    query = request.query_params
    try:
        limit = int(query.get("limit", "50"))
        offset = int(query.get("offset", "0"))
        if not 1 <= limit <= 200 or offset < 0:
            raise ValueError
        since, until = optional_time(query.get("start_date")), optional_time(query.get("end_date"))
    except ValueError:
        return error(422, "invalid_request", "limit must be 1-200, offset >= 0, dates ISO 8601")
    wanted = {
        k: query[k] for k in ("agent_id", "direction", "status", "from_number", "to_number") if k in query
    }
    rows = sorted(
        (
            c
            for c in state.calls.values()
            if all(str(c.get(k)) == v for k, v in wanted.items())
            and started_in(c.get("start_time"), since, until)
        ),
        key=lambda c: (str(c.get("start_time")), c["call_id"]),
        reverse=True,
    )
    return JSONResponse(
        {"data": rows[offset : offset + limit], "total": len(rows), "limit": limit, "offset": offset}
    )


async def get_call(request: Request, state: State) -> Response:
    call = _call(request, state)
    return JSONResponse(call) if call is not None else error(404, "not_found", "Call not found")


async def get_transcript(request: Request, state: State) -> Response:
    call = _call(request, state)
    if call is None:
        return error(404, "not_found", "Call not found")
    return JSONResponse(
        {"call_id": call["call_id"], "transcript": state.transcripts.get(call["call_id"], [])}
    )


async def get_grade(request: Request, state: State) -> Response:
    call = _call(request, state)
    if call is None or call["call_id"] not in state.grades:
        return error(404, "not_found", "The call has not been graded")
    return JSONResponse(state.grades[call["call_id"]])


async def get_issue_reports(request: Request, state: State) -> Response:
    call = _call(request, state)
    if call is None:
        return error(404, "not_found", "Call not found")
    return JSONResponse({"data": state.issue_reports.get(call["call_id"], [])})


async def get_audio(request: Request, state: State) -> Response:
    call = _call(request, state)
    if call is None or call["call_id"] not in state.audio:
        return error(404, "not_found", "Call or recording not found")
    expires = (state.clock() + timedelta(seconds=state.audio_seconds)).replace(microsecond=0)
    path = f"/storage/calls/{call['call_id']}.mp3"
    url = f"{str(request.base_url).rstrip('/')}{path}?{state.links.sign(path, expires, LINK_NAMES)}"
    return JSONResponse({"url": url, "expires_at": format_ts(expires)})


async def storage(request: Request, state: State) -> Response:
    """The signed object URL: the signature is the only auth (GCS answers 403 once it expired)."""
    state.log.record(request)
    call_id = int(request.path_params["call_id"])
    verdict = state.links.check(request.url.path, request.query_params, state.clock(), LINK_NAMES)
    if verdict != "ok" or call_id not in state.audio:
        body = f"<Error><Code>AccessDenied</Code><Message>Request {verdict}.</Message></Error>"
        return Response(body, 403, media_type="application/xml")
    return Response(state.audio[call_id], media_type="audio/mpeg")


def app(state: State) -> Starlette:
    def route(path: str, handler: Any) -> Route:
        async def endpoint(request: Request) -> Response:
            state.log.record(request)
            if bearer(request) not in state.tokens:
                return error(401, "unauthorized", "Invalid API key")
            if state.per_minute is not None:
                if state._limiter is None:
                    state._limiter = Limiter(state.per_minute, 60.0)
                wait = state._limiter.wait("org", state.clock())
                if wait is not None:
                    return error(429, "rate_limited", "Too many requests", **{"Retry-After": str(wait)})
            scripted = state.faults.take(request.url.path)
            if scripted is not None:
                return scripted
            response: Response = await handler(request, state)
            return response

        return Route(path, endpoint, methods=["GET"])

    async def storage_route(request: Request) -> Response:
        return await storage(request, state)

    return Starlette(
        routes=[
            route("/v1/calls", list_calls),
            route("/v1/calls/{call_id}", get_call),
            route("/v1/calls/{call_id}/transcript", get_transcript),
            route("/v1/calls/{call_id}/grade", get_grade),
            route("/v1/calls/{call_id}/issue-reports", get_issue_reports),
            route("/v1/calls/{call_id}/audio", get_audio),
            Route("/storage/calls/{call_id:int}.mp3", storage_route, methods=["GET"]),
        ]
    )


def _demo_state() -> State:
    state = State(clock=WallClock())
    state.add_call(88123, from_number="+14155551234", to_number="+14155550123", end_reason="caller_hangup")
    state.set_audio(88123, b"ID3demo")
    return state


if __name__ == "__main__":
    main("vendors.callsv1", app(_demo_state()), 9203)
