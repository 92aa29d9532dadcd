"""Outbox rows of a stored change, written in the caller's (ingest or replay) transaction: one delivery
per (matching subscription, emitted event type) with its body built once, and one coalesced sync per CRM
connection that syncs the call's status. Also the rows queued by hand: a ping, a resync."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Connection

from gateway import render
from gateway.errors import found
from gateway.ids import new_id
from gateway.model import EventType, MergeResult, format_ts
from gateway.pull.recordings import RecordingLinks
from gateway.store import connections as connection_store
from gateway.store import deliveries as delivery_store
from gateway.store import subscriptions as subscription_store
from gateway.store.db import Database

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
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


def call_document(
    base: Mapping[str, Any], data: Mapping[str, Any], version: int, now: datetime
) -> dict[str, Any]:
    """The public call shape (``render.call``) from a call's identity columns and its merged data."""
    row = {**base, "data": data, "version": version, "updated_at": now}
    return render.call(row)


@dataclass(slots=True)
class Dispatch:
    """An in-process worker taking fresh deliveries straight from the ingest transaction: the rows it can
    send at once (head of line for their subscription and call) are leased to ``owner`` in that
    transaction and handed to it after the commit, so the common case pays no claim query and no extra
    transaction. ``rows`` collects them; ``held`` names the (subscription, call) of rows left for a claim
    (behind an earlier one): the worker claims again when that earlier one is done."""

    owner: str
    lease_until: datetime
    room: int
    rows: list[dict[str, Any]] = field(default_factory=list)
    held: list[tuple[str, str | None]] = field(default_factory=list)  # (subscription, call) left waiting
    syncs: int = 0  # CRM syncs queued: the worker claims those

    def reset(self) -> None:
        """A unit of work may run twice (a batch replayed with savepoints): only the last run counts."""
        self.rows.clear()
        self.held.clear()
        self.syncs = 0


def enqueue_change(
    conn: Connection,
    base: Mapping[str, Any],
    result: MergeResult,
    version: int,
    now: datetime,
    dispatch: Dispatch | None = None,
    links: RecordingLinks | None = None,
) -> int:
    """Rows for every subscription of the call's tenant that wants one of the change's event types, and a
    (coalesced) sync for every CRM connection that syncs the call's status. ``links``: the relayed call's
    recording becomes the gateway's own link."""
    if not result.types:
        return 0
    synced = enqueue_syncs(conn, base, result.state.data.get("status"), version, now)
    if dispatch is not None:
        dispatch.syncs += synced
    subscriptions = subscription_store.active_for_tenant(conn, base["tenant_id"])
    if not subscriptions:
        return synced
    call = call_document(base, result.state.data, version, now)
    data = {
        "call": links.relay(base["tenant_id"], call, now) if links is not None else call,
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
    if dispatch is not None:
        _lease_heads(conn, rows, subscriptions, dispatch)
    delivery_store.insert_deliveries(conn, rows)
    return len(rows) + synced


def _lease_heads(
    conn: Connection,
    rows: list[dict[str, Any]],
    subscriptions: Sequence[Mapping[Any, Any]],
    dispatch: Dispatch,
) -> None:
    """Leases each subscription's first new row of this call when nothing earlier of the call waits for
    that subscription; later rows of the change wait for a claim (per-call order is the claim's rule), as
    do the rows of an endpoint with a concurrency or rate limit."""
    endpoints = {sub["id"]: sub for sub in subscriptions}
    first: set[str] = set()
    for row in rows:
        sub = row["subscription_id"]
        endpoint = endpoints[sub]
        # an endpoint with limits is leased only by a claim, which counts every worker's leases against
        # them (gateway.outbox.limits); the claim that follows this commit picks these rows up
        limited = endpoint["max_concurrency"] is not None or endpoint["rate_limit_per_second"] is not None
        if limited or sub in first or len(dispatch.rows) >= dispatch.room:
            dispatch.held.append((sub, row["call_id"]))
            continue
        first.add(sub)
        # a change at version 1 is the call's creation in this transaction (a change to an existing call
        # always raises its version): nothing of the call can be waiting yet
        if row["call_version"] != 1 and delivery_store.pending_before(conn, sub, row["call_id"]):
            dispatch.held.append((sub, row["call_id"]))
            continue
        row["lease_owner"] = dispatch.owner
        row["lease_until"] = dispatch.lease_until
        dispatch.rows.append(
            {
                **row,
                "url": endpoint["url"],
                "secrets": endpoint["secrets"],
                "rate_limit_per_second": endpoint["rate_limit_per_second"],
                "max_concurrency": endpoint["max_concurrency"],
                "failing_since": endpoint["failing_since"],
            }
        )


# --- CRM syncs ------------------------------------------------------------------------------------------

SYNC = "crm.sync"  # bring the CRM to the call's latest version (skipped when it holds it already)
RESYNC = "crm.resync"  # send the call's latest version even if the CRM holds it (``…/resync``)
TERMINAL = ("completed", "failed", "no_answer", "busy", "canceled")


def synced_statuses(options: Mapping[str, Any]) -> Sequence[str]:
    statuses = options.get("statuses")
    return statuses if isinstance(statuses, list) else TERMINAL


def enqueue_syncs(
    conn: Connection, base: Mapping[str, Any], status: str | None, version: int, now: datetime
) -> int:
    """A call is written to a CRM once its status is one the connection syncs, then kept up to date."""
    if status is None:
        return 0
    count = 0
    for connection in connection_store.active_for_tenant(conn, base["tenant_id"]):
        if status in synced_statuses(connection["options"]):
            enqueue_sync(conn, base["tenant_id"], connection["id"], base["id"], version, now)
            count += 1
    return count


def enqueue_sync(
    conn: Connection,
    tenant_id: str,
    connection_id: str,
    call_id: str,
    version: int,
    now: datetime,
    event_type: str = SYNC,
) -> None:
    """At most one pending sync per (connection, call) that no worker holds: a newer change updates it.
    While a sync is in flight a second row waits behind it (head of line), so an older version is never
    written after a newer one, and the worker always sends the call as it is when it sends."""
    payload = json.dumps({"call_id": call_id, "version": version}).encode()
    values: dict[str, Any] = {"call_version": version, "payload": payload, "updated_at": now}
    if event_type == RESYNC:
        values["event_type"] = RESYNC
    if delivery_store.coalesce_sync(conn, connection_id, call_id, values):
        return
    row = new_row(
        tenant_id=tenant_id,
        subscription_id=None,
        connection_id=connection_id,
        call_id=call_id,
        event_type=event_type,
        call_version=version,
        sequence=version * TYPES_PER_CHANGE,
        payload=payload,
        now=now,
    )
    delivery_store.insert_deliveries(conn, [row])


async def resync(db: Database, tenant_id: str, connection_id: str, since: datetime, now: datetime) -> int:
    """Every call of the tenant changed since ``since`` whose status the connection syncs, sent again."""

    def work(conn: Connection) -> int:
        connection = found(connection_store.lock(conn, tenant_id, connection_id), "connection")
        statuses = synced_statuses(connection["options"])
        count = 0
        for call in connection_store.calls_changed_since(conn, tenant_id, since):
            if call["data"].get("status") in statuses:
                enqueue_sync(conn, tenant_id, connection_id, call["id"], call["version"], now, RESYNC)
                count += 1
        return count

    return await db.run_write(work)


def new_row(
    *,
    tenant_id: str,
    subscription_id: str | None,
    call_id: str | None,
    event_type: str,
    call_version: int | None,
    sequence: int,
    payload: bytes,
    now: datetime,
    connection_id: str | None = None,
) -> dict[str, Any]:
    return {
        "id": new_id("msg"),
        "tenant_id": tenant_id,
        "subscription_id": subscription_id,
        "connection_id": connection_id,
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
