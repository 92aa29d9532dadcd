"""A local HubSpot: call engagements, contacts, search, associations, auth and rate limits, as
research/crm.md §1 and §7 describe them, so the connector is tested over real HTTP and callgate can be
tried without a portal.

What it imitates:

- ``POST /crm/v3/objects/calls`` → 201 SimplePublicObject (string id, every value echoed as a string),
  inline ``associations`` (call → contact, HUBSPOT_DEFINED 194); ``GET`` list (``limit``/``after``) and
  read (``associations=contacts``); ``PATCH`` → 200 (an empty string clears), unknown id → 404
  ``OBJECT_NOT_FOUND``; ``DELETE`` → 204.
- Property validation → 400 ``VALIDATION_ERROR`` with the per-property errors embedded in ``message``:
  missing ``hs_timestamp`` on create, unknown property (``PROPERTY_DOESNT_EXIST``; the double knows the
  documented ``hs_call_*`` properties, ``hubspot_owner_id`` and the custom ones in ``State``), bad enum
  (``INVALID_OPTION``), non-digit duration (``INVALID_INTEGER``), non-HTTPS recording URL, over-long values.
- ``POST /crm/v3/objects/{calls,contacts}/search``: OR across filterGroups, AND within a group, the
  documented group/filter limits, ``{total, results, paging?}``; contacts carry the calculated national
  phone digits HubSpot derives [S]. An optional index lag hides fresh records from search.
- Associations: the v4 default PUT and the v3 typed PUT.
- Auth: ``Authorization: Bearer`` against ``valid_tokens`` → 401 ``INVALID_AUTHENTICATION``.
- A token bucket of ``rate_limit`` per 10 s → 429 with the §1.8 body (``policyName``) and
  ``X-HubSpot-RateLimit-*`` headers on non-search answers; search has its own ~5/s bucket answering the
  SECONDLY variant.

Not imitated: batch endpoints, idProperty, properties/owners APIs, daily limits (inject them), exact
messages marked [U] in the research.
"""

from __future__ import annotations

import json
import re
import secrets
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import phonenumbers
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.doubles import main

JSON = dict[str, Any]
Handler = Callable[[Request], Awaitable[Response]]

CALL_STATUSES = (
    "BUSY",
    "CALLING_CRM_USER",
    "CANCELED",
    "COMPLETED",
    "CONNECTING",
    "FAILED",
    "IN_PROGRESS",
    "NO_ANSWER",
    "QUEUED",
    "RINGING",
)
ENUMS: dict[str, tuple[str, ...]] = {
    "hs_call_direction": ("INBOUND", "OUTBOUND"),
    "hs_call_status": CALL_STATUSES,
    "hs_call_source": ("INTEGRATIONS_PLATFORM",),
}
CALL_PROPERTIES = frozenset(
    {
        "hs_timestamp",
        "hs_call_title",
        "hs_call_body",
        "hs_call_direction",
        "hs_call_duration",
        "hs_call_from_number",
        "hs_call_to_number",
        "hs_call_recording_url",
        "hs_call_status",
        "hs_call_disposition",
        "hs_call_callee_object_id",
        "hs_call_callee_object_type",
        "hs_call_source",
        "hs_call_has_voicemail",
        "hs_activity_type",
        "hs_attachment_ids",
        "hubspot_owner_id",
    }
)
READ_ONLY = frozenset(
    {"hs_object_id", "createdate", "hs_createdate", "hs_lastmodifieddate", "lastmodifieddate"}
)
CONTACT_PROPERTIES = frozenset(
    {
        "firstname",
        "lastname",
        "email",
        "phone",
        "mobilephone",
        "hubspot_owner_id",
        "hs_searchable_calculated_phone_number",
        "hs_searchable_calculated_mobile_number",
        "hs_calculated_phone_number_country_code",
    }
)
VALUE_LIMIT = 65_536  # the often-cited string property limit (research §8.7, [U])
CALL_TO_CONTACT = 194
OPERATORS = frozenset({"EQ", "NEQ", "IN", "NOT_IN", "HAS_PROPERTY", "NOT_HAS_PROPERTY"})
MAX_GROUPS, MAX_FILTERS_PER_GROUP, MAX_FILTERS = 5, 10, 25
UNAUTHORIZED = (
    "Authentication credentials not found. This API supports OAuth 2.0 authentication and you can find more "
    "details at https://developers.hubspot.com/docs/methods/auth/oauth-overview"
)


def error_body(category: str, message: str, **extra: Any) -> JSON:
    """HubSpot's error object (research §1.9): status, message, correlationId, category."""
    return {
        "status": "error",
        "message": message,
        "correlationId": str(uuid.uuid4()),
        "category": category,
        **extra,
    }


def rate_limit_body(policy: str = "TEN_SECONDLY_ROLLING") -> JSON:
    """The §1.8 429 body; ``policy`` is TEN_SECONDLY_ROLLING, SECONDLY or DAILY."""
    names = {"TEN_SECONDLY_ROLLING": "ten_secondly_rolling", "SECONDLY": "secondly", "DAILY": "daily"}
    return {
        "status": "error",
        "message": f"You have reached your {names.get(policy, policy.lower())} limit.",
        "errorType": "RATE_LIMIT",
        "correlationId": str(uuid.uuid4()),
        "policyName": policy,
        "requestId": str(uuid.uuid4()),
    }


def property_error(name: str, error: str, message: str) -> JSON:
    return {
        "isValid": False,
        "message": message,
        "error": error,
        "name": name,
        "localizedErrorMessage": message,
        "portalId": 12345678,
    }


def invalid_properties(errors: list[JSON]) -> tuple[int, JSON]:
    """400 VALIDATION_ERROR with the per-property errors embedded as JSON in the message, as HubSpot does."""
    embedded = json.dumps(errors, separators=(",", ":"))
    return 400, error_body("VALIDATION_ERROR", f"Property values were not valid: {embedded}")


@dataclass(slots=True)
class Scripted:
    """A reply the test wants instead of the normal one, ``times`` times, on paths containing a string."""

    status: int
    body: Any  # JSON-able, or bytes/str sent as they are
    headers: dict[str, str]
    times: int
    path_contains: str | None
    method: str | None
    path: str | None  # the exact path, when a substring would match several routes


@dataclass(slots=True)
class Bucket:
    """A token bucket: ``capacity`` requests, refilled evenly over ``window`` seconds."""

    capacity: int
    window: float
    tokens: float = -1.0
    stamp: float = 0.0

    def take(self) -> bool:
        now = time.monotonic()
        if self.tokens < 0:
            self.tokens, self.stamp = float(self.capacity), now
        self.tokens = min(
            float(self.capacity), self.tokens + (now - self.stamp) * self.capacity / self.window
        )
        self.stamp = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True


@dataclass(slots=True)
class State:
    """Everything the double holds; tests read it directly and steer it with ``inject``."""

    valid_tokens: set[str] | None = field(default_factory=lambda: {"test-token"})  # None: any bearer
    rate_limit: int = 1_000  # requests per 10 s (the burst limit), per the whole double
    search_per_second: int = 1_000  # HubSpot's is ~5
    search_lag: float = 0.0  # seconds a new or changed record stays invisible to search
    custom_properties: set[str] = field(default_factory=lambda: {"callgate_call_id"})
    default_region: str = "US"  # how the double derives the calculated phone digits of contacts
    calls: dict[str, JSON] = field(default_factory=dict)
    contacts: dict[str, JSON] = field(default_factory=dict)
    associations: set[tuple[str, str]] = field(default_factory=set)  # (call id, contact id)
    requests: list[JSON] = field(default_factory=list)
    scripted: list[Scripted] = field(default_factory=list)
    _burst: Bucket | None = None
    _search: Bucket | None = None
    _indexed: dict[str, float] = field(default_factory=dict)
    _next_id: int = 51_234_567_890

    def inject(
        self,
        status: int,
        body: Any,
        headers: dict[str, str] | None = None,
        times: int = 1,
        path_contains: str | None = None,
        method: str | None = None,
        path: str | None = None,
    ) -> None:
        self.scripted.append(Scripted(status, body, dict(headers or {}), times, path_contains, method, path))

    def new_id(self) -> str:
        self._next_id += 1
        return str(self._next_id)

    def add_contact(self, phone: str | None = None, mobilephone: str | None = None, **props: str) -> JSON:
        """A contact as the UI would store it: phones as typed, plus the national digits HubSpot derives."""
        given = {"phone": phone, "mobilephone": mobilephone, **props}
        values = {key: value for key, value in given.items() if value is not None}
        contact = self._object(self.new_id(), {**values, **self._calculated(values)})
        contact["properties"]["lastmodifieddate"] = contact["updatedAt"]
        self.contacts[contact["id"]] = contact
        return contact

    def add_call(self, **props: str) -> JSON:
        """A call record made outside callgate, stored as the API would store it."""
        call = self._object(self.new_id(), props)
        self.calls[call["id"]] = call
        return call

    def contacts_of(self, call_id: str) -> list[str]:
        return sorted(contact for call, contact in self.associations if call == call_id)

    def count(self, method: str, path: str) -> int:
        """How many requests with this method hit a path starting with ``path``."""
        return sum(1 for r in self.requests if r["method"] == method and r["path"].startswith(path))

    def take_scripted(self, method: str, path: str) -> Scripted | None:
        for reply in self.scripted:
            if reply.path_contains is not None and reply.path_contains not in path:
                continue
            if reply.method is not None and reply.method.upper() != method:
                continue
            if reply.path is not None and reply.path != path:
                continue
            reply.times -= 1
            if reply.times <= 0:
                self.scripted.remove(reply)
            return reply
        return None

    def burst(self) -> Bucket:
        if self._burst is None or self._burst.capacity != self.rate_limit:
            self._burst = Bucket(self.rate_limit, 10.0)
        return self._burst

    def search_bucket(self) -> Bucket:
        if self._search is None or self._search.capacity != self.search_per_second:
            self._search = Bucket(self.search_per_second, 1.0)
        return self._search

    def searchable(self, record_id: str) -> bool:
        return time.monotonic() >= self._indexed.get(record_id, 0.0)

    def touched(self, record: JSON) -> None:
        stamp = _now()
        record["updatedAt"] = stamp
        record["properties"]["hs_lastmodifieddate"] = stamp
        self._indexed[record["id"]] = time.monotonic() + self.search_lag

    def _object(self, record_id: str, props: dict[str, str]) -> JSON:
        stamp = _now()
        record = {
            "id": record_id,
            "properties": {
                **props,
                "createdate": stamp,
                "hs_lastmodifieddate": stamp,
                "hs_object_id": record_id,
            },
            "createdAt": stamp,
            "updatedAt": stamp,
            "archived": False,
        }
        self._indexed[record_id] = time.monotonic() + self.search_lag
        return record

    def _calculated(self, props: dict[str, str]) -> dict[str, str]:
        derived: dict[str, str] = {}
        for source, target in (
            ("phone", "hs_searchable_calculated_phone_number"),
            ("mobilephone", "hs_searchable_calculated_mobile_number"),
        ):
            raw = props.get(source)
            if not raw:
                continue
            try:
                parsed = phonenumbers.parse(raw, self.default_region)
            except phonenumbers.NumberParseException:
                continue
            derived[target] = str(parsed.national_number)
            if source == "phone":
                derived["hs_calculated_phone_number_country_code"] = str(parsed.country_code)
        return derived


def _now() -> str:
    moment = datetime.now(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


async def _json(request: Request) -> Any:
    try:
        return json.loads(await request.body() or b"null")
    except ValueError:
        return None


def _bad_request(message: str) -> tuple[int, JSON]:
    return 400, error_body("VALIDATION_ERROR", message)


def _not_found() -> tuple[int, JSON]:
    return 404, error_body("OBJECT_NOT_FOUND", "resource not found")


# --- property validation --------------------------------------------------------------------------------


def _as_string(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _timestamp_ok(value: str) -> bool:
    if value.isdigit():
        return True
    try:
        datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return False
    return True


def _check_value(name: str, value: str) -> JSON | None:
    """The per-property checks of research §1.2/§1.9; the exact messages of the last three are [U]."""
    if value == "":
        return None  # an empty string clears the property
    if name in ENUMS and value not in ENUMS[name]:
        allowed = ", ".join(ENUMS[name])
        return property_error(
            name, "INVALID_OPTION", f"{value} was not one of the allowed options: [{allowed}]"
        )
    if name == "hs_call_duration" and not re.fullmatch(r"\d+", value):
        return property_error(name, "INVALID_INTEGER", f"{value} is not a valid integer")
    if name == "hs_timestamp" and not _timestamp_ok(value):
        return property_error(name, "INVALID_DATE", f"{value} is not a valid date-time")
    if name == "hs_call_recording_url" and not value.lower().startswith("https://"):
        return property_error(name, "INVALID_URL", "Only HTTPS, secure URLs will be accepted.")
    if name == "hubspot_owner_id" and not value.isdigit():
        return property_error(name, "INVALID_OWNER_ID", f"{value} is not a valid owner id")
    if len(value) > VALUE_LIMIT:
        return property_error(name, "INVALID_LENGTH", f"Value of {name} exceeds {VALUE_LIMIT} characters")
    return None


def validated(state: State, raw: Any, creating: bool) -> tuple[dict[str, str] | None, tuple[int, JSON]]:
    """The request's properties as strings, or the 400 HubSpot would answer."""
    if not isinstance(raw, dict):
        return None, _bad_request("Invalid input JSON: properties must be an object")
    props = {str(name): _as_string(value) for name, value in raw.items()}
    known = CALL_PROPERTIES | state.custom_properties
    errors: list[JSON] = []
    for name, value in props.items():
        if name in READ_ONLY:
            errors.append(property_error(name, "READ_ONLY_VALUE", f'Property "{name}" is read-only'))
        elif name not in known:
            errors.append(property_error(name, "PROPERTY_DOESNT_EXIST", f'Property "{name}" does not exist'))
        else:
            problem = _check_value(name, value)
            if problem is not None:
                errors.append(problem)
    if creating and not props.get("hs_timestamp"):
        errors.append(property_error("hs_timestamp", "REQUIRED", "hs_timestamp is required"))
    if errors:
        return None, invalid_properties(errors)
    return props, (200, {})


def _associations(state: State, raw: Any) -> tuple[list[str] | None, tuple[int, JSON]]:
    """Inline create associations: contacts only, HUBSPOT_DEFINED 194 (what the double knows)."""
    if raw is None:
        return [], (200, {})
    contact_ids: list[str] = []
    for item in raw if isinstance(raw, list) else [None]:
        to = item.get("to") if isinstance(item, dict) else None
        types = item.get("types") if isinstance(item, dict) else None
        contact_id = str(to.get("id")) if isinstance(to, dict) else ""
        wanted = {"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": CALL_TO_CONTACT}
        if not isinstance(types, list) or wanted not in types:
            return None, _bad_request("Invalid association type; calls to contacts use HUBSPOT_DEFINED 194")
        if contact_id not in state.contacts:
            return None, _bad_request(f"One or more associations are invalid: contact {contact_id} not found")
        contact_ids.append(contact_id)
    return contact_ids, (200, {})


# --- routes -----------------------------------------------------------------------------------------------


def _shown(record: JSON, names: Iterable[str] | None) -> JSON:
    """A record with the default properties plus the requested ones, as HubSpot returns it."""
    props = record["properties"]
    keep = {"createdate", "hs_lastmodifieddate", "hs_object_id", *(names or props.keys())}
    return {**record, "properties": {key: value for key, value in props.items() if key in keep}}


async def create_call(request: Request, state: State) -> tuple[int, JSON]:
    body = await _json(request)
    if not isinstance(body, dict):
        return _bad_request("Invalid input JSON: the body must be an object")
    props, problem = validated(state, body.get("properties"), creating=True)
    if props is None:
        return problem
    contact_ids, problem = _associations(state, body.get("associations"))
    if contact_ids is None:
        return problem
    call = state.add_call(**props)
    for contact_id in contact_ids:
        state.associations.add((call["id"], contact_id))
    return 201, call


async def list_calls(request: Request, state: State) -> tuple[int, JSON]:
    params = request.query_params
    limit = min(int(params["limit"]) if params.get("limit", "").isdigit() else 10, 100)
    start = int(params["after"]) if params.get("after", "").isdigit() else 0
    names = params.get("properties")
    records = list(state.calls.values())
    page = [_shown(record, names.split(",") if names else []) for record in records[start : start + limit]]
    answer: JSON = {"results": page}
    if start + limit < len(records):
        after = str(start + limit)
        answer["paging"] = {"next": {"after": after, "link": f"{request.url.path}?after={after}"}}
    return 200, answer


async def read_call(request: Request, state: State) -> tuple[int, JSON]:
    call = state.calls.get(request.path_params["id"])
    if call is None:
        return _not_found()
    names = request.query_params.get("properties")
    shown = _shown(call, names.split(",") if names else None)
    if "contacts" in request.query_params.get("associations", ""):
        linked = [{"id": contact, "type": "call_to_contact"} for contact in state.contacts_of(call["id"])]
        shown["associations"] = {"contacts": {"results": linked}}
    return 200, shown


async def update_call(request: Request, state: State) -> tuple[int, JSON]:
    call = state.calls.get(request.path_params["id"])
    if call is None:
        return _not_found()
    body = await _json(request)
    if not isinstance(body, dict):
        return _bad_request("Invalid input JSON: the body must be an object")
    props, problem = validated(state, body.get("properties"), creating=False)
    if props is None:
        return problem
    for name, value in props.items():
        if value == "":
            call["properties"].pop(name, None)
        else:
            call["properties"][name] = value
    state.touched(call)
    return 200, call


async def delete_call(request: Request, state: State) -> tuple[int, JSON | None]:
    call_id = request.path_params["id"]
    if state.calls.pop(call_id, None) is None:
        return _not_found()
    state.associations = {pair for pair in state.associations if pair[0] != call_id}
    return 204, None


def _filters(body: Any) -> tuple[list[list[JSON]] | None, str]:
    """The request's filter groups, or why HubSpot would refuse them (research §1.7 limits)."""
    groups = body.get("filterGroups", []) if isinstance(body, dict) else None
    if not isinstance(groups, list) or len(groups) > MAX_GROUPS:
        return None, f"filterGroups must be a list of at most {MAX_GROUPS}"
    parsed: list[list[JSON]] = []
    for group in groups:
        filters = group.get("filters") if isinstance(group, dict) else None
        if not isinstance(filters, list) or len(filters) > MAX_FILTERS_PER_GROUP:
            return None, f"each filter group holds a list of at most {MAX_FILTERS_PER_GROUP} filters"
        for item in filters:
            if not isinstance(item, dict) or item.get("operator") not in OPERATORS:
                return None, f"unsupported filter: {json.dumps(item)[:200]}"
        parsed.append(filters)
    if sum(len(group) for group in parsed) > MAX_FILTERS:
        return None, f"at most {MAX_FILTERS} filters in all"
    return parsed, ""


def _hit(record: JSON, item: JSON) -> bool:
    found = record["properties"].get(str(item.get("propertyName")))
    value = None if found is None else str(found)
    operator = str(item["operator"])
    if operator == "HAS_PROPERTY":
        return value not in (None, "")
    if operator == "NOT_HAS_PROPERTY":
        return value in (None, "")
    if operator in ("IN", "NOT_IN"):
        values = [str(v) for v in item.get("values") or []]
        return (value in values) == (operator == "IN")
    equal = value is not None and value.lower() == str(item.get("value")).lower()
    return equal == (operator == "EQ")


def _search(state: State, records: dict[str, JSON], known: frozenset[str], body: Any) -> tuple[int, JSON]:
    groups, problem = _filters(body)
    if groups is None:
        return _bad_request(problem)
    unknown = sorted(
        {str(item.get("propertyName")) for group in groups for item in group} - known - READ_ONLY
    )
    if unknown:
        return _bad_request(f"There was a problem with the request: unknown properties {unknown}")
    found = [
        record
        for record in records.values()
        if state.searchable(record["id"])
        and (not groups or any(all(_hit(record, item) for item in group) for group in groups))
    ]
    request = body if isinstance(body, dict) else {}
    limit = request.get("limit", 10)
    limit = min(limit, 200) if isinstance(limit, int) and limit > 0 else 10
    after = str(request.get("after") or "0")
    start = int(after) if after.isdigit() else 0
    names = request.get("properties") if isinstance(request.get("properties"), list) else []
    answer: JSON = {"total": len(found), "results": [_shown(r, names) for r in found[start : start + limit]]}
    if start + limit < len(found):
        answer["paging"] = {"next": {"after": str(start + limit)}}
    return 200, answer


async def search_calls(request: Request, state: State) -> tuple[int, JSON]:
    return _search(state, state.calls, CALL_PROPERTIES | state.custom_properties, await _json(request))


async def search_contacts(request: Request, state: State) -> tuple[int, JSON]:
    return _search(state, state.contacts, CONTACT_PROPERTIES, await _json(request))


def _associate(state: State, call_id: str, contact_id: str) -> tuple[int, JSON] | None:
    if call_id not in state.calls or contact_id not in state.contacts:
        return _not_found()
    state.associations.add((call_id, contact_id))
    return None


async def associate_default(request: Request, state: State) -> tuple[int, JSON]:
    """v4 default association; the answer's shape is [U], modelled on the batch association results."""
    call_id, contact_id = request.path_params["id"], request.path_params["contact"]
    refused = _associate(state, call_id, contact_id)
    if refused is not None:
        return refused
    spec = {"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": CALL_TO_CONTACT}
    stamp = _now()
    result = {"from": {"id": call_id}, "to": {"id": contact_id}, "associationSpec": spec}
    return 200, {"status": "COMPLETE", "results": [result], "startedAt": stamp, "completedAt": stamp}


async def associate_typed(request: Request, state: State) -> tuple[int, JSON]:
    """v3 association with an explicit type id (the guide's form); answers the call with its contacts."""
    if request.path_params["type"] != str(CALL_TO_CONTACT):
        return _bad_request("Invalid association type; calls to contacts use 194")
    call_id = request.path_params["id"]
    refused = _associate(state, call_id, request.path_params["contact"])
    if refused is not None:
        return refused
    linked = [{"id": contact, "type": "call_to_contact"} for contact in state.contacts_of(call_id)]
    return 200, {**state.calls[call_id], "associations": {"contacts": {"results": linked}}}


ApiRoute = Callable[[Request, State], Awaitable[tuple[int, JSON | None]]]


def _reply(status: int, body: Any, headers: dict[str, str]) -> Response:
    if body is None:
        return Response(status_code=status, headers=headers)
    if isinstance(body, bytes | str):
        return Response(body, status, headers, media_type="application/json;charset=utf-8")
    return JSONResponse(body, status, headers)


def _authorized(state: State, request: Request) -> bool:
    header = request.headers.get("authorization", "")
    if not header.lower().startswith("bearer ") or not header[7:].strip():
        return False
    if state.valid_tokens is None:
        return True
    token = header[7:].strip().encode()
    return any(secrets.compare_digest(token, valid.encode()) for valid in state.valid_tokens)


def _api(state: State, route: ApiRoute, search: bool) -> Handler:
    """Every API route: logged, then a scripted reply, auth, the rate limits, and the route itself."""

    async def handle(request: Request) -> Response:
        state.requests.append(
            {
                "method": request.method,
                "path": request.url.path,
                "query": dict(request.query_params),
                "body": await _json(request),
                "authorization": request.headers.get("authorization"),
            }
        )
        bucket = state.search_bucket() if search else state.burst()
        allowed = bucket.take()
        headers: dict[str, str] = {}
        if not search:  # search answers carry no rate-limit headers (research §1.7)
            headers = {
                "X-HubSpot-RateLimit-Interval-Milliseconds": "10000",
                "X-HubSpot-RateLimit-Max": str(state.rate_limit),
                "X-HubSpot-RateLimit-Remaining": str(max(0, int(bucket.tokens))),
            }
        scripted = state.take_scripted(request.method, request.url.path)
        if scripted is not None:
            return _reply(scripted.status, scripted.body, {**headers, **scripted.headers})
        if not _authorized(state, request):
            return _reply(401, error_body("INVALID_AUTHENTICATION", UNAUTHORIZED), headers)
        if not allowed:
            return _reply(429, rate_limit_body("SECONDLY" if search else "TEN_SECONDLY_ROLLING"), headers)
        status, body = await route(request, state)
        return _reply(status, body, headers)

    return handle


def snapshot(state: State) -> JSON:
    """What landed, for a person or a test: calls with their properties and contacts, and the contacts."""
    calls = [
        {
            "id": call["id"],
            "properties": call["properties"],
            "contact_ids": state.contacts_of(call["id"]),
            "createdAt": call["createdAt"],
            "updatedAt": call["updatedAt"],
        }
        for call in state.calls.values()
    ]
    return {"calls": calls, "contacts": list(state.contacts.values())}


def app(state: State) -> Starlette:
    async def dump(request: Request) -> Response:
        return JSONResponse(snapshot(state))

    async def seed_contact(request: Request) -> Response:
        body = await _json(request)
        given = body.get("properties", body) if isinstance(body, dict) else {}
        props = {str(k): str(v) for k, v in given.items() if str(k) in CONTACT_PROPERTIES and v is not None}
        return JSONResponse(state.add_contact(**props), 201)

    def api(path: str, route: ApiRoute, methods: list[str], search: bool = False) -> Route:
        return Route(path, _api(state, route, search), methods=methods)

    calls = "/crm/v3/objects/calls"
    return Starlette(
        routes=[
            api(calls, create_call, ["POST"]),
            api(calls, list_calls, ["GET"]),
            api(f"{calls}/search", search_calls, ["POST"], search=True),
            api(calls + "/{id}", read_call, ["GET"]),
            api(calls + "/{id}", update_call, ["PATCH"]),
            api(calls + "/{id}", delete_call, ["DELETE"]),
            api(calls + "/{id}/associations/contacts/{contact}/{type}", associate_typed, ["PUT"]),
            api(
                "/crm/v4/objects/calls/{id}/associations/default/contacts/{contact}",
                associate_default,
                ["PUT"],
            ),
            api("/crm/v3/objects/contacts/search", search_contacts, ["POST"], search=True),
            Route("/__double__/state", dump, methods=["GET"]),
            Route("/__double__/contacts", seed_contact, methods=["POST"]),
        ]
    )


def _demo_state() -> State:
    state = State(valid_tokens=None, rate_limit=100, search_per_second=5)  # a Free/Starter private app
    state.add_contact(phone="(415) 555-0123", firstname="Ada", lastname="Example")
    return state


if __name__ == "__main__":
    main("hubspot", app(_demo_state()), 9100)
