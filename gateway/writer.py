"""Group commit: concurrent webhooks share one transaction and one fsync.

Requests hand their unit of work (synchronous Core code) to ``Writer.submit`` and wait. One task drains
the queue: everything waiting (up to ``max_batch``) runs in one transaction via ``Database.run_write``,
then a single commit, then every waiter learns its outcome. Under load this turns N fsyncs into one.

The batch first runs optimistically, jobs back to back. If any job raises, that transaction is rolled
back and the batch runs again with each job in its own savepoint, so one job's failure rolls back only
that job. Savepoints cost two statements per job, so they are paid only when something failed.

On PostgreSQL with several processes, two batches may lock the same calls in opposite orders; the
database aborts one (deadlock detected, or a serialization failure) and that batch runs again whole in a
new transaction once the other has committed (``RETRIES_ON_DEADLOCK`` times, then 503). Such an abort is
never blamed on a job: no webhook is quarantined for another process's locks.

On PostgreSQL one batch at a time leaves the pool idle: each statement is a round trip, and a batch waits
for every one of them. There the writer runs ``lanes`` batches at once, each in its own transaction on its
own connection; a job names its ``key`` (the call it writes) and a key always takes the same lane, so one
call's events never wait on each other's row locks across lanes (what two lanes still lock in opposite
orders - a LiveKit room linked to a call - is the deadlock case above, run again). SQLite has one write
lock: one lane.

When two or more of a batch's jobs are webhooks that declared a ``plan`` (their raw event and the calls
they name), the optimistic pass runs their statements per batch instead of per job: the jobs without a plan
first, then one insert for the raw events, one read for the calls, the webhooks, and their deferred writes
(``gateway.store.batch``). The savepoint pass never does.

A commit that fails fails every job in the batch with ``StorageUnavailable``: nothing was acknowledged,
so nothing is lost - the vendors retry. A job that raises a bug fails alone (500 for that request).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import structlog
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from gateway.errors import CallgateError, StorageUnavailable
from gateway.store import batch as batches
from gateway.store import prefetch
from gateway.store.batch import Prefetch
from gateway.store.db import Database, forget_transaction_cache, storage_error, transaction_conflict

T = TypeVar("T")
Work = Callable[[Connection], T]

log = structlog.get_logger("callgate.writer")

RETRIES_ON_CONFLICT = 3  # a concurrent writer in another process created the same call first
RETRIES_ON_DEADLOCK = 5  # batches aborted by the database for another transaction's locks


@dataclass(slots=True)
class _Job(Generic[T]):
    work: Callable[[Connection], T]
    future: asyncio.Future[T]
    plan: Callable[[], Prefetch] | None = None  # a webhook's: what its batch may read and write up front


Outcome = tuple[Any, BaseException | None]


class Writer:
    def __init__(
        self,
        db: Database,
        *,
        max_batch: int = 256,
        on_batch: Callable[[int], None] | None = None,
        lanes: int = 1,
    ) -> None:
        self._db = db
        self._on_batch = on_batch  # told each committed batch's size (the metrics)
        self._max_batch = max_batch
        self.lanes = 1 if db.is_sqlite else max(1, lanes)  # SQLite: one write lock, one lane
        self._queues: list[asyncio.Queue[_Job[Any]]] = [asyncio.Queue() for _ in range(self.lanes)]
        self._tasks: list[asyncio.Task[None]] = []
        self._next = 0  # the lane of the next job without a key
        # webhooks submitted and not yet answered: the in-process worker yields to them
        self.ingest_waiting = 0
        self.batches = 0
        self.jobs = 0

    @property
    def running(self) -> bool:
        return bool(self._tasks) and not any(task.done() for task in self._tasks)

    def start(self) -> None:
        if not self._tasks:
            self._tasks = [
                asyncio.create_task(self._run(queue), name=f"callgate-writer-{lane}")
                for lane, queue in enumerate(self._queues)
            ]

    async def stop(self) -> None:
        """Finishes what is queued, then stops."""
        if not self._tasks:
            return
        for queue in self._queues:
            await queue.join()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []

    async def submit(
        self,
        work: Callable[[Connection], T],
        key: str | None = None,
        *,
        ingest: bool = False,
        plan: Callable[[], Prefetch] | None = None,
    ) -> T:
        """Runs ``work`` in the next batch of its lane; returns once that batch has committed. ``key``: what
        the work writes (a call), so the same key always takes the same lane. ``ingest``: a webhook's unit
        of work, counted in ``ingest_waiting`` until it is answered (not the worker's own writes).
        ``plan``: what the work will insert and read (``gateway.store.batch``), so that a batch of several
        runs those statements once for all of them."""
        if not self.running:
            raise StorageUnavailable("the writer is not running")
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        # The job completes even if the caller goes away (a vendor that hung up still gets its event
        # stored, and its retry is then a duplicate); retrieve the outcome so nothing is reported unseen.
        future.add_done_callback(lambda f: f.cancelled() or f.exception())
        if ingest:
            self.ingest_waiting += 1
            future.add_done_callback(self._answered)
        if self.lanes == 1:
            lane = 0
        elif key is not None:
            lane = zlib.crc32(key.encode()) % self.lanes  # stable: the same call, the same lane
        else:
            lane = self._next = (self._next + 1) % self.lanes
        self._queues[lane].put_nowait(_Job(work, future, plan))
        return await asyncio.shield(future)

    def _answered(self, _future: asyncio.Future[Any]) -> None:
        self.ingest_waiting -= 1

    async def run_write(self, work: Callable[[Connection], T]) -> T:
        """``Writes``: the worker's claims and attempt results share the ingest batches' transactions."""
        return await self.submit(work)

    async def _run(self, queue: asyncio.Queue[_Job[Any]]) -> None:
        while True:
            batch = [await queue.get()]
            while len(batch) < self._max_batch and not queue.empty():
                batch.append(queue.get_nowait())
            try:
                await self._commit(batch)
            finally:
                for _ in batch:
                    queue.task_done()

    async def _commit(self, batch: list[_Job[Any]]) -> None:
        def optimistic(conn: Connection) -> list[Outcome]:
            if sum(job.plan is not None for job in batch) > 1:  # one webhook alone: nothing to share
                return self._planned(conn, batch)
            return [(job.work(conn), None) for job in batch]

        def isolated(conn: Connection) -> list[Outcome]:
            return [self._one(conn, job.work) for job in batch]

        try:
            for attempt in range(1, RETRIES_ON_DEADLOCK + 1):
                try:
                    outcomes = await self._batch(optimistic, isolated)
                    break
                except Exception as exc:
                    if not transaction_conflict(exc) or attempt == RETRIES_ON_DEADLOCK:
                        raise
                    # another process's batch locked the same calls in another order and the database
                    # aborted ours: run it again in a new transaction, once the other has committed
                    log.info("batch_retried", reason="transaction conflict", jobs=len(batch), attempt=attempt)
                    await asyncio.sleep(random.uniform(0.001, 0.01) * attempt)
        except Exception as exc:
            failure = exc if isinstance(exc, StorageUnavailable) else StorageUnavailable("the write failed")
            if not isinstance(exc, StorageUnavailable):
                log.error("batch_failed", action="commit", jobs=len(batch), error=type(exc).__name__)
            for job in batch:
                if not job.future.done():
                    job.future.set_exception(failure)
            return
        self.batches += 1
        self.jobs += len(batch)
        if self._on_batch is not None:
            self._on_batch(len(batch))
        for job, (result, error) in zip(batch, outcomes, strict=True):
            if job.future.done():
                continue
            if error is None:
                job.future.set_result(result)
            else:
                job.future.set_exception(error)

    async def _batch(
        self,
        optimistic: Callable[[Connection], list[Outcome]],
        isolated: Callable[[Connection], list[Outcome]],
    ) -> list[Outcome]:
        try:
            return await self._db.run_write(optimistic)
        except StorageUnavailable:
            raise
        except Exception as exc:
            if storage_error(exc) or transaction_conflict(exc):
                raise
            return await self._db.run_write(isolated)

    @staticmethod
    def _planned(conn: Connection, batch: list[_Job[Any]]) -> list[Outcome]:
        """The optimistic pass with the webhooks' statements batched: the jobs without a plan first (they
        read and write the tables as they are), then the batch's reads, the webhooks, and its writes.
        Jobs submitted concurrently have no order among them but their call's, which is kept."""
        outcomes: list[Outcome | None] = [None] * len(batch)
        planned = []
        for position, job in enumerate(batch):
            if job.plan is None:
                outcomes[position] = (job.work(conn), None)
            else:
                planned.append(position)
        try:
            prefetch.begin(conn, [batch[position].plan() for position in planned])  # type: ignore[misc]
            for position in planned:
                outcomes[position] = (batch[position].work(conn), None)
            batches.end(conn)
        except BaseException:
            batches.discard(conn)
            raise
        return [outcome for outcome in outcomes if outcome is not None]

    @staticmethod
    def _one(conn: Connection, work: Callable[[Connection], Any]) -> Outcome:
        """One job in its own savepoint. Runs in the database's write context, not on the event loop."""
        attempt = 0
        while True:
            attempt += 1
            try:
                try:
                    with conn.begin_nested():
                        return work(conn), None
                except BaseException:
                    forget_transaction_cache(conn)  # the job's reads may have seen its rolled-back writes
                    raise
            except IntegrityError:
                if attempt < RETRIES_ON_CONFLICT:
                    continue
                log.error("job_conflict", action="ingest", attempts=attempt)
                return None, StorageUnavailable("conflicting concurrent writes, retry")
            except StorageUnavailable:
                raise
            except CallgateError as exc:
                return None, exc
            except Exception as exc:
                if storage_error(exc) or transaction_conflict(exc):
                    raise  # the connection is gone, or the transaction aborted: the whole batch goes again
                log.exception("job_failed", action="ingest")
                return None, exc
