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
        ({"vendor": "graph8"}, "ix_calls_tenant_id_vendor_id"),
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
