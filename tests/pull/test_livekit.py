"""The LiveKit RoomService double against the real ``livekit-api`` client (so it speaks what LiveKit
speaks), the pull client against it, and pulled rooms through the real livekit adapter."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from google.protobuf.json_format import ParseDict
from livekit import api
from livekit.protocol.models import ParticipantInfo, Room
from livekit.protocol.room import ListParticipantsRequest, ListRoomsRequest

from gateway.errors import VendorAuthFailed, VendorError, VendorRetryLater
from gateway.pull import livekit
from gateway.pull.base import Missing
from tests.doubles.vendors import Swappable
from tests.doubles.vendors.livekit import State, app
from tests.pull.converge import fixture, fixture_json, fold, parse

pytestmark = pytest.mark.anyio

KEY, SECRET = "APItestkey", "a-livekit-test-secret-of-32-bytes!"
AFTER = datetime(2023, 11, 14, 23, 0, tzinfo=UTC)


@pytest.fixture
def state() -> State:
    return State()


@pytest.fixture
def creds(state: State, server: tuple[Swappable, str]) -> Iterator[livekit.LiveKitCredentials]:
    swappable, url = server
    swappable.current = app(state)
    yield livekit.LiveKitCredentials(url, KEY, SECRET)
    swappable.current = None


def seed_fixture_room(state: State) -> tuple[str, str]:
    """The room and SIP participant of ``participant_joined_sip_inbound.json``, as RoomService holds them."""
    joined = fixture_json("livekit", "participant_joined_sip_inbound")
    room: Any = ParseDict(joined["room"], Room())
    state.rooms[room.name] = room
    state.participants[room.name] = [ParseDict(joined["participant"], ParticipantInfo())]
    state.add_agent(room.name)
    return str(room.name), str(room.sid)


async def test_the_real_sdk_client_reads_the_double(creds: livekit.LiveKitCredentials, state: State) -> None:
    name, _ = seed_fixture_room(state)
    lk = api.LiveKitAPI(creds.base_url, KEY, SECRET)
    try:
        rooms = await lk.room.list_rooms(ListRoomsRequest(names=[name]))
        people = await lk.room.list_participants(ListParticipantsRequest(room=name))
    finally:
        await lk.aclose()
    assert [r.name for r in rooms.rooms] == [name]
    assert [p.attributes.get("sip.callID") for p in people.participants] == ["SCL_example", None]
    assert state.log.requests[0]["headers"]["content-type"] == "application/protobuf"
    wrong = api.LiveKitAPI(creds.base_url, KEY, "another-secret-entirely-32-bytes!!")
    try:
        with pytest.raises(api.TwirpError) as refused:
            await wrong.room.list_rooms(ListRoomsRequest())
    finally:
        await wrong.aclose()
    assert refused.value.status == 401
    assert refused.value.code == "unauthenticated"


async def test_twirp_json_is_served_too(
    http: httpx.AsyncClient, creds: livekit.LiveKitCredentials, state: State
) -> None:
    seed_fixture_room(state)
    token = creds.token(api.VideoGrants(room_list=True))
    answer = await http.post(
        creds.url("ListRooms"),
        content=b"{}",
        headers={"authorization": f"Bearer {token}", "content-type": "application/json"},
    )
    assert answer.status_code == 200
    assert json.loads(answer.content)["rooms"][0]["sid"] == "RM_example"


async def test_the_client_reads_rooms_and_participants(
    http: httpx.AsyncClient, creds: livekit.LiveKitCredentials, state: State
) -> None:
    name, sid = seed_fixture_room(state)
    found = await livekit.room(http, creds, name)
    assert not isinstance(found, Missing)
    assert found["sid"] == sid
    people = await livekit.participants(http, creds, name)
    assert not isinstance(people, Missing)
    assert people[0]["kind"] == "SIP"
    assert people[0]["joinedAtMs"] == "1700000001234"
    assert isinstance(await livekit.room(http, creds, "gone"), Missing)
    assert isinstance(await livekit.participants(http, creds, "gone"), Missing)


async def test_auth_grants_and_routes(
    http: httpx.AsyncClient, creds: livekit.LiveKitCredentials, state: State
) -> None:
    wrong = livekit.LiveKitCredentials(creds.base_url, KEY, "not-the-secret-but-long-enough-32!")
    with pytest.raises(VendorAuthFailed):
        await livekit.list_rooms(http, wrong)
    unknown_key = livekit.LiveKitCredentials(creds.base_url, "APIother", SECRET)
    with pytest.raises(VendorAuthFailed):
        await livekit.list_rooms(http, unknown_key)
    assert SECRET not in repr(creds)
    elsewhere = livekit.LiveKitCredentials(creds.base_url + "/not-livekit", KEY, SECRET)
    with pytest.raises(VendorError) as lost:
        await livekit.list_rooms(http, elsewhere)
    assert not isinstance(lost.value, VendorAuthFailed | VendorRetryLater)
    state.faults.inject(503, {"code": "unavailable", "msg": "draining"})
    with pytest.raises(VendorRetryLater):
        await livekit.list_rooms(http, creds)


def test_a_websocket_project_url_is_called_over_http() -> None:
    assert livekit.LiveKitCredentials("wss://x.livekit.cloud", KEY, SECRET).url("ListRooms") == (
        "https://x.livekit.cloud/twirp/livekit.RoomService/ListRooms"
    )


async def test_a_live_room_is_its_participant_snapshot(
    http: httpx.AsyncClient, creds: livekit.LiveKitCredentials, state: State
) -> None:
    name, sid = seed_fixture_room(state)
    events = await livekit.pull(http, creds, name, sid, AFTER)
    assert len(events) == 1  # the agent carries no call
    assert parse(events[0]).event_type == "participant_joined"
    webhook = fold("livekit", [fixture("livekit", "participant_joined_sip_inbound")])
    assert fold("livekit", [events[0].body]) == webhook
    again = await livekit.pull(http, creds, name, sid, AFTER.replace(hour=23, minute=5))
    assert again[0].event_key == events[0].event_key  # nothing changed in the room: a duplicate


async def test_a_gone_or_replaced_room_finishes_its_call(
    http: httpx.AsyncClient, creds: livekit.LiveKitCredentials, state: State
) -> None:
    name, sid = seed_fixture_room(state)
    joined = fixture("livekit", "participant_joined_sip_inbound")
    state.finish_room(name)
    events = await livekit.pull(http, creds, name, sid, AFTER)
    assert [parse(e).event_type for e in events] == ["room_finished"]
    assert fold("livekit", [joined, events[0].body]) == fold(
        "livekit", [joined, fixture("livekit", "room_finished")]
    )
    assert fold("livekit", [joined, events[0].body])["SCL_example"]["status"] == "completed"
    state.add_room(name, sid="RM_new")  # the same name, another room
    replaced = await livekit.pull(http, creds, name, sid, AFTER)
    assert [e.event_key for e in replaced] == [e.event_key for e in events]
