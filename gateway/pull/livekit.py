"""LiveKit's RoomService over Twirp, pulled into LiveKit webhooks (research/inbound.md section 1).

LiveKit drops a webhook that waited 30 s (research/inbound.md, takeaway 2), so a SIP call can stay
``in_progress`` forever; its room tells what happened. ``POST /twirp/livekit.RoomService/ListRooms`` and
``.../ListParticipants`` take and answer protobuf (``Content-Type: application/protobuf``, what the
installed ``livekit-api`` 1.2 client sends) with ``Authorization: Bearer <JWT>`` minted by the SDK's
``AccessToken`` from the API key and secret, carrying ``roomList`` (ListRooms) or ``roomAdmin`` for the
room (ListParticipants). Errors are Twirp JSON ``{"code", "msg"}``. The SDK's own client is aiohttp; this
one sends the same bytes over the injected ``httpx`` client, so the product's SSRF check sees them.

What a pull becomes (bodies in the webhook's protobuf JSON: camelCase, int64 as strings, zero values
omitted - ``MessageToDict`` writes exactly that):

* the room is still there: each SIP participant as a ``participant_joined`` snapshot (numbers, direction,
  ``sip.callStatus``), the adapter's reading of a participant that is in the room;
* the room is gone (not listed, or listed with another sid - a new room under the old name):
  ``room_finished`` for the old sid, which closes its call as the webhook would have.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import httpx
from google.protobuf.json_format import MessageToDict
from google.protobuf.message import DecodeError
from livekit.api import AccessToken, VideoGrants
from livekit.protocol.room import (
    ListParticipantsRequest,
    ListParticipantsResponse,
    ListRoomsRequest,
    ListRoomsResponse,
)

from gateway.errors import VendorError
from gateway.pull.base import JSONObject, Missing, Part, PulledEvent, Reconciled, Window, pulled
from gateway.pull.http import Policy, outcome, send, vendor_error

VENDOR = "livekit"
SERVICE = "/twirp/livekit.RoomService/"
POLICY = Policy(VENDOR)
TOKEN_LIFETIME = timedelta(minutes=5)
# The parts of a participant the adapter reads, plus its name: a snapshot keyed on these is stable across
# polls (tracks, versions and permissions change without the call changing).
PARTICIPANT_FIELDS = ("sid", "identity", "name", "kind", "joinedAt", "joinedAtMs", "attributes")


@dataclass(frozen=True, slots=True)
class LiveKitCredentials:
    """A project URL (``https://…``, or the ``wss://…`` one clients use) and an API key pair."""

    base_url: str
    api_key: str
    api_secret: str = field(repr=False)

    def url(self, method: str) -> str:
        base = self.base_url.rstrip("/")
        if base.startswith("ws"):
            base = "http" + base[2:]  # wss://x -> https://x, ws://x -> http://x, as the SDK does
        return base + SERVICE + method

    def token(self, grants: Any) -> str:
        minted: str = (
            AccessToken(self.api_key, self.api_secret).with_grants(grants).with_ttl(TOKEN_LIFETIME).to_jwt()
        )
        return minted


# --- reading the API (I/O) --------------------------------------------------------------------------------


async def _twirp(
    http: httpx.AsyncClient,
    creds: LiveKitCredentials,
    method: str,
    request: Any,
    answer_type: Any,
    grants: Any,
) -> Any:
    """One Twirp call: the decoded answer message, or ``Missing`` for Twirp's ``not_found``."""
    headers = {"authorization": f"Bearer {creds.token(grants)}", "content-type": "application/protobuf"}
    answer = await send(
        http, "POST", creds.url(method), POLICY, headers=headers, content=request.SerializeToString()
    )
    if answer.status == 404 and vendor_error(answer.body)[0] != "not_found":
        # Twirp's bad_route is also a 404: a wrong base URL, not a missing room
        raise VendorError(f"livekit {method}: no RoomService at {creds.base_url}", vendor_status=404)
    missing = outcome(answer, POLICY, method)
    if missing is not None:
        return missing
    try:
        return answer_type.FromString(answer.body)
    except DecodeError:
        raise VendorError(f"livekit {method}: the answer is not a {answer_type.__name__}") from None


async def list_rooms(
    http: httpx.AsyncClient, creds: LiveKitCredentials, names: tuple[str, ...] = ()
) -> list[JSONObject]:
    """The active rooms (only those named, when ``names`` is given), as protobuf JSON."""
    answer = await _twirp(
        http,
        creds,
        "ListRooms",
        ListRoomsRequest(names=list(names)),
        ListRoomsResponse,
        VideoGrants(room_list=True),
    )
    if isinstance(answer, Missing):
        raise VendorError(f"livekit ListRooms: {answer.reason}")
    return [_json(room) for room in answer.rooms]


async def room(http: httpx.AsyncClient, creds: LiveKitCredentials, room_name: str) -> JSONObject | Missing:
    rooms = [r for r in await list_rooms(http, creds, (room_name,)) if r.get("name") == room_name]
    return rooms[0] if rooms else Missing(f"livekit room {room_name} is not active")


async def participants(
    http: httpx.AsyncClient, creds: LiveKitCredentials, room_name: str
) -> list[JSONObject] | Missing:
    """The room's participants, or ``Missing`` when the room does not exist (any more)."""
    answer = await _twirp(
        http,
        creds,
        "ListParticipants",
        ListParticipantsRequest(room=room_name),
        ListParticipantsResponse,
        VideoGrants(room_admin=True, room=room_name),
    )
    if isinstance(answer, Missing):
        return answer
    return [_json(p) for p in answer.participants]


async def pull(
    http: httpx.AsyncClient, creds: LiveKitCredentials, room_name: str, room_sid: str, observed_at: datetime
) -> list[PulledEvent]:
    """The room of a call (its name and sid are the call's ``vendor_extra.livekit_room_*``) as webhooks:
    its SIP participants' snapshots while it lives, ``room_finished`` once it is gone."""
    gone = [room_finished_event({"sid": room_sid, "name": room_name}, observed_at=observed_at)]
    found = await room(http, creds, room_name)
    if isinstance(found, Missing) or found.get("sid") != room_sid:
        return gone
    people = await participants(http, creds, room_name)
    if isinstance(people, Missing):
        return gone
    events = (participant_event(found, p, observed_at=observed_at) for p in people)
    return [event for event in events if event is not None]


async def reconcile(
    http: httpx.AsyncClient,
    creds: LiveKitCredentials,
    window: Window,
    cursor: str | None,
    observed_at: datetime,
) -> Reconciled:
    """The SIP participants of every active room as snapshots: calls whose webhooks never came. RoomService
    lists only the rooms open now (``window`` cannot reach back); rooms that ended while the webhooks were
    lost are found from the stored calls instead (``pull`` per open call: ``room_finished``)."""
    events: list[PulledEvent] = []
    for found in await list_rooms(http, creds):
        people = await participants(http, creds, str(found.get("name", "")))
        if isinstance(people, Missing):
            continue
        events += [
            e for p in people if (e := participant_event(found, p, observed_at=observed_at)) is not None
        ]
    return Reconciled(tuple(events), None)


def _json(message: Any) -> JSONObject:
    value: JSONObject = MessageToDict(message)
    return value


# --- webhook-shaped bodies (pure) ---------------------------------------------------------------------------


def _created_at(at: datetime) -> str:
    return str(int(at.timestamp()))  # int64 seconds, as a string (protojson)


def _room(room_json: Mapping[str, Any]) -> JSONObject:
    return {k: room_json[k] for k in ("sid", "name") if room_json.get(k)}


def participant_event(
    room_json: Mapping[str, Any], participant: Mapping[str, Any], *, observed_at: datetime
) -> PulledEvent | None:
    """A SIP participant still in its room as ``participant_joined``; ``None`` for any other participant
    (an agent, a browser): they carry no call."""
    attributes = participant.get("attributes")
    call_id = attributes.get("sip.callID") if isinstance(attributes, dict) else None
    if participant.get("kind") != "SIP" or not isinstance(call_id, str) or not call_id:
        return None
    snapshot = {k: participant[k] for k in PARTICIPANT_FIELDS if k in participant}
    content = {"event": "participant_joined", "room": _room(room_json), "participant": snapshot}
    return pulled(
        VENDOR,
        call_id,
        Part.CALL,
        content,
        lambda key: {**content, "id": key, "createdAt": _created_at(observed_at)},
    )


def room_finished_event(room_json: Mapping[str, Any], *, observed_at: datetime) -> PulledEvent:
    """``room_finished`` for a room that is gone: linked to its call through ``room:<sid>``."""
    shown = _room(room_json)
    if not shown.get("sid"):
        raise ValueError("a finished room needs its sid: that is what links it to its call")
    content = {"event": "room_finished", "room": shown}
    return pulled(
        VENDOR,
        f"room:{shown['sid']}",
        Part.CALL,
        content,
        lambda key: {**content, "id": key, "createdAt": _created_at(observed_at)},
    )
