"""Wake-ups across processes on PostgreSQL: ``LISTEN callgate_outbox``.

Every transaction that makes deliveries due sends ``NOTIFY callgate_outbox`` with its commit
(``store.db.notify_outbox``). Each worker keeps one extra asyncpg connection listening, and a notification
wakes it at once, so a delivery queued by any process starts within milliseconds instead of the next poll.
The poll (``CALLGATE_WORKER_POLL_SECONDS``) stays as the fallback: a lost connection is reconnected with
backoff, and nothing is missed meanwhile, only later.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

import asyncpg
import structlog
from sqlalchemy.engine import make_url

from gateway.store.db import OUTBOX_CHANNEL

log = structlog.get_logger("callgate.listen")

RETRY_SECONDS = (1, 2, 5, 10, 30)


def asyncpg_dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


async def listen(url: str, wake: Callable[[], None], ready: asyncio.Event | None = None) -> None:
    """Until cancelled: ``wake()`` on every notification. Sets ``ready`` once listening (tests)."""
    failures = 0
    while True:
        connection: asyncpg.Connection | None = None
        try:
            connection = await asyncpg.connect(asyncpg_dsn(url), timeout=10)
            lost = asyncio.Event()
            connection.add_termination_listener(lambda _conn, gone=lost: gone.set())
            await connection.add_listener(OUTBOX_CHANNEL, lambda *_args: wake())
            failures = 0
            wake()  # what was queued while we were not listening
            if ready is not None:
                ready.set()
            await lost.wait()
            log.warning("outbox_listen_lost")
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the database is away: poll meanwhile, try again later
            log.warning("outbox_listen_failed", error=type(exc).__name__)
        finally:
            if connection is not None:
                with contextlib.suppress(Exception):
                    await connection.close(timeout=2)
        await asyncio.sleep(RETRY_SECONDS[min(failures, len(RETRY_SECONDS) - 1)])
        failures += 1
