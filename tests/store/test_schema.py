"""The migrations build exactly the schema the code queries (no drift between Alembic and tables.py)."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.engine import Connection, make_url

from gateway.store.db import Database
from gateway.store.migrate import alembic_config, downgrade, upgrade
from gateway.store.tables import metadata
from tests.conftest import BACKENDS, PG_URL, _pg_admin

SCRIPTS = ScriptDirectory.from_config(alembic_config("sqlite://"))
REVISIONS = [s.revision for s in reversed(list(SCRIPTS.walk_revisions()))]  # oldest first
HEAD = REVISIONS[-1]

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


async def _revision_and_diff(url: str) -> tuple[str | None, list[object], set[str]]:
    """The revision, the drift from ``tables.py``, and the tables there are."""
    db = Database(url)

    def inspect(connection: Connection) -> tuple[str | None, list[object], set[str]]:
        context = MigrationContext.configure(connection, opts={"compare_type": False})
        tables = set(sa_inspect(connection).get_table_names())
        return context.get_current_revision(), list(compare_metadata(context, metadata)), tables

    try:
        async with db.reading() as conn:
            return await conn.run_sync(inspect)
    finally:
        await db.dispose()


@pytest.mark.parametrize("backend", BACKENDS)
async def test_every_migration_goes_down_and_up_again(backend: str, tmp_path: Path) -> None:
    """Empty → head → base → head, on both databases: each downgrade undoes its upgrade exactly (the schema
    after the second upgrade is the tables', and nothing is left at base)."""
    if backend == "postgres":
        name = f"callgate_migrate_{uuid.uuid4().hex[:12]}"
        await _pg_admin(f'CREATE DATABASE "{name}"')
        assert PG_URL is not None
        url = make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
    else:
        url = f"sqlite+aiosqlite:///{tmp_path / 'round.db'}"
    try:
        await asyncio.to_thread(upgrade, url)
        assert (await _revision_and_diff(url))[:2] == (HEAD, [])
        for step in reversed(REVISIONS[:-1]):  # one step at a time, then to nothing
            await asyncio.to_thread(downgrade, url, step)
            assert (await _revision_and_diff(url))[0] == step
        await asyncio.to_thread(downgrade, url, "base")
        at_base, _, tables = await _revision_and_diff(url)
        assert at_base is None
        assert tables <= {"alembic_version"}  # every table of ours is gone
        await asyncio.to_thread(upgrade, url)
        assert (await _revision_and_diff(url))[:2] == (HEAD, [])
    finally:
        if backend == "postgres":
            await _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
