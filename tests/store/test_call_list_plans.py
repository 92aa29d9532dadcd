"""``GET /v1/calls`` stays a page's work as calls pile up, and so do a group commit's reads. SQLite
answers the list newest first by walking
an index in id order and stopping at the page (0008), and a number's two ends the same way (0009) -
never by reading and sorting every call of the tenant. Plans, not timings."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from sqlalchemy import event, insert
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.outbox import new_row
from gateway.store import calls as call_store
from gateway.store import deliveries as delivery_store
from gateway.store.batch import Batch, attach
from gateway.store.db import Database
from gateway.store.tables import calls, deliveries
from tests.store.helpers import NOW, new_source
from tests.store.test_transaction_cache import subscribed_tenant

pytestmark = pytest.mark.anyio


async def explained(db: Database, run: Callable[[AsyncConnection], Awaitable[Any]]) -> str:
    """The plan of the last statement ``run`` sends (on PostgreSQL a generic plan: the driver prepares
    statements)."""
    async with db.reading() as conn:
        seen: list[tuple[str, Any]] = []

        def capture(_c: Any, _cursor: Any, statement: str, parameters: Any, *_rest: Any) -> None:
            seen.append((statement, parameters))

        assert conn.sync_connection is not None
        event.listen(conn.sync_connection, "before_cursor_execute", capture)
        await run(conn)
        statement, parameters = seen[-1]
        if db.is_sqlite:
            rows = (await conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters)).all()
            return "\n".join(str(row[-1]) for row in rows)
        await conn.exec_driver_sql("SET plan_cache_mode = force_generic_plan")
        rows = (await conn.exec_driver_sql(f"EXPLAIN {statement}", parameters)).all()
        return "\n".join(str(row[0]) for row in rows)


async def plan(db: Database, **filters: Any) -> str:
    return await explained(db, lambda conn: call_store.list_calls(conn, "ten_x", limit=51, **filters))


@pytest.mark.parametrize(
    ("filters", "index"),
    [
        ({}, "ix_calls_tenant_id_id"),
        ({"status": "completed"}, "ix_calls_tenant_id_status_id"),
        ({"vendor": "graph8"}, "ix_calls_tenant_id_id"),
        ({"status": "completed", "vendor": "graph8"}, "ix_calls_tenant_id_status_id"),
        ({"status": "completed", "before_id": "call_01K"}, "ix_calls_tenant_id_status_id"),
        ({"direction": "outbound"}, "ix_calls_tenant_id_id"),
    ],
)
async def test_a_page_walks_an_index_in_its_order(db: Database, filters: dict[str, Any], index: str) -> None:
    if not db.is_sqlite:
        pytest.skip("SQLite's plans")
    shown = await plan(db, **filters)
    assert f"USING INDEX {index}" in shown
    assert "TEMP B-TREE" not in shown  # no sort: the page ends the walk


@pytest.mark.parametrize("filters", [{}, {"status": "completed"}, {"before_id": "call_01K"}])
async def test_a_number_walks_each_end_in_id_order(db: Database, filters: dict[str, Any]) -> None:
    """Each end of a number is walked on its (tenant, number, id) index and stopped at the page (0009):
    a caller id on nearly every call was every call read and sorted (1 s a page on PostgreSQL at 300,000
    calls)."""
    shown = await plan(db, number="+14155550100", **filters)
    if db.is_sqlite:
        for index in ("ix_calls_tenant_id_from_number_id", "ix_calls_tenant_id_to_number_id"):
            assert f"INDEX {index} (" in shown  # (covering when only the id is read)
        assert "SCAN calls" not in shown
        # no sort of the number's calls: each end's order comes from its index; what is sorted is at most
        # the two ends' candidates (2 x the page)
        assert "TEMP B-TREE FOR ORDER BY" not in shown
    else:
        # the index PostgreSQL picks for an end depends on the shared test database's statistics (a status
        # index serves as well: it too is walked newest first); the shape does not: each end is limited
        # to the page before the union
        assert shown.count("Limit") >= 3
        assert "Seq Scan" not in shown.split("Append", 1)[-1]


async def test_the_merge_read_finds_a_call_by_its_key_on_postgresql(db: Database) -> None:
    """Every webhook reads its call by (tenant, vendor, vendor call id) ``FOR UPDATE``. On PostgreSQL, as a
    prepared statement (the driver's generic plan), that must be the unique index: an index on (tenant,
    vendor, id) once made it scan every call of the vendor instead (2,259 rows a webhook at 11,000 calls),
    on a table not yet analyzed, where both indexes cost the same."""
    if db.is_sqlite:
        pytest.skip("PostgreSQL's generic plan")
    tenant = f"ten_plan{id(db)}"
    async with db.writing() as conn:
        await conn.exec_driver_sql(
            "INSERT INTO tenants (id, name, created_at) VALUES ($1, 'plan', now())", (tenant,)
        )
        source = f"src_plan{id(db)}"
        await conn.exec_driver_sql(
            "INSERT INTO sources (id, tenant_id, name, vendor, verification, enabled, created_at, updated_at)"
            " VALUES ($1, $2, 'plan', 'graph8', '{}', true, now(), now())",
            (source, tenant),
        )
        await conn.exec_driver_sql(
            "INSERT INTO calls (id, tenant_id, source_id, vendor, vendor_call_id, status, direction, data,"
            " stamps, version, created_at, updated_at)"
            " SELECT 'call_plan_' || n, $1, $2, 'graph8', 'rm_' || n, 'completed', 'outbound', '{}', '{}', 1,"
            " now(), now() FROM generate_series(1, 3000) AS n",
            (tenant, source),
        )
    async with db.reading() as conn:
        await conn.exec_driver_sql("SET plan_cache_mode = force_generic_plan")
        statement = str(call_store._BY_KEY.statement.compile(dialect=conn.dialect))
        await conn.exec_driver_sql(f"PREPARE merge_read AS {statement}")
        rows = (await conn.exec_driver_sql(f"EXPLAIN EXECUTE merge_read('{tenant}', 'graph8', 'rm_7')")).all()
        shown = "\n".join(str(r[0]) for r in rows)
        await conn.exec_driver_sql("DEALLOCATE merge_read")
    assert "uq_calls_tenant_id_vendor_vendor_call_id" in shown, shown


async def batch_plan(db: Database, read: Callable[[Connection], Any]) -> str:
    """The plan of the last statement ``read`` (a write-side store function) runs."""
    return await explained(db, lambda conn: conn.run_sync(read))


async def seeded(db: Database, count: int = 3000) -> tuple[str, str]:
    """A tenant with ``count`` graph8 calls (a table PostgreSQL has not analyzed)."""
    tenant, source = await new_source(db, "graph8")
    rows = [
        {
            "id": f"call_seed{n:06d}{tenant[-6:]}",
            "tenant_id": tenant,
            "source_id": source,
            "vendor": "graph8",
            "vendor_call_id": f"rm_{n}",
            "status": "completed",
            "direction": "outbound",
            "data": {},
            "stamps": {},
            "version": 1,
            "created_at": NOW,
            "updated_at": NOW,
        }
        for n in range(count)
    ]
    await db.run_write(lambda conn: conn.execute(insert(calls), rows))
    return tenant, source


async def test_a_batch_reads_its_calls_through_the_unique_index(db: Database) -> None:
    """A batch reads every call it names in one statement (``gateway.store.batch``): probes into the
    calls' unique index, never a scan (a row-value ``IN`` made SQLite walk every call: 12 webhooks/s at
    1 M calls)."""
    tenant, _ = await seeded(db)
    keys = [(tenant, "graph8", f"rm_{n}") for n in (7, 70, 700)] + [(tenant, "livekit", "SCL_1")]
    shown = await batch_plan(db, lambda conn: call_store.read_for_merge(conn, keys))
    if db.is_sqlite:
        assert "SEARCH calls USING INDEX sqlite_autoindex_calls_2" in shown, shown
        assert "SCAN calls" not in shown, shown
    else:
        assert "uq_calls_tenant_id_vendor_vendor_call_id" in shown, shown
        assert "Seq Scan on calls" not in shown, shown


async def test_a_batch_asks_for_pending_deliveries_of_its_calls_through_an_index(db: Database) -> None:
    """The in-process worker's head-of-line check, asked once per subscription for a batch's calls: a
    probe per call into the pending rows' index, even behind a backlog of 2,000 of them."""
    tenant, _ = await seeded(db, 2000)
    _, subscription = await subscribed_tenant(db)
    backlog = [
        new_row(
            tenant_id=tenant,
            subscription_id=subscription["id"],
            call_id=f"call_seed{n:06d}{tenant[-6:]}",
            event_type="call.completed",
            call_version=1,
            sequence=32,
            payload=b"{}",
            now=NOW,
        )
        for n in range(2000)
    ]
    await db.run_write(lambda conn: conn.execute(insert(deliveries), backlog))

    def read(conn: Connection) -> None:
        batch = Batch(conn.get_transaction())
        batch.rows = {(tenant, "graph8", f"rm_{n}"): {"id": f"call_seed{n:06d}"} for n in range(3)}
        attach(conn, batch)
        delivery_store.pending_before(conn, subscription["id"], "call_seed000001")

    shown = await batch_plan(db, read)
    if db.is_sqlite:
        assert "ix_deliveries_pending_subscription_line (subscription_id=? AND call_id=?)" in shown, shown
    else:
        # a probe per call of the batch, not a filter over the subscription's pending rows
        conditions = [line for line in shown.splitlines() if "Index Cond" in line]
        assert any("batch_calls.call_id" in line for line in conditions), shown
    assert "SCAN deliveries" not in shown
