"""The Voice API pull client against its double, and pulled sessions through the real voiceapi adapter:
a session becomes the lifecycle webhooks it implies, each at its own time."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import pytest

from gateway.errors import VendorAuthFailed, VendorRetryLater
from gateway.pull import voiceapi
from gateway.pull.base import Credentials, Missing, Part, RecordingLink, Window
from tests.doubles.vendors import Swappable
from tests.doubles.vendors.voiceapi import State, app
from tests.pull.converge import fixture, fixture_json, fold, parse

pytestmark = pytest.mark.anyio

SESSION = "vs_7c1e4b"
WEBHOOKS = ["call_initiating", "call_ringing", "call_in_progress", "call_completed"]
AFTER = datetime(2026, 5, 25, 15, 0, tzinfo=UTC)
DAY = Window(datetime(2026, 5, 25, tzinfo=UTC), datetime(2026, 5, 26, tzinfo=UTC))


@pytest.fixture
def state() -> State:
    return State()


@pytest.fixture
def creds(state: State, server: tuple[Swappable, str]) -> Iterator[Credentials]:
    swappable, url = server
    swappable.current = app(state)
    yield Credentials(url, "va-test-token")
    swappable.current = None


def seed_fixture_session(state: State) -> None:
    """The fixture session as the read API shows it when it is over (the webhooks' data and times)."""
    completed = fixture_json("voiceapi", "call_completed")
    state.add_session(
        SESSION,
        status="completed",
        started_at=fixture_json("voiceapi", "call_initiating")["timestamp"],
        answered_at=fixture_json("voiceapi", "call_in_progress")["timestamp"],
        ended_at=completed["timestamp"],
        **completed["data"],
    )


async def test_a_wrong_token_is_an_auth_error(http: httpx.AsyncClient, creds: Credentials) -> None:
    with pytest.raises(VendorAuthFailed):
        await voiceapi.session(http, Credentials(creds.base_url, "wrong"), SESSION)


async def test_offset_pages(http: httpx.AsyncClient, creds: Credentials, state: State) -> None:
    for i in range(5):
        state.add_session(f"vs_{i}", started_at=f"2026-05-25T1{i}:00:00Z")
    state.add_session("vs_old", started_at="2026-05-20T10:00:00Z")
    pages = [page async for page in voiceapi.list_sessions(http, creds, DAY, limit=2)]
    assert [p.next_cursor for p in pages] == ["2", "4", None]
    assert sorted(str(i["session_id"]) for p in pages for i in p.items) == [f"vs_{i}" for i in range(5)]
    assert [r["query"]["offset"] for r in state.log.requests] == ["0", "2", "4"]


async def test_the_list_limit_is_a_retry_after(
    http: httpx.AsyncClient, creds: Credentials, state: State
) -> None:
    state.list_per_minute = 2
    for _ in range(2):
        await voiceapi.list_page(http, creds, DAY)
    with pytest.raises(VendorRetryLater) as throttled:
        await voiceapi.list_page(http, creds, DAY)
    assert throttled.value.retry_after == 60.0  # the minute's budget frees when its first request ages out
    state.clock.advance(60)
    await voiceapi.list_page(http, creds, DAY)
    state.faults.inject(429, {"error": {"code": "rate_limited", "message": "slow down"}})  # no Retry-After
    with pytest.raises(VendorRetryLater) as bare:
        await voiceapi.list_page(http, creds, DAY)
    assert bare.value.retry_after == 2.0  # 30/min: one request every 2 s


async def test_unknown_session_and_recording_are_missing(http: httpx.AsyncClient, creds: Credentials) -> None:
    assert isinstance(await voiceapi.pull(http, creds, "vs_nope", Part.CALL, AFTER), Missing)
    assert isinstance(await voiceapi.recording_link(http, creds, "rec_nope"), Missing)
    assert isinstance(await voiceapi.pull(http, creds, SESSION, Part.TRANSCRIPT, AFTER), Missing)


async def test_an_expired_recording_link_is_refused_and_a_new_one_plays(
    http: httpx.AsyncClient, creds: Credentials, state: State
) -> None:
    seed_fixture_session(state)
    state.set_recording("rec_5d2f81", SESSION, b"ID3-the-audio")
    link = await voiceapi.recording_link(http, creds, "rec_5d2f81")
    assert isinstance(link, RecordingLink)
    assert link.expires_at is not None
    assert link.fresh(state.clock())
    played = await http.get(link.url)
    assert played.status_code == 200
    assert played.content == b"ID3-the-audio"
    assert "authorization" not in state.log.requests[-1]["headers"]  # the token never goes to the link
    state.clock.advance(state.link_seconds + 1)
    assert not link.fresh(state.clock())
    assert (await http.get(link.url)).status_code == 403
    again = await voiceapi.recording_link(http, creds, "rec_5d2f81")
    assert isinstance(again, RecordingLink)
    assert again.url != link.url
    assert (await http.get(again.url)).status_code == 200


async def test_a_pulled_session_is_its_webhook_stream(
    http: httpx.AsyncClient, creds: Credentials, state: State
) -> None:
    seed_fixture_session(state)
    events = await voiceapi.pull(http, creds, SESSION, Part.CALL, AFTER)
    assert not isinstance(events, Missing)
    assert [parse(e).event_type for e in events] == ["call.initiating", "call.in_progress", "call.completed"]
    webhooks = fold("voiceapi", [fixture("voiceapi", n) for n in WEBHOOKS])[SESSION]
    assert fold("voiceapi", [e.body for e in events])[SESSION] == webhooks
    dropped_end = [fixture("voiceapi", n) for n in WEBHOOKS[:3]]  # the terminal webhook never arrived
    assert fold("voiceapi", [*dropped_end, *(e.body for e in events)])[SESSION] == webhooks
    assert webhooks["recording"] == {"available": True, "vendor_ref": "rec_5d2f81"}
    reconciled = await voiceapi.reconcile(http, creds, DAY, None, AFTER)
    assert {e.event_key for e in reconciled.events} == {
        e.event_key for e in events
    }  # same content, same keys


def test_a_status_without_its_time_is_the_weakest_claim() -> None:
    """A session that says failed but names no end time: no ended_at is invented, and a webhook's own
    terminal status (with its time) is the first terminal."""
    failed = voiceapi.session_events({"session_id": SESSION, "status": "failed", "agent_id": "agt_reminders"})
    assert len(failed) == 1
    assert b"timestamp" not in failed[0].body
    alone = fold("voiceapi", [failed[0].body])[SESSION]
    assert alone["status"] == "failed"
    assert "ended_at" not in alone
    both = fold("voiceapi", [*(fixture("voiceapi", n) for n in WEBHOOKS), failed[0].body])[SESSION]
    assert both["status"] == "completed"
    assert both["vendor_extra"]["conflicting_status"] == "failed"


def test_a_ringing_session_claims_only_what_it_shows() -> None:
    events = voiceapi.session_events(
        {"session_id": "vs_r", "status": "ringing", "started_at": "2026-05-25T14:30:00Z", "direction": "web"}
    )
    assert [parse(e).event_type for e in events] == ["call.initiating", "call.ringing"]
    call = fold("voiceapi", [e.body for e in events])["vs_r"]
    assert call["status"] == "ringing"
    assert call["direction"] == "web"
