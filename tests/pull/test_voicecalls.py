"""The Voice Calls pull client against its double: scopes, pages, 15-minute SAS links that expire and are
replaced, and pulled calls and surveys through the real voicecalls adapter."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from gateway.errors import VendorAuthFailed, VendorRetryLater
from gateway.pull import voicecalls
from gateway.pull.base import DEFAULT_BACKOFF, Credentials, Missing, Part, PulledEvent, RecordingLink, Window
from tests.doubles.vendors import Swappable
from tests.doubles.vendors.voicecalls import State, app
from tests.pull.converge import fixture, fixture_json, fold, parse

pytestmark = pytest.mark.anyio

CALL = "vc_abc123"
WEBHOOKS = ["created", "updated_ringing", "updated_in_progress", "completed", "epa_completed"]
AFTER = datetime(2024, 1, 15, 11, 0, tzinfo=UTC)
DAY = Window(datetime(2024, 1, 15, tzinfo=UTC), datetime(2024, 1, 16, tzinfo=UTC))


@pytest.fixture
def state() -> State:
    return State()


@pytest.fixture
def creds(state: State, server: tuple[Swappable, str]) -> Iterator[Credentials]:
    swappable, url = server
    swappable.current = app(state)
    yield Credentials(url, "vc-test-token")
    swappable.current = None


def seed_fixture_call(state: State) -> None:
    """The seed's example call (the fixture), surveyed and recorded."""
    state.calls[CALL] = fixture_json("voicecalls", "completed")["data"]
    state.set_epa(CALL, fixture_json("voicecalls", "epa_completed")["data"]["epaResults"])
    state.set_recording(CALL, b"RIFF-wav-bytes")


async def test_tokens_and_scopes(http: httpx.AsyncClient, creds: Credentials, state: State) -> None:
    seed_fixture_call(state)
    with pytest.raises(VendorAuthFailed) as unknown:
        await voicecalls.call(http, Credentials(creds.base_url, "wrong"), CALL)
    assert unknown.value.vendor_status == 401
    state.tokens["read-only"] = frozenset({"voice:read"})
    read_only = Credentials(creds.base_url, "read-only")
    assert not isinstance(await voicecalls.call(http, read_only, CALL), Missing)
    with pytest.raises(VendorAuthFailed) as scoped:
        await voicecalls.recording_link(http, read_only, CALL, state.clock())
    assert scoped.value.vendor_status == 403
    assert "audio:download" in scoped.value.message


async def test_pages_and_the_list_omits_the_transcript(
    http: httpx.AsyncClient, creds: Credentials, state: State
) -> None:
    for i in range(5):
        state.add_call(
            f"vc_{i}", startTime=f"2024-01-15T0{i}:00:00Z", transcript=[{"role": "agent", "text": "x"}]
        )
    state.add_call("vc_late", startTime="2024-01-16T00:00:01Z")
    pages = [page async for page in voicecalls.list_calls(http, creds, DAY, page_size=2)]
    assert [p.next_cursor for p in pages] == ["2", "3", None]
    items = [item for p in pages for item in p.items]
    assert sorted(str(i["id"]) for i in items) == [f"vc_{i}" for i in range(5)]
    assert not any("transcript" in item for item in items)
    found = await voicecalls.call(http, creds, "vc_0")
    assert not isinstance(found, Missing)
    assert found["transcript"]


async def test_an_expired_sas_link_is_refused_and_a_fresh_one_plays(
    http: httpx.AsyncClient, creds: Credentials, state: State
) -> None:
    seed_fixture_call(state)
    link = await voicecalls.playable_link(http, creds, CALL, cached=None, now=state.clock())
    assert isinstance(link, RecordingLink)
    assert link.expires_at == state.clock().replace(microsecond=0) + timedelta(minutes=15)
    assert "se=" in link.url
    assert "sig=" in link.url
    played = await http.get(link.url)
    assert played.status_code == 200
    assert played.content == b"RIFF-wav-bytes"
    assert "authorization" not in state.log.requests[-1]["headers"]  # "no auth required, URL is pre-signed"

    state.clock.advance(14 * 60 + 30)  # 30 s left: inside the margin, so a player would get a new one
    assert (await http.get(link.url)).status_code == 200
    renewed = await voicecalls.playable_link(http, creds, CALL, cached=link, now=state.clock())
    assert isinstance(renewed, RecordingLink)
    assert renewed.url != link.url

    state.clock.advance(60)
    expired = await http.get(link.url)
    assert expired.status_code == 403
    assert b"AuthenticationFailed" in expired.content
    assert (await http.get(renewed.url)).status_code == 200
    assert state.issued == 2  # every recording-url call signs a new link


async def test_missing_survey_transcript_and_call(
    http: httpx.AsyncClient, creds: Credentials, state: State
) -> None:
    state.add_call("vc_plain", startTime="2024-01-15T01:00:00Z")
    assert isinstance(await voicecalls.pull(http, creds, "vc_plain", Part.SURVEY, AFTER), Missing)
    assert isinstance(await voicecalls.pull(http, creds, "vc_plain", Part.TRANSCRIPT, AFTER), Missing)
    assert isinstance(await voicecalls.pull(http, creds, "vc_nope", Part.CALL, AFTER), Missing)
    assert isinstance(await voicecalls.recording_link(http, creds, "vc_plain", AFTER), Missing)
    state.set_epa("vc_plain", {"state": "NotStarted", "totalQuestions": 3, "questionsAnswered": 0})
    assert isinstance(await voicecalls.epa_results(http, creds, "vc_plain"), Missing)


async def test_a_server_error_uses_the_default_back_off(
    http: httpx.AsyncClient, creds: Credentials, state: State
) -> None:
    state.faults.inject(500, {"title": "Internal Server Error", "status": 500})
    with pytest.raises(VendorRetryLater) as failed:
        await voicecalls.list_page(http, creds, DAY)
    assert failed.value.backoff == DEFAULT_BACKOFF
    assert "Internal Server Error" in failed.value.message


async def test_pulled_call_and_survey_make_the_call_the_webhooks_make(
    http: httpx.AsyncClient, creds: Credentials, state: State
) -> None:
    seed_fixture_call(state)
    pulled: list[PulledEvent] = []
    for part in (Part.CALL, Part.SURVEY):
        got = await voicecalls.pull(http, creds, CALL, part, AFTER)
        assert not isinstance(got, Missing)
        pulled += got
    assert [parse(e).event_type for e in pulled] == ["VoiceCallCompleted", "EpaCompleted"]
    webhooks = fold("voicecalls", [fixture("voicecalls", n) for n in WEBHOOKS])[CALL]
    assert fold("voicecalls", [e.body for e in pulled])[CALL] == webhooks
    reconciled = await voicecalls.reconcile(http, creds, DAY, None, AFTER)  # the list: no transcript
    no_end = [fixture("voicecalls", n) for n in WEBHOOKS[:3]]
    caught_up = fold("voicecalls", [*no_end, *(e.body for e in reconciled.events), *(e.body for e in pulled)])
    assert caught_up[CALL] == webhooks
    assert webhooks["survey"]["score"] == 85.5
    assert webhooks["transcript"][1]["start_ms"] == 4000
    transcript = await voicecalls.pull(http, creds, CALL, Part.TRANSCRIPT, AFTER)
    assert not isinstance(transcript, Missing)
    assert transcript[0].event_key == pulled[0].event_key
