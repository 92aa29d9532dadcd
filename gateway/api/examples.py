"""Examples for the OpenAPI document, from the answers shown in docs/api.md (with one consistent set of
ids). Shared by the response models; ``tests/api/test_schemas.py`` holds each to its model."""

from __future__ import annotations

from typing import Any

CALL_EXAMPLE: dict[str, Any] = {
    "id": "call_01M81YK4FMWDPGDHPRF31W42B2",
    "tenant_id": "ten_01M81YMTM8Z2MHSQ3MDFNGVF0C",
    "source_id": "src_01M81YJ2N6XWZ8Q4C9V3B5T7RE",
    "vendor": "graph8",
    "vendor_call_id": "rm_5028106_1716647400",
    "vendor_session_id": "ses_abc123",
    "campaign_id": "cmp_q3_outbound",
    "agent_id": "ag_default",
    "contact_ref": "5028106",
    "user_email": "sdr@acme.com",
    "direction": "outbound",
    "status": "completed",
    "from_number": "+14155551234",
    "to_number": "+14155550123",
    "started_at": "2026-05-25T14:30:00.000000Z",
    "answered_at": "2026-05-25T14:30:25.000000Z",
    "ended_at": "2026-05-25T14:35:12.000000Z",
    "duration_seconds": 312,
    "talk_time_seconds": 287,
    "end_reason": None,
    "outcome": "meeting_booked",
    "recording": None,
    "transcript": [{"speaker": "agent", "text": "Hi, this is Sam from Acme.", "start_ms": 0, "end_ms": 1800}],
    "grade": {"score": 0.82, "status": "completed", "summary": "Booked a demo."},
    "survey": None,
    "qualification": None,
    "billing": {"credits": 120.0},
    "issues": [],
    "is_test": False,
    "vendor_extra": {"list_id": 637, "org_id": "org_123"},
    "version": 4,
    "created_at": "2026-05-25T14:30:01.120000Z",
    "updated_at": "2026-05-25T14:35:13.004000Z",
}

SOURCE_EXAMPLE: dict[str, Any] = {
    "id": "src_01M81YJ2N6XWZ8Q4C9V3B5T7RE",
    "name": "prod livekit",
    "vendor": "livekit",
    "enabled": True,
    "hook_url": "http://127.0.0.1:8080/hooks/src_01M81YJ2N6XWZ8Q4C9V3B5T7RE",
    "verification": {"scheme": "livekit", "keys": {"APIa218b2f6e2da": "…qp6k"}, "leeway_seconds": 60},
    "pull": None,
    "created_at": "2026-11-22T15:39:01.000000Z",
    "updated_at": "2026-11-22T15:39:01.000000Z",
}

SUBSCRIPTION_EXAMPLE: dict[str, Any] = {
    "id": "sub_01M81YJVDR2JNZ0F4HVHAP5BQH",
    "url": "https://crm-bridge.example.com/hook",
    "description": "CRM bridge",
    "event_types": ["call.completed", "call.graded"],
    "enabled": True,
    "disabled_reason": None,
    "rate_limit_per_second": None,
    "max_concurrency": 4,
    "failing_since": None,
    "secrets_active": 1,
    "created_at": "2026-11-22T15:39:19.352712Z",
    "updated_at": "2026-11-22T15:39:19.352712Z",
}

DELIVERY_EXAMPLE: dict[str, Any] = {
    "id": "msg_01M81YK4G7RJ7EM6PJ9F77YBQ7",
    "subscription_id": "sub_01M81YJVDR2JNZ0F4HVHAP5BQH",
    "connection_id": None,
    "call_id": "call_01M81YK4FMWDPGDHPRF31W42B2",
    "event_type": "call.completed",
    "call_version": 2,
    "status": "succeeded",
    "attempts": 1,
    "next_attempt_at": None,
    "last_status_code": 204,
    "last_error": None,
    "created_at": "2026-11-22T15:39:28.645758Z",
    "completed_at": "2026-11-22T15:39:28.660393Z",
}

ATTEMPT_EXAMPLE: dict[str, Any] = {
    "id": "att_01M81YK8WG624CVE23YP457SGS",
    "attempted_at": "2026-11-22T15:39:33.126153Z",
    "status_code": 500,
    "latency_ms": 10,
    "error": None,
    "response_body": '{"error":"down"}',
    "next_attempt_at": "2026-11-22T15:39:34.036113Z",
}

CONNECTION_EXAMPLE: dict[str, Any] = {
    "id": "con_01M81YMCR9SBCCVJ79M6PZNJXQ",
    "kind": "hubspot",
    "name": "hubspot connection",
    "base_url": "https://api.hubapi.com",
    "options": {
        "call_id_property": "callgate_call_id",
        "owner_id": None,
        "match_contacts": True,
        "statuses": ["completed", "failed", "no_answer", "busy", "canceled"],
    },
    "enabled": True,
    "state": "active",
    "paused_until": None,
    "last_error": None,
    "created_at": "2026-11-22T15:40:09.865368Z",
    "updated_at": "2026-11-22T15:40:09.865368Z",
}

QUARANTINED_EXAMPLE: dict[str, Any] = {
    "id": "qua_01M81YZ3EA1E49E88SB3YR4DDK",
    "source_id": "src_01M81YJ2N6XWZ8Q4C9V3B5T7RE",
    "vendor": "graph8",
    "error": "body is not a JSON object",
    "received_at": "2026-11-22T15:46:00.777984Z",
    "resolved_at": None,
    "status": "open",
    "size": 9,
}

ERROR_ENVELOPE_EXAMPLE: dict[str, Any] = {
    "error": {
        "code": "validation_error",
        "message": "limit must be 1-200",
        "field": "limit",
        "request_id": "req_01M81YZ3EA1E49E88SB3YR4DDK",
    }
}

TIMELINE_ENTRY_EXAMPLE: dict[str, Any] = {
    "id": "cev_01M81YK4FQ0V8Y5S4T1B3N6M2K",
    "raw_event_id": "evt_01M81YK4FA6C8D2E4F6G8H0J2K",
    "event_type": "call.completed",
    "types": ["call.completed"],
    "changed": ["ended_at", "status"],
    "status": "completed",
    "previous_status": "in_progress",
    "version": 4,
    "occurred_at": "2026-05-25T14:35:12.000000Z",
    "received_at": "2026-05-25T14:35:13.004000Z",
}

CHANGED_CALL: dict[str, Any] = {"id": CALL_EXAMPLE["id"], "version": 3, "status": "completed"}
HOOK_ACCEPTED_EXAMPLE: dict[str, Any] = {
    "status": "accepted",
    "event_id": TIMELINE_ENTRY_EXAMPLE["raw_event_id"],
    "calls": [CHANGED_CALL],
}

SOURCE_CREATED_EXAMPLE: dict[str, Any] = {
    **SOURCE_EXAMPLE,
    "secret": "X1kDvx-2b8Zq-qp6k",
    "api_key": "APIa218b2f6e2da",
}

SUBSCRIPTION_WITH_SECRET_EXAMPLE: dict[str, Any] = {
    **SUBSCRIPTION_EXAMPLE,
    "secret": "whsec_Cmbgui8nAdnKcgsc06H3L+NHm82G0vzpz3IZCcAI99A=",
}

DELIVERY_DETAIL_EXAMPLE: dict[str, Any] = {
    **DELIVERY_EXAMPLE,
    "payload": {
        "type": "call.completed",
        "timestamp": "2026-11-22T15:39:28.645Z",
        "data": {"call": CALL_EXAMPLE, "version": 2, "previous_status": "in_progress", "changed": ["status"]},
    },
    "attempts_log": [ATTEMPT_EXAMPLE],
}

CONNECTION_DETAIL_EXAMPLE: dict[str, Any] = {**CONNECTION_EXAMPLE, "synced_calls": 6}

CONNECTION_CHECK_EXAMPLE_1: dict[str, Any] = {"ok": True}
CONNECTION_CHECK_EXAMPLE_2: dict[str, Any] = {
    "ok": False,
    "error": {"code": "auth_failed", "message": "401 Unauthorized", "status_code": 401},
}

QUARANTINED_WHOLE_EXAMPLE: dict[str, Any] = {
    **QUARANTINED_EXAMPLE,
    "body": "not json!",
    "body_encoding": "utf-8",
    "headers": {"content-type": "application/json", "webhook-id": "msg_2Lh0"},
}

REPLAYED_EXAMPLE_1: dict[str, Any] = {
    "id": QUARANTINED_EXAMPLE["id"],
    "status": "recovered",
    "calls": [{**CHANGED_CALL, "version": 2}],
}
REPLAYED_EXAMPLE_2: dict[str, Any] = {
    "id": QUARANTINED_EXAMPLE["id"],
    "status": "unreadable",
    "error": "body is not a JSON object",
}

TENANT_CREATED_EXAMPLE: dict[str, Any] = {
    "tenant_id": CALL_EXAMPLE["tenant_id"],
    "name": "acme",
    "api_key": "cgk_…",
}

API_KEY_CREATED_EXAMPLE: dict[str, Any] = {
    "id": "key_01M81YMTTERBD4008HH6NXVP13",
    "tenant_id": CALL_EXAMPLE["tenant_id"],
    "operator": False,
    "api_key": "cgk_…",
}
