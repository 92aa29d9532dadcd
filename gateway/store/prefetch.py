"""The reads that open a batch (``gateway.store.batch``): its raw events inserted in one statement, its
calls read and locked in one."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.engine import Connection

from gateway.store import calls as call_store
from gateway.store import events as event_store
from gateway.store.batch import Batch, CallKey, Prefetch, attach


def begin(conn: Connection, prefetches: Sequence[Prefetch]) -> Batch:
    """Inserts every raw event, reads every call the jobs name, and opens the batch on ``conn``."""
    batch = Batch(conn.get_transaction())
    rows = [p.raw_event for p in prefetches]
    stored = event_store.insert_raw_events(conn, rows)
    batch.stored = {row["id"]: row["id"] in stored for row in rows}
    keys: list[CallKey] = list(dict.fromkeys(key for p in prefetches for key in p.calls))
    if keys:
        found = call_store.read_for_merge(conn, keys)
        for key in keys:
            batch.remember(key, found.get(key))
    attach(conn, batch)
    return batch
