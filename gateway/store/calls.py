"""Calls, their aliases and their timeline.

The write side is synchronous Core with statements built once at import (the ingest batch runs it, see
``Database.run_write``); the read side serves the API and is async.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ARRAY, Text, and_, bindparam, func, insert, or_, select, union, update
from sqlalchemy.engine import Connection, RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.model import CallState
from gateway.store import batch as batches
from gateway.store.batch import INSERT_CALL, TIMELINE, UPDATE_CALL, CallKey
from gateway.store.prepared import Prepared
from gateway.store.tables import call_aliases, call_events, calls

_MERGE_COLUMNS = (
    calls.c.id,
    calls.c.data,
    calls.c.stamps,
    calls.c.version,
    calls.c.tenant_id,
    calls.c.source_id,
    calls.c.vendor,
    calls.c.vendor_call_id,
    calls.c.created_at,
)
IDENTITY = ("id", "tenant_id", "source_id", "vendor", "vendor_call_id", "created_at")
_BY_KEY = Prepared(
    select(*_MERGE_COLUMNS)
    .where(
        calls.c.tenant_id == bindparam("tenant_id"),
        calls.c.vendor == bindparam("vendor"),
        calls.c.vendor_call_id == bindparam("vendor_call_id"),
    )
    .with_for_update()
)
_BY_ALIAS = (
    select(*_MERGE_COLUMNS)
    .join(call_aliases, call_aliases.c.call_id == calls.c.id)
    .where(
        call_aliases.c.tenant_id == bindparam("tenant_id"),
        call_aliases.c.vendor == bindparam("vendor"),
        call_aliases.c.alias == bindparam("alias"),
    )
    .with_for_update(of=calls)
)
_INSERT_CALL = Prepared(insert(calls))
_UPDATE_CALL = Prepared(update(calls).where(calls.c.id == bindparam("call_id")))
_ALIAS_OWNER = select(call_aliases.c.call_id).where(
    call_aliases.c.tenant_id == bindparam("tenant_id"),
    call_aliases.c.vendor == bindparam("vendor"),
    call_aliases.c.alias == bindparam("alias"),
)
_INSERT_ALIAS = insert(call_aliases)
_INSERT_EVENT = Prepared(insert(call_events))


_KEYS = (
    func.unnest(
        bindparam("tenant_ids", type_=ARRAY(Text)),
        bindparam("vendors", type_=ARRAY(Text)),
        bindparam("vendor_call_ids", type_=ARRAY(Text)),
    )
    .table_valued("tenant_id", "vendor", "vendor_call_id")
    .render_derived(name="batch_keys")
)
# PostgreSQL: the keys as three arrays, joined to the calls: one statement whatever the batch's size, each
# key a probe into the unique index (an ``IN`` list or an ``OR`` of them made the generic plan read every
# call of the tenant)
_BY_KEYS_PG = (
    select(*_MERGE_COLUMNS)
    .join(
        _KEYS,
        and_(
            calls.c.tenant_id == _KEYS.c.tenant_id,
            calls.c.vendor == _KEYS.c.vendor,
            calls.c.vendor_call_id == _KEYS.c.vendor_call_id,
        ),
    )
    .order_by(calls.c.id)  # locked in one order: two processes' batches wait instead of deadlocking
    .with_for_update(of=calls)
)


def read_for_merge(conn: Connection, keys: Sequence[CallKey]) -> dict[CallKey, dict[str, Any]]:
    """A batch's calls in one statement, locked until the commit (``gateway.store.batch``): on PostgreSQL
    a join to the keys; on SQLite one ``vendor_call_id IN (…)`` per (tenant, vendor), each a run of probes
    into the unique index (a row-value ``IN`` made SQLite scan every call: 12 webhooks/s at 1 M calls)."""
    if conn.dialect.name == "postgresql":
        params = {
            "tenant_ids": [k[0] for k in keys],
            "vendors": [k[1] for k in keys],
            "vendor_call_ids": [k[2] for k in keys],
        }
        found = conn.execute(_BY_KEYS_PG, params).mappings()
    else:
        groups: dict[tuple[str, str], list[str]] = {}
        for tenant_id, vendor, vendor_call_id in keys:
            groups.setdefault((tenant_id, vendor), []).append(vendor_call_id)
        either = [
            and_(calls.c.tenant_id == tenant_id, calls.c.vendor == vendor, calls.c.vendor_call_id.in_(ids))
            for (tenant_id, vendor), ids in groups.items()
        ]
        found = conn.execute(select(*_MERGE_COLUMNS).where(or_(*either))).mappings()
    return {(row["tenant_id"], row["vendor"], row["vendor_call_id"]): dict(row) for row in found}


def get_for_merge(
    conn: Connection, tenant_id: str, vendor: str, vendor_call_id: str
) -> Mapping[Any, Any] | None:
    key = (tenant_id, vendor, vendor_call_id)
    batch = batches.current(conn)
    if batch is not None and key in batch.rows:
        return batch.rows[key]  # read with the batch, as the batch's earlier jobs left it
    params = {"tenant_id": tenant_id, "vendor": vendor, "vendor_call_id": vendor_call_id}
    row = _BY_KEY.first(conn, params)
    if batch is not None:
        batch.remember(key, row)
    return row


def get_by_alias_for_merge(
    conn: Connection, tenant_id: str, vendor: str, alias: str
) -> Mapping[Any, Any] | None:
    batches.settle(conn)  # the join reads the calls table: what the batch deferred is written first
    params = {"tenant_id": tenant_id, "vendor": vendor, "alias": alias}
    found = conn.execute(_BY_ALIAS, params).mappings().first()
    batch = batches.current(conn)
    if found is None or batch is None:
        return found
    row = dict(found)
    key = (row["tenant_id"], row["vendor"], row["vendor_call_id"])
    cached = batch.rows.get(key)
    if cached is not None:
        return cached  # the same call as the batch holds it (flushed: the two agree)
    batch.remember(key, row)
    return row


def get_by_id_for_merge(conn: Connection, call_id: str) -> Mapping[Any, Any] | None:
    batches.settle(conn)
    query = select(*_MERGE_COLUMNS).where(calls.c.id == call_id).with_for_update()
    return conn.execute(query).mappings().first()


def raw_event_ids_of_call(conn: Connection, call_id: str) -> list[str]:
    """Every raw event that ever touched the call: its timeline is the list of them."""
    batches.settle(conn)
    query = select(call_events.c.raw_event_id).where(call_events.c.call_id == call_id).distinct()
    return sorted(conn.execute(query).scalars())


def call_ids_of_raw_event(conn: Connection, raw_event_id: str) -> list[str]:
    batches.settle(conn)
    query = select(call_events.c.call_id).where(call_events.c.raw_event_id == raw_event_id).distinct()
    return sorted(conn.execute(query).scalars())


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


def insert_call(
    conn: Connection,
    *,
    call_id: str,
    tenant_id: str,
    source_id: str,
    vendor: str,
    vendor_call_id: str,
    state: CallState,
    now: datetime,
) -> None:
    values = {
        "id": call_id,
        "tenant_id": tenant_id,
        "source_id": source_id,
        "vendor": vendor,
        "vendor_call_id": vendor_call_id,
        "version": 1,
        "created_at": now,
        "updated_at": now,
        **_columns(state),
    }
    batch = batches.current(conn)
    if batch is None:
        _INSERT_CALL.execute(conn, values)
        return
    batch.defer(INSERT_CALL, _INSERT_CALL, values, key=call_id)
    batch.remember((tenant_id, vendor, vendor_call_id), {c.key: values[c.key] for c in _MERGE_COLUMNS})


def update_call(conn: Connection, call_id: str, state: CallState, version: int, now: datetime) -> None:
    values = {"version": version, "updated_at": now, **_columns(state)}
    batch = batches.current(conn)
    key = batch.by_id.get(call_id) if batch is not None else None
    row = batch.rows.get(key) if batch is not None and key is not None else None
    if batch is None or key is None or row is None:  # a call the batch does not hold: written now
        _UPDATE_CALL.execute(conn, {"call_id": call_id, **values})
        return
    # the batch holds this call: its last state is what the flush writes, once
    inserted = batch.deferred(INSERT_CALL, _INSERT_CALL, call_id)
    if inserted is not None:
        inserted.update(values)
    else:
        batch.defer(UPDATE_CALL, _UPDATE_CALL, {"call_id": call_id, **values}, key=call_id)
    batch.rows[key] = {**row, "version": version, "data": state.data, "stamps": state.stamps}


def insert_alias(conn: Connection, tenant_id: str, vendor: str, alias: str, call_id: str) -> bool:
    """Claims an alias for a call; the first call to claim it keeps it. True when this call got it."""
    batches.settle(conn)  # the alias row refers to its call: the call is written first
    params = {"tenant_id": tenant_id, "vendor": vendor, "alias": alias}
    if conn.execute(_ALIAS_OWNER, params).first() is not None:
        return False
    conn.execute(_INSERT_ALIAS, {**params, "call_id": call_id})
    return True


def insert_call_event(conn: Connection, values: dict[str, Any]) -> None:
    batch = batches.current(conn)
    if batch is None:
        _INSERT_EVENT.execute(conn, values)
    else:
        batch.defer(TIMELINE, _INSERT_EVENT, values)


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
    if since:
        conditions.append(calls.c.created_at >= since)
    if until:
        conditions.append(calls.c.created_at < until)
    if before_id:
        conditions.append(calls.c.id < before_id)
    if number:  # the page from its candidates (every filter applied there), by primary key
        conditions = [
            calls.c.tenant_id == tenant_id,
            calls.c.id.in_(_calls_of_number(conditions, number, limit)),
        ]
    query = select(calls).where(and_(*conditions)).order_by(calls.c.id.desc()).limit(limit)
    return (await conn.execute(query)).mappings().all()


def _calls_of_number(conditions: list[Any], number: str, limit: int) -> Any:
    """The page's candidates for a number at either end: each end's first ``limit`` calls, newest first,
    every other filter applied, walked on its (tenant, number, id) index and stopped there (0009). The
    page is in their union: a call among the first ``limit`` of both ends together is among the first
    ``limit`` of its own end. A plain OR read every call of the tenant; the two number indexes without
    ``id`` read and sorted every call of the number (1 s a page on PostgreSQL for a caller id on 300,000
    calls)."""

    def end(column: Any) -> Any:
        first = (
            select(calls.c.id)
            .where(*conditions, column == number)
            .order_by(calls.c.id.desc())
            .limit(limit)
            .subquery()
        )
        return select(first.c.id)

    return union(end(calls.c.from_number), end(calls.c.to_number))


async def list_call_events(conn: AsyncConnection, tenant_id: str, call_id: str) -> Sequence[RowMapping]:
    query = (
        select(call_events)
        .where(call_events.c.tenant_id == tenant_id, call_events.c.call_id == call_id)
        .order_by(call_events.c.id)
    )
    return (await conn.execute(query)).mappings().all()


# --- the live stream (``GET /v1/stream``) ------------------------------------------------------------------


async def changes_after(
    conn: AsyncConnection, tenant_id: str, after_id: str | None, limit: int
) -> Sequence[RowMapping]:
    """Timeline rows, oldest first, after ``after_id`` (ids sort by time); from the first when None."""
    query = (
        select(call_events)
        .where(call_events.c.tenant_id == tenant_id)
        .order_by(call_events.c.id)
        .limit(limit)
    )
    if after_id is not None:
        query = query.where(call_events.c.id > after_id)
    return (await conn.execute(query)).mappings().all()


async def latest_change_id(conn: AsyncConnection, tenant_id: str) -> str | None:
    query = select(func.max(call_events.c.id)).where(call_events.c.tenant_id == tenant_id)
    value = (await conn.execute(query)).scalar_one_or_none()
    return str(value) if value is not None else None


async def calls_by_ids(conn: AsyncConnection, tenant_id: str, ids: Sequence[str]) -> dict[str, RowMapping]:
    if not ids:
        return {}
    query = select(calls).where(calls.c.tenant_id == tenant_id, calls.c.id.in_(ids))
    return {row["id"]: row for row in (await conn.execute(query)).mappings().all()}
