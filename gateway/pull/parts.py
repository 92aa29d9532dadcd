"""Which parts of a finished call its vendor's read API can still fill in, and the ``pulls`` rows the
ingest transaction schedules for them (``gateway.pull.hydrate`` runs them)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection

from gateway.ids import new_id
from gateway.pull.base import Part
from gateway.store import batch as batches
from gateway.store.tables import pulls

FIRST_DELAY = timedelta(seconds=60)  # graph8 may announce call.completed before it flushed the transcript

# what each vendor's read API can fill in after the call (``gateway.pull.<vendor>.pull``)
PARTS: Mapping[str, tuple[Part, ...]] = {
    "graph8": (Part.TRANSCRIPT, Part.GRADE),
    "callsv1": (Part.TRANSCRIPT, Part.GRADE),
    "voicecalls": (Part.TRANSCRIPT, Part.SURVEY),
}


def parts_for(source: Mapping[Any, Any]) -> tuple[str, ...]:
    """The parts to hydrate for a source's calls: none without read-API settings."""
    if source.get("pull_token") is None:
        return ()
    return tuple(p.value for p in PARTS.get(source["vendor"], ()))


def lacks(data: Mapping[str, Any], part: str) -> bool:
    """Whether the merged call still lacks ``part`` (a pending grade has no score yet)."""
    if part == Part.TRANSCRIPT:
        return not data.get("transcript")
    if part == Part.GRADE:
        return (data.get("grade") or {}).get("score") is None
    return not data.get(part)


_SCHEDULE = {
    name: builder(pulls).on_conflict_do_nothing(index_elements=["call_id", "part"])
    for name, builder in (("postgresql", pg_insert), ("sqlite", sqlite_insert))
}


def schedule(
    conn: Connection,
    base: Mapping[str, Any],
    data: Mapping[str, Any],
    completed_now: bool,
    parts: Sequence[str],
    now: datetime,
) -> None:
    """In the ingest transaction: rows for the parts a call that just completed still lacks."""
    if not completed_now or not parts:
        return
    rows = [
        {
            "id": new_id("pul"),
            "tenant_id": base["tenant_id"],
            "source_id": base["source_id"],
            "call_id": base["id"],
            "part": part,
            "status": "pending",
            "attempts": 0,
            "next_attempt_at": now + FIRST_DELAY,
            "lease_until": None,
            "last_error": None,
            "created_at": now,
            "updated_at": now,
        }
        for part in parts
        if lacks(data, part)
    ]
    if rows:
        batches.settle(conn)  # a pull refers to its call: the call is written first
        conn.execute(_SCHEDULE[conn.dialect.name], rows)
