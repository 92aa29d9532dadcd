"""The outbox: one delivery row per (matching subscription, emitted event type) of a stored change, and
the one owner of every delivery state change after that (claim, finish an attempt, release, recover,
retry, disable an endpoint), as procrastinate's ``JobManager`` owns its jobs. The worker runs no SQL: it
claims, sends, and hands the outcome back here.

``enqueue_change`` runs inside the ingest transaction (and replay's), so a change and its deliveries commit
together or not at all: nothing is enqueued outside that transaction, and nothing is lost between the commit
and the delivery. The body is built once here and sent byte for byte on every attempt; only the timestamp
header and the signatures are made per attempt.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Container, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import structlog
from sqlalchemy.engine import Connection, RowMapping

from gateway import render
from gateway.errors import NotFound, found
from gateway.ids import new_id
from gateway.model import EventType, MergeResult, format_ts
from gateway.outbound.retry import Decision, Outcome, Policy, Verdict, should_disable
from gateway.store import deliveries as delivery_store
from gateway.store import subscriptions as subscription_store
from gateway.store.db import Database

log = structlog.get_logger("callgate.outbox")

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
    subscriptions = subscription_store.active_for_tenant(conn, base["tenant_id"])
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
    delivery_store.insert_deliveries(conn, rows)
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


# --- the one owner of delivery state: everything below is the only code that changes a delivery row ----


async def send_ping(db: Database, tenant_id: str, subscription_id: str, now: datetime) -> dict[str, Any]:
    row = ping_row(tenant_id, subscription_id, now)

    def work(conn: Connection) -> None:
        found(subscription_store.lock(conn, tenant_id, subscription_id), "subscription")
        delivery_store.insert_deliveries(conn, [row])

    await db.run_write(work)
    return row


async def recover(db: Database, tenant_id: str, subscription_id: str, since: datetime, now: datetime) -> int:
    """Dead deliveries of the endpoint created since ``since`` go back to pending, with a fresh schedule."""

    def work(conn: Connection) -> int:
        found(subscription_store.lock(conn, tenant_id, subscription_id), "subscription")
        return delivery_store.requeue_dead(conn, subscription_id, since, now)

    return await db.run_write(work)


async def retry(db: Database, tenant_id: str, delivery_id: str, now: datetime) -> None:
    """One delivery, now: a dead or succeeded one is sent again on a fresh schedule; a pending one is due."""

    def work(conn: Connection) -> None:
        if not delivery_store.requeue_one(conn, tenant_id, delivery_id, now):
            raise NotFound("no such delivery")

    await db.run_write(work)


async def claim(
    db: Database,
    *,
    owner: str,
    now: datetime,
    lease_seconds: float,
    room: int,
    batch: int,
    busy: Mapping[str, int],
    inflight: Container[str],
) -> list[RowMapping]:
    """Leases up to ``room`` due rows to ``owner``, keeping each endpoint under its ``max_concurrency``
    (``busy``: what this worker already has in flight per endpoint)."""
    until = now + timedelta(seconds=lease_seconds)

    def work(conn: Connection) -> list[RowMapping]:
        candidates = delivery_store.claim(conn, now=now, limit=min(room, batch) * 2)
        chosen: list[RowMapping] = []
        taken: defaultdict[str, int] = defaultdict(int)
        for row in candidates:
            sub = row["subscription_id"]
            cap = row["max_concurrency"]
            if row["id"] in inflight or (cap and busy.get(sub, 0) + taken[sub] >= cap):
                continue
            chosen.append(row)
            taken[sub] += 1
            if len(chosen) >= room:
                break
        delivery_store.lease(conn, [r["id"] for r in chosen], owner, until)
        return chosen

    return await db.run_write(work)


async def release(db: Database, ids: Sequence[str], owner: str) -> None:
    """Leases given back (a worker stopping): the rows are due again for any worker."""
    if ids:
        await db.run_write(lambda conn: delivery_store.release(conn, ids, owner))


@dataclass(frozen=True, slots=True)
class Attempt:
    """One send as the worker saw it."""

    attempted_at: datetime
    outcome: Outcome
    latency_ms: int
    response_body: str | None


async def finish_attempt(
    db: Database,
    row: Mapping[Any, Any],
    owner: str,
    attempt: Attempt,
    decision: Decision,
    policy: Policy,
    now: datetime,
) -> None:
    """Logs the attempt and moves the row as ``decision`` says (only while ``owner`` holds its lease);
    keeps the endpoint's failure streak, and disables it on 410 or after ``policy.disable_after``."""

    def work(conn: Connection) -> None:
        delivery_store.record_attempt(
            conn,
            {
                "id": new_id("att"),
                "delivery_id": row["id"],
                "tenant_id": row["tenant_id"],
                "attempted_at": attempt.attempted_at,
                "status_code": attempt.outcome.status_code,
                "latency_ms": attempt.latency_ms,
                "error": attempt.outcome.error,
                "response_body": attempt.response_body,
                "next_attempt_at": decision.next_attempt_at,
            },
        )
        values: dict[str, Any] = {
            "attempts": row["attempts"] + 1,
            "last_status_code": attempt.outcome.status_code,
            "last_error": attempt.outcome.error,
            "updated_at": now,
        }
        if decision.verdict is Verdict.RETRY:
            values["next_attempt_at"] = decision.next_attempt_at
        else:
            values |= {
                "status": "succeeded" if decision.verdict is Verdict.SUCCEEDED else "dead",
                "completed_at": now,
            }
        if not delivery_store.finish(conn, row["id"], owner, values):
            return  # the lease ran out and another worker owns the row now; the attempt stays logged
        _track_endpoint(conn, row, decision, policy, now)

    await db.run_write(work)


def _track_endpoint(
    conn: Connection, row: Mapping[Any, Any], decision: Decision, policy: Policy, now: datetime
) -> None:
    sub = row["subscription_id"]
    if decision.verdict is Verdict.SUCCEEDED:
        if row["failing_since"] is not None:
            subscription_store.change(conn, sub, {"failing_since": None})
        return
    failing_since = row["failing_since"] or now
    if row["failing_since"] is None:
        subscription_store.change(conn, sub, {"failing_since": now})
    if decision.verdict is Verdict.GONE:
        disable(conn, row, now, "endpoint answered 410 Gone")
    elif should_disable(policy, failing_since, now):
        disable(conn, row, now, f"failing continuously since {failing_since.isoformat()}")


def disable(conn: Connection, row: Mapping[Any, Any], now: datetime, reason: str) -> None:
    """The endpoint of ``row`` stops receiving (its pending rows wait); an operator event says why."""
    subscription_store.change(
        conn, row["subscription_id"], {"enabled": False, "disabled_reason": reason[:200], "updated_at": now}
    )
    delivery_store.record_operator_event(
        conn,
        {
            "id": new_id("opv"),
            "tenant_id": row["tenant_id"],
            "kind": "subscription.disabled",
            "subject_id": row["subscription_id"],
            "detail": {"reason": reason, "delivery_id": row["id"]},
            "created_at": now,
        },
    )
    log.warning("subscription disabled", subscription_id=row["subscription_id"], reason=reason)
