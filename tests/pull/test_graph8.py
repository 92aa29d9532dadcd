"""The graph8 pull client against the graph8 double over loopback HTTP, and its bodies through the real
graph8 adapter: a pulled call equals the one its full webhook stream makes."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from gateway.errors import VendorAuthFailed, VendorError, VendorRetryLater
from gateway.pull import graph8
from gateway.pull.base import Missing, Part, PulledEvent, Window, retry_delay
from tests.doubles.vendors import Swappable
from tests.doubles.vendors.graph8 import State, app
from tests.pull.converge import fixture, fixture_json, fold, parse

pytestmark = pytest.mark.anyio

ROOM = "rm_5028106_1716647400"
WEBHOOKS = ["call_initiating", "call_ringing", "call_in_progress", "call_completed"]
PARTS = ["call_transcript_ready", "call_graded"]
AFTER = datetime(2026, 5, 25, 15, 0, tzinfo=UTC)  # pulled after every webhook of the fixture call
DAY = Window(datetime(2026, 5, 25, tzinfo=UTC), datetime(2026, 5, 26, tzinfo=UTC))


@pytest.fixture
def state() -> State:
    return State()


@pytest.fixture
def creds(state: State, server: tuple[Swappable, str]) -> Iterator[graph8.Graph8Credentials]:
    swappable, url = server
    swappable.current = app(state)
    yield graph8.Graph8Credentials(url, "g8-test-key", "org_123")
    swappable.current = None


def seed_fixture_call(state: State) -> None:
    """The fixture call as graph8's read API holds it once it is over: its final record, transcript and
    grading (the bodies of its webhooks)."""
    record = fixture_json("graph8", "call_completed")["data"]
    state.calls[ROOM] = record
    block = fixture_json("graph8", "call_transcript_ready")["data"]["transcript"]
    state.set_transcript(ROOM, block["transcript"], status=block["status"])
    state.set_grading(ROOM, fixture_json("graph8", "call_graded")["data"]["grading"])


async def test_a_wrong_key_or_org_is_an_auth_error(
    http: httpx.AsyncClient, creds: graph8.Graph8Credentials
) -> None:
    wrong_key = graph8.Graph8Credentials(creds.base_url, "nope", creds.org_id)
    with pytest.raises(VendorAuthFailed) as refused:
        await graph8.list_page(http, wrong_key, DAY)
    assert refused.value.vendor_status == 401
    assert refused.value.request_id is not None
    assert refused.value.request_id.startswith("req_")
    wrong_org = graph8.Graph8Credentials(creds.base_url, creds.token, "org_other")
    with pytest.raises(VendorAuthFailed):
        await graph8.transcript(http, wrong_org, ROOM)
    assert "nope" not in repr(wrong_key)  # the key never shows in logs


async def test_pages_cover_the_window_exactly_once(
    http: httpx.AsyncClient, creds: graph8.Graph8Credentials, state: State
) -> None:
    inside = [f"rm_{i}" for i in range(7)]
    for i, room in enumerate(inside):
        state.add_call(room, started_at=f"2026-05-25T1{i}:00:00Z")
    state.add_call("rm_before", started_at="2026-05-24T23:59:59Z")
    state.add_call("rm_after", started_at="2026-05-26T00:00:00Z")  # the window's end is exclusive
    pages = [page async for page in graph8.list_calls(http, creds, DAY, limit=3)]
    assert [len(p.items) for p in pages] == [3, 3, 1]
    assert [p.next_cursor for p in pages] == ["2", "3", None]
    assert pages[0].total == 7
    assert sorted(str(item["room_name"]) for p in pages for item in p.items) == inside
    assert state.log.requests[0]["headers"]["x-org-id"] == "org_123"
    assert state.log.requests[0]["query"]["date_from"] == "2026-05-25T00:00:00Z"


async def test_the_sixth_read_in_a_second_is_a_retry_after(
    http: httpx.AsyncClient, creds: graph8.Graph8Credentials, state: State
) -> None:
    seed_fixture_call(state)
    for _ in range(5):
        await graph8.grading(http, creds, ROOM)
    with pytest.raises(VendorRetryLater) as throttled:
        await graph8.grading(http, creds, ROOM)
    assert throttled.value.vendor_status == 429
    assert throttled.value.retry_after == 1.0
    assert retry_delay(throttled.value, attempt=4) == 1.0  # Retry-After wins over the back-off
    state.clock.advance(1)
    assert not isinstance(await graph8.grading(http, creds, ROOM), Missing)


async def test_a_server_error_backs_off_5_30_120(
    http: httpx.AsyncClient, creds: graph8.Graph8Credentials, state: State
) -> None:
    seed_fixture_call(state)
    state.faults.inject(503, {"error": {"code": "unavailable", "message": "try later"}}, times=1)
    with pytest.raises(VendorRetryLater) as failed:
        await graph8.transcript(http, creds, ROOM)
    assert failed.value.retry_after is None
    assert [retry_delay(failed.value, n) for n in range(5)] == [5.0, 30.0, 120.0, 120.0, 120.0]
    assert "try later" in failed.value.message
    assert not isinstance(await graph8.transcript(http, creds, ROOM), Missing)  # the fault was one reply


async def test_unknown_ungraded_and_empty_are_nothing_to_pull(
    http: httpx.AsyncClient, creds: graph8.Graph8Credentials, state: State
) -> None:
    state.add_call("rm_short", status="completed")
    state.set_transcript("rm_flushed_nothing", [], status="empty")
    state.add_call("rm_flushed_nothing")
    assert isinstance(await graph8.grading(http, creds, "rm_short"), Missing)
    assert isinstance(await graph8.transcript(http, creds, "rm_unknown"), Missing)
    empty = await graph8.pull(http, creds, "rm_flushed_nothing", Part.TRANSCRIPT, AFTER)
    assert isinstance(empty, Missing)
    assert "empty" in empty.reason
    assert isinstance(
        await graph8.pull(http, creds, "rm_short", Part.TRANSCRIPT, AFTER), Missing
    )  # never set
    assert isinstance(await graph8.pull(http, creds, "rm_short", Part.SURVEY, AFTER), Missing)


async def test_an_unknown_transcript_status_is_a_contract_change(
    http: httpx.AsyncClient, creds: graph8.Graph8Credentials, state: State
) -> None:
    state.add_call("rm_odd")
    state.set_transcript("rm_odd", [{"speaker": "agent", "text": "hi"}], status="processing")
    with pytest.raises(VendorError) as odd:
        await graph8.transcript(http, creds, "rm_odd")
    assert not isinstance(odd.value, VendorRetryLater)
    assert odd.value.field == "status"


async def test_ids_stay_in_their_path_segment(
    http: httpx.AsyncClient, creds: graph8.Graph8Credentials, state: State
) -> None:
    sent: list[str] = []

    async def record(request: httpx.Request) -> None:
        sent.append(request.url.raw_path.decode())

    http.event_hooks["request"].append(record)
    for room in ("rm?page=2#x", "..", "../../sessions"):
        assert isinstance(await graph8.grading(http, creds, room), Missing)
    assert sent == [
        "/api/v1/voice/dialer/calls/rm%3Fpage%3D2%23x/grading",
        "/api/v1/voice/dialer/calls/%2E%2E/grading",
        "/api/v1/voice/dialer/calls/..%2F..%2Fsessions/grading",
    ]


async def test_pulled_parts_make_the_call_the_webhooks_make(
    http: httpx.AsyncClient, creds: graph8.Graph8Credentials, state: State
) -> None:
    seed_fixture_call(state)
    reconciled = await graph8.reconcile(http, creds, DAY, None, AFTER)
    record = state.calls[ROOM]
    hydrated: list[PulledEvent] = []
    for part in (Part.TRANSCRIPT, Part.GRADE):
        got = await graph8.pull(http, creds, ROOM, part, AFTER, started_at=record["started_at"])
        assert not isinstance(got, Missing)
        hydrated += got
    pulled = [*reconciled.events, *hydrated]
    for event in pulled:
        parse(event)
    assert {e.part for e in pulled} == {Part.CALL, Part.TRANSCRIPT, Part.GRADE}

    stream = [fixture("graph8", name) for name in WEBHOOKS + PARTS]
    webhooks = fold("graph8", stream)[ROOM]
    assert fold("graph8", [e.body for e in pulled])[ROOM] == webhooks  # reconciled from nothing
    lacking = [fixture("graph8", name) for name in WEBHOOKS]
    assert fold("graph8", [*lacking, *(e.body for e in hydrated)])[ROOM] == webhooks  # hydrated
    assert fold("graph8", [*stream, *(e.body for e in pulled)])[ROOM] == webhooks  # nothing contradicts
    assert webhooks["grade"]["score"] == 0.82
    assert webhooks["transcript"][0]["start_ms"] == 26_000


async def test_a_call_pull_finds_the_record_by_listing(
    http: httpx.AsyncClient, creds: graph8.Graph8Credentials, state: State
) -> None:
    for i in range(4):
        state.add_call(f"rm_other_{i}", started_at="2026-05-25T14:00:00Z")
    seed_fixture_call(state)
    events = await graph8.pull(http, creds, ROOM, Part.CALL, AFTER, around=DAY)
    assert not isinstance(events, Missing)
    assert parse(events[0]).updates[0].vendor_call_id == ROOM
    gone = await graph8.pull(http, creds, "rm_nowhere", Part.CALL, AFTER, around=DAY)
    assert isinstance(gone, Missing)


def test_statuses_map_to_the_webhook_types_graph8_sends() -> None:
    def record(**fields: Any) -> dict[str, Any]:
        return {"room_name": "rm_x", **fields}

    assert graph8.call_type(record(status="busy")) == "call.failed"  # tests/fixtures call_busy.json
    assert graph8.call_type(record(status="voicemail")) == "call.completed"
    assert graph8.call_type(record(status="transferred", ended_at="2026-05-25T14:00:00Z")) == "call.completed"
    assert (
        graph8.call_type(record(status="transferred", answered_at="2026-05-25T14:00:00Z"))
        == "call.in_progress"
    )
    assert graph8.call_type(record()) == "call.initiating"
    event = graph8.call_event(record(status="transferred"), org_id="org_1", observed_at=AFTER)
    assert parse(event).unmapped == {"status": "transferred"}  # kept and reported, not lost


def test_a_later_observation_wins_only_where_the_vendor_changed() -> None:
    """A re-graded call: the new grading is new content (a new key) observed later, so it replaces the
    webhook's; the unchanged call record is a duplicate of the first pull."""
    graded = fixture_json("graph8", "call_graded")["data"]["grading"]
    first = graph8.grading_event(ROOM, graded, org_id="org_123", observed_at=AFTER)
    again = graph8.grading_event(ROOM, dict(graded), org_id="org_123", observed_at=AFTER + timedelta(hours=1))
    regraded = graph8.grading_event(
        ROOM, {**graded, "overall_score": 91}, org_id="org_123", observed_at=AFTER + timedelta(hours=2)
    )
    assert first.event_key == again.event_key != regraded.event_key
    stream = [fixture("graph8", name) for name in WEBHOOKS + PARTS]
    assert fold("graph8", [*stream, regraded.body])[ROOM]["grade"]["score"] == 0.91
