"""The tenant API: calls (filters, pagination, timeline), sources, keys, isolation and the error envelope."""

from __future__ import annotations

from typing import Any

import pytest
import structlog

from tests.api.test_hooks import signed
from tests.conftest import Gateway
from tests.helpers import FIXTURES


def post_fixture(gateway: Gateway, source: dict[str, Any], vendor: str, name: str) -> Any:
    body = (FIXTURES / vendor / name).read_bytes()
    response = gateway.post_hook(source, body, signed(vendor, source, body, msg_id=name))
    assert response.status_code == 202, response.text
    return response.json()


@pytest.fixture
def populated(gateway: Gateway) -> Gateway:
    """Seven calls: graph8 (4), voicecalls (3, all inbound but one)."""
    g8 = gateway.create_source("graph8")
    for name in ("call_completed.json", "call_busy.json", "call_no_answer.json", "callback_missed.json"):
        post_fixture(gateway, g8, "graph8", name)
    vc = gateway.create_source("voicecalls")
    for name in ("completed.json", "busy.json", "failed.json"):
        post_fixture(gateway, vc, "voicecalls", name)
    return gateway


def test_filters(populated: Gateway) -> None:
    assert len(populated.calls()) == 7
    assert {c["status"] for c in populated.calls(status="busy")} == {"busy"}
    assert len(populated.calls(status="busy")) == 2
    assert {c["vendor"] for c in populated.calls(vendor="voicecalls")} == {"voicecalls"}
    inbound = populated.calls(direction="inbound")
    assert {c["direction"] for c in inbound} == {"inbound"}
    assert len(inbound) == 3  # the missed callback and two inbound voicecalls
    # a number matches either end, in any notation phonenumbers can read
    assert len(populated.calls(number="(415) 555-0123")) == 4
    assert len(populated.calls(number="+14155550123", vendor="graph8", status="completed")) == 1
    assert populated.calls(since="2999-01-01T00:00:00Z") == []
    assert len(populated.calls(until="2999-01-01T00:00:00Z")) == 7


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"status": "done"}, "status"),
        ({"direction": "sideways"}, "direction"),
        ({"limit": "0"}, "limit"),
        ({"limit": "abc"}, "limit"),
        ({"since": "yesterday"}, "since"),
        ({"number": "not a number"}, "number"),
        ({"cursor": "forged"}, "cursor"),
    ],
)
def test_bad_filters_are_4xx_with_the_field(populated: Gateway, params: dict[str, str], field: str) -> None:
    response = populated.client.get("/v1/calls", params=params, headers=populated.headers)
    assert response.status_code in (400, 422)
    assert response.json()["error"]["field"] == field


def test_cursor_pagination_walks_every_call_once(populated: Gateway) -> None:
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params = {"limit": "3", **({"cursor": cursor} if cursor else {})}
        body = populated.client.get("/v1/calls", params=params, headers=populated.headers).json()
        seen += [c["id"] for c in body["data"]]
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert pages == 3
    assert len(seen) == len(set(seen)) == 7
    assert seen == sorted(seen, reverse=True)  # newest first


def test_one_call_and_its_timeline(gateway: Gateway) -> None:
    source = gateway.create_source("graph8")
    ids = [
        post_fixture(gateway, source, "graph8", n)["event_id"]
        for n in ("call_ringing.json", "call_completed.json")
    ]
    (call,) = gateway.calls()
    one = gateway.client.get(f"/v1/calls/{call['id']}", headers=gateway.headers).json()
    assert one == call
    assert one["version"] == 2
    timeline = gateway.client.get(f"/v1/calls/{call['id']}/events", headers=gateway.headers).json()["data"]
    assert [e["raw_event_id"] for e in timeline] == ids
    assert [e["status"] for e in timeline] == ["ringing", "completed"]
    assert timeline[1]["previous_status"] == "ringing"
    assert "call.completed" in timeline[1]["types"]


def test_one_tenant_never_sees_another(populated: Gateway) -> None:
    _, other = populated.new_tenant()
    call = populated.calls()[0]
    source = populated.client.get("/v1/sources", headers=populated.headers).json()["data"][0]
    assert populated.client.get("/v1/calls", headers=other).json()["data"] == []
    for path in (f"/v1/calls/{call['id']}", f"/v1/calls/{call['id']}/events", f"/v1/sources/{source['id']}"):
        response = populated.client.get(path, headers=other)
        assert response.status_code == 404, path
        assert response.json()["error"]["code"] == "not_found"
    assert (
        populated.client.patch(f"/v1/sources/{source['id']}", json={"name": "x"}, headers=other).status_code
        == 404
    )
    assert populated.client.delete(f"/v1/sources/{source['id']}", headers=other).status_code == 404
    assert populated.client.get("/v1/sources", headers=other).json()["data"] == []


def test_sources_crud_and_secrets_are_never_shown_again(gateway: Gateway) -> None:
    created = gateway.create_source("graph8", name="prod graph8")
    assert created["secret"].startswith("whsec_")
    assert created["verification"] == {
        "scheme": "standard-webhooks",
        "secrets": ["…" + created["secret"][-4:]],
        "tolerance_seconds": 300,
    }
    livekit = gateway.create_source("livekit")
    assert livekit["api_key"].startswith("API")
    assert livekit["verification"]["keys"] == {livekit["api_key"]: "…" + livekit["secret"][-4:]}
    listed = gateway.client.get("/v1/sources", headers=gateway.headers).json()["data"]
    assert {s["id"] for s in listed} == {created["id"], livekit["id"]}
    assert all("secret" not in s for s in listed)
    renamed = gateway.client.patch(
        f"/v1/sources/{created['id']}", json={"name": "renamed"}, headers=gateway.headers
    )
    assert renamed.json()["name"] == "renamed"
    bad = gateway.client.patch(
        f"/v1/sources/{created['id']}", json={"verification": {"scheme": "hmac"}}, headers=gateway.headers
    )
    assert bad.status_code == 422
    assert bad.json()["error"]["field"].startswith("verification")


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"name": "x", "vendor": "nope"}, 422, "vendor"),
        ({"vendor": "graph8"}, 422, "name"),
        ({"name": "x", "vendor": "graph8", "verification": {"scheme": "rot13"}}, 422, "verification"),
        ({"name": "x", "vendor": "graph8", "surprise": 1}, 422, "surprise"),
    ],
)
def test_bad_source_requests(gateway: Gateway, body: dict[str, Any], status: int, field: str) -> None:
    response = gateway.client.post("/v1/sources", json=body, headers=gateway.headers)
    assert response.status_code == status
    assert response.json()["error"]["field"].startswith(field)


def test_oversized_api_body_is_413(gateway: Gateway) -> None:
    response = gateway.client.post(
        "/v1/sources", content=b"{" + b" " * 70_000 + b"}", headers=gateway.headers
    )
    assert response.status_code == 413


def test_malformed_json_request_is_400(gateway: Gateway) -> None:
    response = gateway.client.post("/v1/sources", content=b"{nope", headers=gateway.headers)
    assert response.status_code == 400
    assert set(response.json()["error"]) == {"code", "message", "request_id"}


def test_authentication_and_roles(gateway: Gateway) -> None:
    for headers in ({}, {"authorization": "Bearer cgk_wrong"}, {"authorization": "Basic abc"}):
        response = gateway.client.get("/v1/calls", headers=headers)
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "unauthorized"
    # operator keys manage tenants but do not read tenant data; tenant keys cannot create tenants
    assert gateway.client.get("/v1/calls", headers=gateway.operator_headers).status_code == 403
    assert gateway.client.post("/v1/tenants", json={"name": "x"}, headers=gateway.headers).status_code == 403
    # a tenant key can issue more keys for its own tenant, and they work
    issued = gateway.client.post("/v1/api-keys", json={"name": "ci"}, headers=gateway.headers)
    assert issued.status_code == 201
    assert issued.json()["tenant_id"] == gateway.tenant_id
    fresh = {"authorization": f"Bearer {issued.json()['api_key']}"}
    assert gateway.client.get("/v1/calls", headers=fresh).status_code == 200
    other_tenant, _ = gateway.new_tenant()
    refused = gateway.client.post("/v1/api-keys", json={"tenant_id": other_tenant}, headers=gateway.headers)
    assert refused.status_code == 403
    operator_issued = gateway.client.post(
        "/v1/api-keys", json={"tenant_id": other_tenant}, headers=gateway.operator_headers
    )
    assert operator_issued.status_code == 201
    assert operator_issued.json()["tenant_id"] == other_tenant
    missing = gateway.client.post(
        "/v1/api-keys", json={"tenant_id": "ten_nope"}, headers=gateway.operator_headers
    )
    assert missing.status_code == 404


def test_unknown_route_and_method_use_the_envelope(gateway: Gateway) -> None:
    missing = gateway.client.get("/v1/nothing")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "not_found"
    assert missing.headers["x-request-id"] == missing.json()["error"]["request_id"]
    wrong = gateway.client.get("/hooks/src_x")
    assert wrong.status_code == 405
    assert wrong.json()["error"]["code"] == "method_not_allowed"


def test_health_and_readiness(gateway: Gateway) -> None:
    assert gateway.client.get("/healthz").json()["status"] == "ok"
    assert gateway.client.get("/readyz").json() == {"status": "ready", "database": "ok"}


def test_the_root_is_an_index_not_a_404(gateway: Gateway) -> None:
    response = gateway.client.get("/")
    assert response.status_code == 200
    body = response.json()
    assert body["name"] == "callgate"
    for link in body["links"].values():  # every link it names exists (401 without a key, not 404)
        assert gateway.client.get(link).status_code in (200, 401), link


def test_logs_are_json_off_a_terminal_and_for_people_on_one() -> None:
    import io

    from gateway import logs

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    try:
        for stream, is_json in ((io.StringIO(), True), (Terminal(), False)):
            logs.configure("info", "auto", stream)
            structlog.get_logger("t").info("hello", n=1)
            line = stream.getvalue().strip()
            assert line.startswith("{") is is_json, line
    finally:
        logs.configure("info", "json")
