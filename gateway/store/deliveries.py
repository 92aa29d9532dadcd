"""The delivery tables: ``deliveries`` (the outbox), ``delivery_attempts`` and ``operator_events``.
Synchronous Core for the ingest batch and the worker; async reads for the API. Only ``gateway.outbox``
calls the writing functions: it owns every state change of a delivery."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    ARRAY,
    Text,
    and_,
    bindparam,
    case,
    exists,
    func,
    insert,
    literal,
    or_,
    select,
    true,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection, RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.store import batch as batches
from gateway.store.batch import OUTBOX
from gateway.store.db import notify_outbox
from gateway.store.prepared import Prepared
from gateway.store.tables import (
    connections,
    deliveries,
    delivery_attempts,
    endpoint_budgets,
    operator_events,
    subscriptions,
)

_INSERT_DELIVERY = Prepared(insert(deliveries))


def insert_deliveries(conn: Connection, rows: Sequence[dict[str, Any]]) -> None:
    if not rows:
        return
    batch = batches.current(conn)
    if batch is None:
        _INSERT_DELIVERY.executemany(conn, rows)
    else:
        for row in rows:
            batch.defer(OUTBOX, _INSERT_DELIVERY, row)
            batch.outbox.setdefault(row["call_id"], []).append(row)
    notify_outbox(conn)


# --- the worker's side --------------------------------------------------------------------------------

_earlier = deliveries.alias("earlier")


_PENDING_BEFORE = Prepared(
    select(deliveries.c.id)
    .where(
        deliveries.c.subscription_id == bindparam("subscription_id"),
        deliveries.c.call_id == bindparam("call_id"),
        deliveries.c.status == "pending",
    )
    .limit(1)
)


_PENDING_OF_CALLS = (
    select(deliveries.c.call_id)
    .where(
        deliveries.c.subscription_id == bindparam("subscription_id"),
        deliveries.c.call_id.in_(bindparam("call_ids", expanding=True)),
        deliveries.c.status == "pending",
    )
    .distinct()
)
_CALL_IDS = (
    func.unnest(bindparam("call_ids", type_=ARRAY(Text)))
    .table_valued("call_id")
    .render_derived(name="batch_calls")
)
# PostgreSQL: for each call of the array, its first pending row: a probe each into the pending rows' index
# whatever the planner thinks of the subscription's backlog (a LIMIT keeps the subquery from being flattened
# into a join it could answer by reading every pending row of the subscription)
_FIRST_PENDING = (
    select(deliveries.c.call_id)
    .where(
        deliveries.c.subscription_id == bindparam("subscription_id"),
        deliveries.c.call_id == _CALL_IDS.c.call_id,
        deliveries.c.status == "pending",
    )
    .limit(1)
    .lateral("first_pending")
)
_PENDING_OF_CALLS_PG = select(_FIRST_PENDING.c.call_id).select_from(_CALL_IDS.join(_FIRST_PENDING, true()))


def _pending_of_calls(conn: Connection, subscription_id: str, call_ids: Sequence[str]) -> set[str]:
    """Which of ``call_ids`` have an undelivered row for the subscription, in one statement."""
    postgres = conn.dialect.name == "postgresql"
    query = _PENDING_OF_CALLS_PG if postgres else _PENDING_OF_CALLS
    params = {"subscription_id": subscription_id, "call_ids": list(call_ids)}
    return {str(call_id) for call_id in conn.execute(query, params).scalars()}


def pending_before(conn: Connection, subscription_id: str, call_id: str | None) -> bool:
    """Whether an undelivered row of this (subscription, call) exists: a new row must wait behind it."""
    if call_id is None:
        return False
    batch = batches.current(conn)
    if batch is not None:
        for row in batch.outbox.get(call_id, ()):  # the batch's own rows, not written yet
            if row["subscription_id"] == subscription_id and row["status"] == "pending":
                return True
        asked = batch.memo.get(("pending", subscription_id))
        if asked is None:  # asked once for every call the batch holds
            ids = {row["id"] for row in batch.rows.values() if row is not None}
            found = _pending_of_calls(conn, subscription_id, sorted(ids))
            asked = batch.memo[("pending", subscription_id)] = (ids, found)
        ids, found = asked
        if call_id in ids:
            return call_id in found
    found_one = _PENDING_BEFORE.first(conn, {"subscription_id": subscription_id, "call_id": call_id})
    return found_one is not None


def _head_of_line(same_endpoint: Any) -> Any:
    """No earlier row (by sequence, then id) of the same endpoint and call is pending: per-call order."""
    return ~exists().where(
        same_endpoint,
        _earlier.c.call_id == deliveries.c.call_id,
        _earlier.c.status == "pending",
        or_(
            _earlier.c.sequence < deliveries.c.sequence,
            and_(_earlier.c.sequence == deliveries.c.sequence, _earlier.c.id < deliveries.c.id),
        ),
    )


def claim(conn: Connection, *, now: datetime, limit: int) -> Sequence[RowMapping]:
    """Due rows of enabled endpoints, each the oldest undelivered row of its (subscription, call).

    A row waits while an earlier row of the same call for the same endpoint is still pending (per-call
    order); rows of other calls are not held up. PostgreSQL skips rows another worker has locked.
    """
    query = (
        select(
            deliveries.c.id,
            deliveries.c.tenant_id,
            deliveries.c.subscription_id,
            deliveries.c.connection_id,
            deliveries.c.call_id,
            deliveries.c.event_type,
            deliveries.c.payload,
            deliveries.c.attempts,
            subscriptions.c.url,
            subscriptions.c.secrets,
            subscriptions.c.rate_limit_per_second,
            subscriptions.c.max_concurrency,
            subscriptions.c.failing_since,
        )
        .join(subscriptions, subscriptions.c.id == deliveries.c.subscription_id)
        .where(
            deliveries.c.status == "pending",
            deliveries.c.subscription_id.is_not(None),  # the terms of its partial index (tables.py)
            deliveries.c.next_attempt_at <= now,
            or_(deliveries.c.lease_until.is_(None), deliveries.c.lease_until < now),
            subscriptions.c.enabled.is_(True),
            subscriptions.c.deleted_at.is_(None),
            _head_of_line(_earlier.c.subscription_id == deliveries.c.subscription_id),
        )
        .order_by(deliveries.c.next_attempt_at, deliveries.c.id)
        .limit(limit)
    )
    if conn.dialect.name == "postgresql":
        query = query.with_for_update(of=deliveries, skip_locked=True)
    return conn.execute(query).mappings().all()


def claim_syncs(conn: Connection, *, now: datetime, limit: int, concurrency: int) -> Sequence[RowMapping]:
    """Due CRM sync rows of connections that may be called now: enabled, not deleted, not waiting for new
    credentials (``auth_failed``), not paused past ``now``; each the oldest of its (connection, call)."""
    query = (
        select(
            deliveries.c.id,
            deliveries.c.tenant_id,
            deliveries.c.subscription_id,
            deliveries.c.connection_id,
            deliveries.c.call_id,
            deliveries.c.call_version,
            deliveries.c.event_type,
            deliveries.c.attempts,
            connections.c.kind,
            literal(concurrency).label("max_concurrency"),
        )
        .join(connections, connections.c.id == deliveries.c.connection_id)
        .where(
            deliveries.c.status == "pending",
            deliveries.c.connection_id.is_not(None),
            deliveries.c.next_attempt_at <= now,
            or_(deliveries.c.lease_until.is_(None), deliveries.c.lease_until < now),
            connections.c.enabled.is_(True),
            connections.c.deleted_at.is_(None),
            connections.c.state != "auth_failed",
            or_(connections.c.paused_until.is_(None), connections.c.paused_until <= now),
            _head_of_line(_earlier.c.connection_id == deliveries.c.connection_id),
        )
        .order_by(deliveries.c.next_attempt_at, deliveries.c.id)
        .limit(limit)
    )
    if conn.dialect.name == "postgresql":
        query = query.with_for_update(of=deliveries, skip_locked=True)
    return conn.execute(query).mappings().all()


def leased(conn: Connection, kind: str, endpoint_ids: Sequence[str], now: datetime) -> dict[str, int]:
    """Rows each endpoint (``kind``: subscription or connection) has leased to any worker right now."""
    if not endpoint_ids:
        return {}
    column = deliveries.c[f"{kind}_id"]
    query = (
        select(column, func.count())
        .where(
            deliveries.c.status == "pending",
            deliveries.c.lease_owner.is_not(None),  # the terms of its partial index (tables.py)
            column.in_(endpoint_ids),
            deliveries.c.lease_until > now,
        )
        .group_by(column)
    )
    return {str(endpoint): int(count) for endpoint, count in conn.execute(query).all()}


_ENSURE_BUDGET = {
    name: builder(endpoint_budgets).on_conflict_do_nothing(index_elements=["endpoint_id"])
    for name, builder in (("postgresql", pg_insert), ("sqlite", sqlite_insert))
}


def lock_budgets(conn: Connection, endpoint_ids: Sequence[str]) -> dict[str, datetime | None]:
    """The endpoints' budget rows (created when missing), locked until the transaction ends, so claims in
    other processes count leases and take rate slots one after another (SQLite: its one writer)."""
    ordered = sorted(set(endpoint_ids))  # one lock order for every claim: no deadlock between claims
    if not ordered:
        return {}
    conn.execute(
        _ENSURE_BUDGET[conn.dialect.name], [{"endpoint_id": e, "next_slot_at": None} for e in ordered]
    )
    query = (
        select(endpoint_budgets.c.endpoint_id, endpoint_budgets.c.next_slot_at)
        .where(endpoint_budgets.c.endpoint_id.in_(ordered))
        .order_by(endpoint_budgets.c.endpoint_id)
        .with_for_update()
    )
    return {str(row[0]): row[1] for row in conn.execute(query).all()}


_SET_BUDGET = (
    update(endpoint_budgets)
    .where(endpoint_budgets.c.endpoint_id == bindparam("e_id"))
    .values(next_slot_at=bindparam("e_next"))
)


def set_budgets(conn: Connection, next_slots: Mapping[str, datetime]) -> None:
    if next_slots:
        conn.execute(_SET_BUDGET, [{"e_id": e, "e_next": at} for e, at in next_slots.items()])


def coalesce_sync(conn: Connection, connection_id: str, call_id: str, values: Mapping[str, Any]) -> bool:
    """A pending sync of this (connection, call) that no worker holds takes ``values`` (the newer version)
    instead of a second row being queued. False when there is none: the caller inserts one."""
    batch = batches.current(conn)
    if batch is not None:  # a sync the batch queued and has not written yet is pending and free
        for row in batch.outbox.get(call_id, ()):
            free = row["status"] == "pending" and row["lease_owner"] is None
            if row["connection_id"] == connection_id and free:
                row.update(values)
                return True
    result = conn.execute(
        update(deliveries)
        .where(
            deliveries.c.connection_id == connection_id,
            deliveries.c.call_id == call_id,
            deliveries.c.status == "pending",
            deliveries.c.lease_owner.is_(None),
        )
        .values(**values)
    )
    return bool(result.rowcount)


def lease(conn: Connection, ids: Sequence[str], owner: str, until: datetime) -> None:
    if ids:
        conn.execute(
            update(deliveries).where(deliveries.c.id.in_(ids)).values(lease_until=until, lease_owner=owner)
        )


def release(conn: Connection, ids: Sequence[str], owner: str) -> None:
    if ids:
        conn.execute(
            update(deliveries)
            .where(
                deliveries.c.id.in_(ids), deliveries.c.lease_owner == owner, deliveries.c.status == "pending"
            )
            .values(lease_until=None, lease_owner=None)
        )


def next_due(conn: Connection) -> datetime | None:
    query = select(deliveries.c.next_attempt_at).where(deliveries.c.status == "pending")
    return conn.execute(query.order_by(deliveries.c.next_attempt_at).limit(1)).scalar_one_or_none()


_INSERT_ATTEMPT = Prepared(insert(delivery_attempts))


def record_attempt(conn: Connection, values: Mapping[str, Any]) -> None:
    _INSERT_ATTEMPT.execute(conn, values)


_FINISH: dict[tuple[str, ...], Prepared] = {}  # one statement per set of columns (a handful): built once


def finish(conn: Connection, delivery_id: str, owner: str, values: Mapping[str, Any]) -> bool:
    """Applies the outcome, only if this worker still holds the lease (else another one took over)."""
    columns = tuple(sorted(values))
    statement = _FINISH.get(columns)
    if statement is None:
        statement = _FINISH[columns] = Prepared(
            update(deliveries)
            .where(deliveries.c.id == bindparam("w_id"), deliveries.c.lease_owner == bindparam("w_owner"))
            .values(lease_until=None, lease_owner=None, **{c: bindparam(f"v_{c}") for c in columns})
        )
    parameters = {"w_id": delivery_id, "w_owner": owner, **{f"v_{c}": v for c, v in values.items()}}
    return bool(statement.execute(conn, parameters))


_FRESH = {"status": "pending", "attempts": 0, "completed_at": None}


def requeue_dead(conn: Connection, subscription_id: str, since: datetime, now: datetime) -> int:
    """Dead rows of one endpoint created since ``since``: pending, due now, on a fresh schedule (their
    attempts stay logged)."""
    result = conn.execute(
        update(deliveries)
        .where(
            deliveries.c.subscription_id == subscription_id,
            deliveries.c.status == "dead",
            deliveries.c.created_at >= since,
        )
        .values(**_FRESH, next_attempt_at=now, updated_at=now)
    )
    if result.rowcount:
        notify_outbox(conn)
    return int(result.rowcount)


def requeue_one(conn: Connection, tenant_id: str, delivery_id: str, now: datetime) -> bool:
    """One row, whatever its state, pending and due now on a fresh schedule."""
    result = conn.execute(
        update(deliveries)
        .where(deliveries.c.tenant_id == tenant_id, deliveries.c.id == delivery_id)
        .values(**_FRESH, next_attempt_at=now, updated_at=now)
    )
    if result.rowcount:
        notify_outbox(conn)
    return bool(result.rowcount)


def record_operator_event(conn: Connection, values: Mapping[str, Any]) -> None:
    conn.execute(insert(operator_events), dict(values))


# --- reads for the API --------------------------------------------------------------------------------


async def get_delivery(conn: AsyncConnection, tenant_id: str, delivery_id: str) -> RowMapping | None:
    query = select(deliveries).where(deliveries.c.tenant_id == tenant_id, deliveries.c.id == delivery_id)
    return (await conn.execute(query)).mappings().first()


async def list_attempts(conn: AsyncConnection, delivery_id: str) -> Sequence[RowMapping]:
    query = select(delivery_attempts).where(delivery_attempts.c.delivery_id == delivery_id)
    return (await conn.execute(query.order_by(delivery_attempts.c.id))).mappings().all()


async def list_deliveries(
    conn: AsyncConnection,
    tenant_id: str,
    *,
    subscription_id: str | None = None,
    connection_id: str | None = None,
    status: str | None = None,
    call_id: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    before_id: str | None = None,
    limit: int = 50,
) -> Sequence[RowMapping]:
    query = select(deliveries).where(deliveries.c.tenant_id == tenant_id)
    for column, value in (
        (deliveries.c.subscription_id, subscription_id),
        (deliveries.c.connection_id, connection_id),
        (deliveries.c.status, status),
        (deliveries.c.call_id, call_id),
    ):
        if value is not None:
            query = query.where(column == value)
    if since is not None:
        query = query.where(deliveries.c.created_at >= since)
    if until is not None:
        query = query.where(deliveries.c.created_at < until)
    if before_id is not None:
        query = query.where(deliveries.c.id < before_id)
    return (await conn.execute(query.order_by(deliveries.c.id.desc()).limit(limit))).mappings().all()


async def pending_by_kind(conn: AsyncConnection) -> dict[str, tuple[int, datetime | None]]:
    """Waiting deliveries per endpoint kind (``subscription``, ``crm``): (count, oldest created_at)."""
    kind = case((deliveries.c.connection_id.is_not(None), "crm"), else_="subscription").label("kind")
    query = (
        select(kind, func.count(), func.min(deliveries.c.created_at))
        .where(deliveries.c.status == "pending")
        .group_by(kind)
    )
    rows = (await conn.execute(query)).all()
    return {str(r[0]): (int(r[1]), _aware(r[2])) for r in rows}


def _aware(value: Any) -> datetime | None:
    """An aggregate bypasses the column type: SQLite hands back text, PostgreSQL an aware datetime."""
    if value is None:
        return None
    moment: datetime = datetime.fromisoformat(value) if isinstance(value, str) else value
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
