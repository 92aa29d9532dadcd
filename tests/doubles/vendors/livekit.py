"""A local LiveKit RoomService (Twirp): ``ListRooms`` and ``ListParticipants``, as the installed
``livekit-api`` client calls them, so both that client and ``gateway.pull.livekit`` run against it.

What it imitates:

- ``POST /twirp/livekit.RoomService/{ListRooms,ListParticipants}`` with a protobuf body
  (``Content-Type: application/protobuf``, what ``livekit-api`` 1.2's ``TwirpClient`` sends) or Twirp's
  JSON; the answer in the same encoding.
- Auth: ``Authorization: Bearer <JWT>`` verified with the SDK's ``TokenVerifier`` for the key named by the
  token's ``iss`` (``exp`` required); grants as the server checks them - ``roomList`` for ListRooms,
  ``roomAdmin`` for the requested room for ListParticipants.
- Twirp errors ``{"code", "msg"}``: ``unauthenticated`` 401, ``permission_denied`` 403, ``not_found`` 404
  ("requested room does not exist"), ``bad_route`` 404, ``malformed`` 400.

Not imitated: the other RoomService methods, egress and SIP services, region failover.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import jwt
from google.protobuf.json_format import MessageToJson, Parse, ParseError
from google.protobuf.message import DecodeError
from livekit.api import TokenVerifier
from livekit.protocol.models import ParticipantInfo, Room
from livekit.protocol.room import (
    ListParticipantsRequest,
    ListParticipantsResponse,
    ListRoomsRequest,
    ListRoomsResponse,
)
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.doubles import main
from tests.doubles.vendors import FakeClock, Faults, Log, bearer

SERVICE = "/twirp/livekit.RoomService/"
PROTOBUF = "application/protobuf"
TWIRP_STATUS = {
    "unauthenticated": 401,
    "permission_denied": 403,
    "not_found": 404,
    "bad_route": 404,
    "malformed": 400,
}


@dataclass(slots=True)
class State:
    keys: dict[str, str] = field(default_factory=lambda: {"APItestkey": "a-livekit-test-secret-of-32-bytes!"})
    clock: FakeClock = field(default_factory=FakeClock)  # room creation times
    rooms: dict[str, Any] = field(default_factory=dict)  # name -> livekit.protocol.models.Room
    participants: dict[str, list[Any]] = field(default_factory=dict)  # room name -> [ParticipantInfo]
    faults: Faults = field(default_factory=Faults)
    log: Log = field(default_factory=Log)

    def add_room(self, name: str, sid: str | None = None) -> Any:
        room = Room(sid=sid or f"RM_{name}", name=name, creation_time=int(self.clock().timestamp()))
        self.rooms[name] = room
        self.participants.setdefault(name, [])
        return room

    def add_sip_participant(
        self,
        room_name: str,
        call_id: str,
        *,
        phone: str,
        trunk_phone: str,
        inbound: bool = True,
        call_status: str = "active",
        joined_at: int | None = None,
        **attributes: str,
    ) -> Any:
        """A SIP participant with the ``sip.*`` attributes LiveKit sets (``sip.ruleID`` only inbound)."""
        attrs = {
            "sip.callID": call_id,
            "sip.phoneNumber": phone,
            "sip.trunkPhoneNumber": trunk_phone,
            "sip.callStatus": call_status,
            **({"sip.ruleID": "SDR_test"} if inbound else {}),
            **attributes,
        }
        at = joined_at if joined_at is not None else int(self.clock().timestamp())
        participant = ParticipantInfo(
            sid=f"PA_{call_id}",
            identity=f"sip_{phone}",
            name=f"Phone {phone}",
            kind=ParticipantInfo.Kind.SIP,
            state=ParticipantInfo.State.ACTIVE,
            joined_at=at,
            joined_at_ms=at * 1000,
            attributes=attrs,
        )
        room = self.rooms[room_name]
        self.participants[room_name].append(participant)
        room.num_participants = len(self.participants[room_name])
        return participant

    def add_agent(self, room_name: str, identity: str = "agent-1") -> Any:
        agent = ParticipantInfo(sid=f"PA_{identity}", identity=identity, kind=ParticipantInfo.Kind.AGENT)
        self.participants[room_name].append(agent)
        return agent

    def finish_room(self, name: str) -> None:
        self.rooms.pop(name, None)
        self.participants.pop(name, None)


def twirp_error(code: str, msg: str) -> Response:
    return JSONResponse({"code": code, "msg": msg}, TWIRP_STATUS.get(code, 500))


def _claims(state: State, token: str | None) -> Any:
    """The verified claims, or None. The key is picked by the token's (unverified) ``iss``."""
    if token is None:
        return None
    try:
        issuer = jwt.decode(token, options={"verify_signature": False}).get("iss")
        secret = state.keys.get(issuer) if isinstance(issuer, str) else None
        return TokenVerifier(issuer, secret).verify(token) if secret else None
    except (jwt.PyJWTError, ValueError):
        return None


def app(state: State) -> Starlette:
    async def endpoint(request: Request) -> Response:
        state.log.record(request)
        method = request.path_params["method"]
        if method not in ("ListRooms", "ListParticipants"):
            return twirp_error("bad_route", f"no handler for path {request.url.path}")
        claims = _claims(state, bearer(request))
        if claims is None:
            return twirp_error("unauthenticated", "invalid token")
        scripted = state.faults.take(request.url.path)
        if scripted is not None:
            return scripted
        as_protobuf = request.headers.get("content-type", "").split(";")[0].strip() == PROTOBUF
        kind = ListRoomsRequest if method == "ListRooms" else ListParticipantsRequest
        body = await request.body()
        message: Any
        try:
            message = kind.FromString(body) if as_protobuf else Parse(body or b"{}", kind())
        except (DecodeError, ParseError):
            return twirp_error("malformed", "the request could not be decoded")
        if method == "ListRooms":
            if not claims.video.room_list:
                return twirp_error("permission_denied", "permissions denied")
            names = set(message.names)
            answer: Any = ListRoomsResponse(
                rooms=[r for n, r in state.rooms.items() if not names or n in names]
            )
        else:
            if not claims.video.room_admin or claims.video.room != message.room:
                return twirp_error("permission_denied", "permissions denied")
            if message.room not in state.rooms:
                return twirp_error("not_found", "requested room does not exist")
            answer = ListParticipantsResponse(participants=state.participants[message.room])
        if as_protobuf:
            return Response(answer.SerializeToString(), media_type=PROTOBUF)
        return Response(MessageToJson(answer), media_type="application/json")

    return Starlette(routes=[Route(SERVICE + "{method}", endpoint, methods=["POST"])])


def _demo_state() -> State:
    state = State()
    state.add_room("call-demo", "RM_demo")
    state.add_sip_participant("call-demo", "SCL_demo", phone="+14155550127", trunk_phone="+14155551234")
    return state


if __name__ == "__main__":
    main("vendors.livekit", app(_demo_state()), 9205)
