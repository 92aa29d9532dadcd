"""Every state change of a delivery row after it is queued: claim (lease), finish an attempt, release,
recover, retry, and the endpoint's failure streak and disabling. Nothing else changes these rows."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Container, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import structlog
from sqlalchemy.engine import Connection

from gateway import storable
from gateway.errors import NotFound, found
from gateway.ids import new_id
from gateway.outbound.retry import Decision, Outcome, Policy, Verdict, should_disable
from gateway.outbox.enqueue import ping_row
from gateway.outbox.limits import EndpointLimits
from gateway.store import deliveries as delivery_store
from gateway.store import subscriptions as subscription_store
from gateway.store.db import Database, Writes

log = structlog.get_logger("callgate.outbox")


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


QUEUED_PER_SLOT = 2  # an endpoint at its cap may have as many rows again leased and waiting in the worker


async def claim(
    db: Writes,
    *,
    owner: str,
    now: datetime,
    lease_seconds: float,
    room: int,
    batch: int,
    busy: Mapping[str, int],
    inflight: Container[str],
    crm_concurrency: int = 4,
    crm_rates: Mapping[str, float] | None = None,
    syncs: bool = True,
    endpoint_concurrency: int = 8,
) -> tuple[list[dict[str, Any]], bool]:
    """Leases up to ``room`` due rows to ``owner`` (subscription deliveries and CRM syncs), and says
    whether due rows were left (a full claim, or endpoints at their cap): the worker claims again as soon
    as a delivery finishes.

    An endpoint with limits (a subscription's ``max_concurrency`` or ``rate_limit_per_second``; a CRM
    connection's ``crm_concurrency`` and its kind's rate in ``crm_rates``) is held to them across every
    worker (``gateway.outbox.limits``): each of its rows comes with ``send_at``, the moment its rate slot
    opens. Any other endpoint is kept under ``endpoint_concurrency`` rows in flight in this worker
    (``busy``), with as many again queued."""
    until = now + timedelta(seconds=lease_seconds)

    def work(conn: Connection) -> tuple[list[dict[str, Any]], bool]:
        limit = min(room, batch) * 2
        candidates = [*delivery_store.claim(conn, now=now, limit=limit)]
        if syncs:  # a worker built without CRM connectors leaves sync rows to one that has them
            candidates += delivery_store.claim_syncs(conn, now=now, limit=limit, concurrency=crm_concurrency)
        candidates.sort(key=lambda r: r["id"])
        limits = EndpointLimits.load(conn, candidates, now, crm_rates or {})
        chosen: list[dict[str, Any]] = []
        taken: defaultdict[str, int] = defaultdict(int)
        for row in candidates:
            if row["id"] in inflight:
                continue
            sub = endpoint(row)
            if limits.governs(sub):
                send_at = limits.take(sub)
                if send_at is None:
                    continue
                chosen.append({**row, "send_at": send_at})
            else:
                if busy.get(sub, 0) + taken[sub] >= endpoint_concurrency * QUEUED_PER_SLOT:
                    continue
                chosen.append(dict(row))
                taken[sub] += 1
            if len(chosen) >= room:
                break
        delivery_store.lease(conn, [r["id"] for r in chosen], owner, until)
        limits.save(conn)
        return chosen, len(chosen) < len(candidates) or len(candidates) >= limit

    return await db.run_write(work)


async def release(db: Writes, ids: Sequence[str], owner: str) -> None:
    """Leases given back (a worker stopping): the rows are due again for any worker."""
    if ids:
        await db.run_write(lambda conn: delivery_store.release(conn, ids, owner))


def endpoint(row: Mapping[Any, Any]) -> str:
    """Who a row is for: its subscription or its CRM connection."""
    return str(row["subscription_id"] or row["connection_id"])


def record_attempt(
    conn: Connection,
    row: Mapping[Any, Any],
    attempt: Attempt,
    error: str | None,
    next_attempt_at: datetime | None,
) -> None:
    """The attempt's line in the delivery log, with what was decided."""
    delivery_store.record_attempt(
        conn,
        {
            "id": new_id("att"),
            "delivery_id": row["id"],
            "tenant_id": row["tenant_id"],
            "attempted_at": attempt.attempted_at,
            "status_code": attempt.outcome.status_code,
            "latency_ms": attempt.latency_ms,
            "error": storable.text(error) if error is not None else None,
            # what the receiver answered: any bytes it liked, kept as text every store accepts
            "response_body": storable.text(attempt.response_body) if attempt.response_body else None,
            "next_attempt_at": next_attempt_at,
        },
    )


@dataclass(frozen=True, slots=True)
class Attempt:
    """One send as the worker saw it."""

    attempted_at: datetime
    outcome: Outcome
    latency_ms: int
    response_body: str | None


async def finish_attempt(
    db: Writes,
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
        record_attempt(conn, row, attempt, attempt.outcome.error, decision.next_attempt_at)
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
    operator_event(conn, row, "subscription.disabled", row["subscription_id"], reason, now)
    log.warning("subscription disabled", subscription_id=row["subscription_id"], reason=reason)


def operator_event(
    conn: Connection, row: Mapping[Any, Any], kind: str, subject_id: str, reason: str, now: datetime
) -> None:
    delivery_store.record_operator_event(
        conn,
        {
            "id": new_id("opv"),
            "tenant_id": row["tenant_id"],
            "kind": kind,
            "subject_id": subject_id,
            "detail": {"reason": reason, "delivery_id": row["id"]},
            "created_at": now,
        },
    )
