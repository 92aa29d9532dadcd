"""Prepared statements on the driver's cursor: the same rows, types and errors as ``Connection.execute``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import bindparam, event, insert, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from gateway.errors import StorageUnavailable
from gateway.store.db import Database
from gateway.store.prepared import Prepared
from gateway.store.tables import kv, raw_events
from tests.store.helpers import new_source

pytestmark = pytest.mark.anyio

WHEN = datetime(2026, 12, 3, 14, 30, 15, 123456, tzinfo=UTC)

INSERT = Prepared(insert(raw_events))
BY_ID = Prepared(
    select(
        raw_events.c.id, raw_events.c.headers, raw_events.c.received_at, raw_events.c.body, raw_events.c.state
    ).where(raw_events.c.id == bindparam("raw_id"), raw_events.c.state != "gone")
)
SET_STATE = Prepared(
    update(raw_events).where(raw_events.c.id == bindparam("raw_id")).values(state=bindparam("s"))
)


def raw(source: tuple[str, str], n: int) -> dict[str, Any]:
    tenant, source_id = source
    return {
        "id": f"evt_prep_{n}",
        "tenant_id": tenant,
        "source_id": source_id,
        "vendor": "graph8",
        "event_key": f"key-{n}",
        "event_type": "call.completed",
        "state": "applied",
        "link_alias": None,
        "occurred_at": None,
        "received_at": WHEN + timedelta(seconds=n),
        "headers": {"webhook-id": f"m{n}", "nested": {"ü": [1, 2.5, None]}},
        "body": b'\x00{"a": 1}',
    }


async def test_rows_written_directly_read_back_the_same_through_sqlalchemy(db: Database) -> None:
    source = await new_source(db, "graph8")

    def work(conn: Connection) -> tuple[Any, ...]:
        INSERT.executemany(conn, [raw(source, 1), raw(source, 2)])
        INSERT.execute(conn, raw(source, 3))
        changed = SET_STATE.execute(conn, {"raw_id": "evt_prep_2", "s": "pending_link"})
        missing = SET_STATE.execute(conn, {"raw_id": "evt_nobody", "s": "applied"})
        direct = [BY_ID.first(conn, {"raw_id": f"evt_prep_{n}"}) for n in (1, 2, 3)]
        nothing = BY_ID.first(conn, {"raw_id": "evt_nobody"})
        columns = (raw_events.c.id, raw_events.c.headers, raw_events.c.received_at, raw_events.c.body)
        query = (
            select(*columns, raw_events.c.state)
            .where(raw_events.c.id.like("evt_prep_%"))
            .order_by(raw_events.c.id)
        )
        through = [dict(r) for r in conn.execute(query).mappings()]
        return changed, missing, direct, nothing, through

    changed, missing, direct, nothing, through = await db.run_write(work)
    assert (changed, missing, nothing) == (1, 0, None)
    assert direct == through
    assert [r["received_at"] for r in direct] == [WHEN + timedelta(seconds=n) for n in (1, 2, 3)]
    assert direct[0]["received_at"].tzinfo is not None
    assert direct[0]["headers"] == {"webhook-id": "m1", "nested": {"ü": [1, 2.5, None]}}
    assert bytes(direct[0]["body"]) == b'\x00{"a": 1}'
    assert [r["state"] for r in direct] == ["applied", "pending_link", "applied"]


async def test_a_driver_error_is_sqlalchemys_and_keeps_the_transaction_usable_after_a_savepoint(
    db: Database,
) -> None:
    source = await new_source(db, "graph8")
    put = Prepared(insert(kv))

    def work(conn: Connection) -> str:
        INSERT.execute(conn, raw(source, 10))
        # the writer retries an IntegrityError and quarantines other errors: it must be SQLAlchemy's
        with pytest.raises(IntegrityError) as caught, conn.begin_nested():
            INSERT.execute(conn, raw(source, 10))
        assert "body" in str(caught.value)  # the parameters' names, never their values
        assert "\x00" not in str(caught.value)
        put.execute(conn, {"key": "after", "value": "v"})
        return str(conn.execute(select(kv.c.value).where(kv.c.key == "after")).scalar_one())

    assert await db.run_write(work) == "v"


async def test_a_cursor_listener_sees_every_statement(db: Database) -> None:
    """Tests capture statements with ``before_cursor_execute``: with a listener the statement goes through
    SQLAlchemy, so they see it."""
    source = await new_source(db, "graph8")
    seen: list[str] = []

    def work(conn: Connection) -> None:
        def capture(_c: Any, _cursor: Any, statement: str, *_rest: Any) -> None:
            seen.append(statement)

        event.listen(conn, "before_cursor_execute", capture)
        try:
            INSERT.execute(conn, raw(source, 20))
            assert BY_ID.first(conn, {"raw_id": "evt_prep_20"}) is not None
        finally:
            event.remove(conn, "before_cursor_execute", capture)

    await db.run_write(work)
    assert len(seen) == 2
    assert seen[0].startswith("INSERT INTO raw_events")


async def test_a_storage_error_on_the_driver_is_a_503_and_the_next_write_works(db: Database) -> None:
    """SQLite: a statement the database cannot run (its table is gone) leaves as SQLAlchemy's
    ``OperationalError``, which ``Database`` answers as ``StorageUnavailable`` (the vendor retries)."""
    if not db.is_sqlite:
        pytest.skip("SQLite's OperationalError")
    put = Prepared(insert(kv))

    def work(conn: Connection) -> None:
        conn.exec_driver_sql("DROP TABLE kv")  # rolled back with the failed transaction
        put.execute(conn, {"key": "gone", "value": "v"})

    with pytest.raises(StorageUnavailable):
        await db.run_write(work)
    await db.run_write(lambda conn: put.execute(conn, {"key": f"back-{id(db)}", "value": "v"}))


async def test_a_connection_that_dies_under_a_statement_is_a_503_and_is_replaced(db: Database) -> None:
    """PostgreSQL: the server ends the connection while the driver-level statement is on it; the error
    leaves as SQLAlchemy's error (the connection invalidated), which answers 503, and the next write gets a
    live connection."""
    if db.is_sqlite:
        pytest.skip("a PostgreSQL backend to terminate")
    import asyncpg
    from sqlalchemy.engine import make_url
    from sqlalchemy.util import await_only

    url = make_url(db.url)
    admin = await asyncpg.connect(
        host=url.host, port=url.port or 5432, user=url.username, database=url.database
    )
    put = Prepared(insert(kv))

    def work(conn: Connection) -> None:
        pid = conn.exec_driver_sql("SELECT pg_backend_pid()").scalar_one()
        await_only(admin.execute("SELECT pg_terminate_backend($1)", pid))
        put.execute(conn, {"key": f"dead-{id(db)}", "value": "v"})

    try:
        with pytest.raises(StorageUnavailable):
            await db.run_write(work)
        key = f"after-{id(db)}"
        await db.run_write(lambda conn: put.execute(conn, {"key": key, "value": "v"}))
        async with db.reading() as conn:
            assert (await conn.execute(select(kv.c.value).where(kv.c.key == key))).scalar_one() == "v"
    finally:
        await admin.close()
