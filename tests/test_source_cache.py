"""The hook path's source cache on a real database: one read per source however many webhooks ask at
once, an expired entry answered while one refresh runs, an older one waited for, invalidation winning over
a load in flight, and a failed read that neither sticks nor drops what was known."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event

from adapters.registry import INBOUND
from gateway.clock import system_clock
from gateway.errors import StorageUnavailable
from gateway.sources import SourceCache
from gateway.store import sources as store
from gateway.store.db import Database
from tests.store.helpers import new_source

pytestmark = pytest.mark.anyio

TTL = 0.5  # the expiry tests sleep 1.2 and 2.2 TTLs: a slow CI loop has 0.3 s of slack


@pytest.fixture
async def db(db_url: str) -> AsyncIterator[Database]:
    database = Database(db_url)
    yield database
    await database.dispose()


def count_source_reads(db: Database) -> list[str]:
    """Every statement the read engine sends that reads the sources table."""
    seen: list[str] = []

    @event.listens_for(db.read_engine.sync_engine, "before_cursor_execute")
    def _count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if "FROM sources" in statement:
            seen.append(statement)

    return seen


async def disable_elsewhere(db: Database, tenant_id: str, source_id: str) -> None:
    """What another process's API call does: the row changes, this process's cache is not told."""
    async with db.writing() as conn:
        await store.modify(conn, tenant_id, source_id, {"enabled": False})


async def test_a_burst_on_a_cold_cache_reads_the_source_once(db: Database) -> None:
    _tenant_id, source_id = await new_source(db, "graph8")
    cache = SourceCache(db, INBOUND, system_clock, 60)
    reads = count_source_reads(db)
    answers = await asyncio.gather(*(cache.get(source_id) for _ in range(50)))
    assert len(reads) == 1
    assert {a.id for a in answers if a is not None} == {source_id}
    assert all(a is answers[0] for a in answers)
    await cache.get(source_id)
    assert len(reads) == 1  # cached


async def test_an_expired_entry_is_answered_while_one_refresh_runs(db: Database) -> None:
    tenant_id, source_id = await new_source(db, "graph8")
    cache = SourceCache(db, INBOUND, system_clock, TTL)
    first = await cache.get(source_id)
    assert first is not None
    assert first.enabled
    await disable_elsewhere(db, tenant_id, source_id)
    reads = count_source_reads(db)
    await asyncio.sleep(TTL * 1.2)  # expired, less than one more TTL ago
    stale = await asyncio.gather(*(cache.get(source_id) for _ in range(20)))
    assert all(s is first for s in stale)  # no webhook waited for the reload
    for _ in range(100):
        await asyncio.sleep(0.01)
        fresh = await cache.get(source_id)
        if fresh is not first:
            break
    assert fresh is not None
    assert not fresh.enabled
    assert len(reads) == 1  # twenty askers, one refresh


async def test_an_entry_older_than_two_ttls_is_waited_for(db: Database) -> None:
    tenant_id, source_id = await new_source(db, "graph8")
    cache = SourceCache(db, INBOUND, system_clock, TTL)
    assert (await cache.get(source_id)) is not None
    await disable_elsewhere(db, tenant_id, source_id)
    await asyncio.sleep(TTL * 2.2)
    fresh = await cache.get(source_id)
    assert fresh is not None
    assert not fresh.enabled


async def test_invalidate_wins_over_a_load_in_flight(db: Database) -> None:
    tenant_id, source_id = await new_source(db, "graph8")
    cache = SourceCache(db, INBOUND, system_clock, 60)
    in_flight = asyncio.ensure_future(cache.get(source_id))
    await asyncio.sleep(0)  # the load has started
    async with db.writing() as conn:  # what sources.modify does: change the row, then invalidate
        await store.modify(conn, tenant_id, source_id, {"enabled": False})
    cache.invalidate(source_id)
    await in_flight  # whatever it read
    after = await cache.get(source_id)
    assert after is not None
    assert not after.enabled


async def test_caching_off_reads_every_time(db: Database) -> None:
    tenant_id, source_id = await new_source(db, "graph8")
    cache = SourceCache(db, INBOUND, system_clock, 0)
    reads = count_source_reads(db)
    await asyncio.gather(*(cache.get(source_id) for _ in range(5)))
    assert len(reads) == 5
    await disable_elsewhere(db, tenant_id, source_id)
    now = await cache.get(source_id)
    assert now is not None
    assert not now.enabled


async def test_unknown_sources_are_cached_as_unknown(db: Database) -> None:
    cache = SourceCache(db, INBOUND, system_clock, 60)
    reads = count_source_reads(db)
    assert await asyncio.gather(*(cache.get("src_missing") for _ in range(10))) == [None] * 10
    assert len(reads) == 1


async def test_a_failed_read_neither_sticks_nor_drops_the_entry(
    tmp_path: Path, sqlite_template: Path
) -> None:
    """A real failure: the SQLite file's directory disappears, so the read reconnects to nothing."""
    folder = tmp_path / "data"
    folder.mkdir()
    shutil.copy(sqlite_template, folder / "callgate.db")
    db = Database(f"sqlite+aiosqlite:///{folder / 'callgate.db'}")
    try:
        _, source_id = await new_source(db, "graph8")
        _, other_id = await new_source(db, "livekit")
        cache = SourceCache(db, INBOUND, system_clock, TTL)
        known = await cache.get(source_id)
        assert known is not None
        await db.read_engine.dispose()
        shutil.rmtree(folder)

        with pytest.raises(StorageUnavailable):
            await cache.get(other_id)  # nothing known: the webhook gets the 503
        with pytest.raises(StorageUnavailable):
            await cache.get(other_id)  # the failure was not cached: it was tried again

        await asyncio.sleep(TTL * 1.2)
        assert await cache.get(source_id) is known  # the refresh fails in the background...
        await asyncio.sleep(0.05)
        assert await cache.get(source_id) is known  # ...and the entry is still answered
    finally:
        await db.dispose()
