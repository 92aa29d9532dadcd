"""Replay: stored raw events, and quarantined unreadable bodies, through the current adapters.

This is how an operator recovers after an adapter fix (``callgate replay``). It is idempotent: a second
run over the same events changes nothing.

A call touched by a replayed event is **rebuilt from scratch** from every raw event that ever touched it
(its timeline) plus the events that name it now, folded with ``merge``. Because any permutation of a
call's events converges, the rebuilt call is exactly what the current adapters would have stored had the
events arrived now. A call whose rebuilt content equals the stored one is not written; otherwise it is
written with ``version + 1`` and one timeline row of type ``callgate.replay`` listing what changed. Events
that name a call no event created before create it, as ingest would. A quarantined body that the adapter
now reads is ingested (deduplicated like any webhook) and the quarantine entry is marked resolved.

If one of a call's events can no longer be read by the current adapter, the call is left as stored: a
replay never silently drops what a vendor said.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Connection, RowMapping

from gateway import storable
from gateway.clock import Clock
from gateway.errors import CallgateError, found
from gateway.inbound import ParsedEvent, Reparse
from gateway.ingest import (
    CallChange,
    IngestJob,
    apply_event,
    apply_update,
    change_of,
    initial_state,
    record_change,
    stamp_of,
)
from gateway.model import CallState, CallUpdate, MergeResult, Stamp, Status, event_types, merge
from gateway.pull.recordings import RecordingLinks
from gateway.store import calls as call_store
from gateway.store import events as event_store
from gateway.store.db import Database

REPLAY_EVENT = "callgate.replay"


@dataclass(slots=True)
class ReplaySummary:
    events: int = 0  # raw events examined
    unreadable: int = 0  # raw events the current adapters still refuse (left as they are)
    calls_created: int = 0
    calls_changed: int = 0
    calls_unchanged: int = 0
    calls_skipped: int = 0  # left alone: one of their events is unreadable now
    quarantined: int = 0  # quarantined bodies examined
    recovered: int = 0  # ... now read and stored as raw events
    still_unreadable: int = 0
    changes: list[CallChange] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["changes"] = [asdict(c) for c in self.changes]
        return out


def _parse(reparse: Reparse, row: RowMapping) -> ParsedEvent | None:
    return _read(reparse, row)[0]


def _read(reparse: Reparse, row: RowMapping) -> tuple[ParsedEvent | None, str | None]:
    """The event, or why it is not readable now (a PayloadError's message, or an adapter bug's type)."""
    try:
        return reparse(row["vendor"], row["headers"], row["body"]), None
    except CallgateError as exc:
        return None, exc.message
    except Exception as exc:  # an adapter bug: the body stays quarantined until the fix
        return None, f"adapter error: {type(exc).__name__}"


def _job(row: RowMapping, parsed: ParsedEvent, links: RecordingLinks | None) -> IngestJob:
    return IngestJob(
        tenant_id=row["tenant_id"],
        source_id=row["source_id"],
        vendor=row["vendor"],
        parsed=parsed,
        headers=row["headers"],
        body=row["body"],
        received_at=row["received_at"],
        links=links,
    )


def replay_page(
    conn: Connection,
    rows: Sequence[RowMapping],
    reparse: Reparse,
    now: datetime,
    summary: ReplaySummary,
    links: RecordingLinks | None = None,
) -> None:
    """One transaction's worth of raw events: re-parse them, then rebuild every call they touch once."""
    affected: dict[str, str] = {}  # call id -> the raw event that triggered its rebuild
    naming: dict[str, list[str]] = defaultdict(list)  # call id -> raw events that name it now
    for row in rows:
        summary.events += 1
        parsed = _parse(reparse, row)
        if parsed is None:
            summary.unreadable += 1
            continue
        state, _ = initial_state(parsed)
        for call_id in call_store.call_ids_of_raw_event(conn, row["id"]):
            affected.setdefault(call_id, row["id"])  # it may no longer name this call: rebuild drops it
        linked = False
        for update in parsed.updates:
            target = _target(conn, row, update)
            if target is None and update.vendor_call_id is not None:
                changes = apply_update(
                    conn, _job(row, parsed, links), update, row["id"], parsed, now, reparse
                )
                summary.calls_created += 1
                summary.changes.extend(changes or [])
                linked = True
            elif target is not None:
                affected.setdefault(target["id"], row["id"])
                naming[target["id"]].append(row["id"])
                linked = True
        if state == "pending_link" and linked:
            state = "applied"
        if state != row["state"]:
            event_store.set_state(conn, row["id"], state)
    for call_id, trigger in affected.items():
        _rebuild(conn, call_id, trigger, naming[call_id], reparse, now, summary, links)


def _target(conn: Connection, row: RowMapping, update: CallUpdate) -> Mapping[Any, Any] | None:
    if update.vendor_call_id is not None:
        return call_store.get_for_merge(conn, row["tenant_id"], row["vendor"], update.vendor_call_id)
    if update.link_alias is not None:
        return call_store.get_by_alias_for_merge(conn, row["tenant_id"], row["vendor"], update.link_alias)
    return None


def _rebuild(
    conn: Connection,
    call_id: str,
    trigger: str,
    naming: list[str],
    reparse: Reparse,
    now: datetime,
    summary: ReplaySummary,
    links: RecordingLinks | None = None,
) -> None:
    row = call_store.get_by_id_for_merge(conn, call_id)
    if row is None:
        return
    known = call_store.raw_event_ids_of_call(conn, call_id)
    raws = event_store.raw_events_by_id(conn, sorted(set(known) | set(naming)))
    parsed_events: list[tuple[RowMapping, ParsedEvent]] = []
    for raw in raws:
        parsed = _parse(reparse, raw)
        if parsed is None:
            summary.calls_skipped += 1
            return
        parsed_events.append((raw, parsed))
    key = row["vendor_call_id"]
    aliases = set(row["stamps"].get("aliases", []))
    for _, parsed in parsed_events:
        for update in parsed.updates:
            if update.vendor_call_id == key:
                aliases.update(update.aliases)
    folded: list[tuple[Stamp, CallUpdate]] = []
    for _, parsed in parsed_events:
        for update in parsed.updates:
            if update.vendor_call_id == key or (
                update.vendor_call_id is None and update.link_alias in aliases
            ):
                folded.append((stamp_of(parsed), update))
    state: CallState | None = None
    for stamp, update in sorted(folded, key=lambda su: su[0].lww()):
        state = merge(state, update, stamp).state
    if state is None:
        summary.calls_skipped += 1
        return
    if aliases:
        state.stamps["aliases"] = sorted(aliases)
    version = row["version"]
    for raw_id in sorted(set(naming) - set(known)):  # newly linked events join the timeline
        raw = next(r for r, _ in parsed_events if r["id"] == raw_id)
        unchanged = MergeResult(CallState(row["data"], row["stamps"]), (), (), None)
        record_change(
            conn,
            {k: row[k] for k in call_store.IDENTITY},
            raw_id,
            (raw["event_type"], raw["occurred_at"]),
            unchanged,
            version,
            now,
        )
    if state.data == row["data"] and state.stamps == row["stamps"]:
        summary.calls_unchanged += 1
        return
    before = row["data"]
    changed = tuple(
        sorted(k for k in before.keys() | state.data.keys() if before.get(k) != state.data.get(k))
    )
    previous = Status(before["status"]) if "status" in before else None
    result = MergeResult(state, changed, event_types(before, state.data, changed), previous)
    version += 1 if changed else 0
    call_store.update_call(conn, call_id, state, version, now)
    if changed:
        base = {k: row[k] for k in call_store.IDENTITY}
        record_change(conn, base, trigger, (REPLAY_EVENT, None), result, version, now, links=links)
        summary.calls_changed += 1
        summary.changes.append(change_of(call_id, version, result))
    else:
        summary.calls_unchanged += 1  # bookkeeping only


def recover_page(
    conn: Connection,
    rows: Sequence[RowMapping],
    reparse: Reparse,
    now: datetime,
    summary: ReplaySummary,
    links: RecordingLinks | None = None,
) -> None:
    """Quarantined bodies the adapters can read now are ingested like a webhook, then marked resolved."""
    for row in rows:
        summary.quarantined += 1
        parsed = _parse(reparse, row)
        if parsed is None:
            summary.still_unreadable += 1
            continue
        result = apply_event(conn, _job(row, parsed, links), now, reparse)
        event_store.resolve_quarantine(conn, row["id"], now)
        summary.recovered += 1
        summary.changes.extend(result.changes)


async def replay(
    db: Database,
    reparse: Reparse,
    clock: Clock,
    *,
    source_id: str | None = None,
    since: datetime | None = None,
    quarantined: bool = False,
    page_size: int = 200,
    links: RecordingLinks | None = None,
) -> ReplaySummary:
    """Quarantined bodies first (when asked), then the stored raw events; one transaction per page."""
    summary = ReplaySummary()
    if quarantined:
        after_id: str | None = None
        while True:

            def recover(conn: Connection, after: str | None = after_id) -> str | None:
                rows = event_store.unresolved_quarantine(
                    conn, source_id=source_id, since=since, after=after, limit=page_size
                )
                recover_page(conn, rows, reparse, clock(), summary, links)
                return str(rows[-1]["id"]) if rows else None

            after_id = await db.run_write(recover)
            if after_id is None:
                break
    position: tuple[datetime, str] | None = None
    while True:

        def run(
            conn: Connection, after: tuple[datetime, str] | None = position
        ) -> tuple[datetime, str] | None:
            rows = event_store.raw_events_page(
                conn, source_id=source_id, since=since, after=after, limit=page_size
            )
            replay_page(conn, rows, reparse, clock(), summary, links)
            return (rows[-1]["received_at"], rows[-1]["id"]) if rows else None

        position = await db.run_write(run)
        if position is None:
            break
    return summary


async def replay_quarantined(
    db: Database,
    reparse: Reparse,
    clock: Clock,
    tenant_id: str,
    quarantine_id: str,
    links: RecordingLinks | None = None,
) -> tuple[ReplaySummary, str | None]:
    """One quarantined body through the current adapters: ``(summary, why it is still unreadable)``.
    A body that reads now is ingested like a webhook (a duplicate changes nothing) and marked resolved."""
    summary = ReplaySummary()
    reason: list[str] = []

    def work(conn: Connection) -> None:
        row = found(event_store.quarantine_for_replay(conn, tenant_id, quarantine_id), "quarantined body")
        if row["resolved_at"] is not None:
            return
        summary.quarantined += 1
        parsed, why = _read(reparse, row)
        if parsed is None:
            summary.still_unreadable += 1
            reason.append(storable.text(why or "unreadable"))
            return
        result = apply_event(conn, _job(row, parsed, links), clock(), reparse)
        event_store.resolve_quarantine(conn, row["id"], clock())
        summary.recovered += 1
        summary.changes.extend(result.changes)

    await db.run_write(work)
    return summary, (reason[0] if reason else None)
