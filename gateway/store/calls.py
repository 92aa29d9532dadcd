"""Calls, their aliases and their timeline."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, insert, or_, select, update
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.model import CallState
from gateway.store.tables import call_aliases, call_events, calls

_MERGE_COLUMNS = (calls.c.id, calls.c.data, calls.c.stamps, calls.c.version)


async def get_for_merge(
    conn: AsyncConnection, tenant_id: str, vendor: str, vendor_call_id: str
) -> RowMapping | None:
    query = (
        select(*_MERGE_COLUMNS)
        .where(
            calls.c.tenant_id == tenant_id, calls.c.vendor == vendor, calls.c.vendor_call_id == vendor_call_id
        )
        .with_for_update()
    )
    return (await conn.execute(query)).mappings().first()


async def get_by_alias_for_merge(
    conn: AsyncConnection, tenant_id: str, vendor: str, alias: str
) -> RowMapping | None:
    query = (
        select(*_MERGE_COLUMNS)
        .join(call_aliases, call_aliases.c.call_id == calls.c.id)
        .where(
            call_aliases.c.tenant_id == tenant_id,
            call_aliases.c.vendor == vendor,
            call_aliases.c.alias == alias,
        )
        .with_for_update(of=calls)
    )
    return (await conn.execute(query)).mappings().first()


def _columns(state: CallState) -> dict[str, Any]:
    data = state.data
    return {
        "status": data.get("status"),
        "direction": data.get("direction") or "unknown",
        "from_number": data.get("from_number"),
        "to_number": data.get("to_number"),
        "data": data,
        "stamps": state.stamps,
    }


async def insert_call(
    conn: AsyncConnection,
    *,
    call_id: str,
    tenant_id: str,
    source_id: str,
    vendor: str,
    vendor_call_id: str,
    state: CallState,
    now: datetime,
) -> None:
    await conn.execute(
        insert(calls).values(
            id=call_id,
            tenant_id=tenant_id,
            source_id=source_id,
            vendor=vendor,
            vendor_call_id=vendor_call_id,
            version=1,
            created_at=now,
            updated_at=now,
            **_columns(state),
        )
    )


async def update_call(
    conn: AsyncConnection, call_id: str, state: CallState, version: int, now: datetime
) -> None:
    await conn.execute(
        update(calls).where(calls.c.id == call_id).values(version=version, updated_at=now, **_columns(state))
    )


async def insert_alias(conn: AsyncConnection, tenant_id: str, vendor: str, alias: str, call_id: str) -> bool:
    """Claims an alias for a call; the first call to claim it keeps it. True when this call got it."""
    exists = await conn.execute(
        select(call_aliases.c.call_id).where(
            call_aliases.c.tenant_id == tenant_id,
            call_aliases.c.vendor == vendor,
            call_aliases.c.alias == alias,
        )
    )
    if exists.first() is not None:
        return False
    await conn.execute(
        insert(call_aliases).values(tenant_id=tenant_id, vendor=vendor, alias=alias, call_id=call_id)
    )
    return True


async def insert_call_event(conn: AsyncConnection, values: Mapping[str, Any]) -> None:
    await conn.execute(insert(call_events).values(**values))


# --- reads for the API ---------------------------------------------------------------------------


async def get_call(conn: AsyncConnection, tenant_id: str, call_id: str) -> RowMapping | None:
    query = select(calls).where(calls.c.tenant_id == tenant_id, calls.c.id == call_id)
    return (await conn.execute(query)).mappings().first()


async def list_calls(
    conn: AsyncConnection,
    tenant_id: str,
    *,
    status: str | None = None,
    direction: str | None = None,
    vendor: str | None = None,
    number: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    before_id: str | None = None,
    limit: int = 50,
) -> Sequence[RowMapping]:
    conditions = [calls.c.tenant_id == tenant_id]
    if status:
        conditions.append(calls.c.status == status)
    if direction:
        conditions.append(calls.c.direction == direction)
    if vendor:
        conditions.append(calls.c.vendor == vendor)
    if number:
        conditions.append(or_(calls.c.from_number == number, calls.c.to_number == number))
    if since:
        conditions.append(calls.c.created_at >= since)
    if until:
        conditions.append(calls.c.created_at < until)
    if before_id:
        conditions.append(calls.c.id < before_id)
    query = select(calls).where(and_(*conditions)).order_by(calls.c.id.desc()).limit(limit)
    return (await conn.execute(query)).mappings().all()


async def list_call_events(conn: AsyncConnection, tenant_id: str, call_id: str) -> Sequence[RowMapping]:
    query = (
        select(call_events)
        .where(call_events.c.tenant_id == tenant_id, call_events.c.call_id == call_id)
        .order_by(call_events.c.id)
    )
    return (await conn.execute(query)).mappings().all()
