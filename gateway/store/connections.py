"""The ``connections`` and ``crm_records`` tables: CRM accounts of a tenant, and where each call lives in
each CRM (the mapping that makes a call one CRM record)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, func, insert, select, update
from sqlalchemy.engine import Connection, RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.store.db import forget, once_per_transaction
from gateway.store.tables import calls, connections, crm_records

_ACTIVE = select(connections.c.id, connections.c.options).where(
    connections.c.tenant_id == bindparam("tenant_id"),
    connections.c.enabled.is_(True),
    connections.c.deleted_at.is_(None),
)


def _live(tenant_id: str, connection_id: str) -> Any:
    return select(connections).where(
        connections.c.tenant_id == tenant_id,
        connections.c.id == connection_id,
        connections.c.deleted_at.is_(None),
    )


def active_for_tenant(conn: Connection, tenant_id: str) -> Sequence[RowMapping]:
    """The ingest path's question: which enabled CRM connections of this tenant may want a change.

    Asked once per tenant per transaction (a batch of webhooks reads it once); the writes below drop it."""
    return once_per_transaction(
        conn,
        ("connections", tenant_id),
        lambda: conn.execute(_ACTIVE, {"tenant_id": tenant_id}).mappings().all(),
    )


def insert_one(conn: Connection, values: Mapping[str, Any]) -> None:
    forget(conn, "connections")
    conn.execute(insert(connections), dict(values))


def lock(conn: Connection, tenant_id: str, connection_id: str) -> RowMapping | None:
    return conn.execute(_live(tenant_id, connection_id).with_for_update()).mappings().first()


def change(conn: Connection, connection_id: str, values: Mapping[str, Any]) -> None:
    forget(conn, "connections")
    conn.execute(update(connections).where(connections.c.id == connection_id).values(**values))


def by_id(conn: Connection, connection_id: str) -> RowMapping | None:
    """Deleted or not: the worker's view of the connection a row belongs to."""
    return conn.execute(select(connections).where(connections.c.id == connection_id)).mappings().first()


async def get(conn: AsyncConnection, tenant_id: str, connection_id: str) -> RowMapping | None:
    return (await conn.execute(_live(tenant_id, connection_id))).mappings().first()


async def list_for_tenant(
    conn: AsyncConnection, tenant_id: str, *, before_id: str | None = None, limit: int = 50
) -> Sequence[RowMapping]:
    query = select(connections).where(
        connections.c.tenant_id == tenant_id, connections.c.deleted_at.is_(None)
    )
    if before_id is not None:
        query = query.where(connections.c.id < before_id)
    return (await conn.execute(query.order_by(connections.c.id.desc()).limit(limit))).mappings().all()


# --- crm_records -------------------------------------------------------------------------------------


def get_record(conn: Connection, connection_id: str, call_id: str) -> RowMapping | None:
    query = select(crm_records).where(
        crm_records.c.connection_id == connection_id, crm_records.c.call_id == call_id
    )
    return conn.execute(query).mappings().first()


def save_record(conn: Connection, values: Mapping[str, Any]) -> None:
    """Insert or replace the mapping of one (connection, call); the caller holds the row's lease."""
    changed = conn.execute(
        update(crm_records)
        .where(
            crm_records.c.connection_id == values["connection_id"],
            crm_records.c.call_id == values["call_id"],
        )
        .values(**{k: v for k, v in values.items() if k not in ("connection_id", "call_id")})
    )
    if not changed.rowcount:
        conn.execute(insert(crm_records), dict(values))


async def count_records(conn: AsyncConnection, connection_id: str) -> int:
    query = select(func.count()).select_from(crm_records).where(crm_records.c.connection_id == connection_id)
    return int((await conn.execute(query)).scalar_one())


async def list_records(
    conn: AsyncConnection,
    tenant_id: str,
    connection_id: str,
    *,
    before_call_id: str | None = None,
    limit: int = 50,
) -> Sequence[RowMapping]:
    query = select(crm_records).where(
        crm_records.c.tenant_id == tenant_id, crm_records.c.connection_id == connection_id
    )
    if before_call_id is not None:
        query = query.where(crm_records.c.call_id < before_call_id)
    return (await conn.execute(query.order_by(crm_records.c.call_id.desc()).limit(limit))).mappings().all()


def calls_changed_since(conn: Connection, tenant_id: str, since: datetime) -> Sequence[RowMapping]:
    """For a resync: every call of the tenant changed since ``since`` (id, version, status)."""
    query = select(calls.c.id, calls.c.version, calls.c.data).where(
        calls.c.tenant_id == tenant_id, calls.c.updated_at >= since
    )
    return conn.execute(query.order_by(calls.c.id)).mappings().all()


async def sync_context(
    conn: AsyncConnection, connection_id: str, call_id: str
) -> tuple[RowMapping | None, RowMapping | None, RowMapping | None]:
    """What the worker needs to sync one call: the connection, the call, and where it lives in the CRM."""
    connection = (
        (await conn.execute(select(connections).where(connections.c.id == connection_id))).mappings().first()
    )
    call = (await conn.execute(select(calls).where(calls.c.id == call_id))).mappings().first()
    record = (
        (
            await conn.execute(
                select(crm_records).where(
                    crm_records.c.connection_id == connection_id, crm_records.c.call_id == call_id
                )
            )
        )
        .mappings()
        .first()
    )
    return connection, call, record
