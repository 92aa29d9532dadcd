"""The periodic reconciliation: every ``reconcile_seconds``, each source with read-API settings is
reconciled over the last ``reconcile_window_seconds`` (``gateway.pull.service``), in whichever process
runs a worker (``serve`` or ``callgate worker``).

With several processes, one of them reconciles a source per period: a turn is a row of ``kv``
(``reconcile:<source id>`` = when the next turn is due) that each process tries to move on with one
conditional update; the one whose update changed the row runs the source. A process that dies mid-run
loses only that period's run. A failure (the vendor refused the token, was down longer than the retries)
is logged and waits for the next period; the other sources run.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime, timedelta
from functools import partial

import httpx
import structlog
from sqlalchemy import bindparam, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection

from gateway.errors import CallgateError
from gateway.inbound import Reparse
from gateway.model import format_ts
from gateway.outbound.ssrf import TargetPolicy
from gateway.pull.background import PullLoop
from gateway.pull.base import Window
from gateway.pull.recordings import RecordingLinks
from gateway.pull.service import Report, reconcile_source
from gateway.store import sources as source_store
from gateway.store.db import Database, Writes
from gateway.store.tables import kv
from gateway.vault import Vault

log = structlog.get_logger("callgate.pull")


class Reconciler(PullLoop):
    """Each source with read-API settings, once per ``interval``, by one process of several (above)."""

    name = "callgate-reconcile"

    def __init__(
        self,
        db: Database,
        writes: Writes,
        reparse: Reparse,
        vault: Vault,
        targets: TargetPolicy,
        clock: Callable[[], datetime],
        *,
        interval: float,
        window: float,
        http: httpx.AsyncClient | None = None,
        links: RecordingLinks | None = None,
    ) -> None:
        super().__init__(targets, http)
        self.links = links
        self.db, self.writes, self.reparse, self.vault, self.clock = db, writes, reparse, vault, clock
        self.interval = timedelta(seconds=interval)
        self.window = timedelta(seconds=window)

    async def _loop(self) -> None:
        while True:
            try:
                await self.run_once()
            except Exception:  # the database is away: try again next period
                log.exception("reconcile round failed")
            await asyncio.sleep(min(60.0, self.interval.total_seconds()))

    async def run_once(self) -> list[Report]:
        """Reconciles every source whose turn is due and that this process won; returns their reports."""
        async with self.db.reading() as conn:
            candidates = await source_store.with_pull(conn)
        reports = []
        for source in candidates:
            now = self.clock()
            if not await self.writes.run_write(partial(self._take_turn, now, source_id=source["id"])):
                continue
            try:
                window = Window(now - self.window, now)
                reports.append(
                    await reconcile_source(
                        self.writes,
                        self.reparse,
                        self.vault,
                        self.http,
                        source,
                        window,
                        self.clock,
                        links=self.links,
                    )
                )
            except CallgateError as exc:
                log.warning("reconcile_failed", source_id=source["id"], code=exc.code, reason=exc.message)
        return reports

    def _take_turn(self, now: datetime, conn: Connection, *, source_id: str) -> bool:
        key, due = f"reconcile:{source_id}", format_ts(now + self.interval)
        moved = conn.execute(_NEXT_TURN, {"t_key": key, "t_now": format_ts(now), "t_due": due}).rowcount
        if moved:
            return True
        # the first turn ever: of several processes inserting it, one does
        return bool(conn.execute(_FIRST_TURN[conn.dialect.name], {"key": key, "value": due}).rowcount)


_NEXT_TURN = (
    update(kv)
    .where(kv.c.key == bindparam("t_key"), kv.c.value <= bindparam("t_now"))  # fixed-width UTC text sorts
    .values(value=bindparam("t_due"))
)
_FIRST_TURN = {
    name: builder(kv).on_conflict_do_nothing(index_elements=["key"])
    for name, builder in (("postgresql", pg_insert), ("sqlite", sqlite_insert))
}
