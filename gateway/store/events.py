"""Raw vendor events (exact bytes, deduplicated per source) and the quarantine of unreadable ones."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.store.tables import quarantine, raw_events


async def insert_raw_event(conn: AsyncConnection, values: dict[str, Any]) -> bool:
    """Inserts unless (source, event key) is already stored. True when this call stored it."""
    dialect = conn.dialect.name
    builder = pg_insert if dialect == "postgresql" else sqlite_insert
    statement = (
        builder(raw_events)
        .values(**values)
        .on_conflict_do_nothing(index_elements=["source_id", "event_key"])
        .returning(raw_events.c.id)
    )
    return (await conn.execute(statement)).first() is not None


async def find_raw_event_id(conn: AsyncConnection, source_id: str, event_key: str) -> str | None:
    query = select(raw_events.c.id).where(
        raw_events.c.source_id == source_id, raw_events.c.event_key == event_key
    )
    return (await conn.execute(query)).scalar_one_or_none()


async def set_state(conn: AsyncConnection, raw_event_id: str, state: str) -> None:
    await conn.execute(update(raw_events).where(raw_events.c.id == raw_event_id).values(state=state))


async def pending_for_alias(
    conn: AsyncConnection, tenant_id: str, vendor: str, alias: str
) -> Sequence[RowMapping]:
    query = (
        select(raw_events.c.id, raw_events.c.headers, raw_events.c.body)
        .where(
            raw_events.c.tenant_id == tenant_id,
            raw_events.c.vendor == vendor,
            raw_events.c.link_alias == alias,
            raw_events.c.state == "pending_link",
        )
        .order_by(raw_events.c.id)
    )
    return (await conn.execute(query)).mappings().all()


async def insert_quarantine(conn: AsyncConnection, values: dict[str, Any]) -> None:
    await conn.execute(insert(quarantine).values(**values))
