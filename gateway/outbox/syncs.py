"""Finishing a CRM sync: the attempt, the row, the call -> record mapping and the connection's state
(paused, auth_failed) in one transaction, as the CRM's classified answer says."""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import structlog
from sqlalchemy.engine import Connection, RowMapping

from gateway import render, storable
from gateway.connectors import CrmOutcome, CrmVerdict, SyncedRecord
from gateway.model import format_ts
from gateway.outbound.retry import Decision, Outcome, Policy, Verdict, decide
from gateway.outbox.deliveries import Attempt, operator_event, record_attempt
from gateway.store import connections as connection_store
from gateway.store import deliveries as delivery_store
from gateway.store.db import Database, Writes

log = structlog.get_logger("callgate.outbox")


@dataclass(frozen=True, slots=True)
class SyncContext:
    connection: RowMapping
    call: dict[str, Any]  # the public call document, as it is now
    existing: SyncedRecord | None
    synced_version: int | None  # the call version the CRM holds, if any


async def sync_context(db: Database, row: Mapping[Any, Any]) -> SyncContext | None:
    """None when there is nothing to sync any more (the connection or the call is gone)."""
    async with db.reading() as conn:
        connection, call, record = await connection_store.sync_context(
            conn, row["connection_id"], row["call_id"]
        )
    if connection is None or call is None or connection["deleted_at"] is not None:
        return None
    existing = None
    if record is not None:
        existing = SyncedRecord(record["record_id"], record["record_type"], dict(record["extra"]))
    return SyncContext(
        connection, render.call(call), existing, record["version"] if record is not None else None
    )


async def finish_sync(
    db: Writes,
    row: Mapping[Any, Any],
    owner: str,
    attempt: Attempt,
    outcome: CrmOutcome,
    synced: tuple[SyncedRecord, int] | None,
    policy: Policy,
    now: datetime,
    rng: random.Random,
) -> Decision | None:
    """Logs the attempt and moves the row and its connection as the CRM's answer says:

    done -> the mapping (record id, version) is saved and the row succeeded; retry -> the retry schedule
    (at least the CRM's ``Retry-After``); paused -> the connection waits ``pause_seconds`` and the row is
    due then, with no attempt counted; auth_failed -> the connection stops until its credentials are
    patched (an operator event says so), the row waits, no attempt counted; permanent -> the row is dead
    with the CRM's message, and the next calls go on."""
    verdict = outcome.verdict
    message = storable.text(outcome.message[:500])  # the CRM's words: stored and shown to the tenant
    code = storable.text(outcome.code or verdict.value)
    error = None if verdict is CrmVerdict.DONE else f"{code}: {message}"
    counted = verdict in (CrmVerdict.DONE, CrmVerdict.RETRY, CrmVerdict.PERMANENT)
    values: dict[str, Any] = {
        "attempts": row["attempts"] + (1 if counted else 0),
        "last_status_code": outcome.status_code,
        "last_error": error,
        "updated_at": now,
    }
    decision: Decision | None = None
    connection_values: dict[str, Any] = {}
    if verdict is CrmVerdict.DONE:
        values |= {"status": "succeeded", "completed_at": now}
    elif verdict is CrmVerdict.PERMANENT:
        values |= {"status": "dead", "completed_at": now}
    elif verdict is CrmVerdict.RETRY:
        decision = decide(policy, row["attempts"] + 1, Outcome(error=error), now, rng)
        if decision.verdict is Verdict.RETRY and decision.next_attempt_at is not None:
            due = decision.next_attempt_at
            if outcome.retry_after:
                due = max(due, now + timedelta(seconds=outcome.retry_after))
            values["next_attempt_at"] = due
        else:
            values |= {"status": "dead", "completed_at": now}
    elif verdict is CrmVerdict.PAUSED:
        until = now + timedelta(seconds=max(outcome.pause_seconds or 1.0, 1.0))
        values["next_attempt_at"] = until
        connection_values = {"state": "paused", "paused_until": until}
    else:  # AUTH_FAILED
        values["next_attempt_at"] = now
        connection_values = {"state": "auth_failed"}
    if error is not None:
        connection_values["last_error"] = {
            "code": code,
            "message": message,
            "at": format_ts(now),
        }

    def work(conn: Connection) -> None:
        record_attempt(conn, row, attempt, error, values.get("next_attempt_at"))
        if not delivery_store.finish(conn, row["id"], owner, values):
            return  # another worker owns the row now; the attempt stays logged
        if synced is not None:
            record, version = synced
            connection_store.save_record(
                conn,
                {
                    "connection_id": row["connection_id"],
                    "call_id": row["call_id"],
                    "tenant_id": row["tenant_id"],
                    "record_id": record.record_id,
                    "record_type": record.record_type,
                    "extra": dict(record.extra),
                    "version": version,
                    "synced_at": now,
                },
            )
        if verdict is CrmVerdict.AUTH_FAILED:
            current = connection_store.by_id(conn, row["connection_id"])
            if current is not None and current["state"] != "auth_failed":
                operator_event(conn, row, "connection.auth_failed", row["connection_id"], error or "", now)
                log.warning("connection auth failed", connection_id=row["connection_id"])
        if verdict is CrmVerdict.DONE and _pause_is_over(
            connection_store.by_id(conn, row["connection_id"]), now
        ):
            connection_store.change(conn, row["connection_id"], {"state": "active", "paused_until": None})
        if connection_values:
            connection_store.change(conn, row["connection_id"], connection_values)

    await db.run_write(work)
    return decision


def _pause_is_over(connection: Mapping[Any, Any] | None, now: datetime) -> bool:
    """A success clears a pause only once it has run out (a sync in flight when the limit hit does not)."""
    if connection is None or connection["state"] != "paused":
        return False
    return connection["paused_until"] is None or connection["paused_until"] <= now
