"""Real answers of every resource, held to the response models of the OpenAPI document (strictly: every
field present, none unknown, JSON's own types). ``gateway.render`` builds the dicts; these models describe
them, and this is where the two are kept the same."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

import pytest
from pydantic import BaseModel
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response as StarletteResponse
from starlette.routing import Route

from gateway.api import schemas
from gateway.api.declare import OPERATIONS
from tests.conftest import Gateway, make_settings, start_gateway
from tests.crm.kinds import PIPEDRIVE, PIPEDRIVE_TOKEN
from tests.doubles import serving
from tests.helpers import fixture_cases, fixture_headers, source_headers


class Response(Protocol):
    """What the test client answers (``httpx`` or ``httpx2``, whichever Starlette's client uses)."""

    @property
    def status_code(self) -> int: ...
    @property
    def content(self) -> bytes: ...
    @property
    def text(self) -> str: ...
    def json(self) -> Any: ...


def shaped(model: type[BaseModel], response: Response, status: int = 200) -> dict[str, Any]:
    assert response.status_code == status, response.text
    model.model_validate_json(response.content, strict=True)
    body: dict[str, Any] = response.json()
    return body


@dataclass
class Api:
    """Requests whose answers must be shaped as ``model``; the tenant's key unless another is given."""

    live: Gateway

    def get(self, model: type[BaseModel], path: str, expect: int = 200, **params: Any) -> dict[str, Any]:
        return shaped(model, self.live.client.get(path, params=params, headers=self.live.headers), expect)

    def send(
        self,
        method: str,
        model: type[BaseModel],
        path: str,
        body: Any = None,
        expect: int = 200,
        headers: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        headers = self.live.headers if headers is None else headers
        response = self.live.client.request(method, path, json=body, headers=headers)
        return shaped(model, response, expect)

    def post(self, model: type[BaseModel], path: str, body: Any = None, expect: int = 200) -> dict[str, Any]:
        return self.send("POST", model, path, body, expect)

    def hook(self, source: dict[str, Any], body: bytes, headers: dict[str, str] | None = None) -> Response:
        signed = {**(headers or {}), **source_headers(source, body)}
        return self.live.client.post(f"/hooks/{source['id']}", content=body, headers=signed)


def wait_for(check: Callable[[], Any], timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("timed out")


async def _endpoint(request: Request) -> StarletteResponse:
    return StarletteResponse(status_code=503 if request.url.path == "/down" else 204)


@pytest.fixture
def endpoint() -> Iterator[str]:
    """A customer endpoint on loopback: ``/hook`` takes every delivery, ``/down`` refuses them."""
    with serving(Starlette(routes=[Route("/{path}", _endpoint, methods=["POST"])])) as url:
        yield url


@pytest.fixture
def crm() -> Iterator[str]:
    with serving(PIPEDRIVE.app(PIPEDRIVE.new_state())) as url:
        yield url


@pytest.fixture
def live(db_url: str) -> Iterator[Gateway]:
    settings = make_settings(
        db_url, allowed_target_cidrs=["127.0.0.0/8"], worker_poll_seconds=0.05, retry_schedule_seconds=[0, 60]
    )
    yield from start_gateway(settings)


def test_every_resource_is_shaped_as_documented(live: Gateway, endpoint: str, crm: str) -> None:
    api = Api(live)
    good = api.post(schemas.SubscriptionWithSecret, "/v1/subscriptions", {"url": f"{endpoint}/hook"}, 201)
    down = api.post(schemas.SubscriptionWithSecret, "/v1/subscriptions", {"url": f"{endpoint}/down"}, 201)
    pipedrive = {"kind": "pipedrive", "base_url": crm, "credentials": {"api_token": PIPEDRIVE_TOKEN}}
    connection = api.post(schemas.Connection, "/v1/connections", pipedrive, 201)

    # every vendor's every fixture through a source of its own: every shape a call can take
    sources: dict[str, dict[str, Any]] = {}
    for vendor, path in fixture_cases():
        if vendor not in sources:
            sources[vendor] = api.post(
                schemas.SourceCreated, "/v1/sources", {"name": vendor, "vendor": vendor}, 201
            )
        answer = api.hook(sources[vendor], path.read_bytes(), fixture_headers(path))
        answers: dict[int, type[BaseModel]] = {202: schemas.HookAccepted, 200: schemas.HookDuplicate}
        shaped(answers.get(answer.status_code, schemas.ErrorEnvelope), answer, answer.status_code)
    source = sources["graph8"]
    shaped(schemas.ErrorEnvelope, api.hook(source, b'{"not": "a graph8 event"'), 400)

    calls = api.get(schemas.CallPage, "/v1/calls", limit=200)["data"]
    assert {c["vendor"] for c in calls} == set(sources)
    for part in ("recording", "transcript", "grade", "survey", "qualification", "billing", "issues"):
        assert any(c[part] for c in calls), f"no fixture gives a call a {part}"
    for call in calls:
        api.get(schemas.Call, f"/v1/calls/{call['id']}")
        api.get(schemas.Timeline, f"/v1/calls/{call['id']}/events")
    api.get(schemas.CallPage, "/v1/calls", limit=1)

    # sources: each scheme, redacted
    for verification in (
        {"scheme": "hmac", "secrets": ["s3cret"], "timestamp_header": None},
        {"scheme": "bearer", "secrets": ["t0ken"]},
    ):
        body = {"name": "custom", "vendor": "voiceapi", "verification": verification}
        assert "secret" not in api.post(schemas.SourceCreated, "/v1/sources", body, 201)
    listed = api.get(schemas.SourceList, "/v1/sources")["data"]
    assert {s["verification"]["scheme"] for s in listed} == {"standard-webhooks", "hmac", "livekit", "bearer"}
    api.get(schemas.Source, f"/v1/sources/{source['id']}")
    api.send("PATCH", schemas.Source, f"/v1/sources/{listed[-1]['id']}", {"enabled": False})

    # subscriptions and their deliveries, attempted by the worker (one endpoint takes them, one refuses)
    api.get(schemas.SubscriptionList, "/v1/subscriptions")
    api.get(schemas.Subscription, f"/v1/subscriptions/{good['id']}")
    change = {"description": "CRM bridge", "rate_limit_per_second": 50}
    api.send("PATCH", schemas.Subscription, f"/v1/subscriptions/{good['id']}", change)
    rotated = api.post(schemas.SubscriptionWithSecret, f"/v1/subscriptions/{good['id']}/rotate-secret")
    assert rotated["secrets_active"] == 2
    ping = api.post(schemas.Delivery, f"/v1/subscriptions/{down['id']}/test", expect=202)
    api.post(schemas.Requeued, f"/v1/subscriptions/{down['id']}/recover", {"since": "1h"}, 202)

    def deliveries(**params: Any) -> list[dict[str, Any]]:
        data: list[dict[str, Any]] = api.get(schemas.DeliveryPage, "/v1/deliveries", **params)["data"]
        return data

    wait_for(lambda: deliveries(subscription_id=good["id"], status="succeeded"))
    wait_for(lambda: [d for d in deliveries(subscription_id=down["id"]) if d["attempts"]])
    wait_for(lambda: deliveries(connection_id=connection["id"], status="succeeded"))
    for delivery in deliveries(limit=200):
        whole = api.get(schemas.DeliveryDetail, f"/v1/deliveries/{delivery['id']}")
        assert whole["attempts_log"] or whole["status"] == "pending"
    api.post(schemas.Delivery, f"/v1/deliveries/{ping['id']}/retry", expect=202)

    # connections
    api.get(schemas.ConnectionPage, "/v1/connections")
    api.get(schemas.ConnectionDetail, f"/v1/connections/{connection['id']}")
    assert api.post(schemas.ConnectionCheck, f"/v1/connections/{connection['id']}/test")["ok"] is True
    assert api.get(schemas.CrmRecordPage, f"/v1/connections/{connection['id']}/records")["data"]
    api.post(schemas.Queued, f"/v1/connections/{connection['id']}/resync", {"since": "1h"}, 202)
    api.send("PATCH", schemas.Connection, f"/v1/connections/{connection['id']}", {"enabled": False})
    assert api.get(schemas.ConnectionDetail, f"/v1/connections/{connection['id']}")["state"] == "disabled"
    closed = {"kind": "pipedrive", "base_url": "http://127.0.0.1:9", "credentials": {"api_token": "x"}}
    unreachable = api.post(schemas.Connection, "/v1/connections", closed, 201)
    assert api.post(schemas.ConnectionCheck, f"/v1/connections/{unreachable['id']}/test")["ok"] is False

    # the quarantine
    held = api.get(schemas.QuarantinePage, "/v1/quarantine")["data"]
    assert held
    for item in held:
        api.get(schemas.QuarantinedWhole, f"/v1/quarantine/{item['id']}")
    assert api.post(schemas.Replayed, f"/v1/quarantine/{held[0]['id']}/replay")["status"] == "unreadable"

    # portal links
    link = api.post(schemas.PortalLink, f"/v1/subscriptions/{down['id']}/portal-link", {}, 201)
    portal = "/portal/" + link["url"].rsplit("/", 1)[-1]
    view = shaped(schemas.PortalView, live.client.get(portal))
    shaped(schemas.Retried, live.client.post(f"{portal}/deliveries/{view['deliveries'][0]['id']}/retry"), 202)

    # administration and operations
    operator = live.operator_headers
    api.send("POST", schemas.TenantCreated, "/v1/tenants", {"name": "beta"}, 201, operator)
    api.send("POST", schemas.ApiKeyCreated, "/v1/api-keys", {"operator": True}, 201, operator)
    api.post(schemas.ApiKeyCreated, "/v1/api-keys", {"name": "ci"}, 201)
    plain: list[tuple[type[BaseModel], str]] = [
        (schemas.Index, "/"),
        (schemas.Health, "/healthz"),
        (schemas.Ready, "/readyz"),
        (schemas.OpenApiDocument, "/openapi.json"),
    ]
    for shape, route in plain:
        shaped(shape, live.client.get(route))

    # errors: one envelope, with a field and without
    api.get(schemas.ErrorEnvelope, "/v1/calls", 422, limit=0)
    api.get(schemas.ErrorEnvelope, "/v1/calls/call_nope", 404)
    shaped(schemas.ErrorEnvelope, live.client.get("/v1/calls"), 401)
    api.send("DELETE", schemas.ErrorEnvelope, "/v1/calls", expect=405)


def test_every_example_is_a_valid_instance_of_its_model() -> None:
    """The document's examples are what the API answers, so they pass the same strict models."""
    models = [m for m in vars(schemas).values() if isinstance(m, type) and issubclass(m, BaseModel)]
    checked = 0
    for model in models:
        extra = model.model_config.get("json_schema_extra")
        found = extra.get("examples") if isinstance(extra, dict) else None
        for example in found if isinstance(found, list) else []:
            model.model_validate_json(json.dumps(example), strict=True)
            checked += 1
    assert checked >= 15
    for operation in OPERATIONS.values():
        if operation.body is not None and operation.body_example is not None:
            operation.body.model_validate(operation.body_example, strict=True)
