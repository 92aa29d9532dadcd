"""Every public JSON shape in one place: calls and their timeline (API responses and delivery payloads),
sources, subscriptions, deliveries and their attempts. Pure functions of stored rows."""

from __future__ import annotations

import base64
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from gateway.signing import redact, verification_adapter

# Every call carries every field, so consumers see one stable shape; absent values are null.
CALL_FIELDS: tuple[tuple[str, Any], ...] = (
    ("vendor_session_id", None),
    ("campaign_id", None),
    ("agent_id", None),
    ("contact_ref", None),
    ("user_email", None),
    ("direction", "unknown"),
    ("status", None),
    ("from_number", None),
    ("to_number", None),
    ("started_at", None),
    ("answered_at", None),
    ("ended_at", None),
    ("duration_seconds", None),
    ("talk_time_seconds", None),
    ("end_reason", None),
    ("outcome", None),
    ("recording", None),
    ("transcript", []),
    ("grade", None),
    ("survey", None),
    ("qualification", None),
    ("billing", None),
    ("issues", []),
    ("is_test", False),
    ("vendor_extra", {}),
)


def ts(value: datetime | None) -> str | None:
    if value is None:
        return None
    return value.isoformat().replace("+00:00", "Z")


def call(row: Mapping[Any, Any]) -> dict[str, Any]:
    data = row["data"]
    out: dict[str, Any] = {
        "id": row["id"],
        "tenant_id": row["tenant_id"],
        "source_id": row["source_id"],
        "vendor": row["vendor"],
        "vendor_call_id": row["vendor_call_id"],
    }
    for name, default in CALL_FIELDS:
        value = data.get(name)
        out[name] = default if value is None else value
    out["version"] = row["version"]
    out["created_at"] = ts(row["created_at"])
    out["updated_at"] = ts(row["updated_at"])
    return out


def call_event(row: Mapping[Any, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "raw_event_id": row["raw_event_id"],
        "event_type": row["event_type"],
        "types": row["types"],
        "changed": row["changed"],
        "status": row["status"],
        "previous_status": row["previous_status"],
        "version": row["version"],
        "occurred_at": ts(row["occurred_at"]),
        "received_at": ts(row["created_at"]),
    }


def source(row: Mapping[Any, Any], base_url: str) -> dict[str, Any]:
    """A source with its hook URL; the verification with every secret cut to its last 4 characters."""
    config = verification_adapter.validate_python(row["verification"])
    return {
        "id": row["id"],
        "name": row["name"],
        "vendor": row["vendor"],
        "enabled": bool(row["enabled"]),
        "hook_url": f"{base_url}/hooks/{row['id']}",
        "verification": redact(config),
        "pull": _pull(row),
        "created_at": ts(row["created_at"]),
        "updated_at": ts(row["updated_at"]),
    }


def _pull(row: Mapping[Any, Any]) -> dict[str, Any] | None:
    """A source's read-API settings (gateway.pull.source): never the token, only whether one is set."""
    pull = row.get("pull")
    if not pull:
        return None
    return {
        "base_url": pull["base_url"],
        "org_id": pull.get("org_id"),
        "token_set": row["pull_token"] is not None,
    }


def subscription(row: Mapping[Any, Any]) -> dict[str, Any]:
    """A subscription; its secrets never (only how many sign now)."""
    return {
        "id": row["id"],
        "url": row["url"],
        "description": row["description"],
        "event_types": row["event_types"],
        "enabled": row["enabled"],
        "disabled_reason": row["disabled_reason"],
        "rate_limit_per_second": row["rate_limit_per_second"],
        "max_concurrency": row["max_concurrency"],
        "failing_since": ts(row["failing_since"]),
        "secrets_active": len(row["secrets"]),
        "created_at": ts(row["created_at"]),
        "updated_at": ts(row["updated_at"]),
    }


def delivery(row: Mapping[Any, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "subscription_id": row["subscription_id"],
        "connection_id": row["connection_id"],
        "call_id": row["call_id"],
        "event_type": row["event_type"],
        "call_version": row["call_version"],
        "status": row["status"],
        "attempts": row["attempts"],
        "next_attempt_at": ts(row["next_attempt_at"]) if row["status"] == "pending" else None,
        "last_status_code": row["last_status_code"],
        "last_error": row["last_error"],
        "created_at": ts(row["created_at"]),
        "completed_at": ts(row["completed_at"]),
    }


def attempt(row: Mapping[Any, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "attempted_at": ts(row["attempted_at"]),
        "status_code": row["status_code"],
        "latency_ms": row["latency_ms"],
        "error": row["error"],
        "response_body": row["response_body"],
        "next_attempt_at": ts(row["next_attempt_at"]),
    }


def connection(row: Mapping[Any, Any], synced_calls: int | None = None) -> dict[str, Any]:
    """A CRM connection; its credentials never."""
    shown: dict[str, Any] = {
        "id": row["id"],
        "kind": row["kind"],
        "name": row["name"],
        "base_url": row["base_url"],
        "options": row["options"],
        "enabled": bool(row["enabled"]),
        "state": row["state"] if row["enabled"] else "disabled",
        "paused_until": ts(row["paused_until"]) if row["state"] == "paused" else None,
        "last_error": row["last_error"],
        "created_at": ts(row["created_at"]),
        "updated_at": ts(row["updated_at"]),
    }
    if synced_calls is not None:
        shown["synced_calls"] = synced_calls
    return shown


def crm_record(row: Mapping[Any, Any]) -> dict[str, Any]:
    return {
        "call_id": row["call_id"],
        "record_id": row["record_id"],
        "record_type": row["record_type"],
        "version": row["version"],
        "synced_at": ts(row["synced_at"]),
    }


def quarantined(row: Mapping[Any, Any], *, whole: bool = False) -> dict[str, Any]:
    """A quarantined body: why, when, from where; ``whole`` adds the headers and the body (as text when it is
    UTF-8, else base64, with ``body_encoding`` saying which)."""
    shown: dict[str, Any] = {
        "id": row["id"],
        "source_id": row["source_id"],
        "vendor": row["vendor"],
        "error": row["error"],
        "received_at": ts(row["received_at"]),
        "resolved_at": ts(row["resolved_at"]),
        "status": "resolved" if row["resolved_at"] is not None else "open",
    }
    if "size" in row:
        shown["size"] = row["size"]
    if whole:
        body = bytes(row["body"])
        try:
            shown["body"], shown["body_encoding"] = body.decode("utf-8"), "utf-8"
        except UnicodeDecodeError:
            shown["body"], shown["body_encoding"] = base64.b64encode(body).decode(), "base64"
        shown["size"] = len(body)
        shown["headers"] = row["headers"]
    return shown


def api_key(row: Mapping[Any, Any]) -> dict[str, Any]:
    """An API key as the operator sees it: never the key, never its hash; its last 4 characters."""
    return {
        "id": row["id"],
        "tenant_id": row["tenant_id"],
        "operator": bool(row["is_operator"]),
        "name": row["name"],
        "key_hint": row["key_hint"],
        "created_at": ts(row["created_at"]),
        "revoked_at": ts(row["revoked_at"]),
    }


def tenant(row: Mapping[Any, Any]) -> dict[str, Any]:
    return {"id": row["id"], "name": row["name"], "created_at": ts(row["created_at"])}
