"""LiveKit webhooks (research/inbound.md section 1): protobuf JSON, camelCase, int64 as strings.

A phone call is a participant of kind ``SIP``; its key is the ``sip.callID`` attribute (``SCL_…``).
Direction: ``sip.ruleID`` is set only on inbound calls. Outcome: ``participant.disconnectReason`` on
``participant_left``. ``participant_joined`` is not "answered" for outbound calls (it fires at dialing).
Room, egress and non-SIP participant events carry no call key: they are linked through the room
(``room:<room sid>``) to the SIP call of that room, when there is one, and kept until there is.
Zero values are omitted by protojson, so every field is optional.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from adapters.base import (
    Headers,
    InboundAdapter,
    JSONObject,
    ParsedEvent,
    SampleTimes,
    arr,
    body_sha256,
    compact,
    iso,
    load_object,
    obj,
    parsed_event,
    snake,
    text,
    unix_millis,
    unix_seconds,
)
from gateway.errors import PayloadError
from gateway.model import CallUpdate, Direction, Status

NAME = "livekit"

EVENTS = frozenset(
    {
        "room_started", "room_finished", "participant_joined", "participant_left",
        "participant_connection_aborted", "track_published", "track_unpublished", "egress_started",
        "egress_updated", "egress_ended", "ingress_started", "ingress_ended", "agent_job_started",
        "agent_job_ended",
    }
)  # fmt: skip

# livekit_models.proto DisconnectReason, by number (protojson emits names; numbers are tolerated)
DISCONNECT_REASONS = (
    "UNKNOWN_REASON", "CLIENT_INITIATED", "DUPLICATE_IDENTITY", "SERVER_SHUTDOWN", "PARTICIPANT_REMOVED",
    "ROOM_DELETED", "STATE_MISMATCH", "JOIN_FAILURE", "MIGRATION", "SIGNAL_CLOSE", "ROOM_CLOSED",
    "USER_UNAVAILABLE", "USER_REJECTED", "SIP_TRUNK_FAILURE", "CONNECTION_TIMEOUT", "MEDIA_FAILURE",
    "AGENT_ERROR",
)  # fmt: skip
REASON_STATUS: Mapping[str, Status] = {
    "USER_UNAVAILABLE": Status.NO_ANSWER,  # "SIP callee did not respond in time"
    "USER_REJECTED": Status.BUSY,  # "SIP callee rejected the call (busy)"
    "SIP_TRUNK_FAILURE": Status.FAILED,
    "MEDIA_FAILURE": Status.FAILED,
    "AGENT_ERROR": Status.FAILED,
    "JOIN_FAILURE": Status.FAILED,
    "CONNECTION_TIMEOUT": Status.FAILED,
}
# sip.callStatus as seen in a participant snapshot
CALL_STATUS: Mapping[str, Status] = {
    "dialing": Status.INITIATING,
    "ringing": Status.RINGING,
    "automation": Status.IN_PROGRESS,
    "active": Status.IN_PROGRESS,
}
PARTICIPANT_KINDS = ("STANDARD", "INGRESS", "EGRESS", "SIP", "AGENT")
SIP_MAPPED = {"sip.callID", "sip.ruleID", "sip.phoneNumber", "sip.trunkPhoneNumber", "sip.callStatus"}


def _enum(value: Any, names: tuple[str, ...], path: str) -> str | None:
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        return names[value] if 0 <= value < len(names) else str(value)
    if isinstance(value, str):
        return value
    raise PayloadError(f"{path} must be an enum name", field=path)


def _attributes(participant: JSONObject) -> dict[str, str]:
    attributes = obj(participant, "attributes", "participant.attributes")
    if not all(isinstance(v, str) for v in attributes.values()):
        raise PayloadError("participant.attributes values must be strings", field="participant.attributes")
    return attributes


def _room_alias(sid: str | None) -> str | None:
    return f"room:{sid}" if sid else None


def _sip_update(event: str, envelope: JSONObject, room: JSONObject, participant: JSONObject) -> CallUpdate:
    attributes = _attributes(participant)
    call_id = attributes["sip.callID"]
    inbound = bool(attributes.get("sip.ruleID"))
    phone = attributes.get("sip.phoneNumber")  # the external party
    trunk = attributes.get("sip.trunkPhoneNumber")  # our number
    call_status = attributes.get("sip.callStatus")
    status: Status | None = None
    end_reason: str | None = None
    ended_at: str | None = None
    if event == "participant_joined":
        status = CALL_STATUS.get(call_status or "") or (Status.RINGING if inbound else Status.INITIATING)
    elif event == "participant_left":
        reason = _enum(
            participant.get("disconnectReason"), DISCONNECT_REASONS, "participant.disconnectReason"
        )
        reason = reason or "UNKNOWN_REASON"
        status = REASON_STATUS.get(reason)
        if status is None:
            # A normal hang-up. Before the callee answered it is a cancel.
            status = Status.CANCELED if call_status in ("dialing", "ringing") else Status.COMPLETED
        end_reason = snake(reason)
        ended_at = iso(unix_seconds(envelope, "createdAt", "createdAt"))
    elif event == "participant_connection_aborted":
        status, end_reason = Status.FAILED, "connection_aborted"
        ended_at = iso(unix_seconds(envelope, "createdAt", "createdAt"))
    started = iso(
        unix_millis(participant, "joinedAtMs", "participant.joinedAtMs")
        or unix_seconds(participant, "joinedAt", "participant.joinedAt")
    )
    vendor_extra = compact(
        {
            "livekit_room_sid": text(room, "sid", "room.sid"),
            "livekit_room_name": text(room, "name", "room.name"),
            "livekit_participant_sid": text(participant, "sid", "participant.sid"),
            "livekit_participant_identity": text(participant, "identity", "participant.identity"),
            **{k: v for k, v in attributes.items() if k not in SIP_MAPPED},
        }
    )
    fields = compact(
        {
            "direction": Direction.INBOUND if inbound else Direction.OUTBOUND,
            "from_number": phone if inbound else trunk,
            "to_number": trunk if inbound else phone,
            "started_at": started if event == "participant_joined" else None,
            "ended_at": ended_at,
            "end_reason": end_reason,
            "vendor_extra": vendor_extra,
        }
    )
    alias = _room_alias(text(room, "sid", "room.sid"))
    return CallUpdate(vendor_call_id=call_id, aliases=(alias,) if alias else (), status=status, fields=fields)


def _recording(egress: JSONObject) -> JSONObject | None:
    files = arr(egress, "fileResults", "egressInfo.fileResults")
    if not files:
        return None
    first = files[0]
    if not isinstance(first, dict):
        raise PayloadError("egressInfo.fileResults must hold objects", field="egressInfo.fileResults")
    return compact(
        {
            "available": True,
            "vendor_ref": text(egress, "egressId", "egressInfo.egressId"),
            "url": text(first, "location", "egressInfo.fileResults[0].location"),
            "filename": text(first, "filename", "egressInfo.fileResults[0].filename"),
        }
    )


def _room_update(event: str, envelope: JSONObject, room: JSONObject) -> CallUpdate | None:
    egress = obj(envelope, "egressInfo", "egressInfo")
    room_sid = text(room, "sid", "room.sid") or text(egress, "roomId", "egressInfo.roomId")
    alias = _room_alias(room_sid)
    if alias is None:
        return None
    status: Status | None = None
    fields: JSONObject = {}
    if event == "room_finished":
        # The room is gone, so its call is over. Kept weak on purpose: it sets no ended_at (the room
        # outlives the call by its departure timeout), and an earlier participant_left outcome wins.
        status = Status.COMPLETED
    elif event == "egress_ended":
        recording = _recording(egress)
        if recording:
            fields["recording"] = recording
        error = text(egress, "error", "egressInfo.error")
        if error:
            fields["vendor_extra"] = {"egress_error": error}
    return CallUpdate(link_alias=alias, status=status, fields=fields)


def parse(headers: Headers, body: bytes) -> ParsedEvent:
    envelope = load_object(body)
    event = text(envelope, "event", "event", required=True) or ""
    event_key = text(envelope, "id", "id") or body_sha256(body)
    occurred = unix_seconds(envelope, "createdAt", "createdAt")
    room = obj(envelope, "room", "room")
    participant = obj(envelope, "participant", "participant")
    if event not in EVENTS:
        return parsed_event(event_key, event, occurred, known=False)
    kind = _enum(participant.get("kind"), PARTICIPANT_KINDS, "participant.kind")
    update: CallUpdate | None
    if participant and kind == "SIP" and _attributes(participant).get("sip.callID"):
        update = _sip_update(event, envelope, room, participant)
    else:
        update = _room_update(event, envelope, room)
    return parsed_event(event_key, event, occurred, (update,) if update else ())


def samples(run: str, start: datetime) -> list[JSONObject]:
    """One sample call as the vendor would send it (``callgate demo``): fresh ids, times from ``start``."""
    t = SampleTimes(start)
    room = {"sid": f"RM_{run}", "name": f"call-{run}"}
    participant = {
        "sid": f"PA_{run}",
        "identity": "sip_+14155550127",
        "name": "Phone +14155550127",
        "kind": "SIP",
        "joinedAt": str(t.unix(2)),
        "attributes": {
            "sip.phoneNumber": "+14155550127",
            "sip.trunkPhoneNumber": "+14155551234",
            "sip.callID": f"SCL_{run}",
            "sip.ruleID": "SDR_demo",
            "sip.callStatus": "active",
        },
    }
    ns = 1_000_000_000
    egress = {
        "egressId": f"EG_{run}",
        "roomId": room["sid"],
        "roomName": room["name"],
        "status": "EGRESS_COMPLETE",
        "startedAt": str(t.unix(3) * ns),
        "endedAt": str(t.unix(150) * ns),
        "fileResults": [
            {
                "filename": f"calls/{run}.ogg",
                "duration": str(147 * ns),
                "location": f"s3://recordings/calls/{run}.ogg",
            }
        ],
    }
    return [
        {
            "event": "participant_joined",
            "room": room,
            "participant": {**participant, "state": "ACTIVE"},
            "id": f"EV_{run}_1",
            "createdAt": str(t.unix(2)),
        },
        {
            "event": "participant_left",
            "room": room,
            "participant": {**participant, "state": "DISCONNECTED", "disconnectReason": "CLIENT_INITIATED"},
            "id": f"EV_{run}_2",
            "createdAt": str(t.unix(150)),
        },
        {"event": "egress_ended", "egressInfo": egress, "id": f"EV_{run}_3", "createdAt": str(t.unix(152))},
    ]


ADAPTER = InboundAdapter(NAME, parse, {"scheme": "livekit"}, samples)

__all__: list[Any] = ["ADAPTER", "parse"]
