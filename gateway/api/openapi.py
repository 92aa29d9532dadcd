"""The OpenAPI 3.1 document, built from the app's route table and each route's ``@declare``.

``build(routes, vocabulary)`` walks the top-level ``Route``s (a ``Mount`` holds another app: static files),
looks up each handler's ``Operation`` (``gateway.api.declare``) and turns it into a path item; the pydantic
models it names become ``components.schemas`` (their ``$defs`` collected there too, under one name each, so
a name that two different models claim is an error, not a silent overwrite). The JSON API is every route
but those under ``OTHER_APPS`` and those marked ``@undocumented``; ``undeclared(routes)`` lists the ones
without a declaration, which ``tests/api/test_openapi.py`` requires to be none. ``build`` leaves them out
rather than fail: a missing declaration is a test failure, never a 500 on ``/openapi.json``.

Pure: no request, no database. ``gateway.api.docs`` serves the result, built once per app.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal

from pydantic import BaseModel
from pydantic.json_schema import GenerateJsonSchema
from pydantic_core import CoreSchema
from starlette.routing import BaseRoute, Route

from gateway import __version__
from gateway.api.declare import OPERATIONS, UNDOCUMENTED, VOCABULARY, Answer, Key, Operation, Param
from gateway.api.schemas import ErrorEnvelope

REF = "#/components/schemas/{model}"
JSON = "application/json"

ERROR_MEANINGS = {
    "bad_request": "malformed JSON, a body that is not an object, a bad cursor",
    "invalid_payload": "verified, but the adapter cannot read the body: kept in the quarantine",
    "unauthorized": "a missing, unknown or revoked API key (or a bad portal link)",
    "invalid_signature": "a bad, missing or stale webhook signature: nothing stored",
    "forbidden": "the key's kind may not do this (an operator key on tenant data, a tenant key on "
    "administration)",
    "not_found": "no such object, another tenant's object (the same answer), a deleted one",
    "payload_too_large": "the body is over the limit (API: 64 KiB; webhooks: CALLGATE_MAX_BODY_BYTES)",
    "validation_error": "a missing, unknown or out-of-range field or parameter: `field` names it",
    "storage_unavailable": "the database is unavailable: retry (nothing was acknowledged)",
}

PATH_PARAMS = {
    "source_id": "a source's id (`src_…`)",
    "call_id": "a call's id (`call_…`)",
    "subscription_id": "a subscription's id (`sub_…`)",
    "delivery_id": "a delivery's id (`msg_…`)",
    "connection_id": "a CRM connection's id (`con_…`)",
    "quarantine_id": "a quarantined body's id (`qua_…`)",
    "token": "the portal link's signed token (the link is the credential)",
}

SECURITY: dict[Key, list[dict[str, list[str]]]] = {
    Key.TENANT: [{"tenantKey": []}],
    Key.OPERATOR: [{"operatorKey": []}],
    Key.EITHER: [{"operatorKey": []}, {"tenantKey": []}],
    Key.NONE: [],
}

SECURITY_SCHEMES = {
    "tenantKey": {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "cgk_…",
        "description": "A tenant's API key: `Authorization: Bearer cgk_…` (the scheme word is not "
        "case-sensitive). It reads and writes its own tenant's objects; another tenant's object answers 404. "
        "Keys are shown once and stored hashed (`callgate keys create --tenant ten_…`).",
    },
    "operatorKey": {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "cgk_…",
        "description": "An operator key (`callgate keys create --operator`), sent the same way: it creates "
        "tenants and keys and reads `/metrics`, and reads no tenant data (403).",
    },
}

INFO_DESCRIPTION = """\
One gateway for voice-AI call webhooks: vendors post to `/hooks/{source_id}`, callgate verifies, normalizes \
every vendor into one call model, stores it, and relays each change to subscriptions and CRMs.

**Auth.** `Authorization: Bearer <api key>` on every `/v1` route: a tenant key for the tenant's data, an \
operator key for administration. Webhooks carry the vendor's signature instead; portal links carry a signed \
token in the path.

**Errors.** Every error has one envelope, `{"error": {"code", "message", "field"?, "request_id"}}`; every \
response carries `x-request-id`. Each operation lists the codes it can answer per status.

**Lists.** `limit` (1-200, default 50) and `cursor` (the previous page's `next_cursor`; signed: an edited \
one is 400). `since`/`until` take an ISO-8601 time, Unix seconds or milliseconds, or an age (`90m`, `6h`, \
`7d`, `2w`). A filter with a fixed set of values answers 422 for any other value; an empty parameter is \
no filter."""

TAGS = [
    ("webhooks", "Vendors' call webhooks: verified on the raw bytes, stored before the answer."),
    ("calls", "The one call model: list, filter, export, one call and its timeline."),
    ("stream", "The tenant's call changes as server-sent events."),
    ("sources", "Inbound sources: one webhook URL per vendor, with its verification."),
    ("subscriptions", "Customer endpoints that receive signed Standard Webhooks deliveries."),
    ("deliveries", "The delivery log, every attempt, and retries by hand."),
    ("portal", "Time-limited links for an endpoint's owner: its deliveries and nothing else."),
    ("connections", "CRM connections (HubSpot, Salesforce, Pipedrive) synced through the outbox."),
    ("quarantine", "Verified webhooks no adapter could read, kept whole for replay."),
    ("administration", "Tenants and API keys."),
    ("operations", "Health, readiness, metrics and this document."),
]


# Paths served by other parts of the gateway that are not the JSON API, with who serves them.
OTHER_APPS = {"/console": "the web console's HTML pages (gateway.console)"}


class _Schemas(GenerateJsonSchema):
    """Pydantic's JSON Schema without a generated title on every property (``"title": "Call Id"``)."""

    def field_title_should_be_set(self, schema: CoreSchema) -> bool:
        return False


class Components:
    """``components.schemas``, filled as operations name models; one schema per name."""

    def __init__(self) -> None:
        self.schemas: dict[str, Any] = {}

    def ref(self, model: type[BaseModel], mode: Literal["validation", "serialization"]) -> dict[str, str]:
        schema = model.model_json_schema(ref_template=REF, mode=mode, schema_generator=_Schemas)
        for name, definition in schema.pop("$defs", {}).items():
            self._add(name, definition)
        self._add(model.__name__, schema)
        return {"$ref": REF.format(model=model.__name__)}

    def _add(self, name: str, schema: dict[str, Any]) -> None:
        known = self.schemas.setdefault(name, schema)
        if known != schema:
            raise ValueError(f"two different schemas are both named {name!r}")

    def finish(self) -> dict[str, Any]:
        """A discriminated union needs its tag: each member requires the discriminator's property (the
        models default it, which is right for one model and wrong inside the union)."""
        for schema in list(self.schemas.values()):
            for union in _discriminated(schema):
                tag = union["discriminator"]["propertyName"]
                for ref in union["discriminator"].get("mapping", {}).values():
                    member = self.schemas[ref.rsplit("/", 1)[-1]]
                    member["required"] = sorted({*member.get("required", []), tag})
                    member["properties"][tag].pop("default", None)
        return dict(sorted(self.schemas.items()))


def _discriminated(schema: Any) -> Iterable[dict[str, Any]]:
    if isinstance(schema, dict):
        if "discriminator" in schema:
            yield schema
        for value in schema.values():
            yield from _discriminated(value)
    elif isinstance(schema, list):
        for item in schema:
            yield from _discriminated(item)


def build(routes: Sequence[BaseRoute], vocabulary: Mapping[str, Sequence[str]]) -> dict[str, Any]:
    """The document for ``routes``; ``vocabulary`` holds the app's value sets (``declare.VOCABULARY``)."""
    token = VOCABULARY.set(vocabulary)
    try:
        components = Components()
        paths: dict[str, dict[str, Any]] = {}
        for route, operation in declared(routes):
            item = paths.setdefault(route.path_format, {})
            methods = sorted((route.methods or set()) - {"HEAD"})  # HEAD: Starlette's, with every GET
            for method in methods:
                name = _operation_id(route) + (f".{method.lower()}" if len(methods) > 1 else "")
                item[method.lower()] = _operation(route, name, operation, components, vocabulary)
        return {
            "openapi": "3.1.0",
            "info": {
                "title": "callgate",
                "version": __version__,
                "description": INFO_DESCRIPTION,
                "license": {"name": "Apache-2.0", "identifier": "Apache-2.0"},
            },
            "tags": [{"name": name, "description": text} for name, text in TAGS],
            "paths": paths,
            "components": {
                "schemas": components.finish(),
                "securitySchemes": SECURITY_SCHEMES,
                "headers": {
                    "RequestId": {
                        "description": "the caller's own `x-request-id` when it sent a sane one, else a new "
                        "`req_…`; it is in the logs and in every error body",
                        "required": True,
                        "schema": {"type": "string"},
                    }
                },
            },
        }
    finally:
        VOCABULARY.reset(token)


def _api_routes(routes: Sequence[BaseRoute]) -> Iterable[Route]:
    for route in routes:
        if not isinstance(route, Route) or route.endpoint in UNDOCUMENTED:
            continue
        if any(route.path == p or route.path.startswith(p + "/") for p in OTHER_APPS):
            continue
        yield route


def declared(routes: Sequence[BaseRoute]) -> Iterable[tuple[Route, Operation]]:
    """Each JSON API route that has a declaration, with it."""
    for route in _api_routes(routes):
        operation = OPERATIONS.get(route.endpoint)
        if operation is not None:
            yield route, operation


def undeclared(routes: Sequence[BaseRoute]) -> list[str]:
    """``METHODS path`` of each JSON API route without ``@declare``: none, or the document lacks them."""
    return [
        f"{','.join(sorted(r.methods or []))} {r.path}"
        for r in _api_routes(routes)
        if r.endpoint not in OPERATIONS
    ]


def _operation_id(route: Route) -> str:
    """``<module>.<handler>``, e.g. ``calls.list_calls``: unique, and stable as long as the code is."""
    return f"{route.endpoint.__module__.rsplit('.', 1)[-1]}.{route.endpoint.__name__}"


def _operation(
    route: Route,
    operation_id: str,
    operation: Operation,
    components: Components,
    vocabulary: Mapping[str, Sequence[str]],
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "tags": [operation.tag],
        "summary": operation.summary,
        "operationId": operation_id,
        "security": SECURITY[operation.key],
    }
    description = operation.description
    if operation.lists is not None:
        description += "".join(f"\n- {entry}" for entry in vocabulary.get(operation.lists, ()))
    if description:
        out["description"] = description
    parameters = [_path_param(name) for name in route.param_convertors]
    parameters += [_query_param(param, vocabulary) for param in operation.query]
    if parameters:
        out["parameters"] = parameters
    body = _request_body(operation, components)
    if body is not None:
        out["requestBody"] = body
    responses = {str(a.status): _answer(a, components) for a in operation.answers}
    for status, codes in sorted(error_codes(operation).items()):
        responses[str(status)] = _error(codes, components)
    out["responses"] = responses
    return out


def error_codes(operation: Operation) -> dict[int, list[str]]:
    """Status -> the error codes the operation can answer: derived from what it does, plus its own."""
    codes: dict[int, set[str]] = {}

    def add(status: int, code: str) -> None:
        codes.setdefault(status, set()).add(code)

    if operation.key is not Key.NONE:
        add(401, "unauthorized")
    if operation.key in (Key.TENANT, Key.OPERATOR):
        add(403, "forbidden")  # the other kind of key
    if operation.body is not None:
        add(400, "bad_request")
        add(413, "payload_too_large")
        add(422, "validation_error")
    for param in operation.query:
        if param.rejects is not None:
            add(*param.rejects)
    if operation.storage:
        add(503, "storage_unavailable")
    for status, more in operation.errors.items():
        for code in more:
            add(status, code)
    return {status: sorted(found) for status, found in codes.items()}


def _path_param(name: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "description": PATH_PARAMS.get(name, name),
        "schema": {"type": "string"},
    }


def _query_param(param: Param, vocabulary: Mapping[str, Sequence[str]]) -> dict[str, Any]:
    schema = dict(param.schema)
    if param.vocabulary is not None:
        schema["enum"] = [*schema.get("enum", []), *vocabulary.get(param.vocabulary, ())]
    out: dict[str, Any] = {
        "name": param.name,
        "in": param.location,
        "required": False,
        "description": param.description,
        "schema": schema,
    }
    if param.example is not None:
        out["example"] = param.example
    return out


def _request_body(operation: Operation, components: Components) -> dict[str, Any] | None:
    if operation.body is not None:
        schema = components.ref(operation.body, "validation")
        required = bool(operation.body.model_json_schema().get("required"))
        description = "JSON (any content type is read as JSON); up to 64 KiB"
    elif operation.body_schema is not None:
        schema, required, description = dict(operation.body_schema), True, "the vendor's body, as it sends it"
    else:
        return None
    media: dict[str, Any] = {"schema": schema}
    if operation.body_example is not None:
        media["example"] = operation.body_example
    if not required:
        description += "; optional: an empty body is `{}`"
    return {"required": required, "description": description, "content": {JSON: media}}


def _answer(answer: Answer, components: Components) -> dict[str, Any]:
    headers: dict[str, Any] = {"x-request-id": {"$ref": "#/components/headers/RequestId"}}
    for name, text in answer.headers.items():
        headers[name] = {"description": text, "schema": {"type": "string"}}
    out: dict[str, Any] = {"description": answer.description, "headers": headers}
    if answer.status == 204 or 300 <= answer.status < 400:  # no body (a redirect: its Location header)
        return out
    if answer.model is not None:
        media: dict[str, Any] = {"schema": components.ref(answer.model, "serialization")}
    else:
        media = {"schema": {"type": "string"}}
    if answer.example is not None:
        media["example"] = answer.example
    out["content"] = {
        answer.media_type: media,
        **{other: {"schema": {"type": "string"}} for other in answer.also},
    }
    return out


def _error(codes: Sequence[str], components: Components) -> dict[str, Any]:
    envelope = components.ref(ErrorEnvelope, "serialization")
    narrowed = {"properties": {"error": {"properties": {"code": {"enum": list(codes)}}}}}
    description = "; ".join(f"`{code}`: {ERROR_MEANINGS.get(code, code)}" for code in codes)
    return {
        "description": description,
        "headers": {"x-request-id": {"$ref": "#/components/headers/RequestId"}},
        "content": {JSON: {"schema": {"allOf": [envelope, narrowed]}}},
    }
