"""A local Salesforce: Tasks, Contacts, SOSL and SOQL, the token endpoint and the API allocation, as
research/crm.md §2 and §7 describe them, so the connector is tested over real HTTP and callgate can be tried
without an org.

What it imitates: ``POST …/sobjects/Task/`` (201 ``{id, success, errors}``); the upsert ``PATCH
…/sobjects/Task/{ExtField}/{value}`` (201 ``created: true``; 200 ``created: false``, or 204 with no body
before API 46.0; 300 with record URLs when two Tasks hold the value; 404 ``NOT_FOUND`` for a field that is not
an external id); ``GET``/``PATCH`` (204)/``DELETE`` by Id and ``GET`` by external id; ``…/sobjects/Task/
describe``; field checks (unknown field, restricted picklists ``CallType``/``Status``/``TaskSubtype``/
``Priority``, ``TaskSubtype`` on an update → ``INVALID_FIELD_FOR_INSERT_UPDATE``, string lengths, types,
``WhoId`` must name a Contact); SOSL ``FIND {…} IN PHONE FIELDS RETURNING Contact(…)`` (reserved characters
must be escaped; a term matches a phone whose digits contain its digits [U]); a small SOQL (``SELECT … FROM
Contact|Task [WHERE f = 'v' [AND|OR …]] [LIMIT n]``); ``GET …/limits``; ``POST /services/oauth2/token``
(client credentials, in the form or HTTP Basic); Bearer auth with 401 ``INVALID_SESSION_ID``;
``Sforce-Limit-Info: api-usage=n/N`` on every API answer and 403 ``REQUEST_LIMIT_EXCEEDED`` once n > N;
scripted replies (``inject``).
Not imitated: composite and collections, Leads, Shared Activities, duplicate rules, the JWT bearer flow.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, unquote

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.doubles import main

JSON = dict[str, Any]
Answer = tuple[int, Any]  # status and JSON body (None: no body)

TASK_FIELDS = frozenset(
    {
        "Subject",
        "ActivityDate",
        "Status",
        "Priority",
        "Type",
        "TaskSubtype",
        "CallType",
        "CallDurationInSeconds",
        "CallDisposition",
        "CallObject",
        "Description",
        "WhoId",
        "WhatId",
        "OwnerId",
    }
)
CONTACT_FIELDS = ("Id", "FirstName", "LastName", "Name", "Phone", "MobilePhone", "Email")
PICKLISTS: dict[str, tuple[str, frozenset[str]]] = {  # field -> (label, allowed values): restricted
    "CallType": ("Call Type", frozenset({"Inbound", "Internal", "Outbound"})),
    "Status": (
        "Status",
        frozenset({"Not Started", "In Progress", "Completed", "Waiting on someone else", "Deferred"}),
    ),
    "TaskSubtype": ("Task Subtype", frozenset({"Task", "Email", "LinkedIn", "ListEmail", "Call"})),
    "Priority": ("Priority", frozenset({"High", "Normal", "Low"})),
}
LENGTHS = {"Subject": 255, "CallDisposition": 255, "CallObject": 255, "Type": 255, "Description": 32_000}
DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
VERSION = re.compile(r"^v(\d+)\.(\d)$")
SOSL = re.compile(
    r"^\s*FIND\s+\{((?:[^{}\\]|\\.)*)\}\s+IN\s+(PHONE|ALL|NAME|EMAIL)\s+FIELDS\s+RETURNING\s+(\w+)\s*"
    r"\(([^()]*)\)(?:\s+LIMIT\s+(\d+))?\s*$",
    re.IGNORECASE,
)
SOQL = re.compile(
    r"^\s*SELECT\s+(.+?)\s+FROM\s+(\w+)(?:\s+WHERE\s+(.+?))?(?:\s+LIMIT\s+(\d+))?\s*$", re.IGNORECASE
)
CONDITION = re.compile(r"^\s*(\w+)\s*=\s*'((?:[^'\\]|\\.)*)'\s*$")
RESERVED = frozenset("?&|!{}[]()^~:\\'+-")  # in a SOSL term, unless escaped (``*`` and ``"`` are syntax)
NOT_FOUND = [{"message": "The requested resource does not exist", "errorCode": "NOT_FOUND"}]
EXPIRED = [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}]
OVER_LIMIT = [{"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}]


def error(code: str, message: str, *fields: str) -> list[JSON]:
    """Salesforce's error body: an array of ``{message, errorCode, fields}``."""
    return [{"message": message, "errorCode": code, "fields": list(fields)}]


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
    """Everything the double holds; tests read it directly and steer it (``inject``, ``expire_tokens``)."""

    valid_tokens: set[str] | None = field(default_factory=lambda: {"00Dtest!token"})  # None: any token
    clients: dict[str, str] | None = field(default_factory=dict)  # client_id -> secret; None: any client
    api_limit: int = 100_000  # the daily allocation N
    api_usage: int = 0  # n, counted per authenticated API request
    external_fields: set[str] = field(default_factory=lambda: {"Callgate_Call_Id__c"})
    # restricted picklists: field -> (label, values); an org can rename its Task statuses (TaskStatus)
    picklists: dict[str, tuple[str, frozenset[str]]] = field(default_factory=lambda: dict(PICKLISTS))
    user_id: str = "005000000000001AAA"
    tasks: dict[str, JSON] = field(default_factory=dict)
    contacts: dict[str, JSON] = field(default_factory=dict)
    requests: list[JSON] = field(default_factory=list)
    scripted: list[Scripted] = field(default_factory=list)
    issued: int = 0  # tokens handed out by the token endpoint
    _next_id: int = 0

    def inject(
        self,
        status: int,
        body: Any,
        headers: dict[str, str] | None = None,
        times: int = 1,
        path_contains: str | None = None,
    ) -> None:
        self.scripted.append(Scripted(status, body, dict(headers or {}), times, path_contains))

    def expire_tokens(self) -> None:
        """Every token handed out so far stops working (a session timeout): the next call gets 401."""
        self.valid_tokens = set()

    def new_id(self, prefix: str) -> str:
        """An 18-character id with the object's key prefix (Task ``00T``, Contact ``003``)."""
        self._next_id += 1
        return f"{prefix}{self._next_id:012d}AAA"

    def add_contact(self, phone: str | None = None, mobile: str | None = None, **fields: Any) -> JSON:
        contact_id = self.new_id("003")
        first, last = fields.pop("FirstName", "Ada"), fields.pop("LastName", "Example")
        contact = {
            "Id": contact_id,
            "FirstName": first,
            "LastName": last,
            "Name": f"{first} {last}",
            "Phone": phone,
            "MobilePhone": mobile,
            **fields,
        }
        self.contacts[contact_id] = contact
        return contact

    def add_task(self, **fields: Any) -> JSON:
        """A Task made outside callgate (another user, an import), stored as the API would store it."""
        task = {"Id": self.new_id("00T"), "Status": "Not Started", "Priority": "Normal", **fields}
        task.setdefault("OwnerId", self.user_id)
        self.tasks[task["Id"]] = task
        return task

    def by_external(self, name: str, value: str) -> list[JSON]:
        return [task for task in self.tasks.values() if task.get(name) == value]

    def count(self, method: str, path_contains: str) -> int:
        """How many requests with this method hit a path containing ``path_contains``."""
        return sum(1 for r in self.requests if r["method"] == method and path_contains in r["path"])

    def take_scripted(self, path: str) -> Scripted | None:
        for reply in self.scripted:
            if reply.path_contains is None or reply.path_contains in path:
                reply.times -= 1
                if reply.times <= 0:
                    self.scripted.remove(reply)
                return reply
        return None

    def limit_info(self) -> dict[str, str]:
        return {"Sforce-Limit-Info": f"api-usage={self.api_usage}/{self.api_limit}"}


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.000+0000")


def _version(request: Request) -> tuple[int, int] | None:
    match = VERSION.match(request.path_params.get("version", ""))
    return (int(match.group(1)), int(match.group(2))) if match else None


def _url(request: Request, sobject: str, record_id: str) -> str:
    return f"/services/data/{request.path_params['version']}/sobjects/{sobject}/{record_id}"


def _record(request: Request, sobject: str, record: JSON, fields: list[str] | None = None) -> JSON:
    """A record as the REST API returns it: ``attributes`` first, then the (selected) fields."""
    chosen = record if fields is None else {name: record.get(name) for name in fields}
    return {"attributes": {"type": sobject, "url": _url(request, sobject, record["Id"])}, **chosen}


async def _body(request: Request) -> JSON | None:
    try:
        parsed = json.loads(await request.body() or b"null")
    except ValueError:
        return None
    return parsed if isinstance(parsed, dict) else None


# --- validation -----------------------------------------------------------------------------------------


def _check_value(state: State, name: str, value: Any) -> list[JSON] | None:
    if name in state.picklists:
        label, allowed = state.picklists[name]
        if value not in allowed:
            message = f"{label}: bad value for restricted picklist field: {value}"
            return error("INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST", message, name)
    if name in LENGTHS and value is not None:
        if not isinstance(value, str):
            return error("JSON_PARSER_ERROR", f"Cannot deserialize instance of string for {name}")
        if len(value) > LENGTHS[name]:
            message = f"{name}: data value too large: {value[:20]}... (max length={LENGTHS[name]})"
            return error("STRING_TOO_LONG", message, name)
    if name == "CallDurationInSeconds" and (isinstance(value, bool) or not isinstance(value, int | None)):
        return error("JSON_PARSER_ERROR", f"Cannot deserialize instance of int from value {value!r}")
    if name == "ActivityDate" and value is not None and not (isinstance(value, str) and DATE.match(value)):
        return error("JSON_PARSER_ERROR", f"Cannot deserialize instance of date from value {value!r}")
    if name == "WhoId" and value is not None and value not in state.contacts:
        return error("FIELD_INTEGRITY_EXCEPTION", f"Name ID: id value of incorrect type: {value}", name)
    return None


def validate(state: State, body: JSON, *, create: bool, external: str | None = None) -> list[JSON] | None:
    """The first problem with a Task body, as Salesforce reports it; None when it would be saved."""
    if "Id" in body:
        return error("INVALID_FIELD", "The Id field should not be specified in the sobject data.")
    if external is not None and external in body:  # [S] aiosalesforce; the exact message is [U]
        return error(
            "INVALID_FIELD", f"The external ID field {external} should not be in the body.", external
        )
    for name, value in body.items():
        if name not in TASK_FIELDS and name not in state.external_fields:
            return error("INVALID_FIELD", f"No such column '{name}' on sobject of type Task")
        if name == "TaskSubtype" and not create:
            message = (
                "Unable to create/update fields: TaskSubtype. Please check the security settings of this "
                "field and verify that it is read/write for your profile or permission set."
            )
            return error("INVALID_FIELD_FOR_INSERT_UPDATE", message, name)
        problem = _check_value(state, name, value)
        if problem is not None:
            return problem
    return None


def _create_task(state: State, body: JSON) -> JSON:
    stamp = _now()
    task = {"Status": "Not Started", "Priority": "Normal", "OwnerId": state.user_id, **body}
    task.update({"Id": state.new_id("00T"), "CreatedDate": stamp, "LastModifiedDate": stamp})
    state.tasks[task["Id"]] = task
    return task


def _update_task(task: JSON, body: JSON) -> None:
    task.update(body)
    task["LastModifiedDate"] = _now()


# --- routes ---------------------------------------------------------------------------------------------


async def create(request: Request, state: State) -> Answer:
    if request.path_params["sobject"] != "Task":
        return 404, NOT_FOUND
    body = await _body(request)
    if body is None:
        return 400, error("JSON_PARSER_ERROR", "The request body must be a JSON object")
    problem = validate(state, body, create=True)
    if problem is not None:
        return 400, problem
    return 201, {"id": _create_task(state, body)["Id"], "success": True, "errors": []}


async def by_id(request: Request, state: State) -> Answer:
    """``…/sobjects/{Task|Contact}/{id}``: describe, read, update (204) and delete (204)."""
    sobject, record_id = request.path_params["sobject"], request.path_params["id"]
    if sobject == "Task" and record_id == "describe" and request.method == "GET":
        return 200, _describe(state)
    records = {"Task": state.tasks, "Contact": state.contacts}.get(sobject)
    record = None if records is None else records.get(record_id)
    if records is None or record is None:
        return 404, NOT_FOUND
    if request.method == "GET":
        fields = request.query_params.get("fields")
        return 200, _record(request, sobject, record, fields.split(",") if fields else None)
    if request.method == "DELETE":
        del records[record_id]
        return 204, None
    body = await _body(request)
    if body is None:
        return 400, error("JSON_PARSER_ERROR", "The request body must be a JSON object")
    problem = validate(state, body, create=False) if sobject == "Task" else None
    if problem is not None:
        return 400, problem
    _update_task(record, body)
    return 204, None


async def by_external_id(request: Request, state: State) -> Answer:
    """``…/sobjects/Task/{field}/{value}``: GET reads, PATCH upserts (research §2.4)."""
    name, value = request.path_params["field"], request.path_params["value"]  # decoded by Starlette
    if request.path_params["sobject"] != "Task" or name not in state.external_fields:
        return 404, NOT_FOUND
    matches = state.by_external(name, value)
    if len(matches) > 1:
        return 300, [_url(request, "Task", task["Id"]) for task in matches]
    if request.method == "GET":
        if not matches:
            return 404, NOT_FOUND
        fields = request.query_params.get("fields")
        return 200, _record(request, "Task", matches[0], fields.split(",") if fields else None)
    body = await _body(request)
    if body is None:
        return 400, error("JSON_PARSER_ERROR", "The request body must be a JSON object")
    if not matches and request.query_params.get("updateOnly", "").lower() == "true":
        return 404, NOT_FOUND
    problem = validate(state, body, create=not matches, external=name)
    if problem is not None:
        return 400, problem
    modern = (_version(request) or (0, 0)) >= (46, 0)  # ``created`` and the 200 exist from 46.0
    if matches:
        _update_task(matches[0], body)
        if not modern:
            return 204, None
        return 200, {"id": matches[0]["Id"], "success": True, "errors": [], "created": False}
    task = _create_task(state, {**body, name: value})
    answer: JSON = {"id": task["Id"], "success": True, "errors": []}
    return 201, {**answer, "created": True} if modern else answer


def _describe(state: State) -> JSON:
    names = sorted(TASK_FIELDS | state.external_fields | {"Id"})
    fields = [
        {"name": name, "externalId": name in state.external_fields, "updateable": name != "TaskSubtype"}
        for name in names
    ]
    return {"name": "Task", "label": "Task", "keyPrefix": "00T", "fields": fields}


def _sosl_terms(raw: str) -> list[str] | None:
    """The search words of a SOSL term (``OR`` between them); None when a reserved character is bare."""
    words: list[str] = []
    for token in raw.split():
        if token.upper() in ("OR", "AND"):
            continue
        word, escaped = [], False
        for char in token:
            if escaped:
                word.append(char)
                escaped = False
            elif char == "\\":
                escaped = True
            elif char in RESERVED:
                return None
            elif char not in '*"':
                word.append(char)
        words.append("".join(word))
    return words


def _phones(contact: JSON) -> list[str]:
    return [str(contact[name]) for name in ("Phone", "MobilePhone") if contact.get(name)]


async def search(request: Request, state: State) -> Answer:
    """SOSL over the Contacts; in PHONE FIELDS a term matches a phone whose digits contain its digits."""
    match = SOSL.match(request.query_params.get("q", ""))
    if match is None:
        return 400, error(
            "MALFORMED_SEARCH", "No search term found. The search term must be enclosed in braces."
        )
    raw, scope, sobject, selected, limit = match.groups()
    words = _sosl_terms(raw)
    if words is None:
        return 400, error("MALFORMED_SEARCH", "line 1:1 mismatched character: reserved characters need a \\")
    digits = [re.sub(r"\D", "", word) for word in words]
    if sobject != "Contact" or not any(len(d) >= 2 for d in digits):
        return 400, error("MALFORMED_SEARCH", "search term must be longer than one character")
    fields = [name.strip() for name in selected.split(",") if name.strip()] or ["Id"]
    unknown = [name for name in fields if name not in CONTACT_FIELDS]
    if unknown:
        return 400, error("INVALID_FIELD", f"No such column '{unknown[0]}' on entity 'Contact'")
    found = [
        _record(request, "Contact", contact, fields)
        for contact in state.contacts.values()
        if scope.upper() in ("PHONE", "ALL")
        and any(d and d in re.sub(r"\D", "", phone) for d in digits for phone in _phones(contact))
    ]
    return 200, {"searchRecords": found[: int(limit or 2000)]}


async def query(request: Request, state: State) -> Answer:
    """A small SOQL: equality conditions joined by one kind of AND/OR, on Contact or Task."""
    match = SOQL.match(request.query_params.get("q", ""))
    if match is None:
        return 400, error("MALFORMED_QUERY", "unexpected token")
    selected, sobject, where, limit = match.groups()
    records = {"Task": state.tasks, "Contact": state.contacts}.get(sobject)
    if records is None:
        return 400, error("INVALID_TYPE", f"sObject type '{sobject}' is not supported.")
    joiner = " OR " if re.search(r"\sOR\s", where or "", re.IGNORECASE) else " AND "
    conditions = []
    for part in re.split(joiner, where, flags=re.IGNORECASE) if where else []:
        condition = CONDITION.match(part)
        if condition is None:
            return 400, error("MALFORMED_QUERY", f"unexpected token: {part.strip()}")
        conditions.append((condition.group(1), re.sub(r"\\(.)", r"\1", condition.group(2))))
    test = any if joiner == " OR " else all
    hits = [r for r in records.values() if test(r.get(name) == value for name, value in conditions)]
    fields = [name.strip() for name in selected.split(",")]
    chosen = [_record(request, sobject, r, fields) for r in hits[: int(limit or 2000)]]
    return 200, {"totalSize": len(chosen), "done": True, "records": chosen}


async def limits(request: Request, state: State) -> Answer:
    remaining = max(0, state.api_limit - state.api_usage)
    return 200, {
        "DailyApiRequests": {"Max": state.api_limit, "Remaining": remaining},
        "ConcurrentPerOrgLongTxn": {"Max": 25, "Remaining": 25},
    }


ApiRoute = Callable[[Request, State], Awaitable[Answer]]


def _respond(status: int, body: Any, headers: dict[str, str]) -> Response:
    if body is None:
        return Response(status_code=status, headers=headers)
    if isinstance(body, bytes):  # a scripted non-JSON answer (a proxy's page, garbage)
        return Response(body, status, headers)
    return JSONResponse(body, status, headers)


def _bearer(request: Request) -> str | None:
    value = request.headers.get("authorization", "")
    return value[7:].strip() or None if value.lower().startswith("bearer ") else None


def _api(state: State, route: ApiRoute) -> Callable[[Request], Awaitable[Response]]:
    """Every data API route: logged, then a scripted reply, auth, the allocation, the limit header on all."""

    async def handle(request: Request) -> Response:
        raw = await request.body()
        state.requests.append(
            {
                "method": request.method,
                "path": request.url.path,
                "query": dict(request.query_params),
                "body": json.loads(raw) if raw.strip().startswith(b"{") else None,
            }
        )
        scripted = state.take_scripted(request.url.path)
        if scripted is not None:
            return _respond(scripted.status, scripted.body, {**state.limit_info(), **scripted.headers})
        token = _bearer(request)
        if token is None or (state.valid_tokens is not None and token not in state.valid_tokens):
            return _respond(401, EXPIRED, state.limit_info())
        state.api_usage += 1
        if state.api_usage > state.api_limit:
            return _respond(403, OVER_LIMIT, state.limit_info())
        if _version(request) is None:
            return _respond(404, NOT_FOUND, state.limit_info())
        status, body = await route(request, state)
        return _respond(status, body, state.limit_info())

    return handle


def _client_credentials(request: Request, form: dict[str, str]) -> tuple[str, str]:
    """From the form, or from HTTP Basic (both are accepted by Salesforce's token endpoint)."""
    header = request.headers.get("authorization", "")
    if header.lower().startswith("basic "):
        try:
            user, _, password = base64.b64decode(header[6:]).decode().partition(":")
        except ValueError:
            return "", ""
        return unquote(user), unquote(password)
    return form.get("client_id", ""), form.get("client_secret", "")


def app(state: State) -> Starlette:
    async def token(request: Request) -> Response:
        state.requests.append({"method": "POST", "path": request.url.path, "query": {}, "body": None})
        scripted = state.take_scripted(request.url.path)
        if scripted is not None:
            return _respond(scripted.status, scripted.body, scripted.headers)
        form = dict(parse_qsl((await request.body()).decode("utf-8", errors="replace")))
        if form.get("grant_type") != "client_credentials":
            refusal = {"error": "unsupported_grant_type", "error_description": "grant type not supported"}
            return JSONResponse(refusal, 400)
        client_id, secret = _client_credentials(request, form)
        known = state.clients is None or (client_id in state.clients and state.clients[client_id] == secret)
        if not client_id or not known:
            refusal = {"error": "invalid_client", "error_description": "invalid client credentials"}
            return JSONResponse(refusal, 400)
        access = f"00D000000000001!{secrets.token_urlsafe(24)}"
        if state.valid_tokens is not None:
            state.valid_tokens.add(access)
        state.issued += 1
        base = f"{request.url.scheme}://{request.url.netloc}"
        answer = {
            "access_token": access,
            "instance_url": base,
            "id": f"{base}/id/00D000000000001AAA/{state.user_id}",
            "token_type": "Bearer",
            "issued_at": str(int(datetime.now(UTC).timestamp() * 1000)),
            "signature": base64.b64encode(secrets.token_bytes(32)).decode(),
            "scope": "api",
        }
        return JSONResponse(answer)

    async def dump(request: Request) -> Response:
        return JSONResponse(
            {
                "tasks": list(state.tasks.values()),
                "contacts": list(state.contacts.values()),
                "api_usage": f"{state.api_usage}/{state.api_limit}",
            }
        )

    async def seed_contact(request: Request) -> Response:
        body = await _body(request) or {}
        fields = {key: value for key, value in body.items() if key in CONTACT_FIELDS and key != "Id"}
        return JSONResponse(state.add_contact(**fields), 201)

    def api(path: str, route: ApiRoute, methods: list[str]) -> Route:
        return Route(f"/services/data/{{version}}{path}", _api(state, route), methods=methods)

    return Starlette(
        routes=[
            Route("/services/oauth2/token", token, methods=["POST"]),
            api("/limits", limits, ["GET"]),
            api("/limits/", limits, ["GET"]),
            api("/search", search, ["GET"]),
            api("/search/", search, ["GET"]),
            api("/query", query, ["GET"]),
            api("/query/", query, ["GET"]),
            api("/sobjects/{sobject}", create, ["POST"]),
            api("/sobjects/{sobject}/", create, ["POST"]),
            api("/sobjects/{sobject}/{id}", by_id, ["GET", "PATCH", "DELETE"]),
            api("/sobjects/{sobject}/{field}/{value}", by_external_id, ["GET", "PATCH"]),
            Route("/__double__/state", dump, methods=["GET"]),
            Route("/__double__/contacts", seed_contact, methods=["POST"]),
        ]
    )


def _demo_state() -> State:
    state = State(valid_tokens=None, clients=None)  # any token, any client id and secret
    state.add_contact(phone="+14155550123", FirstName="Ada", LastName="Example")
    return state


if __name__ == "__main__":
    main("salesforce", app(_demo_state()), 9101)
