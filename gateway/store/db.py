"""Engines and transactions. The one place that knows SQLite from PostgreSQL.

SQLite: WAL, ``synchronous=FULL`` by default (an acknowledged webhook survives a power cut), a busy
timeout, foreign keys on, and explicit ``BEGIN`` (``BEGIN IMMEDIATE`` for writers, so a writer never
fails upgrading a read lock). PostgreSQL: an asyncpg pool.

Reads are async. Batched writes (``run_write``) are plain synchronous Core code, run where it is cheapest:
on SQLite in one dedicated thread with the stdlib driver - one thread hop per batch instead of several per
statement, which is what the aiosqlite adapter costs (measured: ~300 us per statement against ~2 us) -
and on PostgreSQL through ``AsyncConnection.run_sync`` on the asyncpg pool.

Every driver error that means "the database is not there or refused" leaves this module as
``StorageUnavailable`` (503, so the vendor retries). Integrity errors pass through: they are logic.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Protocol, TypeVar

from sqlalchemy import Engine, event, text
from sqlalchemy import create_engine as create_sync_engine
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from gateway.config import Settings
from gateway.errors import StorageUnavailable


def _ensure_sqlite_dir(url: str) -> None:
    database = make_url(url).database
    if database and database != ":memory:" and not database.startswith("file:"):
        Path(database).expanduser().resolve().parent.mkdir(parents=True, exist_ok=True)


T = TypeVar("T")


def _sqlite_pragmas(dbapi_connection: Any, synchronous: str, busy_timeout_ms: int) -> None:
    dbapi_connection.isolation_level = None  # SQLAlchemy issues BEGIN itself (savepoints work)
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA synchronous={synchronous}")
    cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _configure_sqlite(engine: Engine, *, begin: str, synchronous: str, busy_timeout_ms: int) -> None:
    """Every SQLite connection, sync or async: the pragmas on connect, and our own ``BEGIN``."""

    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        _sqlite_pragmas(dbapi_connection, synchronous, busy_timeout_ms)

    @event.listens_for(engine, "begin")
    def _begin(connection: Any) -> None:
        connection.exec_driver_sql(begin)


def create_sqlite_writer(url: str, *, synchronous: str = "FULL", busy_timeout_ms: int = 10_000) -> Engine:
    """The synchronous SQLite engine the batch writer uses from its own thread."""
    sync_url = make_url(url).set(drivername="sqlite")
    engine = create_sync_engine(
        sync_url,
        pool_size=1,
        max_overflow=0,
        connect_args={"check_same_thread": False},
        json_serializer=strict_json,
    )
    _configure_sqlite(
        engine, begin="BEGIN IMMEDIATE", synchronous=synchronous, busy_timeout_ms=busy_timeout_ms
    )
    return engine


def create_engine(
    url: str,
    *,
    writer: bool = False,
    pool_size: int = 10,
    synchronous: str = "FULL",
    busy_timeout_ms: int = 10_000,
) -> AsyncEngine:
    if url.startswith("sqlite"):
        _ensure_sqlite_dir(url)
        engine = create_async_engine(
            url,
            pool_size=2 if writer else pool_size,
            max_overflow=0 if writer else pool_size,
            json_serializer=strict_json,
        )
        _configure_sqlite(
            engine.sync_engine,
            begin="BEGIN IMMEDIATE" if writer else "BEGIN",
            synchronous=synchronous,
            busy_timeout_ms=busy_timeout_ms,
        )
        return engine
    return create_async_engine(
        url,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=True,
        pool_timeout=10,
        json_serializer=strict_json,
    )


def strict_json(value: Any) -> str:
    """JSON columns are written as strict JSON: a ``NaN`` that got past the boundary fails the write (the
    webhook is quarantined) instead of being stored and failing every read and every delivery after."""
    return json.dumps(value, allow_nan=False)


OUTBOX_CHANNEL = "callgate_outbox"
NOTIFY_FLAG = "callgate_notify_outbox"
_NOTIFY = text(f"SELECT pg_notify('{OUTBOX_CHANNEL}', '')")


def notify_outbox(conn: Connection) -> None:
    """Deliveries became due in this transaction: on PostgreSQL, ``run_write`` sends one ``NOTIFY`` with the
    commit, which wakes idle workers in every process (``gateway.outbound.listen``). SQLite: nothing (the
    in-process wake-up and the poll cover it)."""
    if conn.dialect.name == "postgresql":
        conn.info[NOTIFY_FLAG] = True


_CACHE = "callgate_transaction_cache"


def transaction_cache(conn: Connection) -> dict[Any, Any]:
    """A dict that lives as long as ``conn``'s current transaction: what a group-commit batch asks once and
    every job of the batch reads (the tenant's active subscriptions). Whoever writes the rows behind an entry
    drops it in the same transaction."""
    transaction = conn.get_transaction()
    held = conn.info.get(_CACHE)
    if held is None or held[0] is not transaction:
        held = conn.info[_CACHE] = (transaction, {})
    cache: dict[Any, Any] = held[1]
    return cache


def once_per_transaction(conn: Connection, key: tuple[str, str], read: Callable[[], T]) -> T:
    """``read()`` the first time ``key`` is asked in this transaction, the same answer after that."""
    cache = transaction_cache(conn)
    if key not in cache:
        cache[key] = read()
    answer: T = cache[key]
    return answer


def forget(conn: Connection, kind: str) -> None:
    """The rows behind every ``(kind, …)`` entry were written in this transaction: ask again."""
    cache = transaction_cache(conn)
    for key in [k for k in cache if k[0] == kind]:
        del cache[key]


def forget_transaction_cache(conn: Connection) -> None:
    """A savepoint rolled back: what was read inside it may have seen its writes."""
    conn.info.pop(_CACHE, None)


def storage_error(exc: BaseException) -> bool:
    """True for the errors that mean the database is unreachable, locked or gone - worth a retry - as
    opposed to errors about one statement's data (integrity, data, programming errors), which must fail
    only the job that caused them, or one bad webhook would block every batch it lands in."""
    if isinstance(exc, DBAPIError):
        return exc.connection_invalidated or isinstance(exc, OperationalError | InterfaceError)
    return isinstance(exc, OSError | asyncio.TimeoutError | ConnectionError)


_CONFLICTS = frozenset({"40P01", "40001"})  # PostgreSQL: deadlock detected, serialization failure


def transaction_conflict(exc: BaseException) -> bool:
    """True when the database aborted the transaction because of another one (a deadlock between two
    processes' group commits, a serialization failure): the same work succeeds in a new transaction."""
    orig = getattr(exc, "orig", None)
    return isinstance(exc, DBAPIError) and getattr(orig, "sqlstate", None) in _CONFLICTS


class Writes(Protocol):
    """Something that runs synchronous Core in a write transaction: the database itself (one transaction
    per call) or the group-commit ``Writer`` (many callers' work in one transaction and one fsync)."""

    async def run_write(self, work: Callable[[Connection], T]) -> T: ...


class Database:
    """A read engine and a write engine (the same pool on PostgreSQL)."""

    def __init__(
        self, url: str, *, pool_size: int = 10, synchronous: str = "FULL", busy_timeout_ms: int = 10_000
    ) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        self.read_engine = create_engine(
            url, pool_size=pool_size, synchronous=synchronous, busy_timeout_ms=busy_timeout_ms
        )
        self.write_engine = (
            create_engine(url, writer=True, synchronous=synchronous, busy_timeout_ms=busy_timeout_ms)
            if self.is_sqlite
            else self.read_engine
        )
        self._batch_engine: Engine | None = None
        self._batch_thread: ThreadPoolExecutor | None = None
        if self.is_sqlite:
            self._batch_engine = create_sqlite_writer(
                url, synchronous=synchronous, busy_timeout_ms=busy_timeout_ms
            )
            self._batch_thread = ThreadPoolExecutor(
                max_workers=1, thread_name_prefix="callgate-sqlite-writer"
            )

    @classmethod
    def from_settings(cls, settings: Settings) -> Database:
        return cls(
            settings.database_url,
            pool_size=settings.db_pool_size,
            synchronous=settings.sqlite_synchronous,
            busy_timeout_ms=settings.sqlite_busy_timeout_ms,
        )

    @asynccontextmanager
    async def reading(self) -> AsyncIterator[AsyncConnection]:
        async with self._translate(), self.read_engine.connect() as conn:
            yield conn

    @asynccontextmanager
    async def writing(self) -> AsyncIterator[AsyncConnection]:
        """One transaction, committed when the block ends without an exception."""
        async with self._translate(), self.write_engine.begin() as conn:
            yield conn

    async def run_write(self, work: Callable[[Connection], T]) -> T:
        """Runs synchronous Core code in one write transaction, committed when ``work`` returns."""
        async with self._translate():
            if self.is_sqlite:
                if self._batch_engine is None or self._batch_thread is None:
                    raise StorageUnavailable("the database is closed")
                engine = self._batch_engine

                def in_thread() -> T:
                    with engine.begin() as conn:
                        return work(conn)

                return await asyncio.get_running_loop().run_in_executor(self._batch_thread, in_thread)
            async with self.write_engine.begin() as conn:
                result = await conn.run_sync(work)
                if conn.sync_connection is not None and conn.sync_connection.info.pop(NOTIFY_FLAG, False):
                    await conn.execute(_NOTIFY)  # delivered by PostgreSQL at the commit, not before
                return result

    @asynccontextmanager
    async def _translate(self) -> AsyncIterator[None]:
        try:
            yield
        except StorageUnavailable:
            raise
        except Exception as exc:
            if storage_error(exc):
                raise StorageUnavailable("the database is unavailable, retry later") from exc
            raise

    async def ping(self) -> None:
        async with self.reading() as conn:
            await asyncio.wait_for(conn.execute(text("SELECT 1")), timeout=2)

    async def dispose(self) -> None:
        await self.read_engine.dispose()
        if self.write_engine is not self.read_engine:
            await self.write_engine.dispose()
        if self._batch_engine is not None and self._batch_thread is not None:
            await asyncio.get_running_loop().run_in_executor(self._batch_thread, self._batch_engine.dispose)
            self._batch_thread.shutdown(wait=False)
            self._batch_engine = self._batch_thread = None
