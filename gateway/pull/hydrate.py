"""Hydration: a call that completes without a part its vendor promises (a transcript, a grade, a survey) gets
that part pulled from the vendor's read API, applied as an event of its own.

- **Scheduled by ingest** (``gateway.pull.parts.schedule``, in the ingest transaction): when a change
  makes a call of a source with read-API settings ``completed`` and the merged call still lacks a part,
  one ``pulls`` row per part, due ``FIRST_DELAY`` later (graph8 may announce ``call.completed`` before
  it flushed the transcript).
- **Run by the worker processes** (``Hydrator``): due rows are leased (``FOR UPDATE SKIP LOCKED`` on
  PostgreSQL) so each is pulled by one process; a part that arrived meanwhile by webhook ends the row;
  the pulled events go through the ingest unit of work like any webhook (stored raw, deduplicated by
  content, merged, relayed).
- **Outcomes**: applied → ``done``; ``Missing`` (404, ``status: "empty"``) → ``done``, no more pulls;
  ``VendorRetryLater`` (429, 5xx, a grade still pending) → again after the vendor's ``Retry-After`` or its
  documented back-off; a refused token or another vendor error → again on the back-off, ``dead`` after
  ``MAX_ATTEMPTS``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime, timedelta
from typing import Any, Protocol

import httpx
import structlog
from sqlalchemy import bindparam, select, update
from sqlalchemy.engine import Connection

from gateway import storable
from gateway.errors import CallgateError, VendorAuthFailed, VendorError, VendorRetryLater
from gateway.inbound import Reparse
from gateway.outbound.ssrf import TargetPolicy
from gateway.pull import callsv1, graph8, voicecalls
from gateway.pull.background import PullLoop
from gateway.pull.base import DEFAULT_BACKOFF, Missing, Part, PulledEvent, retry_delay
from gateway.pull.parts import lacks
from gateway.pull.recordings import RecordingLinks
from gateway.pull.service import apply_pulled
from gateway.pull.source import credentials
from gateway.store import sources as source_store
from gateway.store.db import Database, Writes
from gateway.store.tables import calls, pulls
from gateway.vault import Vault

log = structlog.get_logger("callgate.pull")

MAX_ATTEMPTS = 12
LEASE = timedelta(seconds=120)
BATCH = 20


class _Pull(Protocol):
    def __call__(
        self, http: httpx.AsyncClient, creds: Any, call_id: str, part: Part, observed_at: datetime, /
    ) -> Awaitable[list[PulledEvent] | Missing]: ...


READERS: Mapping[str, _Pull] = {"graph8": graph8.pull, "callsv1": callsv1.pull, "voicecalls": voicecalls.pull}


# --- the worker side ------------------------------------------------------------------------------------

_FINISH = (
    update(pulls)
    .where(pulls.c.id == bindparam("p_id"))
    .values(
        status=bindparam("p_status"),
        attempts=bindparam("p_attempts"),
        next_attempt_at=bindparam("p_next"),
        last_error=bindparam("p_error"),
        lease_until=None,
        updated_at=bindparam("p_now"),
    )
)


def _lease(conn: Connection, now: datetime, limit: int) -> list[dict[str, Any]]:
    due = (
        select(pulls, calls.c.vendor_call_id, calls.c.data)
        .join(calls, calls.c.id == pulls.c.call_id)
        .where(
            pulls.c.status == "pending",
            pulls.c.next_attempt_at <= now,
            (pulls.c.lease_until.is_(None)) | (pulls.c.lease_until < now),
        )
        .order_by(pulls.c.next_attempt_at)
        .limit(limit)
    )
    if conn.dialect.name == "postgresql":
        due = due.with_for_update(skip_locked=True, of=pulls)
    rows = [dict(r) for r in conn.execute(due).mappings()]
    if rows:
        conn.execute(
            update(pulls).where(pulls.c.id.in_([r["id"] for r in rows])).values(lease_until=now + LEASE)
        )
    return rows


def _finish(
    conn: Connection, row: Mapping[str, Any], status: str, now: datetime, error: str | None, wait: float
) -> None:
    conn.execute(
        _FINISH,
        {
            "p_id": row["id"],
            "p_status": status,
            "p_attempts": row["attempts"] + 1,
            "p_next": now + timedelta(seconds=wait),
            "p_error": storable.text(error)[:500] if error else None,
            "p_now": now,
        },
    )


Apply = Callable[[Mapping[Any, Any], PulledEvent, datetime], Awaitable[None]]


class Hydrator(PullLoop):
    """Runs the due pulls, a batch every ``poll`` seconds, in the process of a worker."""

    name = "callgate-hydrate"

    def __init__(
        self,
        db: Database,
        writes: Writes,
        reparse: Reparse,
        vault: Vault,
        targets: TargetPolicy,
        clock: Callable[[], datetime],
        *,
        poll: float = 5.0,
        http: httpx.AsyncClient | None = None,
        links: RecordingLinks | None = None,
    ) -> None:
        super().__init__(targets, http)
        self.links = links
        self.db, self.writes, self.reparse, self.vault, self.clock, self.poll = (
            db, writes, reparse, vault, clock, poll,
        )  # fmt: skip

    async def _loop(self) -> None:
        while True:
            try:
                ran = await self.run_once()
            except Exception:  # the database is away: try again soon
                log.exception("hydration round failed")
                ran = 0
            if ran < BATCH:
                await asyncio.sleep(self.poll)

    async def run_once(self) -> int:
        """Leases the due pulls and runs them; returns how many ran."""
        now = self.clock()
        rows = await self.writes.run_write(lambda conn: _lease(conn, now, BATCH))
        sources: dict[str, Mapping[Any, Any] | None] = {}
        for row in rows:
            if row["source_id"] not in sources:
                async with self.db.reading() as conn:
                    sources[row["source_id"]] = await source_store.get(
                        conn, row["tenant_id"], row["source_id"]
                    )
            try:
                await self._one(row, sources[row["source_id"]])
            except (
                CallgateError
            ) as exc:  # e.g. credentials sealed with another key: this row waits, others go
                await self._again(row, self.clock(), exc.message, DEFAULT_BACKOFF[-1])
        return len(rows)

    async def _one(self, row: Mapping[str, Any], source: Mapping[Any, Any] | None) -> None:
        now = self.clock()
        reader = READERS.get(source["vendor"]) if source is not None else None
        creds = credentials(source, self.vault) if source is not None and reader is not None else None
        if reader is None or creds is None or not lacks(row["data"] or {}, row["part"]):
            # the source lost its settings, or the part came by webhook meanwhile: nothing to pull
            await self.writes.run_write(lambda conn: _finish(conn, row, "done", now, None, 0))
            return
        assert source is not None
        attempt = row["attempts"]
        try:
            got = await reader(self.http, creds, str(row["vendor_call_id"]), Part(row["part"]), now)
        except VendorRetryLater as exc:
            await self._again(row, now, exc.message, retry_delay(exc, attempt))
            return
        except (VendorAuthFailed, VendorError) as exc:
            await self._again(row, now, exc.message, DEFAULT_BACKOFF[min(attempt, len(DEFAULT_BACKOFF) - 1)])
            return
        if not isinstance(got, Missing):
            for event in got:
                await apply_pulled(self.writes, self.reparse, source, event, now, self.links)
        outcome = "applied" if not isinstance(got, Missing) else "none"
        log.info("hydrated", call_id=row["call_id"], part=row["part"], outcome=outcome)
        await self.writes.run_write(lambda conn: _finish(conn, row, "done", now, None, 0))

    async def _again(self, row: Mapping[str, Any], now: datetime, error: str, wait: float) -> None:
        status = "dead" if row["attempts"] + 1 >= MAX_ATTEMPTS else "pending"
        log.info(
            "hydration_retry", call_id=row["call_id"], part=row["part"], status=status, wait_seconds=wait
        )
        await self.writes.run_write(lambda conn: _finish(conn, row, status, now, error, wait))
