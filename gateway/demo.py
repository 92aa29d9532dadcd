"""``callgate demo``: sample calls from all six vendors, signed and sent to a running gateway.

It is a client of the public API, nothing more: it creates one source per vendor under the API key's
tenant (``POST /v1/sources``), signs each sample the way that source's verification expects, posts it to
``/hooks/{source_id}`` and reads the resulting calls back from ``/v1/calls``. Every run uses fresh ids and
the current time, so each run adds six new calls.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from livekit.api import AccessToken

from gateway.errors import CallgateError
from gateway.signing import HmacConfig, sign_hmac, sign_standard_webhooks

JSON = dict[str, Any]


def signed_headers(source: Mapping[str, Any], body: bytes, now: int | None = None) -> dict[str, str]:
    """Headers a vendor would send for ``body`` to ``source`` (a ``POST /v1/sources`` response, which
    holds the generated secret and, for LiveKit, the API key)."""
    verification: Mapping[str, Any] = source["verification"]
    secret = str(source.get("secret") or "")
    if not secret:
        raise CallgateError("the source has no generated secret: sign with the secret you configured")
    now = int(time.time()) if now is None else now
    scheme = verification["scheme"]
    headers = {"content-type": "application/json"}
    if scheme == "standard-webhooks":
        msg_id = f"msg_{secrets.token_hex(12)}"
        headers |= {"webhook-id": msg_id, "webhook-timestamp": str(now)}
        headers["webhook-signature"] = sign_standard_webhooks(secret, msg_id, now, body)
    elif scheme == "hmac":
        config = HmacConfig.model_validate({**verification, "secrets": [secret]})
        stamp = str(now) if config.timestamp_header else None
        if config.timestamp_header and stamp:
            headers[config.timestamp_header] = stamp
        headers[config.signature_header] = sign_hmac(config, secret, body, stamp)
    elif scheme == "livekit":
        digest = base64.b64encode(hashlib.sha256(body).digest()).decode()
        token = AccessToken(str(source["api_key"]), secret).with_sha256(digest).to_jwt()
        headers |= {"authorization": token, "content-type": "application/webhook+json"}
    else:
        headers["authorization"] = f"Bearer {secret}"
    return headers


# --- the samples: each vendor's own shapes (design/vendors.md), fresh ids, times around now ----------


@dataclass(frozen=True, slots=True)
class SampleTimes:
    start: datetime

    def at(self, seconds: float) -> str:
        return (self.start + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")

    def unix(self, seconds: float) -> int:
        return int((self.start + timedelta(seconds=seconds)).timestamp())


def _graph8(run: str, t: SampleTimes) -> list[JSON]:
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


def _voiceapi(run: str, t: SampleTimes) -> list[JSON]:
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


def _callsv1(run: str, t: SampleTimes) -> list[JSON]:
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


def _qualifier(run: str, t: SampleTimes) -> list[JSON]:
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


def _voicecalls(run: str, t: SampleTimes) -> list[JSON]:
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


def _livekit(run: str, t: SampleTimes) -> list[JSON]:
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


SAMPLES: Mapping[str, Callable[[str, SampleTimes], list[JSON]]] = {
    "graph8": _graph8,
    "voiceapi": _voiceapi,
    "callsv1": _callsv1,
    "qualifier": _qualifier,
    "voicecalls": _voicecalls,
    "livekit": _livekit,
}


def samples(vendor: str, run: str, start: datetime) -> list[bytes]:
    return [json.dumps(doc).encode() for doc in SAMPLES[vendor](run, SampleTimes(start))]


# --- the run ------------------------------------------------------------------------------------------


def _check(response: httpx.Response, what: str) -> JSON:
    if response.status_code >= 400:
        try:
            message = response.json()["error"]["message"]
        except (ValueError, KeyError, TypeError):
            message = response.text[:200]
        raise CallgateError(f"{what}: HTTP {response.status_code}: {message}")
    body: JSON = response.json()
    return body


def run_demo(client: httpx.Client, *, vendors: list[str] | None = None) -> JSON:
    """Creates a source per vendor, sends its samples, returns ``{"sources", "webhooks", "calls"}``."""
    run = secrets.token_hex(6)
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=10)
    sources: list[JSON] = []
    webhooks: list[JSON] = []
    calls: list[JSON] = []
    for vendor in vendors or list(SAMPLES):
        source = _check(
            client.post("/v1/sources", json={"name": f"demo {vendor}", "vendor": vendor}),
            f"creating a {vendor} source",
        )
        sources.append({"id": source["id"], "vendor": vendor, "hook_url": source["hook_url"]})
        for body in samples(vendor, run, start):
            response = client.post(
                f"/hooks/{source['id']}", content=body, headers=signed_headers(source, body)
            )
            _check(response, f"sending a {vendor} webhook")
            webhooks.append({"vendor": vendor, "status": response.status_code})
        listed = _check(client.get("/v1/calls", params={"vendor": vendor, "limit": 100}), "listing calls")
        calls.extend(c for c in listed["data"] if c["source_id"] == source["id"])
    return {"run": run, "sources": sources, "webhooks": webhooks, "calls": calls}


def summary_lines(result: JSON) -> list[str]:
    lines = [f"sent {len(result['webhooks'])} signed webhooks to {len(result['sources'])} new sources", ""]
    lines.append(f"{'vendor':<11} {'call':<32} {'status':<10} {'direction':<9} {'outcome':<15} carries")
    for call in result["calls"]:
        carries = [
            name
            for name in ("transcript", "grade", "survey", "qualification", "recording", "billing", "issues")
            if call.get(name)
        ]
        lines.append(
            f"{call['vendor']:<11} {call['id']:<32} {call.get('status') or '-':<10} "
            f"{call.get('direction') or '-':<9} {call.get('outcome') or '-':<15} {', '.join(carries)}"
        )
    return lines
