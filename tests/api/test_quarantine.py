"""``/v1/quarantine``: what was kept instead of stored, readable by its tenant, and replayable after a fix."""

from __future__ import annotations

import base64
from typing import Any

from gateway.app import ADAPTERS
from gateway.errors import PayloadError
from gateway.inbound import InboundAdapter, ParsedEvent
from tests.conftest import Gateway, make_settings, start_gateway
from tests.helpers import FIXTURES, source_headers

BODY = (FIXTURES / "graph8" / "call_completed.json").read_bytes()


def quarantined(gateway: Gateway, **params: Any) -> list[dict[str, Any]]:
    response = gateway.client.get("/v1/quarantine", params=params, headers=gateway.headers)
    assert response.status_code == 200, response.text
    data: list[dict[str, Any]] = response.json()["data"]
    return data


def test_an_unreadable_body_is_listed_shown_and_stays_when_replayed(gateway: Gateway) -> None:
    source = gateway.create_source("graph8")
    body = b'{"not": "a graph8 webhook", "x": "\xff"}'  # genuine (signed), but neither UTF-8 nor readable
    headers = {**source_headers(source, body), "authorization": "Bearer vendor-token"}
    assert gateway.post_hook(source, body, headers).status_code == 400

    (item,) = quarantined(gateway)
    assert item["source_id"] == source["id"]
    assert item["status"] == "open"
    assert item["size"] == len(body)
    assert "body" not in item  # the list is light; the item has the body

    whole = gateway.client.get(f"/v1/quarantine/{item['id']}", headers=gateway.headers).json()
    assert whole["body_encoding"] == "base64"
    assert base64.b64decode(whole["body"]) == body
    assert "authorization" not in whole["headers"]  # credentials are never kept
    assert whole["headers"]["webhook-id"] == headers["webhook-id"]

    again = gateway.client.post(f"/v1/quarantine/{item['id']}/replay", headers=gateway.headers)
    assert again.status_code == 200, again.text
    assert again.json()["status"] == "unreadable"
    assert again.json()["error"]
    assert quarantined(gateway, status="open")[0]["id"] == item["id"]
    assert quarantined(gateway, status="resolved") == []

    _, other = gateway.new_tenant()
    assert gateway.client.get("/v1/quarantine", headers=other).json()["data"] == []
    assert gateway.client.get(f"/v1/quarantine/{item['id']}", headers=other).status_code == 404
    assert gateway.client.post(f"/v1/quarantine/{item['id']}/replay", headers=other).status_code == 404


def test_a_body_quarantined_by_a_bug_is_recovered_by_replay_after_the_fix(db_url: str) -> None:
    def broken(headers: Any, body: bytes) -> ParsedEvent:
        raise PayloadError("the adapter before the fix")

    buggy = {**ADAPTERS, "graph8": InboundAdapter("graph8", broken, ADAPTERS["graph8"].default_verification)}
    running = start_gateway(make_settings(db_url), adapters=buggy)
    gateway = next(running)
    try:
        source = gateway.create_source("graph8")
        assert gateway.post_hook(source, BODY, source_headers(source, BODY)).status_code == 400
        tenant_headers = gateway.headers
    finally:
        running.close()

    running = start_gateway(make_settings(db_url))  # the fixed adapters
    fixed = next(running)
    try:
        fixed.api_key = tenant_headers["authorization"].split()[1]
        (item,) = quarantined(fixed)
        assert item["error"] == "the adapter before the fix"
        response = fixed.client.post(f"/v1/quarantine/{item['id']}/replay", headers=fixed.headers)
        assert response.status_code == 200, response.text
        assert response.json()["status"] == "recovered"
        (call,) = response.json()["calls"]
        assert (
            fixed.client.get(f"/v1/calls/{call['id']}", headers=fixed.headers).json()["status"] == "completed"
        )
        assert quarantined(fixed, status="resolved")[0]["resolved_at"]
        twice = fixed.client.post(f"/v1/quarantine/{item['id']}/replay", headers=fixed.headers)
        assert twice.json() == {"id": item["id"], "status": "resolved", "calls": []}
        assert len(fixed.calls()) == 1
    finally:
        running.close()


def test_quarantine_filters_and_pages(gateway: Gateway) -> None:
    source = gateway.create_source("graph8")
    for i in range(3):
        body = b'{"unreadable": %d}' % i
        assert gateway.post_hook(source, body, source_headers(source, body)).status_code == 400
    first = gateway.client.get("/v1/quarantine", params={"limit": 2}, headers=gateway.headers).json()
    assert len(first["data"]) == 2
    rest = gateway.client.get(
        "/v1/quarantine", params={"limit": 2, "cursor": first["next_cursor"]}, headers=gateway.headers
    ).json()
    assert len(rest["data"]) == 1
    assert rest["next_cursor"] is None
    ids = [q["id"] for q in first["data"] + rest["data"]]
    assert ids == sorted(ids, reverse=True)  # newest first
    assert quarantined(gateway, source_id="src_other") == []
    bad = gateway.client.get("/v1/quarantine", params={"status": "weird"}, headers=gateway.headers)
    assert bad.status_code == 422
    assert gateway.client.get("/v1/quarantine/qua_nope", headers=gateway.headers).status_code == 404
