"""Writing the outbox: one delivery row per (matching subscription, emitted event type) of a stored change.

``enqueue_change`` runs inside the ingest transaction (and replay's), so a change and its deliveries commit
together or not at all: nothing is enqueued outside that transaction, and nothing is lost between the commit
and the delivery. The body is built once here and sent byte for byte on every attempt; only the timestamp
header and the signatures are made per attempt.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Connection

from gateway import render
from gateway.ids import new_id
from gateway.model import EventType, MergeResult, format_ts
from gateway.store import outbox as outbox_store

EVENT_TYPES: frozenset[str] = frozenset(t.value for t in EventType)
PING = "ping"
TYPES_PER_CHANGE = 32  # sequence = version * 32 + position: one change emits at most a handful of types


def valid_filter(entry: str) -> bool:
    return entry in ("*", "call.*") or entry in EVENT_TYPES


def matches(filters: Sequence[str], event_type: str) -> bool:
    return any(
        f == event_type or f == "*" or (f == "call.*" and event_type.startswith("call.")) for f in filters
    )


def body(event_type: str, now: datetime, data: Mapping[str, Any]) -> bytes:
    document = {"type": event_type, "timestamp": format_ts(now)[:-4] + "Z", "data": data}
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode()


def call_document(
    base: Mapping[str, Any], data: Mapping[str, Any], version: int, now: datetime
) -> dict[str, Any]:
    """The public call shape (``render.call``) from a call's identity columns and its merged data."""
    row = {**base, "data": data, "version": version, "updated_at": now}
    return render.call(row)


def enqueue_change(
    conn: Connection,
    base: Mapping[str, Any],
    result: MergeResult,
    version: int,
    now: datetime,
) -> int:
    """Rows for every subscription of the call's tenant that wants one of the change's event types."""
    if not result.types:
        return 0
    subscriptions = outbox_store.active_subscriptions(conn, base["tenant_id"])
    if not subscriptions:
        return 0
    data = {
        "call": call_document(base, result.state.data, version, now),
        "version": version,
        "previous_status": result.previous_status.value if result.previous_status else None,
        "changed": list(result.changed),
    }
    rows = []
    for position, event_type in enumerate(str(t) for t in result.types):
        payload = body(event_type, now, data)
        for sub in subscriptions:
            if matches(sub["event_types"], event_type):
                rows.append(
                    new_row(
                        tenant_id=base["tenant_id"],
                        subscription_id=sub["id"],
                        call_id=base["id"],
                        event_type=event_type,
                        call_version=version,
                        sequence=version * TYPES_PER_CHANGE + position,
                        payload=payload,
                        now=now,
                    )
                )
    outbox_store.insert_deliveries(conn, rows)
    return len(rows)


def new_row(
    *,
    tenant_id: str,
    subscription_id: str,
    call_id: str | None,
    event_type: str,
    call_version: int | None,
    sequence: int,
    payload: bytes,
    now: datetime,
) -> dict[str, Any]:
    return {
        "id": new_id("msg"),
        "tenant_id": tenant_id,
        "subscription_id": subscription_id,
        "call_id": call_id,
        "event_type": event_type,
        "call_version": call_version,
        "sequence": sequence,
        "payload": payload,
        "status": "pending",
        "attempts": 0,
        "next_attempt_at": now,
        "lease_until": None,
        "lease_owner": None,
        "last_status_code": None,
        "last_error": None,
        "created_at": now,
        "updated_at": now,
        "completed_at": None,
    }


def ping_row(tenant_id: str, subscription_id: str, now: datetime) -> dict[str, Any]:
    payload = body(PING, now, {"subscription_id": subscription_id})
    return new_row(
        tenant_id=tenant_id,
        subscription_id=subscription_id,
        call_id=None,
        event_type=PING,
        call_version=None,
        sequence=0,
        payload=payload,
        now=now,
    )
