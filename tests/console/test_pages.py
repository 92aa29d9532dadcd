"""Every console page, signed in: what it shows and what its forms change (through the same services as
the API, which the assertions read back)."""

from __future__ import annotations

import html
import re
from typing import Any

from tests.conftest import Gateway
from tests.console.helpers import csrf_of, post_call, sign_in, subscribe
from tests.helpers import FIXTURES, source_headers


def api(gateway: Gateway, path: str, **params: Any) -> Any:
    response = gateway.client.get(path, params=params, headers=gateway.headers)
    assert response.status_code == 200, response.text
    return response.json()


def test_the_calls_list_filters_and_pages_like_the_api(gateway: Gateway) -> None:
    source = gateway.create_source("graph8")
    first = post_call(gateway, source, "call_completed.json")
    voice = gateway.create_source("voicecalls")
    body = (FIXTURES / "voicecalls" / "completed.json").read_bytes()
    assert gateway.post_hook(voice, body, source_headers(voice, body)).status_code == 202
    sign_in(gateway)
    client = gateway.client

    page = client.get("/console/calls")
    assert page.status_code == 200
    for call in api(gateway, "/v1/calls")["data"]:
        assert f'id="row-{call["id"]}"' in page.text
    assert 'data-prepend="true"' in page.text  # the first page, unfiltered: new calls are prepended

    graph8 = client.get("/console/calls", params={"vendor": "graph8"})
    assert f'id="row-{first}"' in graph8.text
    assert graph8.text.count('id="row-') == 1
    assert 'data-prepend="false"' in graph8.text

    bad = client.get("/console/calls", params={"status": "exploded"})
    assert bad.status_code == 422
    assert "status must be one of" in bad.text
    assert client.get("/console/calls", params={"cursor": "forged"}).status_code == 400
    assert client.get("/console/calls", params={"since": "last tuesday"}).status_code == 422

    one = client.get("/console/calls", params={"limit": 1})
    assert one.text.count('id="row-') == 1
    older = re.search(r'href="([^"]+)" rel="next"', one.text)
    assert older
    rest = client.get(html.unescape(older.group(1)))
    assert rest.status_code == 200
    assert rest.text.count('id="row-') == 1
    assert "Newest calls" in rest.text


def test_a_call_shows_its_fields_timeline_raw_events_and_deliveries(gateway: Gateway) -> None:
    subscribe(gateway)
    source = gateway.create_source("graph8")
    post_call(gateway, source, "call_ringing.json")
    call_id = post_call(gateway, source, "call_completed.json")
    assert post_call(gateway, source, "call_transcript_ready.json") == call_id
    sign_in(gateway)
    page = gateway.client.get(f"/console/calls/{call_id}")
    assert page.status_code == 200
    text = page.text
    events = api(gateway, f"/v1/calls/{call_id}/events")["data"]
    assert len(events) == 3
    for event in events:
        assert event["raw_event_id"] in text
    assert "rm_5028106_1716647400" in text  # the vendor's call id, and inside the raw events
    assert "Transcript" in text
    deliveries = api(gateway, "/v1/deliveries", call_id=call_id)["data"]
    assert deliveries
    for delivery in deliveries:
        assert f'id="delivery-{delivery["id"]}"' in text
    row = gateway.client.get(f"/console/calls/{call_id}/row")
    assert row.status_code == 200
    assert row.text.strip().startswith(f'<tr id="row-{call_id}"')
    assert gateway.client.get("/console/calls/call_nope").status_code == 404
    assert gateway.client.get("/console/calls/call_nope/row").status_code == 404


def test_a_new_source_shows_its_hook_url_and_secret_once(gateway: Gateway) -> None:
    token = sign_in(gateway)
    created = gateway.client.post(
        "/console/sources", data={"csrf": token, "name": "dialer", "vendor": "graph8"}
    )
    assert created.status_code == 201, created.text
    (source,) = api(gateway, "/v1/sources")["data"]
    assert source["hook_url"] in created.text
    secret = re.search(r'id="source-secret">([^<]+)<', created.text)
    assert secret
    assert secret.group(1).startswith("whsec_")
    listed = gateway.client.get("/console/sources")
    assert source["hook_url"] in listed.text
    assert secret.group(1) not in listed.text  # once
    livekit = gateway.client.post(
        "/console/sources", data={"csrf": token, "name": "sip", "vendor": "livekit"}
    )
    assert 'id="source-api-key"' in livekit.text

    unknown = gateway.client.post("/console/sources", data={"csrf": token, "name": "x", "vendor": "nope"})
    assert unknown.status_code == 422
    assert "unknown vendor" in unknown.text
    nameless = gateway.client.post("/console/sources", data={"csrf": token, "name": " ", "vendor": "graph8"})
    assert nameless.status_code == 422
    assert len(api(gateway, "/v1/sources")["data"]) == 2


def test_subscriptions_are_created_tested_paused_resumed_and_rotated(gateway: Gateway) -> None:
    token = sign_in(gateway)
    client = gateway.client
    created = client.post(
        "/console/subscriptions",
        data={"csrf": token, "url": "http://127.0.0.1:9/hook", "event_types": "call.completed, call.failed"},
    )
    assert created.status_code == 201, created.text
    secret = re.search(r'id="subscription-secret">([^<]+)<', created.text)
    assert secret
    assert secret.group(1).startswith("whsec_")
    (sub,) = api(gateway, "/v1/subscriptions")["data"]
    assert sub["event_types"] == ["call.completed", "call.failed"]
    page = client.get(f"/console/subscriptions/{sub['id']}")
    assert page.status_code == 200
    assert secret.group(1) not in page.text
    assert secret.group(1) not in client.get("/console/subscriptions").text

    base = f"/console/subscriptions/{sub['id']}"
    tested = client.post(f"{base}/test", data={"csrf": token}, follow_redirects=False)
    assert tested.status_code == 303
    (ping,) = api(gateway, "/v1/deliveries", subscription_id=sub["id"])["data"]
    assert ping["event_type"] == "ping"
    assert "A test delivery (ping) is queued." in client.get(tested.headers["location"]).text

    assert client.post(f"{base}/enabled", data={"csrf": token, "enabled": "false"}).status_code == 200
    assert api(gateway, f"/v1/subscriptions/{sub['id']}")["enabled"] is False
    assert client.post(f"{base}/enabled", data={"csrf": token, "enabled": "true"}).status_code == 200
    assert api(gateway, f"/v1/subscriptions/{sub['id']}")["enabled"] is True

    rotated = client.post(f"{base}/rotate-secret", data={"csrf": token})
    assert rotated.status_code == 200
    new = re.search(r'id="subscription-secret">([^<]+)<', rotated.text)
    assert new
    assert new.group(1) != secret.group(1)
    assert api(gateway, f"/v1/subscriptions/{sub['id']}")["secrets_active"] == 2

    refused = client.post("/console/subscriptions", data={"csrf": token, "url": "ftp://x", "event_types": ""})
    assert refused.status_code == 422
    wrong_type = client.post(
        "/console/subscriptions",
        data={"csrf": token, "url": "http://127.0.0.1:9/", "event_types": "call.nope"},
    )
    assert wrong_type.status_code == 422
    assert "unknown event type" in wrong_type.text
    assert len(api(gateway, "/v1/subscriptions")["data"]) == 1


def test_deliveries_are_listed_shown_with_their_attempts_and_retried(gateway: Gateway) -> None:
    sub = subscribe(gateway)
    source = gateway.create_source("graph8")
    post_call(gateway, source)
    token = sign_in(gateway)
    deliveries = api(gateway, "/v1/deliveries")["data"]
    listed = gateway.client.get("/console/deliveries")
    for delivery in deliveries:
        assert f'id="delivery-{delivery["id"]}"' in listed.text
    filtered = gateway.client.get("/console/deliveries", params={"status": "dead"})
    assert 'id="delivery-' not in filtered.text
    assert gateway.client.get("/console/deliveries", params={"status": "lost"}).status_code == 422

    first = deliveries[0]["id"]
    page = gateway.client.get(f"/console/deliveries/{first}")
    assert page.status_code == 200
    assert "Payload" in page.text
    assert sub["id"] in page.text
    retried = gateway.client.post(
        f"/console/deliveries/{first}/retry", data={"csrf": token}, follow_redirects=False
    )
    assert retried.status_code == 303
    assert retried.headers["location"] == f"/console/deliveries/{first}?notice=retried"
    assert api(gateway, f"/v1/deliveries/{first}")["status"] == "pending"
    assert gateway.client.post("/console/deliveries/dlv_nope/retry", data={"csrf": token}).status_code == 404


def test_the_quarantine_shows_a_body_with_credentials_masked_and_replays_it(gateway: Gateway) -> None:
    source = gateway.create_source("graph8")
    body = b'{"not": "a graph8 webhook"}'
    assert gateway.post_hook(source, body, source_headers(source, body)).status_code == 400
    token = sign_in(gateway)
    (entry,) = api(gateway, "/v1/quarantine")["data"]
    listed = gateway.client.get("/console/quarantine")
    assert entry["id"] in listed.text
    page = gateway.client.get(f"/console/quarantine/{entry['id']}")
    assert page.status_code == 200
    assert "a graph8 webhook" in page.text
    assert "webhook-id" in page.text
    signature = source_headers(source, body)["webhook-signature"]
    assert signature not in page.text  # a credential-looking header is cut to its last characters
    replayed = gateway.client.post(f"/console/quarantine/{entry['id']}/replay", data={"csrf": token})
    assert replayed.status_code == 200
    assert "Still unreadable" in replayed.text
    assert gateway.client.get("/console/quarantine", params={"status": "gone"}).status_code == 422


def test_crm_connections_are_created_shown_and_tested(gateway: Gateway) -> None:
    token = sign_in(gateway)
    client = gateway.client
    page = client.get("/console/connections")
    assert "hubspot" in page.text
    created = client.post(
        "/console/connections",
        data={
            "csrf": token,
            "kind": "hubspot",
            "base_url": "http://127.0.0.1:9",
            "credentials": '{"access_token": "tok-secret-123"}',
        },
    )
    assert created.status_code == 201, created.text
    (connection,) = api(gateway, "/v1/connections")["data"]
    assert connection["id"] in created.text
    assert "tok-secret-123" not in created.text
    shown = client.get(f"/console/connections/{connection['id']}")
    assert shown.status_code == 200
    tested = client.post(f"/console/connections/{connection['id']}/test", data={"csrf": token})
    assert tested.status_code == 200
    assert 'id="test-outcome"' in tested.text  # nothing listens on port 9: a failed test, shown, not a 500

    for credentials in ("not json", "[1]", '{"wrong": "x"}'):
        refused = client.post(
            "/console/connections", data={"csrf": token, "kind": "hubspot", "credentials": credentials}
        )
        assert refused.status_code == 422, credentials
        assert "credentials" in refused.text
    unknown = client.post("/console/connections", data={"csrf": token, "kind": "nope", "credentials": "{}"})
    assert unknown.status_code == 422
    assert len(api(gateway, "/v1/connections")["data"]) == 1


def test_unknown_pages_and_oversized_forms_are_clear_4xx_pages(gateway: Gateway) -> None:
    token = sign_in(gateway)
    missing = gateway.client.get("/console/nothing/here")
    assert missing.status_code == 404
    assert "no such page" in missing.text
    huge = gateway.client.post("/console/sources", data={"csrf": token, "name": "x" * 100_000, "vendor": "g"})
    assert huge.status_code == 413
    assert gateway.client.get("/console/static/console.css").status_code == 200
    assert (
        gateway.client.get("/console/static/console.js").headers["content-type"].startswith("text/javascript")
    )


def test_the_sign_in_page_and_every_page_have_a_skip_link_and_labels(gateway: Gateway) -> None:
    login = gateway.client.get("/console/login")
    assert 'class="skip" href="#main"' in login.text
    assert '<label for="api_key">' in login.text
    sign_in(gateway)
    for path in ("/console/calls", "/console/sources", "/console/subscriptions", "/console/deliveries",
                 "/console/quarantine", "/console/connections"):  # fmt: skip
        page = gateway.client.get(path)
        assert page.status_code == 200, path
        assert 'href="#main"' in page.text
        assert 'aria-current="page"' in page.text
        assert csrf_of(page.text)  # the sign-out form
