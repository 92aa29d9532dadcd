"""Recordings that still play: a callsv1 call's recording through ``GET /v1/calls/{id}/recording`` and a
shareable ``/recordings/<token>`` link, against the callsv1 double whose signed audio links die after 15
minutes: after the vendor's link expired, the gateway's link still plays (a fresh one is signed)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import closing
from typing import Any

import httpx
import pytest

from tests.conftest import Gateway, make_settings, start_gateway
from tests.doubles.vendors import Swappable
from tests.doubles.vendors.callsv1 import State, app
from tests.helpers import FakeClock, source_headers
from tests.outbound.receiver import receiver
from tests.pull.converge import fixture, fixture_json

CALL = 88123  # the callsv1 fixture call


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()  # the gateway's and the double's: links expire on it


@pytest.fixture
def double(server: tuple[Swappable, str], clock: FakeClock) -> Iterator[tuple[State, str]]:
    swappable, url = server
    state = State(clock=clock)
    state.add_call(
        CALL, **{k: v for k, v in fixture_json("callsv1", "call_ended")["call"].items() if k != "call_id"}
    )
    state.set_audio(CALL, b"ID3 the recording")
    swappable.current = app(state)
    yield state, url
    swappable.current = None


@pytest.fixture
def live(db_url: str, clock: FakeClock) -> Iterator[Gateway]:
    settings = make_settings(db_url, allowed_target_cidrs=["127.0.0.0/8"])
    yield from start_gateway(settings, clock=clock)


def location(live: Gateway, path: str, **headers: str) -> Any:
    return live.client.get(path, headers=headers, follow_redirects=False)


def test_a_recording_keeps_playing_after_the_vendors_link_expired(
    live: Gateway, double: tuple[State, str], clock: FakeClock
) -> None:
    _, url = double
    source = live.create_source("callsv1", pull={"base_url": url, "token": "c1-test-token"})
    body = fixture("callsv1", "call_ended")
    assert live.post_hook(source, body, source_headers(source, body)).status_code == 202
    (call,) = live.calls()
    path = f"/v1/calls/{call['id']}/recording"

    first = location(live, path, **live.headers)
    assert first.status_code == 302, first.text
    assert first.headers["referrer-policy"] == "no-referrer"
    vendor_link = first.headers["location"]
    assert httpx.get(vendor_link).content == b"ID3 the recording"
    assert location(live, path, **live.headers).headers["location"] == vendor_link  # still fresh: kept

    made = live.client.post(f"/v1/calls/{call['id']}/recording-link", json={}, headers=live.headers)
    assert made.status_code == 201, made.text
    shared = made.json()["url"].removeprefix("http://testserver")

    clock.advance(16 * 60)  # the vendor's link is dead now
    assert httpx.get(vendor_link).status_code == 403
    again = location(live, shared)  # no API key: the token is the credential
    assert again.status_code == 302, again.text
    assert again.headers["location"] != vendor_link
    assert httpx.get(again.headers["location"]).content == b"ID3 the recording"

    altered = shared[:-2] + ("xx" if not shared.endswith("xx") else "yy")
    assert location(live, altered).status_code == 401
    assert location(live, path).status_code == 401  # the API route wants a key


def test_no_playable_recording_is_a_404(live: Gateway, double: tuple[State, str]) -> None:
    source = live.create_source(
        "callsv1"
    )  # no read-API settings, and the webhook's recording is a gs:// path
    body = fixture("callsv1", "call_ended")
    assert live.post_hook(source, body, source_headers(source, body)).status_code == 202
    (call,) = live.calls()
    answer = location(live, f"/v1/calls/{call['id']}/recording", **live.headers)
    assert answer.status_code == 404
    assert answer.json()["error"]["code"] == "not_found"
    other = location(live, "/v1/calls/call_nope/recording", **live.headers)
    assert other.status_code == 404


# --- what is relayed carries the gateway's link, never the vendor's ----------------------------------------


def test_subscribers_and_crms_get_the_gateways_link_and_it_plays(
    db_url: str, double: tuple[State, str], clock: FakeClock
) -> None:
    from tests.crm.kinds import KINDS
    from tests.doubles import serving

    _, url = double
    hubspot = KINDS["hubspot"]
    crm_state = hubspot.new_state()
    settings = make_settings(db_url, allowed_target_cidrs=["127.0.0.0/8"], public_url="https://gw.example")
    with (
        serving(hubspot.app(crm_state)) as crm_url,
        receiver() as endpoint,
        closing(start_gateway(settings, clock=clock)) as started,
    ):
        live = next(started)
        source = live.create_source("callsv1", pull={"base_url": url, "token": "c1-test-token"})
        made = live.client.post(
            "/v1/subscriptions",
            json={"url": endpoint.url, "event_types": ["call.*"]},
            headers=live.headers,
        )
        assert made.status_code == 201, made.text
        connected = live.client.post(
            "/v1/connections",
            json={
                "kind": "hubspot",
                "name": "hs",
                "base_url": crm_url,
                "credentials": dict(hubspot.credentials),
            },
            headers=live.headers,
        )
        assert connected.status_code == 201, connected.text
        body = fixture("callsv1", "call_ended")
        assert live.post_hook(source, body, source_headers(source, body)).status_code == 202
        # one change may be several event types (completed, recording_ready): each carries the link
        for got in endpoint.wait_for(1):
            relayed = got.json["data"]["call"]["recording"]
            assert relayed["vendor_ref"] == "gs://calls-prod/88123.mp3"
            assert relayed["url"].startswith("https://gw.example/recordings/")
        deadline = time.monotonic() + 15
        while not crm_state.calls and time.monotonic() < deadline:
            time.sleep(0.05)
        (record,) = crm_state.calls.values()
        crm_link = record["properties"]["hs_call_recording_url"]
        assert crm_link.startswith("https://gw.example/recordings/")
        for link in (relayed["url"], crm_link):  # both play, through the vendor's fresh link
            answer = location(live, link.removeprefix("https://gw.example"))
            assert answer.status_code == 302, answer.text
            assert httpx.get(answer.headers["location"]).content == b"ID3 the recording"


def test_a_refused_vendor_token_is_a_502_with_the_vendors_reason(
    live: Gateway, double: tuple[State, str]
) -> None:
    _, url = double
    source = live.create_source("callsv1", pull={"base_url": url, "token": "a-revoked-token"})
    body = fixture("callsv1", "call_ended")
    assert live.post_hook(source, body, source_headers(source, body)).status_code == 202
    (call,) = live.calls()
    answer = location(live, f"/v1/calls/{call['id']}/recording", **live.headers)
    assert answer.status_code == 502
    assert answer.json()["error"]["code"] == "vendor_auth_failed"
