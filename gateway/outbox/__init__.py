"""The outbox: one delivery row per (matching subscription, emitted event type) of a stored change, and
the one owner of every delivery state change after that (claim, finish an attempt, release, recover,
retry, disable an endpoint), as procrastinate's ``JobManager`` owns its jobs. The worker runs no SQL: it
claims, sends, and hands the outcome back here.

``enqueue_change`` runs inside the ingest transaction (and replay's), so a change and its deliveries commit
together or not at all: nothing is enqueued outside that transaction, and nothing is lost between the commit
and the delivery. The body is built once here and sent byte for byte on every attempt; only the timestamp
header and the signatures are made per attempt.
"""

from gateway.outbox.deliveries import (
    Attempt,
    claim,
    disable,
    endpoint,
    finish_attempt,
    recover,
    release,
    retry,
    send_ping,
)
from gateway.outbox.enqueue import (
    EVENT_TYPES,
    PING,
    RESYNC,
    SYNC,
    TERMINAL,
    TYPES_PER_CHANGE,
    Dispatch,
    body,
    call_document,
    enqueue_change,
    enqueue_sync,
    enqueue_syncs,
    matches,
    new_row,
    ping_row,
    resync,
    synced_statuses,
    valid_filter,
)
from gateway.outbox.syncs import SyncContext, finish_sync, sync_context

__all__ = [
    "EVENT_TYPES",
    "PING",
    "RESYNC",
    "SYNC",
    "TERMINAL",
    "TYPES_PER_CHANGE",
    "Attempt",
    "Dispatch",
    "SyncContext",
    "body",
    "call_document",
    "claim",
    "disable",
    "endpoint",
    "enqueue_change",
    "enqueue_sync",
    "enqueue_syncs",
    "finish_attempt",
    "finish_sync",
    "matches",
    "new_row",
    "ping_row",
    "recover",
    "release",
    "resync",
    "retry",
    "send_ping",
    "sync_context",
    "synced_statuses",
    "valid_filter",
]
