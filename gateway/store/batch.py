"""Round trips per batch, not per statement: a group-commit batch's reads first, its writes last.

Every webhook's transaction runs the same few statements: insert the raw event (deduplicated), read its
call for update, insert or update the call, insert the timeline row, insert the outbox rows. On
PostgreSQL each is a round trip and ~60 us of client CPU (the asyncpg adapter, the protocol, the await),
measured as most of what PostgreSQL costs over SQLite (docs/benchmarks.md). A batch of N webhooks made
5N of them.

When the writer's optimistic pass holds two or more webhooks, ``gateway.store.prefetch.begin`` opens a
``Batch`` on the transaction: one multi-row ``INSERT … ON CONFLICT DO NOTHING RETURNING`` for every raw
event (dedupe stays the database's unique index), one ``SELECT … FOR UPDATE`` for every call they name
(locked in id order). Then each job runs exactly as before, but the store functions it calls read the
batch: the merge read is answered from the rows read (and what earlier jobs of the batch wrote to them),
and the writes are deferred - a call written by several events of the batch is written once, with its
last state - to be flushed in one ``executemany`` per statement before the commit.

What must see the database as the jobs left it flushes first: an alias lookup or claim, a CRM sync's
coalescing update, a pull's insert, and every job that is not a webhook (the writer runs those before it
opens the batch). A failure anywhere fails the optimistic pass as before, and the writer runs the batch
again with each job in its own savepoint and no ``Batch``: per job, per statement, exactly as without it.
"""

from __future__ import annotations

from collections.abc import Collection, Hashable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Connection

from gateway.store.prepared import Prepared

_KEY = "callgate_batch"

CallKey = tuple[str, str, str]  # (tenant, vendor, vendor call id)

# the order deferred writes are flushed in: a call before its timeline and its outbox rows (foreign keys)
INSERT_CALL, UPDATE_CALL, TIMELINE, OUTBOX = range(4)


@dataclass(frozen=True, slots=True)
class Prefetch:
    """What one webhook's job will write and read, declared before it runs."""

    raw_event: Mapping[str, Any]  # its raw event row (``id`` included)
    calls: tuple[CallKey, ...]  # the calls its updates name


class Batch:
    """The reads and the deferred writes of one optimistic pass (see the module's docstring)."""

    __slots__ = ("_writes", "by_id", "memo", "outbox", "rows", "stored", "transaction")

    def __init__(self, transaction: Any) -> None:
        self.transaction = transaction
        self.stored: dict[str, bool] = {}  # raw event id -> inserted by the batch's insert
        self.rows: dict[CallKey, dict[str, Any] | None] = {}  # a call as read for merge; None: absent
        self.by_id: dict[str, CallKey] = {}  # call id -> its key in ``rows``
        self.outbox: dict[str | None, list[dict[str, Any]]] = {}  # call id -> its deferred outbox rows
        self.memo: dict[Hashable, Any] = {}  # what a store function asked once for the batch's calls
        self._writes: dict[tuple[int, Prepared], dict[Hashable, dict[str, Any]]] = {}

    def defer(self, rank: int, statement: Prepared, values: dict[str, Any], key: Hashable = None) -> None:
        """``statement`` with ``values`` at the flush; a second write under the same ``key`` replaces it."""
        rows = self._writes.setdefault((rank, statement), {})
        rows[key if key is not None else len(rows)] = values

    def deferred(self, rank: int, statement: Prepared, key: Hashable) -> dict[str, Any] | None:
        rows = self._writes.get((rank, statement))
        return rows.get(key) if rows is not None else None

    def remember(self, key: CallKey, row: dict[str, Any] | None) -> None:
        self.rows[key] = row
        if row is not None:
            self.by_id[row["id"]] = key

    def flush(self, conn: Connection) -> None:
        """Every deferred write, one driver call per statement and set of columns, in rank order."""
        writes, self._writes = self._writes, {}
        self.outbox = {}  # written now: what asks about them asks the database again
        self.memo = {}
        for (_rank, statement), rows in sorted(writes.items(), key=lambda item: item[0][0]):
            by_columns: dict[tuple[str, ...], list[dict[str, Any]]] = {}
            for row in rows.values():
                by_columns.setdefault(tuple(row), []).append(row)
            for same in by_columns.values():
                statement.executemany(conn, same)


def current(conn: Connection) -> Batch | None:
    """The batch open on ``conn``'s current transaction, or None (a job on its own, a savepoint pass)."""
    batch: Batch | None = conn.info.get(_KEY)
    if batch is None:
        return None
    if batch.transaction is not conn.get_transaction():
        conn.info.pop(_KEY, None)
        return None
    return batch


def raw_stored(conn: Connection, raw_event_id: str) -> bool | None:
    """Whether the batch's insert stored this raw event; None when the batch did not insert it."""
    batch: Batch | None = conn.info.get(_KEY)
    if batch is None or batch.transaction is not conn.get_transaction():
        return None
    return batch.stored.pop(raw_event_id, None)


def ahead(conn: Connection) -> Collection[str]:
    """The raw events the batch inserted for jobs that have not run yet: not there for anything before
    them (a room event is applied by its own job, not by an earlier one's search for pending events)."""
    batch: Batch | None = conn.info.get(_KEY)
    if batch is None or batch.transaction is not conn.get_transaction():
        return set()
    return batch.stored


def attach(conn: Connection, batch: Batch) -> None:
    conn.info[_KEY] = batch


def settle(conn: Connection) -> None:
    """The database as the jobs so far left it: what is deferred is written now (the batch stays open)."""
    batch = current(conn)
    if batch is not None:
        batch.flush(conn)


def end(conn: Connection) -> None:
    """Flushes and closes the batch (before the commit)."""
    batch: Batch | None = conn.info.pop(_KEY, None)
    if batch is not None and batch.transaction is conn.get_transaction():
        batch.flush(conn)


def discard(conn: Connection) -> None:
    """The pass failed: its transaction is rolled back, and the batch with it."""
    conn.info.pop(_KEY, None)
