"""Agent platform ``/v1/calls`` API (seed 002): the richest call object, keyed by an integer ``call_id``.

Envelope: ``{"id", "event", "created_at", "call": <the seed's Call object>}`` (design/vendors.md), plus
``grade`` on ``call.graded``, ``transcript`` on ``call.transcript_ready`` and ``issue_report`` on
``issue_report.created``. ``status`` is only in_progress/completed/failed; ``end_reason`` says what kind of
failure (a no-answer is ``status: failed, end_reason: no_answer``). ``mic`` and ``widget`` are browser
sessions, and a mic session's ``from_number`` is an internal identifier, not a phone number.
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
from gateway.model import TERMINAL, CallUpdate, Direction, Status

NAME = "callsv1"

EVENTS = frozenset(
    {"call.started", "call.ended", "call.graded", "call.transcript_ready", "issue_report.created"}
)
STATUSES: Mapping[str, Status] = {
    "in_progress": Status.IN_PROGRESS,
    "completed": Status.COMPLETED,
    "failed": Status.FAILED,
}
# ``end_reason`` values that say more than "failed"/"completed". Free-form per the seed, so only the
# reasons that name a canonical status refine it; every other reason is kept as the call's end_reason.
REFINED: Mapping[str, Status] = {
    "no_answer": Status.NO_ANSWER,
    "not_answered": Status.NO_ANSWER,
    "busy": Status.BUSY,
    "line_busy": Status.BUSY,
    "canceled": Status.CANCELED,
    "cancelled": Status.CANCELED,
}
DIRECTIONS: Mapping[str, Direction] = {
    "inbound": Direction.INBOUND,
    "outbound": Direction.OUTBOUND,
    "mic": Direction.WEB,
    "widget": Direction.WEB,
}
SEVERITIES = frozenset({"info", "warning", "critical"})

MAPPED = {
    "call_id", "agent_id", "direction", "from_number", "to_number", "start_time", "end_time",
    "duration_seconds", "status", "end_reason", "recording_url", "is_test_call", "billable_minutes",
    "billing_total_cents", "billed_at", "grade_score", "grade_status", "grade_updated_at",
}  # fmt: skip


def _score(parent: JSONObject, key: str, path: str) -> float | None:
    score = number(parent, key, path)
    if score is not None and not 0 <= score <= 1:
        raise PayloadError(f"{path} must be 0.0-1.0", field=path)
    return score


def _grade(envelope: JSONObject, call: JSONObject) -> JSONObject | None:
    graded = obj(envelope, "grade", "grade")
    score = _score(call, "grade_score", "call.grade_score")
    if score is None:
        score = _score(graded, "score", "grade.score")
    criteria = arr(graded, "criteria", "grade.criteria")
    return compact(
        {
            "score": score,
            "status": snake(text(call, "grade_status", "call.grade_status")),
            "summary": text(graded, "summary", "grade.summary"),
            "graded_at": iso(timestamp(call, "grade_updated_at", "call.grade_updated_at")),
            "details": compact({"criteria": criteria, **extra(graded, {"score", "summary", "criteria"})}),
        }
    )


def _transcript(envelope: JSONObject, started: datetime | None) -> list[JSONObject]:
    segments = []
    for path, line in objects(envelope, "transcript", "transcript"):
        start_ms = integer(line, "start_ms", f"{path}.start_ms")
        content_type = text(line, "content_type", f"{path}.content_type")
        segments.append(
            segment(
                text(line, "role", f"{path}.role"),
                text(line, "content", f"{path}.content"),
                start_ms=start_ms,
                end_ms=integer(line, "end_ms", f"{path}.end_ms"),
                at=at_offset(started, start_ms),
                # speech is the default; function calls and their results say what they are
                content_type=content_type if content_type and content_type != "text" else None,
            )
        )
    return segments


def _issues(envelope: JSONObject) -> list[JSONObject]:
    report = obj(envelope, "issue_report", "issue_report")
    if not report:
        return []
    severity = snake(text(report, "severity", "issue_report.severity"))
    if severity not in SEVERITIES:
        raise PayloadError(
            "issue_report.severity must be info, warning or critical", field="issue_report.severity"
        )
    issue = compact(
        {
            "id": text(report, "id", "issue_report.id", required=True),
            "title": text(report, "title", "issue_report.title"),
            "severity": severity,
            "description": text(report, "description", "issue_report.description"),
            "created_at": iso(timestamp(report, "created_at", "issue_report.created_at")),
        }
    )
    return [issue]


def _status(event_type: str, raw: str | None, reason: str | None, extras: JSONObject) -> Status | None:
    status = STATUSES.get(raw) if raw else None
    if raw and status is None:
        extras["unmapped_status"] = raw
    if status is None:
        status = {"call.started": Status.IN_PROGRESS, "call.ended": Status.COMPLETED}.get(event_type)
    if status in TERMINAL and reason is not None and reason in REFINED:
        status = REFINED[reason]
    return status


def parse(headers: Headers, body: bytes) -> ParsedEvent:
    envelope = load_object(body)
    event_type = text(envelope, "event", "event", required=True) or ""
    event_key = text(envelope, "id", "id") or headers.get("webhook-id") or body_sha256(body)
    occurred = timestamp(envelope, "created_at", "created_at")
    if event_type not in EVENTS:
        return parsed_event(event_key, event_type, occurred, known=False)
    call = obj(envelope, "call", "call", required=True)
    call_id = text(call, "call_id", "call.call_id", required=True) or ""
    vendor_extra = extra(call, MAPPED)
    raw_direction = text(call, "direction", "call.direction")
    direction = DIRECTIONS.get(raw_direction.lower()) if raw_direction else None
    if raw_direction and direction is None:
        vendor_extra["unmapped_direction"] = raw_direction
    if raw_direction in ("mic", "widget"):
        vendor_extra["session_kind"] = raw_direction
    from_number = text(call, "from_number", "call.from_number")
    to_number = text(call, "to_number", "call.to_number")
    if direction is Direction.WEB:
        # a mic session's from_number is an internal identifier: kept, never read as a phone number
        vendor_extra.update(compact({"from_number": from_number, "to_number": to_number}))
        from_number = to_number = None
    reason = snake(text(call, "end_reason", "call.end_reason"))
    status = _status(event_type, text(call, "status", "call.status"), reason, vendor_extra)
    started = timestamp(call, "start_time", "call.start_time")
    recording = text(call, "recording_url", "call.recording_url")
    is_test = call.get("is_test_call")
    if is_test is not None and not isinstance(is_test, bool):
        raise PayloadError("call.is_test_call must be a boolean", field="call.is_test_call")
    fields = compact(
        {
            "agent_id": text(call, "agent_id", "call.agent_id"),
            "direction": direction,
            "from_number": from_number,
            "to_number": to_number,
            "started_at": iso(started),
            "ended_at": iso(timestamp(call, "end_time", "call.end_time")),
            "duration_seconds": integer(call, "duration_seconds", "call.duration_seconds"),
            "end_reason": reason,
            "outcome": "voicemail" if reason == "voicemail" else None,
            # an internal GCS path, not a playable URL (the seed's /audio endpoint signs one on demand)
            "recording": {"available": True, "vendor_ref": recording} if recording else None,
            "is_test": is_test,
            "billing": compact(
                {
                    "billable_minutes": integer(call, "billable_minutes", "call.billable_minutes"),
                    "total_cents": integer(call, "billing_total_cents", "call.billing_total_cents"),
                    "billed_at": iso(timestamp(call, "billed_at", "call.billed_at")),
                }
            ),
            "grade": _grade(envelope, call),
            "transcript": _transcript(envelope, started),
            "issues": _issues(envelope),
            "vendor_extra": vendor_extra,
        }
    )
    update = CallUpdate(vendor_call_id=call_id, status=status, fields=fields)
    return parsed_event(event_key, event_type, occurred, (update,))


def samples(run: str, start: datetime) -> list[JSONObject]:
    """One sample call as the vendor would send it (``callgate demo``): fresh ids, times from ``start``."""
    t = SampleTimes(start)
    call_id = int(run[:8], 16)
    call = {
        "call_id": call_id,
        "agent_id": 14,
        "direction": "inbound",
        "from_number": "+14155550125",
        "to_number": "+14155551234",
        "start_time": t.at(0),
        "end_time": None,
        "duration_seconds": None,
        "status": "in_progress",
        "end_reason": None,
        "recording_url": None,
        "is_test_call": False,
        "product": "support",
        "voice": "alloy",
        "grade_score": None,
        "grade_status": None,
        "issue_count": 0,
        "critical_issue_count": 0,
    }
    ended = {
        **call,
        "end_time": t.at(200),
        "duration_seconds": 200,
        "status": "completed",
        "end_reason": "caller_hangup",
        "recording_url": f"gs://calls/{call_id}.mp3",
        "billable_minutes": 4,
        "billing_total_cents": 56,
        "billed_at": t.at(210),
        "grade_status": "pending",
    }
    graded = {**ended, "grade_score": 0.91, "grade_status": "completed", "grade_updated_at": t.at(240)}
    transcript = [
        {
            "role": "assistant",
            "content_type": "text",
            "content": "Acme support, how can I help?",
            "start_ms": 300,
            "end_ms": 2100,
        },
        {
            "role": "user",
            "content_type": "text",
            "content": "Where is my order?",
            "start_ms": 2600,
            "end_ms": 3900,
        },
        {
            "role": "tool_call",
            "content_type": "function",
            "content": "lookup_order()",
            "start_ms": 4200,
            "end_ms": 4200,
        },
        {
            "role": "assistant",
            "content_type": "text",
            "content": "It arrives tomorrow.",
            "start_ms": 5200,
            "end_ms": 6800,
        },
    ]
    return [
        {"id": f"whevt_{run}_1", "event": "call.started", "created_at": t.at(0), "call": call},
        {"id": f"whevt_{run}_2", "event": "call.ended", "created_at": t.at(200), "call": ended},
        {
            "id": f"whevt_{run}_3",
            "event": "call.transcript_ready",
            "created_at": t.at(220),
            "call": ended,
            "transcript": transcript,
        },
        {
            "id": f"whevt_{run}_4",
            "event": "call.graded",
            "created_at": t.at(240),
            "call": graded,
            "grade": {
                "score": 0.91,
                "summary": "Quick, correct answer.",
                "criteria": [{"name": "resolution", "score": 1.0}],
            },
        },
        {
            "id": f"whevt_{run}_5",
            "event": "issue_report.created",
            "created_at": t.at(260),
            "call": {**graded, "issue_count": 1},
            "issue_report": {"id": f"ir_{run}", "title": "No order number confirmed", "severity": "info"},
        },
    ]


ADAPTER = InboundAdapter(NAME, parse, {"scheme": "standard-webhooks"}, samples)

__all__: list[Any] = ["ADAPTER", "parse"]
