"""Raw vendor events (exact bytes, deduplicated per source) and the quarantine of unreadable ones.

Synchronous Core: these run inside the ingest batch (``Database.run_write``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, func, insert, select, tuple_, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection, RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.store import batch as batches
from gateway.store.prepared import Prepared
from gateway.store.tables import quarantine, raw_events

_INSERT_RAW = {
    name: Prepared(
        builder(raw_events)
        .on_conflict_do_nothing(index_elements=["source_id", "event_key"])
        .returning(raw_events.c.id)
    )
    for name, builder in (("postgresql", pg_insert), ("sqlite", sqlite_insert))
}
_INSERT_RAW_MANY = {
    name: builder(raw_events)
    .on_conflict_do_nothing(index_elements=["source_id", "event_key"])
    .returning(raw_events.c.id)
    for name, builder in (("postgresql", pg_insert), ("sqlite", sqlite_insert))
}
_FIND_RAW = select(raw_events.c.id).where(
    raw_events.c.source_id == bindparam("source_id"), raw_events.c.event_key == bindparam("event_key")
)
_SET_STATE = (
    update(raw_events).where(raw_events.c.id == bindparam("raw_id")).values(state=bindparam("new_state"))
)
_PENDING = (
    select(raw_events.c.id, raw_events.c.headers, raw_events.c.body)
    .where(
        raw_events.c.tenant_id == bindparam("tenant_id"),
        raw_events.c.vendor == bindparam("vendor"),
        raw_events.c.link_alias == bindparam("alias"),
        raw_events.c.state == "pending_link",
    )
    .order_by(raw_events.c.id)
)
_INSERT_QUARANTINE = insert(quarantine)


def insert_raw_event(conn: Connection, values: dict[str, Any]) -> bool:
    """Inserts unless (source, event key) is already stored. True when this call stored it."""
    return _INSERT_RAW[conn.dialect.name].first(conn, values) is not None


def insert_raw_events(conn: Connection, rows: Sequence[Mapping[str, Any]]) -> set[str]:
    """A batch's raw events in one statement (SQLAlchemy's multi-row ``VALUES``), each unless its (source,
    event key) is stored already or came earlier in ``rows``. Returns the ids it stored."""
    result = conn.execute(_INSERT_RAW_MANY[conn.dialect.name], [dict(r) for r in rows])
    return {str(value) for value in result.scalars()}


def find_raw_event_id(conn: Connection, source_id: str, event_key: str) -> str | None:
    value = conn.execute(_FIND_RAW, {"source_id": source_id, "event_key": event_key}).scalar_one_or_none()
    return str(value) if value is not None else None


def set_state(conn: Connection, raw_event_id: str, state: str) -> None:
    conn.execute(_SET_STATE, {"raw_id": raw_event_id, "new_state": state})


def pending_for_alias(conn: Connection, tenant_id: str, vendor: str, alias: str) -> Sequence[RowMapping]:
    params = {"tenant_id": tenant_id, "vendor": vendor, "alias": alias}
    found = conn.execute(_PENDING, params).mappings().all()
    ahead = batches.ahead(conn)
    return [row for row in found if row["id"] not in ahead] if ahead else found


def insert_quarantine(conn: Connection, values: dict[str, Any]) -> None:
    conn.execute(_INSERT_QUARANTINE, values)


# --- replay: re-reading what was stored -------------------------------------------------------------


def raw_events_page(
    conn: Connection,
    *,
    source_id: str | None,
    since: datetime | None,
    after: tuple[datetime, str] | None,
    limit: int,
) -> Sequence[RowMapping]:
    """Stored raw events in arrival order, a page at a time (keyset on ``(received_at, id)``)."""
    query = select(raw_events).order_by(raw_events.c.received_at, raw_events.c.id).limit(limit)
    if source_id is not None:
        query = query.where(raw_events.c.source_id == source_id)
    if since is not None:
        query = query.where(raw_events.c.received_at >= since)
    if after is not None:
        query = query.where(tuple_(raw_events.c.received_at, raw_events.c.id) > tuple_(*after))
    return conn.execute(query).mappings().all()


def raw_events_by_id(conn: Connection, ids: Sequence[str]) -> Sequence[RowMapping]:
    if not ids:
        return []
    return conn.execute(select(raw_events).where(raw_events.c.id.in_(ids))).mappings().all()


def unresolved_quarantine(
    conn: Connection, *, source_id: str | None, since: datetime | None, after: str | None, limit: int
) -> Sequence[RowMapping]:
    query = (
        select(quarantine).where(quarantine.c.resolved_at.is_(None)).order_by(quarantine.c.id).limit(limit)
    )
    if source_id is not None:
        query = query.where(quarantine.c.source_id == source_id)
    if since is not None:
        query = query.where(quarantine.c.received_at >= since)
    if after is not None:
        query = query.where(quarantine.c.id > after)
    return conn.execute(query).mappings().all()


def resolve_quarantine(conn: Connection, quarantine_id: str, now: datetime) -> None:
    conn.execute(update(quarantine).where(quarantine.c.id == quarantine_id).values(resolved_at=now))


def quarantine_for_replay(conn: Connection, tenant_id: str, quarantine_id: str) -> RowMapping | None:
    query = select(quarantine).where(quarantine.c.tenant_id == tenant_id, quarantine.c.id == quarantine_id)
    return conn.execute(query).mappings().first()


# --- the API's reads ------------------------------------------------------------------------------------

_QUARANTINE_SUMMARY = [c for c in quarantine.c if c.name not in ("headers", "body")]


async def list_quarantine(
    conn: AsyncConnection,
    tenant_id: str,
    *,
    source_id: str | None,
    resolved: bool | None,
    before_id: str | None,
    limit: int,
) -> Sequence[RowMapping]:
    """Newest first, without headers and bodies (``get_quarantine`` has them)."""
    query = (
        select(*_QUARANTINE_SUMMARY, func.length(quarantine.c.body).label("size"))
        .where(quarantine.c.tenant_id == tenant_id)
        .order_by(quarantine.c.id.desc())
        .limit(limit)
    )
    if source_id is not None:
        query = query.where(quarantine.c.source_id == source_id)
    if resolved is not None:
        query = query.where(
            quarantine.c.resolved_at.is_not(None) if resolved else quarantine.c.resolved_at.is_(None)
        )
    if before_id is not None:
        query = query.where(quarantine.c.id < before_id)
    return (await conn.execute(query)).mappings().all()


async def get_quarantine(conn: AsyncConnection, tenant_id: str, quarantine_id: str) -> RowMapping | None:
    query = select(quarantine).where(quarantine.c.tenant_id == tenant_id, quarantine.c.id == quarantine_id)
    return (await conn.execute(query)).mappings().first()


async def count_open_quarantine(conn: AsyncConnection) -> int:
    query = select(func.count()).where(quarantine.c.resolved_at.is_(None))
    return int((await conn.execute(query)).scalar_one())


# --- the web console's reads ----------------------------------------------------------------------------


async def raw_event_bodies(conn: AsyncConnection, tenant_id: str, ids: Sequence[str]) -> Sequence[RowMapping]:
    """The tenant's raw events among ``ids`` (a call's timeline names them), with their bodies but not
    their headers: a bearer-verified source's headers carry its secret, and the console shows these."""
    if not ids:
        return []
    query = select(
        raw_events.c.id,
        raw_events.c.event_type,
        raw_events.c.received_at,
        raw_events.c.body,
    ).where(raw_events.c.tenant_id == tenant_id, raw_events.c.id.in_(ids))
    return (await conn.execute(query)).mappings().all()
