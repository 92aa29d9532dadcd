"""Group commit: shared transactions, one job's failure stays its own, a failed commit fails everyone."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import func, insert, select
from sqlalchemy.engine import Connection

from gateway.errors import StorageUnavailable
from gateway.store.db import Database
from gateway.store.migrate import upgrade
from gateway.store.tables import kv
from gateway.writer import Writer

pytestmark = pytest.mark.anyio


def put(key: str) -> Callable[[Connection], str]:
    def work(conn: Connection) -> str:
        conn.execute(insert(kv).values(key=key, value="v"))
        return key

    return work


async def keys(db: Database) -> int:
    async with db.reading() as conn:
        return int((await conn.execute(select(func.count()).select_from(kv))).scalar_one())


async def test_concurrent_jobs_share_batches_and_all_commit(db: Database, writer: Writer) -> None:
    before = await keys(db)
    results = await asyncio.gather(
        *(writer.submit(put(f"k{os.getpid()}-{i}-{id(writer)}")) for i in range(200))
    )
    assert len(set(results)) == 200
    assert await keys(db) == before + 200
    assert writer.jobs == 200
    assert writer.batches < 200  # concurrent submissions were grouped into fewer transactions


async def test_a_failing_job_fails_alone(db: Database, writer: Writer) -> None:
    before = await keys(db)
    tag = f"{id(writer)}"

    def boom(conn: Connection) -> None:
        conn.execute(insert(kv).values(key=f"half-{tag}", value="v"))
        raise RuntimeError("a bug in one job")

    outcomes = await asyncio.gather(
        writer.submit(put(f"a-{tag}")),
        writer.submit(boom),
        writer.submit(put(f"b-{tag}")),
        return_exceptions=True,
    )
    assert outcomes[0] == f"a-{tag}"
    assert outcomes[2] == f"b-{tag}"
    assert isinstance(outcomes[1], RuntimeError)
    assert await keys(db) == before + 2  # the failing job's own insert was rolled back with its savepoint


async def test_duplicate_key_job_gets_its_integrity_failure_reported_as_retryable(
    db: Database, writer: Writer
) -> None:
    key = f"dup-{id(writer)}"
    await writer.submit(put(key))
    with pytest.raises(StorageUnavailable):
        await writer.submit(put(key))


def make_unreachable(db_file: Path) -> None:
    """The database file and its WAL are gone and a directory stands in their place: every open fails."""
    for path in db_file.parent.iterdir():
        path.unlink()
    db_file.mkdir()


async def test_unreachable_database_fails_every_job_then_recovers(sqlite_url: str) -> None:
    db = Database(sqlite_url)
    writer = Writer(db)
    writer.start()
    db_file = Path(sqlite_url.split("///", 1)[1])
    try:
        make_unreachable(db_file)  # before the writer's first connection
        outcomes = await asyncio.gather(
            *(writer.submit(put(f"x{i}")) for i in range(5)), return_exceptions=True
        )
        assert all(isinstance(o, StorageUnavailable) for o in outcomes), outcomes
        assert writer.running  # the writer survives...
        await asyncio.to_thread(db_file.rmdir)
        await asyncio.to_thread(upgrade, sqlite_url)
        assert await writer.submit(put("back")) == "back"  # ...and serves again once storage is back
    finally:
        await writer.stop()
        await db.dispose()


async def test_submit_without_a_running_writer_is_storage_unavailable(sqlite_url: str) -> None:
    db = Database(sqlite_url)
    try:
        with pytest.raises(StorageUnavailable):
            await Writer(db).submit(put("x"))
    finally:
        await db.dispose()


async def test_a_caller_that_goes_away_still_gets_its_job_committed(db: Database, writer: Writer) -> None:
    before = await keys(db)
    caller = asyncio.ensure_future(writer.submit(put(f"hung-up-{id(writer)}")))
    await asyncio.sleep(0)  # the job is queued
    caller.cancel()  # the vendor hung up before the answer
    with pytest.raises(asyncio.CancelledError):
        await caller
    await writer.stop()  # drains the queue
    assert await keys(db) == before + 1


async def test_a_batch_aborted_by_a_deadlock_with_another_process_runs_again_whole(
    postgres_url: str,
) -> None:
    """Two processes' transactions lock the same rows in opposite orders; PostgreSQL aborts one. When it is
    the writer's, its batch runs again in a new transaction: the job succeeds, nothing is blamed on it."""
    import asyncpg
    from sqlalchemy import update
    from sqlalchemy.engine import make_url

    a, b = f"dl-a-{os.getpid()}-{id(object())}", f"dl-b-{os.getpid()}-{id(object())}"
    db = Database(postgres_url)
    writer = Writer(db, max_batch=8)
    writer.start()
    url = make_url(postgres_url)
    other = await asyncpg.connect(
        host=url.host, port=url.port or 5432, user=url.username, database=url.database
    )
    try:
        await db.run_write(
            lambda conn: conn.execute(insert(kv), [{"key": a, "value": "0"}, {"key": b, "value": "0"}])
        )
        await other.execute(
            "SET deadlock_timeout = '30s'"
        )  # so the writer's session is the one that detects it
        runs = []

        def work(conn: Connection) -> str:
            runs.append(1)
            conn.execute(update(kv).where(kv.c.key == a).values(value="writer"))
            conn.execute(update(kv).where(kv.c.key == b).values(value="writer"))  # waits for the other
            return "done"

        transaction = other.transaction()
        await transaction.start()
        await other.execute("UPDATE kv SET value = 'other' WHERE key = $1", b)
        job = asyncio.ensure_future(writer.submit(work))
        await asyncio.sleep(0.3)  # the writer holds a and waits for b
        await other.execute("UPDATE kv SET value = 'other' WHERE key = $1", a)  # the cycle: one must go
        await transaction.commit()
        assert await job == "done"
        assert len(runs) >= 2  # aborted once, then run again in a new transaction
        async with db.reading() as conn:
            values = dict(
                (await conn.execute(select(kv.c.key, kv.c.value).where(kv.c.key.in_([a, b])))).all()
            )
        assert values == {a: "writer", b: "writer"}  # it ran after the other committed
    finally:
        await other.close()
        await writer.stop()
        await db.dispose()


async def test_lanes_run_batches_at_once_on_postgresql_and_keep_one_keys_jobs_in_order(
    postgres_url: str,
) -> None:
    """PostgreSQL: several batches in flight, each on its own connection; the jobs of one key share a lane,
    so they run in the order they were submitted."""
    from sqlalchemy import text

    db = Database(postgres_url)
    writer = Writer(db, max_batch=4, lanes=3)
    writer.start()
    ran: list[tuple[str, int]] = []
    flying = [0, 0]  # now, most

    def job(key: str, n: int) -> Callable[[Connection], str]:
        def work(conn: Connection) -> str:
            flying[0] += 1
            flying[1] = max(flying)
            conn.execute(text("SELECT pg_sleep(0.005)"))  # a round trip: another lane's batch runs meanwhile
            flying[0] -= 1
            ran.append((key, n))
            conn.execute(insert(kv).values(key=f"lane-{os.getpid()}-{id(writer)}-{key}-{n}", value="v"))
            return key

        return work

    try:
        jobs = [(f"call{k}", n) for n in range(6) for k in range(8)]
        results = await asyncio.gather(*(writer.submit(job(k, n), key=k) for k, n in jobs))
        assert results == [k for k, _ in jobs]
        assert flying[1] > 1  # batches of different lanes overlapped
        for k in {k for k, _ in jobs}:
            assert [n for key, n in ran if key == k] == list(range(6))  # one key: submission order
    finally:
        await writer.stop()
        await db.dispose()
    assert not writer.running


async def test_sqlite_has_one_lane(db: Database) -> None:
    if not db.is_sqlite:
        pytest.skip("SQLite only")
    assert Writer(db, lanes=4).lanes == 1


async def test_ingest_waiting_counts_webhooks_until_they_are_answered(db: Database, writer: Writer) -> None:
    """What the in-process worker yields to: webhooks waiting for their commit, not other writes."""
    jobs = [writer.submit(put(f"w-{id(writer)}-{i}"), ingest=i % 2 == 0) for i in range(10)]
    started = [asyncio.ensure_future(j) for j in jobs]
    await asyncio.sleep(0)  # submitted: queued, not yet committed
    assert writer.ingest_waiting == 5
    await asyncio.gather(*started)
    assert writer.ingest_waiting == 0
    with pytest.raises(
        StorageUnavailable
    ):  # a failed one is answered too (a duplicate key: retried, then 503)
        await writer.submit(put(f"w-{id(writer)}-0"), ingest=True)
    assert writer.ingest_waiting == 0
