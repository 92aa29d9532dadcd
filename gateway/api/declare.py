"""What a route says about itself for the OpenAPI document: summary, tag, key, parameters, body, answers.

Each JSON API handler carries an ``@declare(Operation(...))`` next to its code, so a change to a route and
to its documentation land in the same diff. ``gateway.api.openapi`` walks the app's route table and builds
the document from these declarations and the pydantic models they name; a route with neither a declaration
nor ``@undocumented`` fails ``tests/api/test_openapi.py``. Nothing here runs on a request: the registry is
filled at import time and read once, when the document is first built.

Errors are partly derived, because most of them follow from what a route does rather than from what it is:
a key means 401 (and 403 for the other kind of key), a JSON body means 400/413/422, a checked query
parameter its own 4xx, the database 503. What only a route knows (a 404, a 403 of its own) it lists in
``errors``. The JSON API is every top-level route except ``openapi.OTHER_APPS`` (the console's pages).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import Any, TypeVar

from pydantic import BaseModel, GetJsonSchemaHandler, TypeAdapter
from pydantic_core import CoreSchema

Handler = TypeVar("Handler", bound=Callable[..., Any])
JsonSchema = dict[str, Any]


class Key(StrEnum):
    """Which API key a route takes (``Authorization: Bearer <key>``, ``gateway.auth.authenticate``)."""

    TENANT = "tenant"  # a tenant's key; an operator key is 403
    OPERATOR = "operator"  # an operator key; a tenant key is 403
    EITHER = "either"  # either kind, the route decides what each may do
    NONE = "none"  # no key: public, or the credential is elsewhere (a webhook signature, a portal token)


@dataclass(frozen=True, slots=True)
class Param:
    """A query parameter (or a request header). ``rejects`` is the (status, code) a bad value answers, if
    the route checks it; ``vocabulary`` names a set of values the running app knows (``VOCABULARY``)."""

    name: str
    description: str
    schema: Mapping[str, Any] = field(default_factory=lambda: {"type": "string"})
    rejects: tuple[int, str] | None = None
    vocabulary: str | None = None
    location: str = "query"
    example: Any = None


@dataclass(frozen=True, slots=True)
class Answer:
    """One documented answer. ``model`` is the JSON body's model; ``None`` with a ``media_type`` other than
    JSON is a text body (CSV, Prometheus, an event stream), and with status 204 no body at all."""

    status: int
    description: str
    model: type[BaseModel] | None = None
    media_type: str = "application/json"
    also: tuple[str, ...] = ()  # further media types of the same answer (the export's CSV and NDJSON)
    example: Any = None
    headers: Mapping[str, str] = field(default_factory=dict)  # extra response headers: name -> description


@dataclass(frozen=True, slots=True)
class Operation:
    summary: str
    tag: str
    answers: Sequence[Answer]
    description: str = ""
    key: Key = Key.TENANT
    body: type[BaseModel] | None = None
    body_schema: Mapping[str, Any] | None = None  # a body no model describes (a vendor's webhook)
    body_example: Any = None
    query: Sequence[Param] = ()
    errors: Mapping[int, Sequence[str]] = field(default_factory=dict)  # beyond the derived ones
    storage: bool = True  # reads or writes the database: 503 storage_unavailable when it is away
    lists: str | None = None  # a vocabulary listed under the description, one bullet per entry


OPERATIONS: dict[Callable[..., Any], Operation] = {}
UNDOCUMENTED: dict[Callable[..., Any], str] = {}

# Sets of values the running app defines (its adapters, its CRM kinds), filled in while the document is
# being built; the models and parameters name them instead of copying a list that could drift.
NO_VOCABULARY: Mapping[str, Sequence[str]] = MappingProxyType({})
VOCABULARY: ContextVar[Mapping[str, Sequence[str]]] = ContextVar("openapi_vocabulary", default=NO_VOCABULARY)


def declare(operation: Operation) -> Callable[[Handler], Handler]:
    def register(handler: Handler) -> Handler:
        OPERATIONS[handler] = operation
        return handler

    return register


def undocumented(reason: str) -> Callable[[Handler], Handler]:
    """For a route that is not part of the JSON API (an HTML page, static files), with the reason."""

    def register(handler: Handler) -> Handler:
        UNDOCUMENTED[handler] = reason
        return handler

    return register


def one_of(vocabulary: str) -> Callable[[JsonSchema], None]:
    """``json_schema_extra`` for a string field whose values are one of the app's ``vocabulary``."""

    def extra(schema: JsonSchema) -> None:
        values = VOCABULARY.get().get(vocabulary)
        if values:
            schema["enum"] = list(values)

    return extra


# --- parameters several list routes share (``gateway.api.common``'s query helpers) ---------------------


def page_limit(maximum: int = 200, default: int = 50) -> Param:
    return Param(
        "limit",
        f"page size, 1-{maximum} (default {default})",
        {"type": "integer", "minimum": 1, "maximum": maximum, "default": default},
        rejects=(422, "validation_error"),
    )


CURSOR = Param(
    "cursor",
    "the previous page's `next_cursor`; signed, so an edited or foreign one is 400",
    rejects=(400, "bad_request"),
)
_TIME = (
    "an ISO-8601 time (a space may replace the `T`; no zone is UTC), Unix seconds or milliseconds, or an age"
)
SINCE = Param(
    "since",
    f"created at or after: {_TIME} (`90m`, `6h`, `7d`, `2w`)",
    rejects=(422, "validation_error"),
    example="6h",
)
UNTIL = Param(
    "until", f"created before: {_TIME}", rejects=(422, "validation_error"), example="2026-11-22T10:00:00Z"
)


def choice(
    name: str,
    description: str,
    values: Sequence[str] = (),
    vocabulary: str | None = None,
    empty: str = "no filter",
) -> Param:
    """A filter with a fixed set of values: another value is 422 (never a silently empty list), and an
    empty one is no filter (``common.query_choice``), so ``""`` is one of the values."""
    return Param(
        name,
        f"{description}; empty: {empty}",
        {"type": "string", "enum": ["", *values]},
        rejects=(422, "validation_error"),
        vocabulary=vocabulary,
    )


@dataclass(frozen=True, slots=True)
class DocumentedAs:
    """A field annotation: validate as the annotated type, document as ``shown``. For a field a service
    validates itself (to name the failing part its own way) but whose accepted shape is a model."""

    shown: Any

    def __get_pydantic_json_schema__(
        self, core_schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchema:
        return handler(TypeAdapter(self.shown).core_schema)
