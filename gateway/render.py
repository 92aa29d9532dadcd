"""The public JSON shape of a call and of its timeline (API responses, and later the outbox payloads)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

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
