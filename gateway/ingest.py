"""The ingest transaction: one vendor event -> raw event + call merges + timeline rows, atomically.

``apply_event`` is the unit of work, written once above the narrow store functions as synchronous Core
code; it runs inside a transaction the caller owns (a group-commit batch, see ``gateway.writer``). The
request path reaches it only through ``Writer.submit``, which returns after the commit.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Connection

from gateway import storable
from gateway.errors import PayloadError
from gateway.ids import new_id
from gateway.inbound import Headers, InboundAdapter, ParsedEvent, Reparse
from gateway.model import CallState, CallUpdate, MergeResult, Stamp, format_ts, merge
from gateway.outbox import Dispatch, enqueue_change
from gateway.phones import normalize
from gateway.pull.parts import schedule as schedule_pulls
from gateway.pull.recordings import RecordingLinks
from gateway.store import batch as batches
from gateway.store import calls as call_store
from gateway.store import events as event_store
from gateway.store.batch import Prefetch

# headers never stored with a raw event: they are credentials, not content
SECRET_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie", "x-api-key"})


@dataclass(frozen=True, slots=True)
class IngestJob:
    tenant_id: str
    source_id: str
    vendor: str
    parsed: ParsedEvent
    headers: Mapping[str, str]
    body: bytes
    received_at: datetime
    dispatch: Dispatch | None = None  # the in-process worker takes the fresh deliveries it can send now
    pull_parts: tuple[str, ...] = ()  # what the source's read API can fill in later (gateway.pull.parts)
    links: RecordingLinks | None = None  # relayed recordings as the gateway's own links
    raw_id: str = field(default_factory=lambda: new_id("evt"))  # its raw event's id, made up front


@dataclass(frozen=True, slots=True)
class CallChange:
    call_id: str
    version: int
    status: str | None
    changed: tuple[str, ...]
    types: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class IngestResult:
    raw_event_id: str
    duplicate: bool
    state: str = "applied"
    changes: tuple[CallChange, ...] = field(default_factory=tuple)


MAX_KEY = 300  # the width of the key columns (event_key, vendor_call_id, alias)


def bounded(parsed: ParsedEvent) -> ParsedEvent:
    """Keys that fit their columns: a long event id is replaced by its hash; a long call key is refused."""
    if len(parsed.event_key) > MAX_KEY:
        parsed = replace(parsed, event_key="sha256:" + hashlib.sha256(parsed.event_key.encode()).hexdigest())
    for update in parsed.updates:
        for key in (update.vendor_call_id, update.link_alias, *update.aliases):
            if key is not None and len(key) > MAX_KEY:
                raise PayloadError(f"call key longer than {MAX_KEY} characters")
    return parsed


def prepare(parsed: ParsedEvent, region: str) -> ParsedEvent:
    """What an adapter said, made storable: valid text, bounded nesting, keys that fit their columns,
    E.164 numbers. Raises ``PayloadError`` (the body is quarantined) for what cannot be made so."""
    parsed = bounded(storable_event(parsed))
    if not parsed.updates:
        return parsed
    return replace(parsed, updates=tuple(normalize(u, region) for u in parsed.updates))


MAX_REPAIRED = 20  # paths recorded per update; the count says how many there were


def storable_event(parsed: ParsedEvent) -> ParsedEvent:
    """Every string of the event valid Unicode without NUL, no NaN, nesting within ``MAX_DEPTH``: the
    one place inbound content is made storable. What was repaired is recorded in the call's
    ``vendor_extra.repaired`` (the JSON paths) and logged with the event."""
    event_key = parsed.event_key
    if not storable.is_clean(event_key):  # the hash of the exact code points: distinct keys stay distinct
        raw = event_key.encode("utf-8", "surrogatepass")
        event_key = "sha256:" + hashlib.sha256(raw).hexdigest()
    try:
        updates = tuple(_storable_update(u) for u in parsed.updates)
        unmapped, unmapped_fixed = storable.document(dict(parsed.unmapped))
        invalid, invalid_fixed = storable.document(dict(parsed.invalid))
    except storable.TooDeep as exc:
        raise PayloadError(str(exc)) from None
    event_type = storable.text(parsed.event_type)
    same = all(a is b for a, b in zip(updates, parsed.updates, strict=True))
    untouched = same and event_key is parsed.event_key and event_type is parsed.event_type
    if untouched and not unmapped_fixed and not invalid_fixed:
        return parsed
    return replace(
        parsed,
        event_key=event_key,
        event_type=event_type,
        updates=updates,
        unmapped=unmapped,
        invalid=invalid,
    )


def _storable_update(update: CallUpdate) -> CallUpdate:
    keys = (update.vendor_call_id, update.link_alias, *update.aliases)
    fields, repaired = storable.document(update.fields)
    if not repaired and all(k is None or storable.is_clean(k) for k in keys):
        return update
    if repaired:
        extra = dict(fields.get("vendor_extra") or {})
        extra["repaired"] = repaired[:MAX_REPAIRED] + (
            [f"... {len(repaired) - MAX_REPAIRED} more"] if len(repaired) > MAX_REPAIRED else []
        )
        fields["vendor_extra"] = extra
    return replace(
        update,
        vendor_call_id=_key(update.vendor_call_id),
        link_alias=_key(update.link_alias),
        aliases=tuple(storable.text(a) for a in update.aliases),
        fields=fields,
    )


def _key(value: str | None) -> str | None:
    return storable.text(value) if value is not None else None


def reparser(adapters: Mapping[str, InboundAdapter], region: str) -> Reparse:
    """Stored bodies back through the current adapters (pending LiveKit room events, ``callgate replay``)."""

    def reparse(vendor: str, headers: Headers, body: bytes) -> ParsedEvent:
        return prepare(adapters[vendor].parse(headers, body), region)

    return reparse


def storable_headers(headers: Mapping[str, str]) -> dict[str, str]:
    return {k.lower(): v for k, v in headers.items() if k.lower() not in SECRET_HEADERS}


def stamp_of(parsed: ParsedEvent) -> Stamp:
    return Stamp(format_ts(parsed.occurred_at) if parsed.occurred_at else "", parsed.event_key)


@dataclass(frozen=True, slots=True)
class Quarantined:
    """A verified body no adapter could read: kept whole for ``callgate replay --quarantined``."""

    tenant_id: str
    source_id: str
    vendor: str
    headers: Mapping[str, str]
    body: bytes
    error: str
    received_at: datetime


def quarantine(conn: Connection, item: Quarantined) -> str:
    """The quarantine row, in the caller's transaction (a group-commit batch). Returns its id."""
    quarantine_id = new_id("qua")
    event_store.insert_quarantine(
        conn,
        {
            "id": quarantine_id,
            "tenant_id": item.tenant_id,
            "source_id": item.source_id,
            "vendor": item.vendor,
            "received_at": item.received_at,
            "headers": storable_headers(item.headers),
            "body": item.body,
            "error": storable.text(item.error[:2000]),
        },
    )
    return quarantine_id


def initial_state(parsed: ParsedEvent) -> tuple[str, str | None]:
    if not parsed.known:
        return "unknown_type", None
    if any(u.vendor_call_id for u in parsed.updates):
        return "applied", None
    links = [u.link_alias for u in parsed.updates if u.link_alias]
    if links:
        return "pending_link", links[0]
    return "no_call", None


def raw_event_row(job: IngestJob) -> dict[str, Any]:
    parsed = job.parsed
    state, link_alias = initial_state(parsed)
    return {
        "id": job.raw_id,
        "tenant_id": job.tenant_id,
        "source_id": job.source_id,
        "vendor": job.vendor,
        "event_key": parsed.event_key,
        "event_type": parsed.event_type[:200],
        "state": state,
        "link_alias": link_alias,
        "occurred_at": parsed.occurred_at,
        "received_at": job.received_at,
        "headers": storable_headers(job.headers),
        "body": job.body,
    }


def prefetch(job: IngestJob) -> Prefetch:
    """What the job's batch reads and writes for it up front (``gateway.store.batch``)."""
    keys = tuple(
        (job.tenant_id, job.vendor, u.vendor_call_id) for u in job.parsed.updates if u.vendor_call_id
    )
    return Prefetch(raw_event_row(job), keys)


def apply_event(conn: Connection, job: IngestJob, now: datetime, reparse: Reparse) -> IngestResult:
    if job.dispatch is not None:
        job.dispatch.reset()
    parsed = job.parsed
    raw_id = job.raw_id
    state, _link_alias = initial_state(parsed)
    stored = batches.raw_stored(conn, raw_id)  # inserted with its batch
    if stored is None:
        stored = event_store.insert_raw_event(conn, raw_event_row(job))
    if not stored:
        existing = event_store.find_raw_event_id(conn, job.source_id, parsed.event_key)
        return IngestResult(existing or raw_id, duplicate=True)
    changes: list[CallChange] = []
    for update in parsed.updates:
        change = apply_update(conn, job, update, raw_id, parsed, now, reparse)
        if change is not None:
            changes.extend(change)
    if state == "pending_link" and changes:
        state = "applied"
        event_store.set_state(conn, raw_id, state)
    return IngestResult(raw_id, duplicate=False, state=state, changes=tuple(changes))


def apply_update(
    conn: Connection,
    job: IngestJob,
    update: CallUpdate,
    raw_id: str,
    parsed: ParsedEvent,
    now: datetime,
    reparse: Reparse,
) -> list[CallChange] | None:
    """Merges one update into its call. None when it names no known call (a room event before its call)."""
    if update.vendor_call_id is not None:
        row = call_store.get_for_merge(conn, job.tenant_id, job.vendor, update.vendor_call_id)
    elif update.link_alias is not None:
        row = call_store.get_by_alias_for_merge(conn, job.tenant_id, job.vendor, update.link_alias)
        if row is None:
            return None
    else:  # CallUpdate refuses to exist without one of the two
        return None
    state = CallState(dict(row["data"]), dict(row["stamps"])) if row is not None else None
    result = merge(state, update, stamp_of(parsed))
    known_aliases = set(result.state.stamps.get("aliases", []))
    new_aliases = [a for a in update.aliases if a not in known_aliases]
    if new_aliases:
        result.state.stamps["aliases"] = sorted(known_aliases | set(new_aliases))
    if row is None:
        base: dict[str, Any] = {
            "id": new_id("call"),
            "tenant_id": job.tenant_id,
            "source_id": job.source_id,
            "vendor": job.vendor,
            "vendor_call_id": update.vendor_call_id or "",
            "created_at": now,
        }
        version = 1
        call_store.insert_call(
            conn,
            call_id=base["id"],
            state=result.state,
            now=now,
            **{k: base[k] for k in ("tenant_id", "source_id", "vendor", "vendor_call_id")},
        )
    else:
        base = {k: row[k] for k in call_store.IDENTITY}
        version = row["version"] + (1 if result.changed else 0)
        # Bookkeeping can change with no visible change (a late in_progress after completed); it is
        # written too, or the stored call would depend on arrival order. Only visible changes count.
        if result.changed or result.state.stamps != row["stamps"]:
            call_store.update_call(conn, base["id"], result.state, version, now)
    call_id = base["id"]
    event = (parsed.event_type, parsed.occurred_at)
    record_change(conn, base, raw_id, event, result, version, now, job.dispatch, job.links)
    if job.pull_parts:  # a call that completed without its transcript, grade...: pulled later
        completed_now = "status" in result.changed and result.state.data.get("status") == "completed"
        schedule_pulls(conn, base, result.state.data, completed_now, job.pull_parts, now)
    changes = [change_of(call_id, version, result)]
    for alias in new_aliases:
        if call_store.insert_alias(conn, job.tenant_id, job.vendor, alias, call_id):
            changes.extend(_apply_pending(conn, job, alias, now, reparse))
    return changes


def _apply_pending(
    conn: Connection, job: IngestJob, alias: str, now: datetime, reparse: Reparse
) -> list[CallChange]:
    """Events that arrived before their call (LiveKit room events) are applied once the call exists."""
    changes: list[CallChange] = []
    for pending in event_store.pending_for_alias(conn, job.tenant_id, job.vendor, alias):
        parsed = reparse(job.vendor, pending["headers"], pending["body"])
        for update in parsed.updates:
            if update.link_alias == alias:
                change = apply_update(conn, job, update, pending["id"], parsed, now, reparse)
                changes.extend(change or [])
        event_store.set_state(conn, pending["id"], "applied")
    return changes


def record_change(
    conn: Connection,
    base: Mapping[str, Any],
    raw_id: str,
    event: tuple[str, datetime | None],
    result: MergeResult,
    version: int,
    now: datetime,
    dispatch: Dispatch | None = None,
    links: RecordingLinks | None = None,
) -> None:
    """The timeline row of one applied event (``event`` is the vendor's type and time), and the outbox
    rows of the change, in the caller's transaction. ``base`` is the call's identity (``IDENTITY``)."""
    event_type, occurred_at = event
    values: dict[str, Any] = {
        "id": new_id("cev"),
        "tenant_id": base["tenant_id"],
        "call_id": base["id"],
        "raw_event_id": raw_id,
        "event_type": event_type[:200],
        "types": [str(t) for t in result.types],
        "changed": list(result.changed),
        "status": result.state.data.get("status"),
        "previous_status": result.previous_status.value if result.previous_status else None,
        "version": version,
        "occurred_at": occurred_at,
        "created_at": now,
    }
    call_store.insert_call_event(conn, values)
    if result.changed:
        enqueue_change(conn, base, result, version, now, dispatch, links)


def change_of(call_id: str, version: int, result: MergeResult) -> CallChange:
    return CallChange(
        call_id=call_id,
        version=version,
        status=result.state.data.get("status"),
        changed=result.changed,
        types=tuple(str(t) for t in result.types),
    )
