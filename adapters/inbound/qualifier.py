"""OpenAI-Realtime voice lead qualifier (seed 003): calls of the ``voice-lead-qualifier`` agent and verdicts.

Envelope: ``{"id", "event", "workspace_id", "created_at", "data": {...}}`` (design/vendors.md).
``call.started`` and ``call.ended`` carry ``data.call``; ``agent.run.completed`` carries the run (``run_id``,
``agent``, ``call_batch_id``, ``lead_id``, ``objective``), the call, and the structured ``verdict`` the seed
writes back to the lead's CRM record: qualified or not, a scheduled meeting, follow-up reasons.
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

NAME = "qualifier"

EVENTS = frozenset({"call.started", "call.ended", "agent.run.completed"})
OUTCOMES = frozenset({"qualified", "unqualified", "no_answer"})
DIRECTIONS: Mapping[str, Direction] = {"inbound": Direction.INBOUND, "outbound": Direction.OUTBOUND}

CALL_MAPPED = {
    "id", "direction", "from", "to", "started_at", "ended_at", "duration_seconds", "outcome",
    "recording_url", "summary", "transcript",
}  # fmt: skip
RUN_MAPPED = {"run_id", "agent", "call_batch_id", "lead_id", "objective", "call", "verdict"}


def _transcript(call: JSONObject, started: datetime | None) -> list[JSONObject]:
    segments = []
    for path, line in objects(call, "transcript", "data.call.transcript"):
        start_ms = integer(line, "at_ms", f"{path}.at_ms")
        segments.append(
            segment(
                text(line, "role", f"{path}.role"),
                text(line, "text", f"{path}.text"),
                start_ms=start_ms,
                at=at_offset(started, start_ms),
            )
        )
    return segments


def _flag(parent: JSONObject, key: str, path: str) -> bool | None:
    value = parent.get(key)
    if value is not None and not isinstance(value, bool):
        raise PayloadError(f"{path} must be a boolean", field=path)
    return value


def _qualification(data: JSONObject, outcome: str | None) -> JSONObject:
    """The verdict, with the run it came from. ``no_answer`` comes from the call: nobody to qualify."""
    verdict = obj(data, "verdict", "data.verdict")
    if not verdict:
        return {}
    qualified = _flag(verdict, "qualified", "data.verdict.qualified")
    if outcome == "no_answer":
        decision: str | None = "no_answer"
    elif qualified is None:
        decision = outcome if outcome in OUTCOMES else None
    else:
        decision = "qualified" if qualified else "unqualified"
    meeting = obj(verdict, "meeting", "data.verdict.meeting")
    reasons = arr(verdict, "follow_up_reasons", "data.verdict.follow_up_reasons")
    if not all(isinstance(r, str) for r in reasons):
        raise PayloadError(
            "data.verdict.follow_up_reasons must hold strings", field="data.verdict.follow_up_reasons"
        )
    return compact(
        {
            "verdict": decision,
            "meeting": compact(
                {
                    "scheduled": _flag(meeting, "scheduled", "data.verdict.meeting.scheduled"),
                    "starts_at": iso(timestamp(meeting, "starts_at", "data.verdict.meeting.starts_at")),
                    "calendar_event_id": text(
                        meeting, "calendar_event_id", "data.verdict.meeting.calendar_event_id"
                    ),
                }
            ),
            "follow_up_reasons": reasons,
            "objective": text(data, "objective", "data.objective"),
            "run_id": text(data, "run_id", "data.run_id"),
        }
    )


def parse(headers: Headers, body: bytes) -> ParsedEvent:
    envelope = load_object(body)
    event_type = text(envelope, "event", "event", required=True) or ""
    event_key = text(envelope, "id", "id") or headers.get("webhook-id") or body_sha256(body)
    occurred = timestamp(envelope, "created_at", "created_at")
    if event_type not in EVENTS:
        return parsed_event(event_key, event_type, occurred, known=False)
    data = obj(envelope, "data", "data", required=True)
    call = obj(data, "call", "data.call", required=True)
    call_id = text(call, "id", "data.call.id", required=True) or ""
    vendor_extra = {**extra(call, CALL_MAPPED), **extra(data, RUN_MAPPED, "run.")}
    if envelope.get("workspace_id") is not None:
        vendor_extra["workspace_id"] = envelope["workspace_id"]
    raw_direction = text(call, "direction", "data.call.direction")
    direction = DIRECTIONS.get(raw_direction.lower()) if raw_direction else None
    if raw_direction and direction is None:
        vendor_extra["unmapped_direction"] = raw_direction
    outcome = snake(text(call, "outcome", "data.call.outcome"))
    if outcome is not None and outcome not in OUTCOMES:
        vendor_extra["unmapped_outcome"] = outcome
    if event_type == "call.started":
        status = Status.IN_PROGRESS
    else:  # the call is over: a no-answer is the only outcome that is not a connected call
        status = Status.NO_ANSWER if outcome == "no_answer" else Status.COMPLETED
    started = timestamp(call, "started_at", "data.call.started_at")
    recording = text(call, "recording_url", "data.call.recording_url")
    qualification = compact(
        {**(_qualification(data, outcome) or {}), "summary": text(call, "summary", "data.call.summary")}
    )
    fields = compact(
        {
            "agent_id": text(data, "agent", "data.agent"),
            "campaign_id": text(data, "call_batch_id", "data.call_batch_id"),
            "contact_ref": text(data, "lead_id", "data.lead_id"),
            "direction": direction,
            "from_number": text(call, "from", "data.call.from"),
            "to_number": text(call, "to", "data.call.to"),
            "started_at": iso(started),
            "ended_at": iso(timestamp(call, "ended_at", "data.call.ended_at")),
            "duration_seconds": integer(call, "duration_seconds", "data.call.duration_seconds"),
            "outcome": outcome,
            "recording": {"available": True, "vendor_ref": recording, "url": recording}
            if recording
            else None,
            "transcript": _transcript(call, started),
            "qualification": qualification,
            "vendor_extra": vendor_extra,
        }
    )
    update = CallUpdate(vendor_call_id=call_id, status=status, fields=fields)
    return parsed_event(event_key, event_type, occurred, (update,))


def samples(run: str, start: datetime) -> list[JSONObject]:
    """One sample call as the vendor would send it (``callgate demo``): fresh ids, times from ``start``."""
    t = SampleTimes(start)
    call = {
        "id": f"rtc_{run}",
        "direction": "outbound",
        "from": "+14155551234",
        "to": "+14155550126",
        "started_at": t.at(0),
    }
    ended = {
        **call,
        "ended_at": t.at(245),
        "duration_seconds": 245,
        "outcome": "qualified",
        "recording_url": f"https://recordings.example.com/{run}.mp3",
        "summary": "Budget approved; demo booked.",
        "transcript": [
            {"role": "agent", "text": "Is now a good time?", "at_ms": 1200},
            {"role": "lead", "text": "Yes, go ahead.", "at_ms": 3900},
        ],
    }
    verdict = {
        "qualified": True,
        "meeting": {"scheduled": True, "starts_at": t.at(86400 * 3)},
        "follow_up_reasons": ["send_pricing"],
    }
    run_data = {
        "run_id": f"run_{run}",
        "agent": "voice-lead-qualifier",
        "call_batch_id": "cb_demo",
        "lead_id": f"lead_{run}",
        "objective": "qualify_for_demo",
    }
    return [
        {
            "id": f"evt_q_{run}_1",
            "event": "call.started",
            "workspace_id": "ws_demo",
            "created_at": t.at(0),
            "data": {"call": call},
        },
        {
            "id": f"evt_q_{run}_2",
            "event": "agent.run.completed",
            "workspace_id": "ws_demo",
            "created_at": t.at(250),
            "data": {**run_data, "call": ended, "verdict": verdict},
        },
    ]


ADAPTER = InboundAdapter(NAME, parse, {"scheme": "standard-webhooks"}, samples)

__all__: list[Any] = ["ADAPTER", "parse"]
