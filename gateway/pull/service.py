"""Reconciliation: list a source's calls from its vendor's read API over a window, and apply what the
webhooks missed or left behind, through the ingest unit of work like any webhook.

Each listed call becomes a webhook-shaped event (``gateway.pull.<vendor>.reconcile``) whose dedupe key
digests its content: a call the gateway already holds as the vendor shows it is a duplicate (nothing
changes), a call it never heard of is created, one that is behind (stuck in ``in_progress`` while the
vendor says it ended) moves on by the same state machine, and every change is relayed as usual.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, Protocol

import httpx
import structlog
from sqlalchemy import select

from gateway.errors import ValidationFailed, VendorRetryLater
from gateway.inbound import Reparse
from gateway.ingest import IngestJob, IngestResult, apply_event
from gateway.model import TERMINAL
from gateway.pull import callsv1, graph8, livekit, voiceapi, voicecalls
from gateway.pull.base import PulledEvent, Reconciled, Window, retry_delay
from gateway.pull.parts import parts_for
from gateway.pull.recordings import RecordingLinks
from gateway.pull.source import RECONCILABLE, credentials
from gateway.store.db import Writes
from gateway.store.tables import calls
from gateway.vault import Vault

log = structlog.get_logger("callgate.pull")

MAX_RETRIES = 5  # per page, when the vendor says "not now"
MAX_WAIT = 120.0  # seconds: a longer Retry-After ends the run (it can be started again later)


class _Reconcile(Protocol):
    def __call__(
        self, http: httpx.AsyncClient, creds: Any, window: Window, cursor: str | None, observed_at: datetime
    ) -> Awaitable[Reconciled]: ...


READERS: Mapping[str, _Reconcile] = {
    "graph8": graph8.reconcile,
    "voiceapi": voiceapi.reconcile,
    "callsv1": callsv1.reconcile,
    "voicecalls": voicecalls.reconcile,
    "livekit": livekit.reconcile,
}
OPEN_CALLS = 1_000  # LiveKit: the open calls whose rooms one run checks
assert set(READERS) == set(RECONCILABLE)


@dataclass(slots=True)
class Report:
    """What one reconciliation of one source found and did."""

    source_id: str
    vendor: str
    since: str
    until: str
    pages: int = 0
    listed: int = 0  # events made from the vendor's listing
    duplicates: int = 0  # already held exactly so: nothing changed
    calls_created: int = 0
    calls_changed: int = 0
    unchanged: int = 0  # stored, but the calls already were as the vendor shows them
    unreadable: int = 0  # an event the adapter could not read (a contract change: logged)
    rooms_checked: int = 0  # LiveKit: open calls whose room was looked up (gone: the call ends)
    calls: list[str] = field(default_factory=list)  # the calls created or changed

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


async def reconcile_source(
    writes: Writes,
    reparse: Reparse,
    vault: Vault,
    http: httpx.AsyncClient,
    source: Mapping[Any, Any],
    window: Window,
    clock: Callable[[], datetime],
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    links: RecordingLinks | None = None,
) -> Report:
    vendor = source["vendor"]
    reader = READERS.get(vendor)
    creds = credentials(source, vault) if reader is not None else None
    if reader is None or creds is None:
        raise ValidationFailed("this source has no read-API settings (pull)", field="source")
    since, until = window.bounds()
    report = Report(source["id"], vendor, since, until)
    cursor: str | None = None
    while True:
        page = await _page(reader, http, creds, window, cursor, clock, sleep)
        report.pages += 1
        for event in page.events:
            await _apply(writes, reparse, source, event, clock(), report, links)
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    if isinstance(creds, livekit.LiveKitCredentials):
        await _finish_gone_rooms(writes, reparse, http, creds, source, clock, report, links)
    log.info("reconciled", **{k: v for k, v in report.as_json().items() if k != "calls"})
    return report


async def _finish_gone_rooms(
    writes: Writes,
    reparse: Reparse,
    http: httpx.AsyncClient,
    creds: livekit.LiveKitCredentials,
    source: Mapping[Any, Any],
    clock: Callable[[], datetime],
    report: Report,
    links: RecordingLinks | None,
) -> None:
    """RoomService lists only open rooms: a stored call still open whose room is gone (or replaced) missed
    its ``room_finished`` webhook, and gets it from ``livekit.pull``."""
    query = (
        select(calls.c.data)
        .where(
            calls.c.tenant_id == source["tenant_id"],
            calls.c.source_id == source["id"],
            calls.c.status.is_not(None),
            calls.c.status.not_in([str(s) for s in TERMINAL]),
        )
        .limit(OPEN_CALLS)
    )
    open_calls = await writes.run_write(lambda conn: [row[0] for row in conn.execute(query).all()])
    for data in open_calls:
        extra = (data or {}).get("vendor_extra") or {}
        name, sid = extra.get("livekit_room_name"), extra.get("livekit_room_sid")
        if not isinstance(name, str) or not isinstance(sid, str):
            continue
        report.rooms_checked += 1
        for event in await livekit.pull(http, creds, name, sid, clock()):
            await _apply(writes, reparse, source, event, clock(), report, links)


async def _page(
    reader: _Reconcile,
    http: httpx.AsyncClient,
    creds: Any,
    window: Window,
    cursor: str | None,
    clock: Callable[[], datetime],
    sleep: Callable[[float], Awaitable[None]],
) -> Reconciled:
    for attempt in range(MAX_RETRIES + 1):
        try:
            return await reader(http, creds, window, cursor, clock())
        except VendorRetryLater as exc:
            wait = retry_delay(exc, attempt)
            if attempt == MAX_RETRIES or wait > MAX_WAIT:
                raise
            log.info("pull_retry", reason=exc.message, wait_seconds=wait, attempt=attempt + 1)
            await sleep(wait)
    raise AssertionError("unreachable")


async def apply_pulled(
    writes: Writes,
    reparse: Reparse,
    source: Mapping[Any, Any],
    event: PulledEvent,
    now: datetime,
    links: RecordingLinks | None = None,
) -> IngestResult | None:
    """One pulled event through the ingest unit of work, as a webhook of ``source``; None when the adapter
    cannot read it (a contract change: logged)."""
    parsed = reparse(event.vendor, {}, event.body)
    if not parsed.known:
        log.warning("pulled_event_unreadable", vendor=event.vendor, event_type=parsed.event_type)
        return None
    job = IngestJob(
        source["tenant_id"],
        source["id"],
        event.vendor,
        parsed,
        {},
        event.body,
        now,
        pull_parts=parts_for(source),
    )
    return await writes.run_write(lambda conn: apply_event(conn, job, now, reparse))


async def _apply(
    writes: Writes,
    reparse: Reparse,
    source: Mapping[Any, Any],
    event: PulledEvent,
    now: datetime,
    report: Report,
    links: RecordingLinks | None,
) -> None:
    report.listed += 1
    result = await apply_pulled(writes, reparse, source, event, now, links)
    if result is None:
        report.unreadable += 1
        return
    if result.duplicate:
        report.duplicates += 1
        return
    changed = [c for c in result.changes if c.types]
    if not changed:
        report.unchanged += 1
    for change in changed:
        if change.version == 1:
            report.calls_created += 1
        else:
            report.calls_changed += 1
        if change.call_id not in report.calls:
            report.calls.append(change.call_id)
