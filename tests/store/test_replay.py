"""Replay through the current adapters, on real SQLite and PostgreSQL: idempotent, and it repairs what an
older adapter got wrong (an event type it did not know, a body it could not read)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from functools import partial

import pytest
from sqlalchemy import select

from adapters.base import ParsedEvent
from gateway.inbound import Reparse
from gateway.ingest import IngestJob, apply_event
from gateway.replay import REPLAY_EVENT, replay
from gateway.store import events as event_store
from gateway.store.db import Database
from gateway.store.tables import call_events, quarantine, raw_events
from tests.helpers import FIXTURES
from tests.store.helpers import NOW, call_rows, content, ingest_fixture, new_source, reparse
from tests.store.test_ingest import SEQUENCES

pytestmark = pytest.mark.anyio


async def test_replaying_every_vendor_twice_changes_nothing(db: Database) -> None:
    tenants, sources = [], []
    for vendor, names in SEQUENCES.items():
        tenant, source = await new_source(db, vendor)
        tenants.append(tenant)
        sources.append(source)
        for name in names:
            await ingest_fixture(db, tenant, source, vendor, name)
    before = {t: sorted(content(r) for r in await call_rows(db, t)) for t in tenants}
    versions = {t: sorted(r["version"] for r in await call_rows(db, t)) for t in tenants}

    for _ in range(2):
        for source, names in zip(sources, SEQUENCES.values(), strict=True):
            summary = await replay(db, reparse, lambda: NOW, source_id=source, page_size=2)  # several pages
            assert summary.events == len(names)
            assert (summary.calls_changed, summary.calls_created, summary.unreadable) == (0, 0, 0)
            assert summary.calls_unchanged >= 1
    assert {t: sorted(content(r) for r in await call_rows(db, t)) for t in tenants} == before
    assert {t: sorted(r["version"] for r in await call_rows(db, t)) for t in tenants} == versions


def older_adapter(forgets: str) -> Reparse:
    """The adapters as they were before a fix: ``forgets`` was an event type they did not know."""

    def parse(vendor: str, headers: Mapping[str, str], body: bytes) -> ParsedEvent:
        parsed = reparse(vendor, headers, body)
        return replace(parsed, updates=(), known=False) if parsed.event_type == forgets else parsed

    return parse


async def test_replay_applies_what_an_older_adapter_missed(db: Database) -> None:
    tenant, source = await new_source(db, "callsv1")
    old = older_adapter("call.graded")
    for name in SEQUENCES["callsv1"]:
        body = (FIXTURES / "callsv1" / name).read_bytes()
        job = IngestJob(tenant, source, "callsv1", old("callsv1", {}, body), {}, body, NOW)
        await db.run_write(partial(apply_event, job=job, now=NOW, reparse=reparse))
    (stale,) = await call_rows(db, tenant)
    assert "summary" not in stale["data"]["grade"]  # only call.graded carries the grader's summary

    summary = await replay(db, reparse, lambda: NOW, source_id=source)
    assert summary.calls_changed == 1
    (fixed,) = await call_rows(db, tenant)
    assert fixed["data"]["grade"]["summary"].startswith("Resolved")
    assert fixed["version"] == stale["version"] + 1
    # The result is exactly what ingesting the events with today's adapters stores.
    other_tenant, other_source = await new_source(db, "callsv1")
    for name in SEQUENCES["callsv1"]:
        await ingest_fixture(db, other_tenant, other_source, "callsv1", name)
    (fresh,) = await call_rows(db, other_tenant)
    assert content(fixed) == content(fresh)
    async with db.reading() as conn:
        timeline = (
            await conn.execute(
                select(call_events.c.event_type, call_events.c.changed).where(
                    call_events.c.call_id == fixed["id"]
                )
            )
        ).all()
        state = (
            await conn.execute(
                select(raw_events.c.state).where(
                    raw_events.c.source_id == source, raw_events.c.event_type == "call.graded"
                )
            )
        ).scalar_one()
    assert (REPLAY_EVENT, ["grade"]) in [(t, c) for t, c in timeline]
    assert state == "applied"  # it was stored as an unknown type

    again = await replay(db, reparse, lambda: NOW, source_id=source)
    assert again.calls_changed == 0
    assert (await call_rows(db, tenant))[0]["version"] == fixed["version"]


async def test_replay_recovers_quarantined_bodies_once(db: Database) -> None:
    tenant, source = await new_source(db, "qualifier")
    body = (FIXTURES / "qualifier" / "agent_run_completed_qualified.json").read_bytes()
    await db.run_write(
        lambda conn: event_store.insert_quarantine(
            conn,
            {
                "id": "qua_1",
                "tenant_id": tenant,
                "source_id": source,
                "vendor": "qualifier",
                "received_at": NOW,
                "headers": {},
                "body": body,
                "error": "data.verdict: an older adapter could not read it",
            },
        )
    )
    await db.run_write(
        lambda conn: event_store.insert_quarantine(
            conn,
            {
                "id": "qua_2",
                "tenant_id": tenant,
                "source_id": source,
                "vendor": "qualifier",
                "received_at": NOW,
                "headers": {},
                "body": b"{ still not json",
                "error": "body is not valid JSON",
            },
        )
    )
    summary = await replay(db, reparse, lambda: NOW, source_id=source, quarantined=True)
    assert (summary.quarantined, summary.recovered, summary.still_unreadable) == (2, 1, 1)
    (call,) = await call_rows(db, tenant)
    assert call["data"]["qualification"]["verdict"] == "qualified"
    async with db.reading() as conn:
        resolved = dict((await conn.execute(select(quarantine.c.id, quarantine.c.resolved_at))).all())
    assert resolved["qua_1"] is not None
    assert resolved["qua_2"] is None

    again = await replay(db, reparse, lambda: NOW, source_id=source, quarantined=True)
    assert (again.quarantined, again.recovered, again.still_unreadable) == (1, 0, 1)
    assert (await call_rows(db, tenant))[0]["version"] == call["version"]
