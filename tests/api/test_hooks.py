"""POST /hooks/{source_id} end to end, through the app with its lifespan, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from typing import Any

import pytest

from gateway.app import ADAPTERS
from gateway.signing import HmacConfig
from tests.conftest import Gateway
from tests.helpers import FIXTURES, fixture_cases, hmac_headers, source_headers


def signed(vendor: str, source: dict[str, Any], body: bytes, msg_id: str | None = None) -> dict[str, str]:
    """Headers as the vendor would send them, with the secret callgate generated for the source. The
    source's own scheme signs (``gateway.signing``): no per-vendor branches here."""
    return source_headers(source, body)


def first_call_case(vendor: str) -> tuple[str, str, str]:
    """The vendor's first fixture (by name) that names a call with a status, from its reviewed golden:
    (fixture name, vendor_call_id, status). A new vendor brings its fixtures and is covered."""
    for _, path in fixture_cases(vendor):
        expected = json.loads(path.with_name(path.stem + ".expected.json").read_text())
        for update in expected["updates"]:
            if update.get("vendor_call_id") and update.get("status"):
                return path.name, update["vendor_call_id"], update["status"]
    raise AssertionError(f"{vendor} has no fixture that names a call with a status")


VENDORS = sorted(ADAPTERS)
CASES = {vendor: first_call_case(vendor) for vendor in VENDORS}


def test_every_registered_vendor_has_fixtures_and_samples() -> None:
    assert sorted(p.name for p in FIXTURES.iterdir() if p.is_dir()) == VENDORS
    assert all(ADAPTERS[v].samples is not None for v in VENDORS)


@pytest.mark.parametrize("vendor", VENDORS)
def test_signed_webhook_is_stored_once_and_listed(gateway: Gateway, vendor: str) -> None:
    name, vendor_call_id, status = CASES[vendor]
    source = gateway.create_source(vendor)
    assert source["hook_url"] == f"http://testserver/hooks/{source['id']}"
    body = (FIXTURES / vendor / name).read_bytes()

    first = gateway.post_hook(source, body, signed(vendor, source, body))
    assert first.status_code == 202, first.text
    assert first.json()["status"] == "accepted"
    again = gateway.post_hook(source, body, signed(vendor, source, body))
    assert again.status_code == 200, again.text
    assert again.json() == {"status": "duplicate", "event_id": first.json()["event_id"]}

    (call,) = gateway.calls()
    assert call["vendor"] == vendor
    assert call["vendor_call_id"] == vendor_call_id
    assert call["status"] == status
    assert call["version"] == 1
    events = gateway.client.get(f"/v1/calls/{call['id']}/events", headers=gateway.headers).json()["data"]
    assert [e["raw_event_id"] for e in events] == [first.json()["event_id"]]


@pytest.mark.parametrize("vendor", VENDORS)
def test_bad_signature_is_401_and_stores_nothing(gateway: Gateway, vendor: str) -> None:
    name = CASES[vendor][0]
    source = gateway.create_source(vendor)
    body = (FIXTURES / vendor / name).read_bytes()
    headers = signed(vendor, source, body)
    tampered = body.replace(b"{", b"{ ", 1)  # same JSON, other bytes: the signature must not cover it
    assert tampered != body
    other_secret = signed(vendor, gateway.create_source(vendor), body)  # another source's secret
    for bad_body, bad_headers in (
        (tampered, headers),
        (body, {}),
        (body, {k: "x" for k in headers}),
        (body, other_secret),
    ):
        response = gateway.post_hook(source, bad_body, bad_headers)
        assert response.status_code == 401, response.text
        error = response.json()["error"]
        assert error["code"] == "invalid_signature"
        assert error["request_id"] == response.headers["x-request-id"]
    assert gateway.calls() == []
    # and the genuine one still goes through: nothing was consumed by the failures
    assert gateway.post_hook(source, body, headers).status_code == 202


def test_unreadable_body_is_400_quarantined_and_never_a_call(gateway: Gateway) -> None:
    source = gateway.create_source("graph8")
    body = b'{"id": "evt_x", "type": "call.completed", "data": {"room_name": {"nested": 1}}}'
    response = gateway.post_hook(source, body, signed("graph8", source, body))
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_payload"
    assert response.json()["error"]["field"] == "data.room_name"
    assert gateway.calls() == []


def test_unknown_and_deleted_and_disabled_sources_are_404(gateway: Gateway) -> None:
    assert gateway.client.post("/hooks/src_nope", content=b"{}").status_code == 404
    source = gateway.create_source("graph8")
    body = (FIXTURES / "graph8" / "call_completed.json").read_bytes()
    off = gateway.client.patch(
        f"/v1/sources/{source['id']}", json={"enabled": False}, headers=gateway.headers
    )
    assert off.status_code == 200
    assert off.json()["enabled"] is False
    assert gateway.post_hook(source, body, signed("graph8", source, body)).status_code == 404
    gateway.client.patch(f"/v1/sources/{source['id']}", json={"enabled": True}, headers=gateway.headers)
    assert gateway.post_hook(source, body, signed("graph8", source, body)).status_code == 202
    assert gateway.client.delete(f"/v1/sources/{source['id']}", headers=gateway.headers).status_code == 204
    assert gateway.post_hook(source, body, signed("graph8", source, body, "msg_2")).status_code == 404


def test_body_over_the_limit_is_413(gateway: Gateway) -> None:
    source = gateway.create_source("graph8")
    body = b'{"pad": "' + b"x" * (1024 * 1024) + b'"}'
    response = gateway.post_hook(source, body, signed("graph8", source, body))
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"


def test_a_whole_livekit_call_arrives_out_of_order(gateway: Gateway) -> None:
    source = gateway.create_source("livekit")
    names = [
        "room_finished.json",
        "egress_ended_recording.json",
        "participant_left_sip_inbound.json",
        "participant_joined_sip_inbound.json",
        "participant_joined_agent.json",
    ]
    for name in names:
        body = (FIXTURES / "livekit" / name).read_bytes()
        assert gateway.post_hook(source, body, signed("livekit", source, body)).status_code == 202
    (call,) = gateway.calls()
    assert call["status"] == "completed"
    assert call["direction"] == "inbound"
    assert (call["from_number"], call["to_number"]) == ("+15105550100", "+15105550199")
    assert call["recording"]["available"] is True
    assert call["end_reason"] == "client_initiated"
    assert call["duration_seconds"] == 124  # derived from joinedAtMs and the participant_left time
    timeline = gateway.client.get(f"/v1/calls/{call['id']}/events", headers=gateway.headers).json()["data"]
    assert len(timeline) == 5  # every event of the room is on the call's timeline, whatever the order


def test_numbers_are_e164_and_unparseable_ones_are_kept_raw(gateway: Gateway) -> None:
    source = gateway.create_source("graph8")
    body = (FIXTURES / "graph8" / "call_failed.json").read_bytes()
    assert gateway.post_hook(source, body, signed("graph8", source, body)).status_code == 202
    (call,) = gateway.calls()
    assert call["from_number"] == "+14155551234"
    assert call["to_number"] is None
    assert call["vendor_extra"]["to_number_raw"] == "+1415555"


def test_source_with_explicit_verification_and_rotation(gateway: Gateway) -> None:
    verification: dict[str, Any] = {
        "scheme": "hmac",
        "secrets": ["old-secret", "new-secret"],
        "signature_header": "x-hub-signature-256",
        "timestamp_header": None,
        "prefix": "sha256=",
    }
    source = gateway.create_source("voicecalls", verification=verification)
    assert "secret" not in source  # nothing was generated, so nothing is shown
    assert source["verification"]["secrets"] == ["…cret", "…cret"]
    config = HmacConfig.model_validate(verification)
    body = (FIXTURES / "voicecalls" / "created.json").read_bytes()
    for secret in ("old-secret", "new-secret"):
        response = gateway.post_hook(source, body, hmac_headers(config, secret, body))
        assert response.status_code in (200, 202)
    assert gateway.post_hook(source, body, hmac_headers(config, "stale", body)).status_code == 401


def test_webhook_response_carries_the_request_id_it_was_given(gateway: Gateway) -> None:
    source = gateway.create_source("graph8")
    body = (FIXTURES / "graph8" / "call_ringing.json").read_bytes()
    headers = dict(signed("graph8", source, body), **{"x-request-id": "vendor-trace-42"})
    response = gateway.post_hook(source, body, headers)
    assert response.headers["x-request-id"] == "vendor-trace-42"
    assert json.loads(response.text)["calls"][0]["status"] == "ringing"


def test_oversized_keys_never_reach_the_columns(gateway: Gateway) -> None:
    source = gateway.create_source("graph8")
    doc = json.loads((FIXTURES / "graph8" / "call_ringing.json").read_bytes())
    doc["id"] = "evt_" + "x" * 500
    body = json.dumps(doc).encode()
    stored = gateway.post_hook(source, body, signed("graph8", source, body))
    assert stored.status_code == 202, stored.text  # kept, under the hash of its id
    assert (
        gateway.post_hook(source, body, signed("graph8", source, body)).status_code == 200
    )  # still deduplicated
    doc["id"], doc["data"]["room_name"] = "evt_long_room", "rm_" + "y" * 500
    body = json.dumps(doc).encode()
    refused = gateway.post_hook(source, body, signed("graph8", source, body))
    assert refused.status_code == 400
    assert "call key" in refused.json()["error"]["message"]
