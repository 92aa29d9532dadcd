"""camelCase Voice Calls API (seed 004): ``vc_…`` calls with PascalCase states and an EPA survey.

Envelope: ``{"eventId", "eventType", "occurredAt", "data": <the seed's voice call object>}``. Every event
carries the full object; ``EpaCompleted`` may carry only ``id`` and ``epaResults``.
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
    at_offset,
    body_sha256,
    compact,
    extra,
    integer,
    iso,
    load_object,
    number,
    obj,
    objects,
    parsed_event,
    segment,
    snake,
    text,
    timestamp,
)
from gateway.errors import PayloadError
from gateway.model import CallUpdate, Direction, Status

NAME = "voicecalls"

EVENT_TYPES = frozenset({"VoiceCallCreated", "VoiceCallUpdated", "VoiceCallCompleted", "EpaCompleted"})
STATES: Mapping[str, Status] = {
    "Queued": Status.QUEUED,
    "Ringing": Status.RINGING,
    "InProgress": Status.IN_PROGRESS,
    "Completed": Status.COMPLETED,
    "Busy": Status.BUSY,
    "NoAnswer": Status.NO_ANSWER,
    "Failed": Status.FAILED,
    "Canceled": Status.CANCELED,
}
DIRECTIONS: Mapping[str, Direction] = {"Inbound": Direction.INBOUND, "Outbound": Direction.OUTBOUND}

MAPPED = {
    "id", "campaignId", "direction", "state", "startTime", "endTime", "durationSeconds",
    "talkTimeSeconds", "outcome", "transcript", "epaResults",
}  # fmt: skip


def _offset_ms(raw: str | None, path: str) -> int | None:
    """``HH:MM:SS`` (or ``MM:SS``, optional fraction) from the call start, in milliseconds."""
    if raw is None:
        return None
    parts = raw.split(":")
    try:
        if not 2 <= len(parts) <= 3 or any(p.strip() == "" for p in parts):
            raise ValueError
        numbers = [float(p) for p in parts]
    except ValueError:
        raise PayloadError(f"{path} must be an HH:MM:SS offset", field=path) from None
    while len(numbers) < 3:
        numbers.insert(0, 0.0)
    hours, minutes, seconds = numbers
    if min(numbers) < 0 or minutes >= 60 or seconds >= 60:
        raise PayloadError(f"{path} must be an HH:MM:SS offset", field=path)
    return round((hours * 3600 + minutes * 60 + seconds) * 1000)


def _transcript(data: JSONObject) -> list[JSONObject]:
    started = timestamp(data, "startTime", "data.startTime")
    segments = []
    for path, line in objects(data, "transcript", "data.transcript"):
        start_ms = _offset_ms(text(line, "timestamp", f"{path}.timestamp"), f"{path}.timestamp")
        segments.append(
            segment(
                text(line, "role", f"{path}.role"),
                text(line, "text", f"{path}.text"),
                start_ms=start_ms,
                at=at_offset(started, start_ms),
            )
        )
    return segments


def _survey(data: JSONObject) -> JSONObject | None:
    epa = obj(data, "epaResults", "data.epaResults")
    if not epa:
        return None
    responses = arr(epa, "responses", "data.epaResults.responses")
    if not all(isinstance(r, dict) for r in responses):
        raise PayloadError("data.epaResults.responses must hold objects", field="data.epaResults.responses")
    return compact(
        {
            "state": snake(text(epa, "state", "data.epaResults.state")),
            "completion_reason": snake(text(epa, "completionReason", "data.epaResults.completionReason")),
            "total_questions": integer(epa, "totalQuestions", "data.epaResults.totalQuestions"),
            "answered": integer(epa, "questionsAnswered", "data.epaResults.questionsAnswered"),
            "score": number(epa, "calculatedScore", "data.epaResults.calculatedScore"),
            "responses": responses,
        }
    )


def parse(headers: Headers, body: bytes) -> ParsedEvent:
    envelope = load_object(body)
    event_type = text(envelope, "eventType", "eventType", required=True) or ""
    event_key = text(envelope, "eventId", "eventId") or body_sha256(body)
    occurred = timestamp(envelope, "occurredAt", "occurredAt")
    if event_type not in EVENT_TYPES:
        return parsed_event(event_key, event_type, occurred, known=False)
    data = obj(envelope, "data", "data", required=True)
    call_id = text(data, "id", "data.id", required=True)
    vendor_extra = extra(data, MAPPED)
    raw_state = text(data, "state", "data.state")
    status = STATES.get(raw_state) if raw_state else None
    if raw_state and status is None:
        vendor_extra["unmapped_state"] = raw_state
    if status is None and event_type == "VoiceCallCompleted":
        status = Status.COMPLETED
    raw_direction = text(data, "direction", "data.direction")
    direction = DIRECTIONS.get(raw_direction) if raw_direction else None
    if raw_direction and direction is None:
        vendor_extra["unmapped_direction"] = raw_direction
    fields = compact(
        {
            "campaign_id": text(data, "campaignId", "data.campaignId"),
            "direction": direction,
            "started_at": iso(timestamp(data, "startTime", "data.startTime")),
            "ended_at": iso(timestamp(data, "endTime", "data.endTime")),
            "duration_seconds": integer(data, "durationSeconds", "data.durationSeconds"),
            "talk_time_seconds": integer(data, "talkTimeSeconds", "data.talkTimeSeconds"),
            "outcome": snake(text(data, "outcome", "data.outcome")),
            "transcript": _transcript(data),
            "survey": _survey(data),
            "vendor_extra": vendor_extra,
        }
    )
    update = CallUpdate(vendor_call_id=call_id, status=status, fields=fields)
    return parsed_event(event_key, event_type, occurred, (update,))


def samples(run: str, start: datetime) -> list[JSONObject]:
    """One sample call as the vendor would send it (``callgate demo``): fresh ids, times from ``start``."""
    t = SampleTimes(start)
    call = {"id": f"vc_{run}", "campaignId": "camp_demo", "direction": "Inbound", "createdAt": t.at(0)}
    done = {
        **call,
        "state": "Completed",
        "startTime": t.at(0),
        "endTime": t.at(180),
        "durationSeconds": 180,
        "talkTimeSeconds": 171,
        "outcome": "Successful",
        "transcript": [
            {"role": "agent", "text": "Thanks for calling.", "timestamp": "00:00:01"},
            {"role": "customer", "text": "Happy to help with the survey.", "timestamp": "00:00:04"},
        ],
    }
    epa = {
        "id": f"vc_{run}",
        "epaResults": {
            "state": "Completed",
            "completionReason": "AllAnswered",
            "totalQuestions": 2,
            "questionsAnswered": 2,
            "calculatedScore": 92.5,
            "responses": [{"question": "How satisfied are you?", "answer": "Very", "score": 5}],
        },
    }
    return [
        {
            "eventId": f"{run}-1",
            "eventType": "VoiceCallCreated",
            "occurredAt": t.at(0),
            "data": {**call, "state": "Ringing"},
        },
        {"eventId": f"{run}-2", "eventType": "VoiceCallCompleted", "occurredAt": t.at(181), "data": done},
        {"eventId": f"{run}-3", "eventType": "EpaCompleted", "occurredAt": t.at(240), "data": epa},
    ]


ADAPTER = InboundAdapter(
    NAME,
    parse,
    {"scheme": "hmac", "signature_header": "x-signature", "timestamp_header": None, "template": "{body}",
     "algorithm": "sha256", "encoding": "base64"},
    samples,
)  # fmt: skip

__all__: list[Any] = ["ADAPTER", "parse"]
