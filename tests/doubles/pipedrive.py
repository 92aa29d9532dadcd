"""A local Pipedrive: call logs, persons search, notes, auth and rate limits, as research/crm.md §3 and §7
describe them, so the connector is tested over real HTTP and callgate can be tried without an account.

What it imitates: ``POST/GET/DELETE /v1/callLogs`` (no update route: PUT/PATCH answer 404), the add
validation (six outcomes, required fields, ``YYYY-MM-DD HH:MM:SS`` times, duration as a digit string,
deal_id with lead_id), ``GET /api/v2/persons/search`` (``fields=phone``, ``exact_match``), ``/v1/notes``
(list by person, create, update), ``GET /v1/users/me``, token auth (``x-api-token``, ``api_token`` query,
Bearer) with the exact 401 body, ``x-ratelimit-*`` headers on every answer and 429 over the window budget.
Not imitated: recordings upload, token-based daily budgets, company-domain hosts.
"""

from __future__ import annotations

import json
import re
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.doubles import main

JSON = dict[str, Any]
Handler = Callable[[Request], Awaitable[Response]]

OUTCOMES = ("connected", "no_answer", "left_message", "left_voicemail", "wrong_number", "busy")
TIME = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$")
INFO = "Please check developers.pipedrive.com for more information about Pipedrive API."
UNAUTHORIZED = {
    "success": False,
    "error": "unauthorized access",
    "errorCode": 401,
    "error_info": "Please check developers.pipedrive.com",
}
OVER_LIMIT = {
    "success": False,
    "error": "Request over limit",
    "errorCode": 429,
    "error_info": INFO,
    "data": None,
    "additional_data": None,
}


@dataclass(slots=True)
class Scripted:
    """A reply the test wants instead of the normal one, ``times`` times, on paths containing a string."""

    status: int
    body: Any
    headers: dict[str, str]
    times: int
    path_contains: str | None


@dataclass(slots=True)
class State:
    """Everything the double holds; tests read it directly and steer it with ``inject``."""

    tokens: set[str] | None = field(default_factory=lambda: {"test-token"})  # None: any non-empty token
    rate_limit: int = 1_000  # requests per window, per the whole double
    window_seconds: float = 2.0
    company_id: int = 12882925
    user_id: int = 18487521
    call_logs: dict[str, JSON] = field(default_factory=dict)
    persons: dict[int, JSON] = field(default_factory=dict)
    notes: dict[int, JSON] = field(default_factory=dict)
    requests: list[JSON] = field(default_factory=list)
    scripted: list[Scripted] = field(default_factory=list)
    _window_start: float = 0.0
    _window_used: int = 0
    _next_id: int = 1

    def inject(
        self,
        status: int,
        body: Any,
        headers: dict[str, str] | None = None,
        times: int = 1,
        path_contains: str | None = None,
    ) -> None:
        self.scripted.append(Scripted(status, body, dict(headers or {}), times, path_contains))

    def add_person(self, name: str, phones: list[str]) -> JSON:
        person_id = self.new_id()
        person = {"id": person_id, "type": "person", "name": name, "phones": list(phones), "emails": []}
        self.persons[person_id] = person
        return person

    def add_call_log(self, **fields: Any) -> JSON:
        """A log made outside callgate (another user, another app), stored as the API would store it."""
        log = {"id": secrets.token_hex(8), "has_recording": False, "company_id": self.company_id, **fields}
        self.call_logs[log["id"]] = log
        return log

    def new_id(self) -> int:
        self._next_id += 1
        return self._next_id

    def count(self, method: str, path: str) -> int:
        """How many requests with this method hit a path starting with ``path``."""
        return sum(1 for r in self.requests if r["method"] == method and r["path"].startswith(path))

    def take_scripted(self, path: str) -> Scripted | None:
        for reply in self.scripted:
            if reply.path_contains is None or reply.path_contains in path:
                reply.times -= 1
                if reply.times <= 0:
                    self.scripted.remove(reply)
                return reply
        return None

    def spend(self) -> tuple[bool, dict[str, str]]:
        """One request against the window budget: (allowed, the x-ratelimit headers to send)."""
        now = time.monotonic()
        if now - self._window_start >= self.window_seconds:
            self._window_start, self._window_used = now, 0
        self._window_used += 1
        allowed = self._window_used <= self.rate_limit
        reset = max(1, round(self.window_seconds - (now - self._window_start)))
        headers = {
            "x-ratelimit-limit": str(self.rate_limit),
            "x-ratelimit-remaining": str(max(0, self.rate_limit - self._window_used)),
            "x-ratelimit-reset": str(reset),
        }
        return allowed, headers


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S")


def _fail(status: int, error: str) -> tuple[int, JSON]:
    return status, {
        "success": False,
        "error": error,
        "error_info": INFO,
        "data": None,
        "additional_data": None,
    }


def _ok(data: Any, additional: Any = None) -> tuple[int, JSON]:
    return 200, {"success": True, "data": data, "additional_data": additional}


def _token(request: Request) -> str | None:
    bearer = request.headers.get("authorization", "")
    if bearer.lower().startswith("bearer "):
        return bearer[7:].strip() or None
    return request.headers.get("x-api-token") or request.query_params.get("api_token") or None


async def _body(request: Request) -> JSON | None:
    try:
        parsed = json.loads(await request.body() or b"null")
    except ValueError:
        return None
    return parsed if isinstance(parsed, dict) else None


def _int(value: str | None, default: int) -> int:
    return int(value) if value is not None and value.isdigit() else default


def _page(items: list[JSON], request: Request, default_limit: int, max_limit: int) -> tuple[int, JSON]:
    """Pipedrive v1 offset paging: ``data`` (null when empty) and ``additional_data.pagination``."""
    start = _int(request.query_params.get("start"), 0)
    limit = min(_int(request.query_params.get("limit"), default_limit), max_limit)
    chunk = items[start : start + limit]
    more = start + limit < len(items)
    pagination: JSON = {"start": start, "limit": limit, "more_items_in_collection": more}
    if more:
        pagination["next_start"] = start + limit
    return _ok(chunk or None, {"pagination": pagination})


# --- routes ---------------------------------------------------------------------------------------------


def _validate_call_log(body: JSON) -> str | None:
    """The add-call-log checks of research §3.2 / §7; the messages are [U] but shaped like Pipedrive's."""
    for name in ("outcome", "to_phone_number", "start_time", "end_time"):
        if body.get(name) in (None, ""):
            return f"{name} is required"
    if body["outcome"] not in OUTCOMES:
        return "Invalid outcome value. Allowed values: " + ", ".join(OUTCOMES)
    for name in ("start_time", "end_time"):
        if not isinstance(body[name], str) or not TIME.match(body[name]):
            return f"{name} must be in format YYYY-MM-DD HH:MM:SS"
    duration = body.get("duration")
    if duration is not None and not (isinstance(duration, str) and duration.isdigit()):
        return "duration must be a string of seconds"
    if body.get("deal_id") is not None and body.get("lead_id") is not None:
        return "Only one of deal_id or lead_id can be set"
    return None


async def add_call_log(request: Request, state: State) -> tuple[int, JSON]:
    body = await _body(request)
    if body is None:
        return _fail(400, "Request body must be a JSON object")
    problem = _validate_call_log(body)
    if problem is not None:
        return _fail(400, problem)
    fields = {key: value for key, value in body.items() if key not in ("id", "has_recording", "company_id")}
    fields.setdefault("user_id", state.user_id)
    fields["activity_id"] = state.new_id()
    return _ok(state.add_call_log(**fields))


async def list_call_logs(request: Request, state: State) -> tuple[int, JSON]:
    return _page(list(state.call_logs.values()), request, 50, 50)


async def get_call_log(request: Request, state: State) -> tuple[int, JSON]:
    log = state.call_logs.get(request.path_params["id"])
    return _ok(log) if log is not None else _fail(404, "Call log not found")


async def delete_call_log(request: Request, state: State) -> tuple[int, JSON]:
    if state.call_logs.pop(request.path_params["id"], None) is None:
        return _fail(404, "Call log not found")
    return _ok(None)


async def no_update(request: Request, state: State) -> tuple[int, JSON]:
    """Call logs have no update route (research §0.2); Pipedrive answers unknown routes with 404 [U]."""
    return _fail(404, "Unknown method .")


async def search_persons(request: Request, state: State) -> tuple[int, JSON]:
    """v2 search: ``exact_match`` compares the whole phone, else the term's digits are a substring of the
    phone's digits [U: Pipedrive's real normalization]."""
    term = request.query_params.get("term", "")
    exact = request.query_params.get("exact_match", "false").lower() == "true"
    if len(term) < (1 if exact else 2):
        return _fail(400, "term must be at least 2 characters long")
    digits = re.sub(r"\D", "", term)
    items = []
    for person in state.persons.values():
        for phone in person["phones"]:
            hit = (
                phone.lower() == term.lower()
                if exact
                else bool(digits) and digits in re.sub(r"\D", "", phone)
            )
            if hit:
                items.append({"result_score": 1.0 if exact else 0.5, "item": dict(person)})
                break
    limit = _int(request.query_params.get("limit"), 100)
    return _ok({"items": items[:limit]}, {"next_cursor": None})


async def list_notes(request: Request, state: State) -> tuple[int, JSON]:
    notes = list(state.notes.values())
    person = request.query_params.get("person_id")
    if person is not None:
        notes = [note for note in notes if str(note.get("person_id")) == person]
    if request.query_params.get("sort", "").lower().endswith("desc"):
        notes.reverse()
    return _page(notes, request, 100, 500)


async def add_note(request: Request, state: State) -> tuple[int, JSON]:
    body = await _body(request)
    if body is None:
        return _fail(400, "Request body must be a JSON object")
    if not body.get("content"):
        return _fail(400, "Note content is required")
    owners = ("lead_id", "deal_id", "person_id", "org_id", "project_id")
    if all(body.get(key) is None for key in owners):
        return _fail(400, "Note must be attached to a lead, deal, person, organization or project")
    stamp = _now()
    note = {"user_id": state.user_id, **body, "id": state.new_id(), "add_time": stamp, "update_time": stamp}
    note["active_flag"] = True
    state.notes[note["id"]] = note
    return _ok(note)


async def update_note(request: Request, state: State) -> tuple[int, JSON]:
    note = state.notes.get(_int(request.path_params["id"], -1))
    if note is None:
        return _fail(404, "Note not found")
    body = await _body(request)
    if body is None:
        return _fail(400, "Request body must be a JSON object")
    note.update({key: value for key, value in body.items() if key not in ("id", "add_time")})
    note["update_time"] = _now()
    return _ok(note)


async def users_me(request: Request, state: State) -> tuple[int, JSON]:
    return _ok(
        {"id": state.user_id, "name": "Double User", "company_id": state.company_id, "active_flag": True}
    )


ApiRoute = Callable[[Request, State], Awaitable[tuple[int, JSON]]]


def _api(state: State, route: ApiRoute) -> Handler:
    """Every API route: logged, then a scripted reply, auth, the rate budget, and the headers on all."""

    async def handle(request: Request) -> Response:
        state.requests.append(
            {"method": request.method, "path": request.url.path, "query": dict(request.query_params)}
        )
        allowed, limit_headers = state.spend()
        scripted = state.take_scripted(request.url.path)
        if scripted is not None:
            return JSONResponse(scripted.body, scripted.status, {**limit_headers, **scripted.headers})
        token = _token(request)
        if token is None or (state.tokens is not None and token not in state.tokens):
            return JSONResponse(UNAUTHORIZED, 401, limit_headers)
        if not allowed:
            return JSONResponse(OVER_LIMIT, 429, limit_headers)
        status, body = await route(request, state)
        return JSONResponse(body, status, limit_headers)

    return handle


def app(state: State) -> Starlette:
    async def dump(request: Request) -> Response:
        return JSONResponse(
            {
                "call_logs": list(state.call_logs.values()),
                "notes": list(state.notes.values()),
                "persons": list(state.persons.values()),
            }
        )

    async def seed_person(request: Request) -> Response:
        body = await _body(request) or {}
        phones = [str(phone) for phone in body.get("phones") or []]
        return JSONResponse(state.add_person(str(body.get("name") or "Someone"), phones), 201)

    def api(path: str, route: ApiRoute, methods: list[str]) -> Route:
        return Route(path, _api(state, route), methods=methods)

    return Starlette(
        routes=[
            api("/v1/callLogs", add_call_log, ["POST"]),
            api("/v1/callLogs", list_call_logs, ["GET"]),
            api("/v1/callLogs/{id}", get_call_log, ["GET"]),
            api("/v1/callLogs/{id}", delete_call_log, ["DELETE"]),
            api("/v1/callLogs/{id}", no_update, ["PUT", "PATCH"]),
            api("/api/v2/persons/search", search_persons, ["GET"]),
            api("/v1/notes", list_notes, ["GET"]),
            api("/v1/notes", add_note, ["POST"]),
            api("/v1/notes/{id}", update_note, ["PUT"]),
            api("/v1/users/me", users_me, ["GET"]),
            Route("/__double__/state", dump, methods=["GET"]),
            Route("/__double__/persons", seed_person, methods=["POST"]),
        ]
    )


def _demo_state() -> State:
    state = State(tokens=None, rate_limit=40)  # the example limit of research §3.4
    state.add_person("Ada Example", ["+14155550123"])
    return state


if __name__ == "__main__":
    main("pipedrive", app(_demo_state()), 9102)
