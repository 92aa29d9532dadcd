"""``GET /v1/calls`` stays a page's work as calls pile up: SQLite answers the list newest first by walking
an index in id order and stopping at the page (0008), and a number through the two number indexes -
never by reading and sorting every call of the tenant. Plans, not timings."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import event

from gateway.store import calls as call_store
from gateway.store.db import Database

pytestmark = pytest.mark.anyio


async def plan(db: Database, **filters: Any) -> str:
    async with db.reading() as conn:
        seen: list[tuple[str, Any]] = []

        def capture(_c: Any, _cursor: Any, statement: str, parameters: Any, *_rest: Any) -> None:
            seen.append((statement, parameters))

        assert conn.sync_connection is not None
        event.listen(conn.sync_connection, "before_cursor_execute", capture)
        await call_store.list_calls(conn, "ten_x", limit=51, **filters)
        statement, parameters = seen[-1]
        rows = (await conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters)).all()
        return "\n".join(str(row[-1]) for row in rows)


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


async def test_a_number_is_found_through_the_number_indexes(db: Database) -> None:
    if not db.is_sqlite:
        pytest.skip("SQLite's plans")
    shown = await plan(db, number="+14155550100", status="completed")
    assert "ix_calls_tenant_id_from_number" in shown
    assert "ix_calls_tenant_id_to_number" in shown
    assert "SCAN calls" not in shown


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
