"""Inbound sources: one webhook URL each, with a vendor and a verification configuration."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.store.tables import sources


async def create(conn: AsyncConnection, values: dict[str, Any]) -> None:
    await conn.execute(insert(sources).values(**values))


async def get_active(conn: AsyncConnection, source_id: str) -> RowMapping | None:
    """For the hook path: any tenant's source, unless deleted."""
    query = select(sources).where(sources.c.id == source_id, sources.c.deleted_at.is_(None))
    return (await conn.execute(query)).mappings().first()


async def get(conn: AsyncConnection, tenant_id: str, source_id: str) -> RowMapping | None:
    query = select(sources).where(
        sources.c.tenant_id == tenant_id, sources.c.id == source_id, sources.c.deleted_at.is_(None)
    )
    return (await conn.execute(query)).mappings().first()


async def list_for_tenant(conn: AsyncConnection, tenant_id: str) -> Sequence[RowMapping]:
    query = (
        select(sources)
        .where(sources.c.tenant_id == tenant_id, sources.c.deleted_at.is_(None))
        .order_by(sources.c.id)
    )
    return (await conn.execute(query)).mappings().all()


async def with_pull(conn: AsyncConnection) -> Sequence[RowMapping]:
    """Every tenant's enabled sources that have read-API settings (the periodic reconciliation)."""
    query = (
        select(sources)
        .where(sources.c.pull.is_not(None), sources.c.enabled.is_(True), sources.c.deleted_at.is_(None))
        .order_by(sources.c.id)
    )
    return (await conn.execute(query)).mappings().all()


async def modify(conn: AsyncConnection, tenant_id: str, source_id: str, values: dict[str, Any]) -> bool:
    result = await conn.execute(
        update(sources)
        .where(sources.c.tenant_id == tenant_id, sources.c.id == source_id, sources.c.deleted_at.is_(None))
        .values(**values)
    )
    return bool(result.rowcount)


async def soft_delete(conn: AsyncConnection, tenant_id: str, source_id: str, now: datetime) -> bool:
    """Raw events keep pointing at a deleted source, so it is only marked: its hook URL answers 404."""
    return await modify(conn, tenant_id, source_id, {"deleted_at": now, "enabled": False, "updated_at": now})
