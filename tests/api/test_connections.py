"""``/v1/connections`` over HTTP, with the in-process worker syncing to the Pipedrive double on loopback."""

from __future__ import annotations

import io
import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from gateway import logs
from tests.api.test_hooks import signed
from tests.conftest import Gateway, make_settings, start_gateway
from tests.crm.kinds import PIPEDRIVE, PIPEDRIVE_TOKEN
from tests.doubles import serving
from tests.helpers import FIXTURES


@pytest.fixture
def double() -> Iterator[tuple[Any, str]]:
    state = PIPEDRIVE.new_state()
    with serving(PIPEDRIVE.app(state)) as url:
        yield state, url


@pytest.fixture
def live(db_url: str) -> Iterator[Gateway]:
    settings = make_settings(db_url, allowed_target_cidrs=["127.0.0.0/8"], worker_poll_seconds=0.05)
    yield from start_gateway(settings)


def connect(live: Gateway, url: str, **body: Any) -> Any:
    payload = {"kind": "pipedrive", "base_url": url, "credentials": {"api_token": PIPEDRIVE_TOKEN}, **body}
    return live.client.post("/v1/connections", json=payload, headers=live.headers)


def wait_until(check: Any, timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("timed out")


def test_a_connection_is_created_shown_without_credentials_and_syncs_calls(
    live: Gateway, double: tuple[Any, str]
) -> None:
    state, url = double
    response = connect(live, url, name="sales pipedrive")
    assert response.status_code == 201, response.text
    shown = response.json()
    assert shown["kind"] == "pipedrive"
    assert shown["state"] == "active"
    assert shown["options"]["match_contacts"] is True  # defaults filled in
    assert "credentials" not in shown
    assert PIPEDRIVE_TOKEN not in response.text
    listed = live.client.get("/v1/connections", headers=live.headers).json()
    assert [c["id"] for c in listed["data"]] == [shown["id"]]
    assert PIPEDRIVE_TOKEN not in json.dumps(listed)
    assert live.client.post(f"/v1/connections/{shown['id']}/test", headers=live.headers).json() == {
        "ok": True
    }

    source = live.create_source("graph8")
    body = (FIXTURES / "graph8" / "call_completed.json").read_bytes()
    assert live.post_hook(source, body, signed("graph8", source, body)).status_code == 202
    wait_until(lambda: state.call_logs)
    records = wait_until(
        lambda: live.client.get(f"/v1/connections/{shown['id']}/records", headers=live.headers).json()["data"]
    )
    (call,) = live.calls()
    assert records[0]["call_id"] == call["id"]
    assert records[0]["record_type"] == "callLog"
    assert records[0]["record_id"] == next(iter(state.call_logs))
    one = live.client.get(f"/v1/connections/{shown['id']}", headers=live.headers).json()
    assert one["synced_calls"] == 1
    syncs = live.client.get(f"/v1/deliveries?connection_id={shown['id']}", headers=live.headers).json()
    (sync,) = syncs["data"]
    assert sync["connection_id"] == shown["id"]
    assert sync["status"] == "succeeded"
    detail = live.client.get(f"/v1/deliveries/{sync['id']}", headers=live.headers).json()
    assert len(detail["attempts_log"]) == 1

    resynced = live.client.post(
        f"/v1/connections/{shown['id']}/resync", json={"since": "2000-01-01T00:00:00Z"}, headers=live.headers
    )
    assert resynced.status_code == 202
    assert resynced.json() == {"queued": 1}
    wait_until(
        lambda: all(
            d["status"] == "succeeded"
            for d in live.client.get(
                f"/v1/deliveries?connection_id={shown['id']}", headers=live.headers
            ).json()["data"]
        )
    )
    assert len(state.call_logs) == 1  # the same call log, once


def test_bad_connections_are_422_and_other_tenants_see_nothing(
    live: Gateway, double: tuple[Any, str]
) -> None:
    _, url = double
    cases: list[tuple[dict[str, Any], str]] = [
        ({"kind": "zoho", "credentials": {"x": "y"}}, "kind"),
        ({"kind": "pipedrive", "base_url": url, "credentials": {"access_token": "x"}}, "credentials"),
        ({"kind": "pipedrive", "base_url": url, "credentials": {"api_token": ""}}, "credentials.api_token"),
        (
            {"kind": "pipedrive", "base_url": url, "credentials": {"api_token": "x"}, "options": {"x": 1}},
            "options",
        ),
        (
            {
                "kind": "pipedrive",
                "base_url": url,
                "credentials": {"api_token": "x"},
                "options": {"statuses": ["up"]},
            },
            "options.statuses",
        ),
        ({"kind": "pipedrive", "base_url": "http://10.0.0.1", "credentials": {"api_token": "x"}}, "base_url"),
        (
            {"kind": "pipedrive", "base_url": "ftp://example.com", "credentials": {"api_token": "x"}},
            "base_url",
        ),
    ]
    for body, field in cases:
        response = live.client.post("/v1/connections", json=body, headers=live.headers)
        assert response.status_code == 422, (body, response.text)
        assert response.json()["error"]["field"] == field, response.text
    created = connect(live, url).json()
    _, other = live.new_tenant()
    for method, path in (
        ("GET", f"/v1/connections/{created['id']}"),
        ("PATCH", f"/v1/connections/{created['id']}"),
        ("DELETE", f"/v1/connections/{created['id']}"),
        ("POST", f"/v1/connections/{created['id']}/test"),
        ("GET", f"/v1/connections/{created['id']}/records"),
    ):
        response = live.client.request(method, path, headers=other, json={} if method == "PATCH" else None)
        assert response.status_code == 404, (method, path, response.text)
    response = live.client.post(
        f"/v1/connections/{created['id']}/resync", json={"since": "2000-01-01T00:00:00Z"}, headers=other
    )
    assert response.status_code == 404
    assert live.client.get("/v1/connections", headers=other).json()["data"] == []


def test_a_failing_test_says_why_and_patching_credentials_fixes_it(
    live: Gateway, double: tuple[Any, str]
) -> None:
    _, url = double
    created = live.client.post(
        "/v1/connections",
        json={"kind": "pipedrive", "base_url": url, "credentials": {"api_token": "wrong-token"}},
        headers=live.headers,
    ).json()
    result = live.client.post(f"/v1/connections/{created['id']}/test", headers=live.headers).json()
    assert result["ok"] is False
    assert result["error"]["status_code"] == 401
    assert "wrong-token" not in json.dumps(result)
    patched = live.client.patch(
        f"/v1/connections/{created['id']}",
        json={"credentials": {"api_token": PIPEDRIVE_TOKEN}, "options": {"user_id": 7}},
        headers=live.headers,
    )
    assert patched.status_code == 200
    assert patched.json()["options"]["user_id"] == 7
    assert live.client.post(f"/v1/connections/{created['id']}/test", headers=live.headers).json() == {
        "ok": True
    }
    assert live.client.delete(f"/v1/connections/{created['id']}", headers=live.headers).status_code == 204
    assert live.client.get(f"/v1/connections/{created['id']}", headers=live.headers).status_code == 404


def test_credentials_never_reach_the_logs(db_url: str, double: tuple[Any, str]) -> None:
    _, url = double
    stream = io.StringIO()
    logs.configure("debug", "json", stream)
    try:
        settings = make_settings(db_url, allowed_target_cidrs=["127.0.0.0/8"])
        for live in start_gateway(settings):
            created = connect(live, url).json()
            live.client.patch(
                f"/v1/connections/{created['id']}",
                json={"credentials": {"api_token": "another-s3cret-token"}},
                headers=live.headers,
            )
            live.client.post(f"/v1/connections/{created['id']}/test", headers=live.headers)
            source = live.create_source("graph8")
            body = (FIXTURES / "graph8" / "call_completed.json").read_bytes()
            live.post_hook(source, body, signed("graph8", source, body))
            time.sleep(0.5)
    finally:
        logs.configure("info", "json")
    written = stream.getvalue()
    assert written  # something was logged
    assert PIPEDRIVE_TOKEN not in written
    assert "another-s3cret-token" not in written
