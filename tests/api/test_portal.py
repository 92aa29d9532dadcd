"""Portal links: one subscription's deliveries for its owner, with retry, and nothing else of the tenant."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from itsdangerous import TimestampSigner

from tests.conftest import Gateway, make_settings, start_gateway
from tests.helpers import FIXTURES, source_headers


@pytest.fixture
def gateway(db_url: str) -> Iterator[Gateway]:
    yield from start_gateway(make_settings(db_url, worker=False, allowed_target_cidrs=["127.0.0.0/8"]))


def subscribe(gateway: Gateway, port: int) -> dict[str, Any]:
    response = gateway.client.post(
        "/v1/subscriptions", json={"url": f"http://127.0.0.1:{port}/hook"}, headers=gateway.headers
    )
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


def link(gateway: Gateway, subscription_id: str, **body: Any) -> str:
    response = gateway.client.post(
        f"/v1/subscriptions/{subscription_id}/portal-link", json=body, headers=gateway.headers
    )
    assert response.status_code == 201, response.text
    url: str = response.json()["url"]
    assert url.startswith("http://testserver/portal/")
    return url.removeprefix("http://testserver")


def test_a_portal_link_shows_one_subscriptions_deliveries_and_retries_them(gateway: Gateway) -> None:
    mine, theirs = subscribe(gateway, 9), subscribe(gateway, 10)
    source = gateway.create_source("graph8")
    body = (FIXTURES / "graph8" / "call_completed.json").read_bytes()
    assert gateway.post_hook(source, body, source_headers(source, body)).status_code == 202

    path = link(gateway, mine["id"])
    shown = gateway.client.get(path)  # no API key: the link is the credential
    assert shown.status_code == 200, shown.text
    page = shown.json()
    assert page["subscription"]["id"] == mine["id"]
    assert "secret" not in page["subscription"]
    assert page["deliveries"]
    assert {d["subscription_id"] for d in page["deliveries"]} == {mine["id"]}

    delivery = page["deliveries"][0]["id"]
    assert gateway.client.post(f"{path}/deliveries/{delivery}/retry").status_code == 202
    all_deliveries = gateway.client.get("/v1/deliveries", headers=gateway.headers).json()["data"]
    other = next(d["id"] for d in all_deliveries if d["subscription_id"] == theirs["id"])
    assert gateway.client.post(f"{path}/deliveries/{other}/retry").status_code == 404
    # the link opens nothing else: not the tenant's API
    token = path.removeprefix("/portal/")
    assert gateway.client.get("/v1/calls", headers={"authorization": f"Bearer {token}"}).status_code == 401


def test_a_bad_or_expired_link_is_refused(gateway: Gateway, monkeypatch: pytest.MonkeyPatch) -> None:
    sub = subscribe(gateway, 9)
    path = link(gateway, sub["id"], ttl_seconds=60)
    tampered = path[:-3] + ("AAA" if not path.endswith("AAA") else "BBB")
    assert gateway.client.get(tampered).status_code == 401
    assert gateway.client.get("/portal/not-a-token").status_code == 401
    later = int(time.time()) + 61
    monkeypatch.setattr(TimestampSigner, "get_timestamp", lambda self: later)
    expired = gateway.client.get(path)
    assert expired.status_code == 401
    assert "expired" in expired.json()["error"]["message"]


def test_links_are_made_for_the_tenants_own_subscriptions_only(gateway: Gateway) -> None:
    sub = subscribe(gateway, 9)
    _, other = gateway.new_tenant()
    response = gateway.client.post(f"/v1/subscriptions/{sub['id']}/portal-link", json={}, headers=other)
    assert response.status_code == 404
    too_long = gateway.client.post(
        f"/v1/subscriptions/{sub['id']}/portal-link", json={"ttl_seconds": 10**9}, headers=gateway.headers
    )
    assert too_long.status_code == 422
    path = link(gateway, sub["id"])
    assert gateway.client.delete(f"/v1/subscriptions/{sub['id']}", headers=gateway.headers).status_code < 300
    assert gateway.client.get(path).status_code == 401  # the subscription is gone: so is its link
