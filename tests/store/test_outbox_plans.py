"""The worker's queries stay cheap as the backlog grows: SQLite answers them from the partial indexes over
pending rows (a claim walks due rows in order and stops at its limit; the per-call order check is one
probe), never by scanning every pending row per candidate. Plans, not timings."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import create_engine, event
from sqlalchemy.engine import Connection

from gateway.store import deliveries as delivery_store


@pytest.fixture
def conn(sqlite_url: str) -> Iterator[Connection]:
    engine = create_engine(sqlite_url.replace("sqlite+aiosqlite", "sqlite"))
    with engine.connect() as connection:
        yield connection
    engine.dispose()


def plan_of(conn: Connection, query: Callable[[Connection], Any]) -> str:
    """The query plan of every statement ``query`` runs, as SQLite prints it."""
    statements: list[tuple[str, Any]] = []

    def capture(_c: Any, _cursor: Any, statement: str, parameters: Any, _ctx: Any, _many: bool) -> None:
        statements.append((statement, parameters))

    event.listen(conn, "before_cursor_execute", capture)
    try:
        query(conn)
    finally:
        event.remove(conn, "before_cursor_execute", capture)
    lines = []
    for statement, parameters in statements:
        rows = conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters).all()
        lines += [str(row[-1]) for row in rows]
    return "\n".join(lines)


NOW = datetime(2026, 12, 2, tzinfo=UTC)


@pytest.mark.parametrize(
    ("name", "query", "due_index", "line_index"),
    [
        (
            "subscriptions",
            lambda c: delivery_store.claim(c, now=NOW, limit=200),
            "ix_deliveries_pending_subscription_due",
            "ix_deliveries_pending_subscription_line",
        ),
        (
            "connections",
            lambda c: delivery_store.claim_syncs(c, now=NOW, limit=200, concurrency=4),
            "ix_deliveries_pending_connection_due",
            "ix_deliveries_pending_connection_line",
        ),
    ],
)
def test_a_claim_walks_the_pending_indexes(
    conn: Connection, name: str, query: Callable[[Connection], Any], due_index: str, line_index: str
) -> None:
    plan = plan_of(conn, query)
    assert f"deliveries USING INDEX {due_index}" in plan, plan
    assert f"earlier USING INDEX {line_index}" in plan, plan  # the per-call order check: one probe
    assert "TEMP B-TREE" not in plan, plan  # due rows come in order: the limit stops the walk


def test_the_per_call_order_check_at_enqueue_is_one_probe(conn: Connection) -> None:
    plan = plan_of(conn, lambda c: delivery_store.pending_before(c, "sub_x", "call_x"))
    assert "USING INDEX ix_deliveries_pending_subscription_line" in plan, plan
