"""graph8 Voice & Dialer (seed 000): snake_case call objects keyed by ``room_name``.

Envelope: ``{"id", "type", "created_at", "org_id", "data": {...}}`` (design/vendors.md). ``data`` is the
seed's call record; ``call.transcript.ready`` adds ``transcript``, ``call.graded`` adds ``grading``.
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
    extra,
    integer,
    iso,
    load_object,
    number,
    obj,
    offset_ms,
    parsed_event,
    segment,
    snake,
    text,
    timestamp,
)
from gateway.errors import PayloadError
from gateway.model import CallUpdate, Direction, Status

NAME = "graph8"

TYPE_STATUS: Mapping[str, Status | None] = {
    "call.initiating": Status.INITIATING,
    "call.ringing": Status.RINGING,
    "call.in_progress": Status.IN_PROGRESS,
    "call.completed": Status.COMPLETED,
    "call.failed": Status.FAILED,
    "call.no_answer": Status.NO_ANSWER,
    "call.transcript.ready": None,
    "call.graded": None,
}
DATA_STATUS: Mapping[str, Status] = {
    "dialing": Status.INITIATING,
    "ringing": Status.RINGING,
    "in_progress": Status.IN_PROGRESS,
    "completed": Status.COMPLETED,
    "failed": Status.FAILED,
    "no_answer": Status.NO_ANSWER,
    "busy": Status.BUSY,
    # A voicemail box answered: the line connected, the person did not. Kept as a completed call with
    # outcome "voicemail", so dispositions and talk time stay with it (docs/vendors.md).
    "voicemail": Status.COMPLETED,
}
DIRECTIONS: Mapping[str, Direction] = {"inbound": Direction.INBOUND, "outbound": Direction.OUTBOUND}

MAPPED = {
    "room_name", "session_id", "campaign_id", "contact_id", "user_email", "agent_id", "from_phone",
    "to_phone", "direction", "status", "disposition", "started_at", "answered_at", "ended_at",
    "duration_seconds", "talk_time_seconds", "transcript", "grading", "credits_used",
}  # fmt: skip


def _transcript(data: JSONObject) -> tuple[list[JSONObject] | None, str | None]:
    block = obj(data, "transcript", "data.transcript")
    if not block:
        return None, None
    started = timestamp(data, "started_at", "data.started_at")
    segments = []
    for i, line in enumerate(arr(block, "transcript", "data.transcript.transcript")):
        path = f"data.transcript.transcript[{i}]"
        if not isinstance(line, dict):
            raise PayloadError(f"{path} must be an object", field=path)
        at = timestamp(line, "timestamp", f"{path}.timestamp")
        segments.append(
            segment(
                text(line, "speaker", f"{path}.speaker"),
                text(line, "text", f"{path}.text"),
                at=iso(at),
                start_ms=offset_ms(started, at),
            )
        )
    return segments, text(block, "status", "data.transcript.status")


def _grade(data: JSONObject) -> JSONObject | None:
    grading = obj(data, "grading", "data.grading")
    if not grading:
        return None
    score = number(grading, "overall_score", "data.grading.overall_score")
    if score is not None and not 0 <= score <= 100:
        raise PayloadError("data.grading.overall_score must be 0-100", field="data.grading.overall_score")
    details = compact({k: v for k, v in grading.items() if k != "overall_score"})
    return compact(
        {
            "score": round(score / 100, 4) if score is not None else None,
            "status": "completed",
            "details": details,
        }
    )


def _call_update(event_type: str, envelope: JSONObject, data: JSONObject) -> CallUpdate:
    room = text(data, "room_name", "data.room_name", required=True)
    raw_status = text(data, "status", "data.status")
    status = DATA_STATUS.get(raw_status) if raw_status else None
    vendor_extra = extra(data, MAPPED)
    if raw_status and status is None:
        vendor_extra["unmapped_status"] = raw_status
    status = status or TYPE_STATUS.get(event_type)
    raw_direction = text(data, "direction", "data.direction")
    direction = DIRECTIONS.get(raw_direction.lower()) if raw_direction else None
    if raw_direction and direction is None:
        vendor_extra["unmapped_direction"] = raw_direction
    outcome = snake(text(data, "disposition", "data.disposition"))
    if raw_status == "voicemail" and outcome is None:
        outcome = "voicemail"
    transcript, transcript_status = _transcript(data)
    if transcript_status:
        vendor_extra["transcript_status"] = transcript_status
    credits = number(data, "credits_used", "data.credits_used")
    if envelope.get("org_id") is not None:
        vendor_extra["org_id"] = envelope["org_id"]
    fields = compact(
        {
            "vendor_session_id": text(data, "session_id", "data.session_id"),
            "campaign_id": text(data, "campaign_id", "data.campaign_id"),
            "agent_id": text(data, "agent_id", "data.agent_id"),
            "contact_ref": text(data, "contact_id", "data.contact_id"),
            "user_email": text(data, "user_email", "data.user_email"),
            "direction": direction,
            "from_number": text(data, "from_phone", "data.from_phone"),
            "to_number": text(data, "to_phone", "data.to_phone"),
            "started_at": iso(timestamp(data, "started_at", "data.started_at")),
            "answered_at": iso(timestamp(data, "answered_at", "data.answered_at")),
            "ended_at": iso(timestamp(data, "ended_at", "data.ended_at")),
            "duration_seconds": integer(data, "duration_seconds", "data.duration_seconds"),
            "talk_time_seconds": integer(data, "talk_time_seconds", "data.talk_time_seconds"),
            "outcome": outcome,
            "transcript": transcript,
            "grade": _grade(data),
            "billing": compact({"credits": credits}),
            "vendor_extra": vendor_extra,
        }
    )
    return CallUpdate(vendor_call_id=room, status=status, fields=fields)


def _missed_callback(event_key: str, envelope: JSONObject, data: JSONObject) -> CallUpdate:
    """A missed inbound callback: an inbound call nobody answered, with its voicemail as the recording."""
    room = text(data, "room_name", "data.room_name") or f"callback:{event_key}"
    voicemail = text(data, "voicemail_url", "data.voicemail_url")
    received = iso(timestamp(data, "received_at", "data.received_at"))
    vendor_extra = extra(
        data, {"room_name", "from_phone", "to_phone", "voicemail_url", "received_at", "contact_id"}
    )
    if envelope.get("org_id") is not None:
        vendor_extra["org_id"] = envelope["org_id"]
    fields = compact(
        {
            "direction": Direction.INBOUND,
            "contact_ref": text(data, "contact_id", "data.contact_id"),
            "from_number": text(data, "from_phone", "data.from_phone"),
            "to_number": text(data, "to_phone", "data.to_phone"),
            "started_at": received,
            "end_reason": "missed_callback",
            "outcome": "voicemail" if voicemail else None,
            "recording": (
                {"available": True, "vendor_ref": voicemail, "url": voicemail, "kind": "voicemail"}
                if voicemail
                else None
            ),
            "vendor_extra": vendor_extra,
        }
    )
    return CallUpdate(vendor_call_id=room, status=Status.NO_ANSWER, fields=fields)


def parse(headers: Headers, body: bytes) -> ParsedEvent:
    envelope = load_object(body)
    event_type = text(envelope, "type", "type", required=True) or ""
    event_key = text(envelope, "id", "id") or headers.get("webhook-id") or body_sha256(body)
    occurred = timestamp(envelope, "created_at", "created_at")
    data = obj(envelope, "data", "data", required=True)
    updates: tuple[CallUpdate, ...]
    if event_type in TYPE_STATUS:
        updates = (_call_update(event_type, envelope, data),)
    elif event_type == "callback.missed":
        updates = (_missed_callback(event_key, envelope, data),)
    elif event_type == "session.updated":
        updates = ()  # a dialer session summary: stored as a raw event, it is no call
    else:
        return parsed_event(event_key, event_type, occurred, known=False)
    return parsed_event(event_key, event_type, occurred, updates)


def samples(run: str, start: datetime) -> list[JSONObject]:
    """One sample call as the vendor would send it (``callgate demo``): fresh ids, times from ``start``."""
    t = SampleTimes(start)
    data = {
        "room_name": f"rm_demo_{run}",
        "session_id": f"ses_{run}",
        "campaign_id": "cmp_demo",
        "contact_id": 5028106,
        "user_email": "sdr@example.com",
        "agent_id": "ag_default",
        "from_phone": "+14155551234",
        "to_phone": "(415) 555-0123",
        "direction": "outbound",
    }
    done = {
        **data,
        "status": "completed",
        "disposition": "meeting_booked",
        "started_at": t.at(0),
        "answered_at": t.at(6),
        "ended_at": t.at(318),
        "duration_seconds": 318,
        "talk_time_seconds": 312,
        "credits_used": 120,
    }
    transcript = {
        "status": "ready",
        "transcript": [
            {
                "speaker": "agent",
                "text": "Hi, it's Sam from Acme - do you have a minute?",
                "timestamp": t.at(7),
            },
            {"speaker": "customer", "text": "Sure, what's this about?", "timestamp": t.at(11)},
            {"speaker": "agent", "text": "Could we book 20 minutes on Thursday?", "timestamp": t.at(290)},
        ],
    }
    grading = {
        "overall_score": 82,
        "segments": [{"name": "opening", "score": 90}, {"name": "discovery", "score": 74}],
        "talk_listen_ratio": 0.43,
        "objections_handled": ["timing"],
        "next_best_action": "Send the deck.",
    }
    return [
        {
            "id": f"evt_{run}_1",
            "type": "call.initiating",
            "created_at": t.at(0),
            "org_id": "org_demo",
            "data": {**data, "status": "dialing", "started_at": t.at(0)},
        },
        {
            "id": f"evt_{run}_2",
            "type": "call.in_progress",
            "created_at": t.at(6),
            "org_id": "org_demo",
            "data": {**data, "status": "in_progress", "answered_at": t.at(6)},
        },
        {
            "id": f"evt_{run}_3",
            "type": "call.completed",
            "created_at": t.at(318),
            "org_id": "org_demo",
            "data": done,
        },
        {
            "id": f"evt_{run}_4",
            "type": "call.transcript.ready",
            "created_at": t.at(330),
            "org_id": "org_demo",
            "data": {**done, "transcript": transcript},
        },
        {
            "id": f"evt_{run}_5",
            "type": "call.graded",
            "created_at": t.at(340),
            "org_id": "org_demo",
            "data": {**done, "grading": grading},
        },
    ]


ADAPTER = InboundAdapter(NAME, parse, {"scheme": "standard-webhooks"}, samples)

__all__: list[Any] = ["ADAPTER", "parse"]
