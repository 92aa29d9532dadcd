"""A group-commit batch asks for a tenant's active subscriptions once; a write to them in the same
transaction, a rolled-back savepoint, or a new transaction asks again."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.engine import Connection

from gateway import subscriptions as service
from gateway.outbound.ssrf import TargetPolicy
from gateway.store import subscriptions as subscription_store
from gateway.store.db import Database
from gateway.writer import Writer
from tests.store.helpers import new_source

pytestmark = pytest.mark.anyio


def counting(conn: Connection) -> list[str]:
    seen: list[str] = []

    def capture(_c: Any, _cursor: Any, statement: str, *_rest: Any) -> None:
        if "FROM subscriptions" in statement:
            seen.append(statement)

    event.listen(conn, "before_cursor_execute", capture)
    return seen


async def subscribed_tenant(db: Database) -> tuple[str, dict[str, Any]]:
    """A tenant with one enabled subscription."""
    tenant, _ = await new_source(db, "graph8")
    row, _ = await service.create(
        db,
        TargetPolicy(allow_private=True),
        datetime.now(UTC),
        tenant_id=tenant,
        url="http://127.0.0.1:9/h",
        event_types=["call.*"],
    )
    return tenant, row


async def test_active_subscriptions_are_read_once_per_transaction_until_written(db: Database) -> None:
    tenant, row = await subscribed_tenant(db)

    def work(conn: Connection) -> list[int]:
        reads = counting(conn)
        sizes = [len(subscription_store.active_for_tenant(conn, tenant)) for _ in range(3)]
        assert len(reads) == 1
        subscription_store.change(conn, row["id"], {"enabled": False})
        sizes.append(len(subscription_store.active_for_tenant(conn, tenant)))
        assert len(reads) == 2
        return sizes

    assert await db.run_write(work) == [1, 1, 1, 0]

    def again(conn: Connection) -> int:
        return len(subscription_store.active_for_tenant(conn, tenant))

    assert await db.run_write(again) == 0  # a new transaction reads the committed state


async def test_a_rolled_back_job_leaves_no_cached_reads_behind(db: Database) -> None:
    tenant, row = await subscribed_tenant(db)
    writer = Writer(db)
    writer.start()
    try:

        def disables_then_fails(conn: Connection) -> None:
            subscription_store.change(conn, row["id"], {"enabled": False})
            assert subscription_store.active_for_tenant(conn, tenant) == []  # cached: sees its own write
            raise RuntimeError("a bug in this job")

        def reads(conn: Connection) -> int:
            return len(subscription_store.active_for_tenant(conn, tenant))

        failed, seen = await asyncio.gather(
            writer.submit(disables_then_fails), writer.submit(reads), return_exceptions=True
        )
        assert isinstance(failed, RuntimeError)
        assert seen == 1  # the failed job's write was rolled back, and so was what it cached
    finally:
        await writer.stop()
