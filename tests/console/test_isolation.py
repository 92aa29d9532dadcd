"""One tenant signed in to the console sees nothing of another's: not in lists, not by id, not by a form."""

from __future__ import annotations

from tests.conftest import Gateway
from tests.console.helpers import post_call, sign_in, subscribe
from tests.helpers import source_headers


def test_a_tenant_never_sees_or_changes_another_tenants_objects(gateway: Gateway) -> None:
    # tenant A (the gateway's): a call, a source, a subscription with deliveries, a quarantined body
    client = gateway.client
    source = gateway.create_source("graph8")
    sub = subscribe(gateway)
    call_id = post_call(gateway, source)
    body = b'{"unreadable": true}'
    assert gateway.post_hook(source, body, source_headers(source, body)).status_code == 400
    delivery_id = client.get("/v1/deliveries", headers=gateway.headers).json()["data"][0]["id"]
    quarantine_id = client.get("/v1/quarantine", headers=gateway.headers).json()["data"][0]["id"]
    connection = client.post(
        "/v1/connections",
        json={"kind": "hubspot", "base_url": "http://127.0.0.1:9", "credentials": {"access_token": "t"}},
        headers=gateway.headers,
    )
    assert connection.status_code == 201, connection.text
    connection_id = connection.json()["id"]
    theirs = [call_id, source["id"], sub["id"], delivery_id, quarantine_id, connection_id]

    # tenant B signs in
    _, other = gateway.new_tenant("other")
    token = sign_in(gateway, other["authorization"].removeprefix("Bearer "))
    for path in (
        "/console/calls",
        "/console/sources",
        "/console/subscriptions",
        "/console/deliveries",
        "/console/quarantine",
        "/console/connections",
    ):
        page = client.get(path)
        assert page.status_code == 200, path
        for object_id in theirs:
            assert object_id not in page.text, (path, object_id)
    for query in (f"subscription_id={sub['id']}", f"call_id={call_id}"):  # the filter names it; no rows
        assert 'id="delivery-' not in client.get(f"/console/deliveries?{query}").text

    for path in (
        f"/console/calls/{call_id}",
        f"/console/calls/{call_id}/row",
        f"/console/subscriptions/{sub['id']}",
        f"/console/deliveries/{delivery_id}",
        f"/console/quarantine/{quarantine_id}",
        f"/console/connections/{connection_id}",
    ):
        page = client.get(path)
        assert page.status_code == 404, path
        assert "no such" in page.text

    for path in (
        f"/console/deliveries/{delivery_id}/retry",
        f"/console/subscriptions/{sub['id']}/test",
        f"/console/subscriptions/{sub['id']}/rotate-secret",
        f"/console/quarantine/{quarantine_id}/replay",
        f"/console/connections/{connection_id}/test",
    ):
        assert client.post(path, data={"csrf": token}).status_code == 404, path
    paused = client.post(
        f"/console/subscriptions/{sub['id']}/enabled", data={"csrf": token, "enabled": "false"}
    )
    assert paused.status_code == 404
    link = client.post(
        f"/console/subscriptions/{sub['id']}/portal-link", data={"csrf": token, "ttl_seconds": "3600"}
    )
    assert link.status_code == 404

    # and tenant A's objects are as they were
    shown = client.get(f"/v1/subscriptions/{sub['id']}", headers=gateway.headers).json()
    assert shown["enabled"] is True
    assert shown["secrets_active"] == 1
    pings = client.get(
        "/v1/deliveries", params={"subscription_id": sub["id"]}, headers=gateway.headers
    ).json()
    assert all(d["event_type"] != "ping" for d in pings["data"])
