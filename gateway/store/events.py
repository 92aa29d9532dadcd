"""Raw vendor events (exact bytes, deduplicated per source) and the quarantine of unreadable ones.

Synchronous Core: these run inside the ingest batch (``Database.run_write``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection, RowMapping

from gateway.store.tables import quarantine, raw_events

_INSERT_RAW = {
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
    return conn.execute(_INSERT_RAW[conn.dialect.name], values).first() is not None


def find_raw_event_id(conn: Connection, source_id: str, event_key: str) -> str | None:
    value = conn.execute(_FIND_RAW, {"source_id": source_id, "event_key": event_key}).scalar_one_or_none()
    return str(value) if value is not None else None


def set_state(conn: Connection, raw_event_id: str, state: str) -> None:
    conn.execute(_SET_STATE, {"raw_id": raw_event_id, "new_state": state})


def pending_for_alias(conn: Connection, tenant_id: str, vendor: str, alias: str) -> Sequence[RowMapping]:
    return conn.execute(_PENDING, {"tenant_id": tenant_id, "vendor": vendor, "alias": alias}).mappings().all()


def insert_quarantine(conn: Connection, values: dict[str, Any]) -> None:
    conn.execute(_INSERT_QUARANTINE, values)
