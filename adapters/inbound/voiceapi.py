"""LiveKit-based Voice API (seed 001): the six ``call.*`` lifecycle events of one voice session.

Envelope: ``{"event", "event_id", "session_id", "timestamp", "data": {...}}`` (design/vendors.md). ``data``
holds the fields of the seed's dial request (``agent_id``, ``direction``, ``to_number``, ``from_number``,
``context``, ``max_duration``, ``recording``, ``scheduled_at``); ``call.completed`` adds ``duration``,
``end_reason`` and ``recording_id``; ``call.failed`` adds ``error``. A browser (WebRTC) session from
``POST /voice/start`` has ``direction: "web"`` and no numbers.

The event names are the only status signal, and each event's ``timestamp`` is the moment it describes:
``call.initiating`` starts the call, ``call.in_progress`` answers it, a terminal event ends it.
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
    body_sha256,
    compact,
    extra,
    integer,
    iso,
    load_object,
    obj,
    parsed_event,
    snake,
    text,
    timestamp,
)
from gateway.model import TERMINAL, CallUpdate, Direction, Status

NAME = "voiceapi"

EVENTS: Mapping[str, Status] = {
    "call.initiating": Status.INITIATING,
    "call.ringing": Status.RINGING,
    "call.in_progress": Status.IN_PROGRESS,
    "call.completed": Status.COMPLETED,
    "call.failed": Status.FAILED,
    "call.no_answer": Status.NO_ANSWER,
}
DIRECTIONS: Mapping[str, Direction] = {
    "inbound": Direction.INBOUND,
    "outbound": Direction.OUTBOUND,
    "web": Direction.WEB,
    "webrtc": Direction.WEB,
}

MAPPED = {
    "agent_id", "direction", "to_number", "from_number", "duration", "end_reason", "recording_id", "error",
}  # fmt: skip


def _error(data: JSONObject) -> tuple[str | None, Any]:
    """``error`` is a message or an object with a code; its code (or message) is the end reason."""
    error = data.get("error")
    if isinstance(error, dict):
        code = error.get("code") or error.get("type")
        return (snake(str(code)) if code is not None else None), error
    if isinstance(error, str | int | float):
        return None, str(error)
    return None, None


def parse(headers: Headers, body: bytes) -> ParsedEvent:
    envelope = load_object(body)
    event_type = text(envelope, "event", "event", required=True) or ""
    event_key = text(envelope, "event_id", "event_id") or body_sha256(body)
    occurred = timestamp(envelope, "timestamp", "timestamp")
    status = EVENTS.get(event_type)
    if status is None:
        return parsed_event(event_key, event_type, occurred, known=False)
    session = text(envelope, "session_id", "session_id", required=True) or ""
    data = obj(envelope, "data", "data")
    vendor_extra = extra(data, MAPPED)
    raw_direction = text(data, "direction", "data.direction")
    direction = DIRECTIONS.get(raw_direction.lower()) if raw_direction else None
    if raw_direction and direction is None:
        vendor_extra["unmapped_direction"] = raw_direction
    error_code, error = _error(data)
    if error is not None:
        vendor_extra["error"] = error
    at = iso(occurred)
    recording_id = text(data, "recording_id", "data.recording_id")
    fields = compact(
        {
            "agent_id": text(data, "agent_id", "data.agent_id"),
            "direction": direction,
            "from_number": text(data, "from_number", "data.from_number"),
            "to_number": text(data, "to_number", "data.to_number"),
            "started_at": at if status is Status.INITIATING else None,
            "answered_at": at if status is Status.IN_PROGRESS else None,
            "ended_at": at if status in TERMINAL else None,
            "duration_seconds": integer(data, "duration", "data.duration"),
            "end_reason": snake(text(data, "end_reason", "data.end_reason")) or error_code,
            # The seed's recording endpoint takes the id; no URL arrives in the webhook.
            "recording": {"available": True, "vendor_ref": recording_id} if recording_id else None,
            "vendor_extra": vendor_extra,
        }
    )
    update = CallUpdate(vendor_call_id=session, status=status, fields=fields)
    return parsed_event(event_key, event_type, occurred, (update,))


def samples(run: str, start: datetime) -> list[JSONObject]:
    """One sample call as the vendor would send it (``callgate demo``): fresh ids, times from ``start``."""
    t = SampleTimes(start)
    data = {
        "agent_id": "agt_reminders",
        "direction": "outbound",
        "to_number": "+14155550124",
        "from_number": "+14155551234",
        "context": {"patient": "Jane Doe"},
        "max_duration": 600,
        "recording": True,
    }
    events = [
        ("call.initiating", 0, {}),
        ("call.ringing", 3, {}),
        ("call.in_progress", 9, {}),
        (
            "call.completed",
            250,
            {"duration": 241, "end_reason": "agent_hangup", "recording_id": f"rec_{run}"},
        ),
    ]
    return [
        {
            "event": name,
            "event_id": f"ve_{run}_{i}",
            "session_id": f"vs_{run}",
            "timestamp": t.at(at),
            "data": {**data, **more},
        }
        for i, (name, at, more) in enumerate(events)
    ]


# hmac with x-signature over "{timestamp}.{body}" (x-timestamp), hex: the HmacConfig defaults.
ADAPTER = InboundAdapter(NAME, parse, {"scheme": "hmac"}, samples)

__all__: list[Any] = ["ADAPTER", "parse"]
