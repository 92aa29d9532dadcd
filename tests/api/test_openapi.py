"""``/openapi.json`` and ``/docs``, and Schemathesis against a real callgate built from that document.

The server is the real thing: ``create_app`` under uvicorn with the edge's protocol (``gateway.edge``), on
loopback, over a temporary SQLite database holding a tenant with sources, calls, a quarantined body,
subscriptions with deliveries, a CRM connection and a portal link. Schemathesis runs every operation of the
document (built here to collect the tests, and required to equal the one the server serves): with the right
keys (a tenant's and an operator's), and with a key that is no key. Path parameters are drawn half the time
from the seeded ids, so the operations reach real objects as well as 404s. Checks: no 5xx, every status
documented, every body and header as documented, and the rest of Schemathesis's default checks (a schema
that rejects what the server takes, or takes what it rejects, fails too). Only DNS is not real: host names
resolve to nothing (``no_dns``).

Bounded to stay well inside 90 s: a few examples per operation, no shrinking, no stateful phase.
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import random
import re
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
import uvicorn
from hypothesis import HealthCheck, Phase, settings
from schemathesis.generation.case import Case
from starlette.applications import Starlette
from starlette.routing import BaseRoute, Route

from gateway import auth, edge
from gateway.api import docs, openapi
from gateway.app import ADAPTERS, CONNECTORS, create_app
from gateway.clock import system_clock
from gateway.outbound import ssrf
from gateway.outbound.ssrf import IPAddress
from gateway.store.db import Database
from tests.conftest import make_settings
from tests.helpers import FIXTURES, source_headers

# per operation and phase; CALLGATE_FUZZ_EXAMPLES=100 for a deeper (and random, not repeatable) run by hand
DEEP = os.environ.get("CALLGATE_FUZZ_EXAMPLES")
EXAMPLES = int(DEEP or 6)
CLOSED_PORT = 9  # discard: nothing listens, so a delivery or CRM call fails at once


@dataclass
class Live:
    url: str
    operator_key: str
    app: Starlette
    tenant_key: str = ""
    ids: dict[str, list[str]] = field(default_factory=dict)

    @property
    def routes(self) -> list[BaseRoute]:
        return list(self.app.routes)

    def headers(self, key: str | None = None) -> dict[str, str]:
        # "Authorization" as the security scheme names it: Schemathesis's auth probes remove it by that name
        return {"Authorization": f"Bearer {key or self.tenant_key}"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _operator_key(url: str) -> str:
    db = Database(url)
    try:
        return (await auth.create_api_key(db, None, "openapi tests", system_clock)).api_key
    finally:
        await db.dispose()


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory, sqlite_template: Path, no_dns: None) -> Iterator[Live]:
    path = tmp_path_factory.mktemp("openapi") / "callgate.db"
    shutil.copy(sqlite_template, path)
    url = f"sqlite+aiosqlite:///{path}"
    port = _free_port()
    settings = make_settings(
        url,
        public_url=f"http://127.0.0.1:{port}",
        worker=False,  # deliveries stay pending: what is fuzzed is the API, not the endpoints
        allowed_target_cidrs=["127.0.0.0/8"],
        auto_migrate=False,
    )
    operator_key = asyncio.run(_operator_key(url))
    app = create_app(settings, configure_logging=False)
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        log_level="error",
        access_log=False,
        **edge.uvicorn_options(settings),
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert thread.is_alive(), "the server stopped while starting"
        assert time.monotonic() < deadline, "the server did not start"
        time.sleep(0.02)
    served = Live(f"http://127.0.0.1:{port}", operator_key, app)
    try:
        _seed(served)
        yield served
    finally:
        server.should_exit = True
        thread.join(15)


@pytest.fixture(scope="module", autouse=True)
def no_dns() -> Iterator[None]:
    """Host names resolve to nothing (the SSRF guard refuses them: 422), addresses to themselves. Generated
    URLs name random hosts, and this machine's resolver loses a query now and then (5 s each)."""

    async def resolve(host: str, port: int) -> list[IPAddress]:
        try:
            return [ipaddress.ip_address(host)]
        except ValueError:
            raise ssrf.BlockedTarget(f"{host} does not resolve") from None

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(ssrf, "resolve", resolve)
        yield


def _seed(live: Live) -> None:
    """A tenant with a little of everything, so path parameters can name real objects."""
    with httpx.Client(base_url=live.url, timeout=10) as client:

        def post(path: str, body: Any, key: str | None = None, expect: int = 201) -> Any:
            response = client.post(path, json=body, headers=live.headers(key))
            assert response.status_code == expect, response.text
            return response.json()

        live.tenant_key = post("/v1/tenants", {"name": "acme"}, live.operator_key)["api_key"]
        hook = f"http://127.0.0.1:{CLOSED_PORT}/hook"
        subscriptions = [post("/v1/subscriptions", {"url": hook})["id"] for _ in range(3)]
        sources = [post("/v1/sources", {"name": v, "vendor": v}) for v in ("graph8", "voicecalls", "graph8")]
        for name in ("call_ringing.json", "call_completed.json", "call_graded.json"):
            body = (FIXTURES / "graph8" / name).read_bytes()
            response = client.post(
                sources[0]["hook_url"], content=body, headers=source_headers(sources[0], body)
            )
            assert response.status_code == 202, response.text
        body = (FIXTURES / "voicecalls" / "completed.json").read_bytes()
        assert client.post(
            sources[1]["hook_url"], content=body, headers=source_headers(sources[1], body)
        ).is_success
        for junk in (b"not json", b"[1, 2]"):
            refused = client.post(
                sources[0]["hook_url"], content=junk, headers=source_headers(sources[0], junk)
            )
            assert refused.status_code == 400, refused.text
        pings = [post(f"/v1/subscriptions/{s}/test", None, expect=202)["id"] for s in subscriptions]
        connections = [
            post(
                "/v1/connections",
                {
                    "kind": "hubspot",
                    "base_url": f"http://127.0.0.1:{CLOSED_PORT}",
                    "credentials": {"access_token": "x"},
                },
            )["id"]
            for _ in range(2)
        ]
        links = [post(f"/v1/subscriptions/{s}/portal-link", {})["url"] for s in subscriptions]

        def listed(path: str) -> list[str]:
            response = client.get(path, headers=live.headers())
            assert response.status_code == 200, response.text
            return [item["id"] for item in response.json()["data"]]

        live.ids = {
            "source_id": [s["id"] for s in sources],
            "call_id": listed("/v1/calls"),
            "subscription_id": subscriptions,
            "delivery_id": pings + listed("/v1/deliveries")[:4],
            "connection_id": connections,
            "quarantine_id": listed("/v1/quarantine"),
            "token": [link.rsplit("/", 1)[-1] for link in links],
        }


def local_document() -> dict[str, Any]:
    """The document an app with the registry's adapters and CRM kinds serves, built without serving it
    (Schemathesis needs it to collect the tests); ``test_the_served_document_is_this_one`` holds the
    server to it."""
    app = create_app(make_settings("sqlite+aiosqlite:///:memory:"), configure_logging=False)
    return openapi.build(app.routes, docs.vocabulary(ADAPTERS, CONNECTORS))


DOCUMENT = local_document()
SETTINGS: dict[str, Any] = {
    "request-timeout": 5,
    "max-stream-events": 1,
    # The API ignores query parameters it does not know, as most do; Schemathesis lets such requests
    # through its negative checks, except when the unknown name is empty (`?=`): no extra parameters.
    "generation": {"max-examples": EXAMPLES, "no-shrink": True, "allow-extra-parameters": False},
    "phases": {"stateful": {"enabled": False}},
    "checks": {
        # What JSON Schema cannot say: a URL's host must resolve to an allowed address, a cursor or a portal
        # token must carry the gateway's signature, a `since` must be a time, credentials must have the
        # kind's keys. Schema-valid requests may meet those 400s and 422s (each one documented).
        "positive_data_acceptance": {"expected-statuses": ["2xx", "400", "401", "403", "404", "422"]}
    },
    # an endless event stream: read until its first event or for half a second
    "operations": [{"include-path": "/v1/stream", "request-timeout": 0.5}],
}
schema = schemathesis.openapi.from_dict(DOCUMENT, config=schemathesis.Config.from_dict(SETTINGS))
# Without a key every secured operation stops at 401, so the coverage phase's thousand bodies would test
# one branch: valid requests of every operation are enough.
keyless = schemathesis.openapi.from_dict(
    DOCUMENT,
    config=schemathesis.Config.from_dict(
        {
            **SETTINGS,
            "generation": {**SETTINGS["generation"], "mode": "positive"},
            "phases": {"stateful": {"enabled": False}, "coverage": {"enabled": False}},
        }
    ),
)
WRONG_KEY = "cgk_" + "0" * 43  # shaped like a key, and no key

FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=not DEEP,
    database=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)


def _key_for(case: Case[Any], live: Live) -> str:
    security = case.operation.definition.raw.get("security") or []
    return live.operator_key if security == [{"operatorKey": []}] else live.tenant_key


def _real_ids(case: Case[Any], live: Live) -> None:
    """Half the time, a path parameter names a seeded object (else the generated value: mostly a 404)."""
    if case.meta is None or not case.meta.generation.mode.is_positive or not case.path_parameters:
        return
    rng = random.Random(repr(sorted(case.path_parameters.items())))
    for name in list(case.path_parameters):
        if live.ids.get(name) and rng.random() < 0.5:
            case.path_parameters[name] = rng.choice(live.ids[name])


@schema.parametrize()
@FUZZ
def test_with_keys(case: Case[Any], live: Live) -> None:
    _real_ids(case, live)
    case.call_and_validate(base_url=live.url, headers=live.headers(_key_for(case, live)))


@keyless.parametrize()
@FUZZ
def test_without_a_valid_key(case: Case[Any], live: Live) -> None:
    _real_ids(case, live)
    response = case.call_and_validate(base_url=live.url, headers=live.headers(WRONG_KEY))
    if case.operation.definition.raw.get("security") and case.method.upper() == case.operation.method.upper():
        assert response.status_code == 401, (
            response.text
        )  # before anything else: nothing leaks, nothing changes


# --- the document and the page ------------------------------------------------------------------------


def test_every_json_api_route_is_declared(live: Live) -> None:
    assert openapi.undeclared(live.routes) == []


async def _undeclared_handler(request: Any) -> Any:
    raise NotImplementedError


def test_a_route_without_a_declaration_is_named_and_left_out() -> None:
    routes = [Route("/v1/new-thing", _undeclared_handler, methods=["GET", "POST"])]
    assert openapi.undeclared(routes) == ["GET,HEAD,POST /v1/new-thing"]
    assert openapi.build(routes, {})["paths"] == {}


def test_the_document_covers_every_route_and_method(live: Live) -> None:
    document = httpx.get(f"{live.url}/openapi.json").json()
    assert document["openapi"] == "3.1.0"
    documented = {(method.upper(), path) for path, item in document["paths"].items() for method in item}
    routed = {
        (method, route.path_format)
        for route, _ in openapi.declared(live.routes)
        for method in (route.methods or set()) - {"HEAD"}
    }
    assert documented == routed
    assert ("GET", "/v1/calls/{call_id}") in documented
    assert ("POST", "/hooks/{source_id}") in documented
    for path, item in document["paths"].items():
        for method, operation in item.items():
            assert operation["summary"], (method, path)
            assert operation["tags"], (method, path)
            assert any(s[0] in "23" for s in operation["responses"]), (method, path)  # success, redirect
            named = {p["name"] for p in operation.get("parameters", []) if p["in"] == "path"}
            assert set(re.findall(r"{(\w+)}", path)) == named, (method, path)
    ids = [op["operationId"] for item in document["paths"].values() for op in item.values()]
    assert len(ids) == len(set(ids))


def test_the_served_document_is_this_one(live: Live) -> None:
    assert httpx.get(f"{live.url}/openapi.json").json() == DOCUMENT


def test_the_document_is_built_once(live: Live, monkeypatch: pytest.MonkeyPatch) -> None:
    first = httpx.get(f"{live.url}/openapi.json")
    assert first.headers["content-type"] == "application/json"
    assert live.app.state.openapi_document == first.content

    def build(*args: Any) -> Any:
        raise AssertionError("built again")

    monkeypatch.setattr(openapi, "build", build)
    assert httpx.get(f"{live.url}/openapi.json").content == first.content


def test_docs_is_served_from_the_gateway_alone(live: Live) -> None:
    page = httpx.get(f"{live.url}/docs")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assets = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert len(assets) == 4  # the stylesheet, the icon, Swagger UI and the script that starts it
    assert not [a for a in assets if re.match(r"^([a-z]+:)?//", a)], "every asset is the gateway's own"
    for asset in assets:
        served = httpx.get(f"{live.url}/{asset}")
        assert served.status_code == 200, asset
        assert len(served.content) > 100, asset
    script = httpx.get(f"{live.url}/docs/assets/callgate-docs.js").text
    assert "validatorUrl: null" in script  # else the page would load a badge from swagger.io
    assert 'url: "openapi.json"' in script
    assert "Apache License" in httpx.get(f"{live.url}/docs/assets/LICENSE").text


def test_an_unknown_asset_is_a_404_in_the_envelope(live: Live) -> None:
    missing = httpx.get(f"{live.url}/docs/assets/nope.js")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "not_found"


# --- what Schemathesis found, pinned --------------------------------------------------------------------


def test_a_405_names_every_method_of_the_path(live: Live) -> None:
    """RFC 9110 wants ``Allow`` on a 405; Starlette's named only the first route at the path."""
    refused = httpx.put(f"{live.url}/v1/sources", headers=live.headers())
    assert refused.status_code == 405
    assert refused.headers["allow"] == "GET, HEAD, POST"
    assert refused.json()["error"]["code"] == "method_not_allowed"
    one = httpx.post(f"{live.url}/v1/sources/src_x", headers=live.headers())
    assert one.headers["allow"] == "DELETE, GET, HEAD, PATCH"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "x", "vendor": "graph8", "enabled": "yes"}, "enabled"),
        ({"name": "x", "vendor": "graph8", "enabled": 1}, "enabled"),
        ({"name": 5, "vendor": "graph8"}, "name"),
        (
            {
                "name": "x",
                "vendor": "livekit",
                "verification": {"scheme": "livekit", "keys": {"k": "s"}, "leeway_seconds": "60"},
            },
            "verification.livekit.leeway_seconds",
        ),
    ],
)
def test_a_body_value_of_another_json_type_is_refused(live: Live, body: dict[str, Any], field: str) -> None:
    """The document says boolean, integer, string: the API no longer reads "yes" as true or "60" as 60."""
    refused = httpx.post(f"{live.url}/v1/sources", json=body, headers=live.headers())
    assert refused.status_code == 422, refused.text
    assert refused.json()["error"]["field"] == field
