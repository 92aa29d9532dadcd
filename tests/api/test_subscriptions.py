"""``/v1/subscriptions`` and ``/v1/deliveries`` through the app, with the in-process worker delivering to a
real loopback endpoint: the README's "subscribe, send a webhook, see it arrive" path."""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from typing import Any

import pytest
from standardwebhooks import Webhook

from tests.api.test_hooks import signed
from tests.conftest import Gateway, make_settings, start_gateway
from tests.helpers import FIXTURES
from tests.outbound.receiver import Receiver, receiver


@pytest.fixture
def live(db_url: str) -> Iterator[Gateway]:
    settings = make_settings(db_url, allowed_target_cidrs=["127.0.0.0/8"], worker_poll_seconds=30)
    yield from start_gateway(settings)


def subscribe(gateway: Gateway, url: str, **body: object) -> dict[str, Any]:
    response = gateway.client.post("/v1/subscriptions", json={"url": url, **body}, headers=gateway.headers)
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


def wait_for_status(gateway: Gateway, delivery_id: str, status: str) -> dict[str, Any]:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        shown: dict[str, Any] = gateway.client.get(
            f"/v1/deliveries/{delivery_id}", headers=gateway.headers
        ).json()
        if shown["status"] == status:
            return shown
        time.sleep(0.02)
    raise AssertionError(f"{delivery_id} never became {status}")


def test_a_webhook_reaches_the_subscriber_at_once_signed(live: Gateway) -> None:
    with receiver() as endpoint:
        sub = subscribe(live, endpoint.url, event_types=["call.*"], description="crm bridge")
        secret = str(sub["secret"])
        assert secret.startswith("whsec_")
        assert len(base64.b64decode(secret.removeprefix("whsec_"))) == 32
        shown = live.client.get(f"/v1/subscriptions/{sub['id']}", headers=live.headers).json()
        assert "secret" not in shown
        assert secret not in str(live.client.get("/v1/subscriptions", headers=live.headers).json())

        source = live.create_source("graph8")
        body = (FIXTURES / "graph8" / "call_completed.json").read_bytes()
        started = time.monotonic()
        assert live.post_hook(source, body, signed("graph8", source, body)).status_code == 202
        (got,) = endpoint.wait_for(1)
        # the poll interval is 30 s here: arriving sooner means the commit woke the worker
        assert time.monotonic() - started < 5
        Webhook(secret).verify(got.body, got.headers)
        assert got.json["type"] == "call.completed"

        listed = live.client.get(
            "/v1/deliveries", params={"subscription_id": sub["id"]}, headers=live.headers
        )
        (delivery,) = listed.json()["data"]
        detail = wait_for_status(live, str(delivery["id"]), "succeeded")
        assert detail["payload"] == got.json
        (attempt,) = detail["attempts_log"]
        assert attempt["status_code"] == 200

        retried = live.client.post(f"/v1/deliveries/{delivery['id']}/retry", headers=live.headers)
        assert retried.status_code == 202
        endpoint.wait_for(2)
        assert endpoint.received[1].headers["webhook-id"] == got.headers["webhook-id"]

        ping = live.client.post(f"/v1/subscriptions/{sub['id']}/test", headers=live.headers)
        assert ping.status_code == 202
        assert endpoint.wait_for(3)[-1].json["type"] == "ping"


def test_a_stopped_receiver_gets_its_events_after_the_retry(live: Gateway) -> None:
    down = {"on": True}

    def behave(state: Receiver, request: object) -> tuple[int, dict[str, str], bytes]:
        return (503, {}, b"down") if down["on"] else (200, {}, b"ok")

    with receiver(behave) as endpoint:
        sub = subscribe(live, endpoint.url)
        source = live.create_source("graph8")
        body = (FIXTURES / "graph8" / "call_completed.json").read_bytes()
        live.post_hook(source, body, signed("graph8", source, body))
        endpoint.wait_for(1)
        (delivery,) = live.client.get("/v1/deliveries", headers=live.headers).json()["data"]
        shown = wait_for_status(live, delivery["id"], "pending")
        assert shown["last_status_code"] == 503
        assert shown["next_attempt_at"] is not None
        down["on"] = False
        # an operator does not wait the minute: recover is for dead rows, retry brings one forward
        live.client.post(f"/v1/deliveries/{delivery['id']}/retry", headers=live.headers)
        wait_for_status(live, delivery["id"], "succeeded")
        detail = live.client.get(f"/v1/deliveries/{delivery['id']}", headers=live.headers).json()
        assert [a["status_code"] for a in detail["attempts_log"]] == [503, 200]
        assert sub["id"] == delivery["subscription_id"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"url": "http://127.0.0.1:9/hook"}, "url"),  # loopback, not allow-listed by default
        ({"url": "http://10.0.0.5/hook"}, "url"),
        ({"url": "http://169.254.169.254/latest/meta-data"}, "url"),
        ({"url": "ftp://example.com/"}, "url"),
        ({"url": "https://no-such-host.invalid/"}, "url"),
        ({"url": "https://8.8.8.8/hook", "event_types": ["call.exploded"]}, "event_types"),
        ({"url": "https://8.8.8.8/hook", "event_types": []}, "event_types"),
        ({"url": "https://8.8.8.8/hook", "max_concurrency": 0}, "max_concurrency"),
    ],
)
def test_bad_subscriptions_are_refused(gateway: Gateway, body: dict[str, object], field: str) -> None:
    response = gateway.client.post("/v1/subscriptions", json=body, headers=gateway.headers)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["field"] == field


def test_subscriptions_are_tenant_scoped_and_rotation_answers_a_new_secret(live: Gateway) -> None:
    with receiver() as endpoint:
        sub = subscribe(live, endpoint.url)
        _, other = live.new_tenant()
        for method, path in (
            ("GET", f"/v1/subscriptions/{sub['id']}"),
            ("PATCH", f"/v1/subscriptions/{sub['id']}"),
            ("POST", f"/v1/subscriptions/{sub['id']}/rotate-secret"),
            ("POST", f"/v1/subscriptions/{sub['id']}/test"),
            ("DELETE", f"/v1/subscriptions/{sub['id']}"),
        ):
            response = live.client.request(
                method, path, headers=other, json={} if method == "PATCH" else None
            )
            assert response.status_code == 404, (method, path, response.text)
        assert live.client.get("/v1/deliveries", headers=other).json()["data"] == []
        rotated = live.client.post(
            f"/v1/subscriptions/{sub['id']}/rotate-secret", headers=live.headers
        ).json()
        assert rotated["secret"] != sub["secret"]
        assert rotated["secrets_active"] == 2
        patched = live.client.patch(
            f"/v1/subscriptions/{sub['id']}", json={"enabled": False}, headers=live.headers
        ).json()
        assert patched["enabled"] is False
        assert live.client.delete(f"/v1/subscriptions/{sub['id']}", headers=live.headers).status_code == 204
        assert live.client.get(f"/v1/subscriptions/{sub['id']}", headers=live.headers).status_code == 404


def test_one_calls_events_arrive_in_order_without_waiting_for_the_poll(live: Gateway) -> None:
    """Events of one call arrive while the previous delivery is still under way: each later one waits
    behind it (per-call order) and goes out as soon as it is done, not at the next poll (30 s here)."""
    with receiver(delay=0.2) as endpoint:
        subscribe(live, endpoint.url, event_types=["call.*"])
        source = live.create_source("graph8")
        names = ("call_initiating.json", "call_in_progress.json", "call_completed.json")
        started = time.monotonic()
        for name in names:
            body = (FIXTURES / "graph8" / name).read_bytes()
            assert live.post_hook(source, body, signed("graph8", source, body)).status_code == 202
        got = endpoint.wait_for(3, timeout=10)
        assert time.monotonic() - started < 10
        assert [r.json["type"] for r in got] == ["call.initiating", "call.in_progress", "call.completed"]
        assert [r.json["data"]["version"] for r in got] == [1, 2, 3]
