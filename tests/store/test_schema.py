"""The migrations build exactly the schema the code queries (no drift between Alembic and tables.py)."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy.engine import Connection

from gateway.store.db import Database
from gateway.store.migrate import upgrade
from gateway.store.tables import metadata

pytestmark = pytest.mark.anyio


async def test_migrated_schema_matches_the_tables(db_url: str) -> None:
    db = Database(db_url)

    def diff(connection: Connection) -> list[object]:
        context = MigrationContext.configure(connection, opts={"compare_type": False})
        return list(compare_metadata(context, metadata))

    try:
        async with db.reading() as conn:
            assert await conn.run_sync(diff) == []
    finally:
        await db.dispose()


def test_upgrade_is_idempotent(sqlite_url: str) -> None:
    upgrade(sqlite_url)
    upgrade(sqlite_url)
