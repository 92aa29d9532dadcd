"""The ``/v1/calls`` pull client against its double, and pulled parts through the real callsv1 adapter."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from gateway.errors import VendorAuthFailed, VendorError, VendorRetryLater
from gateway.pull import callsv1
from gateway.pull.base import Credentials, Missing, Part, PulledEvent, RecordingLink, Window
from tests.doubles.vendors import Swappable
from tests.doubles.vendors.callsv1 import State, app
from tests.pull.converge import fixture, fixture_json, fold, parse

pytestmark = pytest.mark.anyio

CALL = 88123
WEBHOOKS = ["call_started", "call_ended", "call_transcript_ready", "call_graded", "issue_report_created"]
AFTER = datetime(2026, 5, 25, 15, 0, tzinfo=UTC)
DAY = Window(datetime(2026, 5, 25, tzinfo=UTC), datetime(2026, 5, 26, tzinfo=UTC))


@pytest.fixture
def state() -> State:
    return State()


@pytest.fixture
def creds(state: State, server: tuple[Swappable, str]) -> Iterator[Credentials]:
    swappable, url = server
    swappable.current = app(state)
    yield Credentials(url, "c1-test-token")
    swappable.current = None


def seed_fixture_call(state: State) -> None:
    """The fixture call as the API holds it after its last webhook."""
    last = fixture_json("callsv1", "issue_report_created")
    state.calls[CALL] = last["call"]
    state.set_transcript(CALL, fixture_json("callsv1", "call_transcript_ready")["transcript"])
    grade = fixture_json("callsv1", "call_graded")["grade"]
    state.grades[CALL] = {**grade, "status": "completed"}
    state.issue_reports[CALL] = [last["issue_report"]]


async def test_a_wrong_token_is_an_auth_error(http: httpx.AsyncClient, creds: Credentials) -> None:
    with pytest.raises(VendorAuthFailed):
        await callsv1.list_page(http, Credentials(creds.base_url, "wrong"), DAY)


async def test_offset_pages_until_total(http: httpx.AsyncClient, creds: Credentials, state: State) -> None:
    for i in range(5):
        state.add_call(1000 + i, start_time=f"2026-05-25T0{i}:00:00Z")
    state.add_call(999, start_time="2026-05-27T00:00:00Z")
    pages = [page async for page in callsv1.list_calls(http, creds, DAY, limit=2)]
    assert [len(p.items) for p in pages] == [2, 2, 1]
    assert pages[0].total == 5
    assert sorted(int(i["call_id"]) for p in pages for i in p.items) == list(range(1000, 1005))


async def test_a_bad_request_is_an_error_not_a_retry(http: httpx.AsyncClient, creds: Credentials) -> None:
    with pytest.raises(VendorError) as refused:
        await callsv1.list_page(http, creds, DAY, limit=500)  # the seed's limit is 1-200
    assert refused.value.vendor_status == 422
    assert not isinstance(refused.value, VendorRetryLater)


async def test_unknown_ungraded_and_empty_are_nothing_to_pull(
    http: httpx.AsyncClient, creds: Credentials, state: State
) -> None:
    state.add_call(7, status="completed")
    assert isinstance(await callsv1.pull(http, creds, "404404", Part.CALL, AFTER), Missing)
    assert isinstance(await callsv1.pull(http, creds, "not-an-int", Part.GRADE, AFTER), Missing)
    assert isinstance(await callsv1.pull(http, creds, "7", Part.GRADE, AFTER), Missing)
    assert isinstance(await callsv1.pull(http, creds, "7", Part.TRANSCRIPT, AFTER), Missing)
    assert isinstance(await callsv1.pull(http, creds, "7", Part.ISSUES, AFTER), Missing)
    assert isinstance(await callsv1.recording_link(http, creds, "7"), Missing)
    assert isinstance(await callsv1.pull(http, creds, "7", Part.SURVEY, AFTER), Missing)


async def test_a_pending_grade_is_polled_later(
    http: httpx.AsyncClient, creds: Credentials, state: State
) -> None:
    state.add_call(8, status="completed")
    state.set_grade(8, score=None, status="pending")
    with pytest.raises(VendorRetryLater) as pending:
        await callsv1.pull(http, creds, "8", Part.GRADE, AFTER)
    assert pending.value.retry_after == 30.0  # "usually under 30 s"
    state.set_grade(8, score=0.7, status="completed", summary="ok")
    events = await callsv1.pull(http, creds, "8", Part.GRADE, AFTER)
    assert not isinstance(events, Missing)
    assert fold("callsv1", [events[0].body])["8"]["grade"]["score"] == 0.7
    state.set_grade(8, score=None, status="failed")
    assert isinstance(await callsv1.grade(http, creds, "8"), Missing)


async def test_an_expired_audio_link_is_replaced(
    http: httpx.AsyncClient, creds: Credentials, state: State
) -> None:
    state.add_call(9, status="completed")
    state.set_audio(9, b"ID3-mp3")
    link = await callsv1.playable_link(http, creds, "9", cached=None, now=state.clock())
    assert isinstance(link, RecordingLink)
    assert (await http.get(link.url)).content == b"ID3-mp3"
    kept = await callsv1.playable_link(http, creds, "9", cached=link, now=state.clock())
    assert kept is link  # still fresh: no request
    assert state.log.count("/audio") == 1
    state.clock.advance(state.audio_seconds + 1)
    expired = await http.get(link.url)
    assert expired.status_code == 403
    assert b"AccessDenied" in expired.content
    fresh = await callsv1.playable_link(http, creds, "9", cached=link, now=state.clock())
    assert isinstance(fresh, RecordingLink)
    assert fresh.url != link.url
    assert (await http.get(fresh.url)).status_code == 200


async def test_pulled_parts_make_the_call_the_webhooks_make(
    http: httpx.AsyncClient, creds: Credentials, state: State
) -> None:
    seed_fixture_call(state)
    pulled: list[PulledEvent] = []
    for part in (Part.CALL, Part.TRANSCRIPT, Part.GRADE, Part.ISSUES):
        got = await callsv1.pull(http, creds, str(CALL), part, AFTER)
        assert not isinstance(got, Missing), part
        pulled += got
    assert [parse(e).event_type for e in pulled] == [
        "call.ended",
        "call.transcript_ready",
        "call.graded",
        "issue_report.created",
    ]
    key = str(CALL)
    webhooks = fold("callsv1", [fixture("callsv1", n) for n in WEBHOOKS])[key]
    assert fold("callsv1", [e.body for e in pulled])[key] == webhooks
    lifecycle = [fixture("callsv1", n) for n in WEBHOOKS[:2]]
    assert fold("callsv1", [*lifecycle, *(e.body for e in pulled[1:])])[key] == webhooks
    assert webhooks["grade"]["score"] == 0.86
    assert webhooks["issues"][0]["id"] == "ir_551"
    assert webhooks["transcript"][0]["at"] == "2026-05-25T14:30:00.400000Z"


def test_an_in_progress_call_is_a_start_and_a_part_restates_no_old_snapshot() -> None:
    started = fixture_json("callsv1", "call_started")["call"]
    assert parse(callsv1.call_event(started, observed_at=AFTER)).event_type == "call.started"
    ended = fixture_json("callsv1", "call_ended")["call"]
    rows = fixture_json("callsv1", "call_transcript_ready")["transcript"]
    later = AFTER + timedelta(hours=1)
    event = callsv1.transcript_event(ended, rows, observed_at=later)
    update = parse(event).updates[0]
    assert set(update.fields) == {"started_at", "transcript"}  # nothing else from the call snapshot
    assert update.status is None
