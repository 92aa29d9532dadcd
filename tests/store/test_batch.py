"""Round trips per batch (``gateway.store.batch``): webhooks sharing a group-commit batch store exactly what
they store one transaction each, and the batch runs a fixed number of statements, not five per webhook."""

from __future__ import annotations

import asyncio
import json
import random
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import event, insert, select
from sqlalchemy.engine import Connection

from gateway.errors import PayloadError, StorageUnavailable
from gateway.ids import new_id
from gateway.ingest import IngestJob, IngestResult, apply_event, prefetch
from gateway.outbox import Dispatch
from gateway.store import batch as batches
from gateway.store import prefetch as prefetching
from gateway.store.db import Database
from gateway.store.migrate import upgrade
from gateway.store.tables import call_events, calls, connections, deliveries, pulls, raw_events
from gateway.store.tables import sources as source_table
from gateway.writer import Writer
from tests.helpers import FIXTURES
from tests.store.helpers import NOW, new_source, reparse
from tests.store.test_transaction_cache import subscribed_tenant
from tests.store.test_writer import make_unreachable

pytestmark = pytest.mark.anyio

# several events per call, a room event before its call (the alias path), CRM syncs, pulls
EVENTS = [
    ("graph8", "call_initiating.json"),
    ("graph8", "call_ringing.json"),
    ("graph8", "call_in_progress.json"),
    ("graph8", "call_completed.json"),
    ("graph8", "call_transcript_ready.json"),
    ("callsv1", "call_started.json"),
    ("callsv1", "call_ended.json"),
    ("callsv1", "call_graded.json"),
    ("livekit", "participant_joined_sip_inbound.json"),
    ("livekit", "egress_ended_recording.json"),
    ("livekit", "participant_left_sip_inbound.json"),
    ("livekit", "room_finished.json"),
]
PULLS = {"graph8": ("transcript", "grade"), "callsv1": ("transcript", "grade")}


async def tenant_with_everything(db: Database, *, crm: bool = True) -> tuple[str, dict[str, str]]:
    """A tenant with a subscription to ``call.*``, a CRM connection syncing two statuses (``crm``), and
    one source per vendor."""
    tenant, _ = await subscribed_tenant(db)
    sources = {}
    for vendor in sorted({v for v, _ in EVENTS}):
        _, source = await new_source(db, vendor)
        sources[vendor] = source
    row = {
        "id": new_id("con"),
        "tenant_id": tenant,
        "kind": "hubspot",
        "name": "crm",
        "base_url": "http://127.0.0.1:9",
        "credentials": "sealed",
        "options": {"statuses": ["in_progress", "completed"]},
        "enabled": True,
        "state": "active",
        "created_at": NOW,
        "updated_at": NOW,
    }

    def setup(conn: Connection) -> None:
        if crm:
            conn.execute(insert(connections), row)
        # the sources belong to the tenant of the subscription
        conn.execute(
            source_table.update()
            .where(source_table.c.id.in_(list(sources.values())))
            .values(tenant_id=tenant)
        )

    await db.run_write(setup)
    return tenant, sources


def job(tenant: str, sources: dict[str, str], vendor: str, name: str) -> IngestJob:
    body = (FIXTURES / vendor / name).read_bytes()
    return IngestJob(
        tenant_id=tenant,
        source_id=sources[vendor],
        vendor=vendor,
        parsed=reparse(vendor, {}, body),
        headers={"content-type": "application/json"},
        body=body,
        received_at=NOW,
        dispatch=Dispatch(owner="worker", lease_until=NOW + timedelta(minutes=1), room=1000),
        pull_parts=PULLS.get(vendor, ()),
    )


async def snapshot(db: Database, tenant: str, sources: dict[str, str]) -> dict[str, Any]:
    """What was stored, without the ids the two runs made up (a call is named by its vendor key)."""
    async with db.reading() as conn:
        call_rows = (await conn.execute(select(calls).where(calls.c.tenant_id == tenant))).mappings().all()
        names = {r["id"]: f"{r['vendor']}:{r['vendor_call_id']}" for r in call_rows}
        names |= {tenant: "tenant"} | {source: f"source:{vendor}" for vendor, source in sources.items()}
        raws = (await conn.execute(select(raw_events).where(raw_events.c.tenant_id == tenant))).mappings()
        raw_rows = raws.all()
        keys = {r["id"]: r["event_key"] for r in raw_rows}
        timeline = (
            await conn.execute(
                select(call_events).where(call_events.c.tenant_id == tenant).order_by(call_events.c.id)
            )
        ).mappings()
        outbox = (
            await conn.execute(
                select(deliveries).where(deliveries.c.tenant_id == tenant).order_by(deliveries.c.id)
            )
        ).mappings()
        pull_rows = (await conn.execute(select(pulls).where(pulls.c.tenant_id == tenant))).mappings()

        def named(text: str) -> str:
            for call_id, name in names.items():
                text = text.replace(call_id, name)
            return text

        return {
            "calls": sorted(
                json.dumps(
                    [names[r["id"]], r["version"], r["status"], r["data"], r["stamps"], r["from_number"]],
                    sort_keys=True,
                )
                for r in call_rows
            ),
            "raw": sorted((r["vendor"], r["event_key"], r["state"]) for r in raw_rows),
            "timeline": [
                (names[r["call_id"]], keys[r["raw_event_id"]], r["types"], r["changed"], r["version"])
                for r in timeline
            ],
            "outbox": sorted(
                (
                    names[r["call_id"]],
                    r["subscription_id"] is None,
                    r["event_type"],
                    r["call_version"],
                    r["sequence"],
                    r["lease_owner"],
                    # parsed: PostgreSQL's jsonb orders an object's keys its own way when read back, so
                    # a body built from a call read from the database and one built from the call the
                    # batch holds differ in key order only
                    json.dumps(json.loads(named(bytes(r["payload"]).decode())), sort_keys=True),
                )
                for r in outbox
            ),
            "pulls": sorted((names[r["call_id"]], r["part"]) for r in pull_rows),
        }


async def one_at_a_time(db: Database, jobs: list[IngestJob]) -> list[IngestResult]:
    return [await db.run_write(lambda conn, j=j: apply_event(conn, j, NOW, reparse)) for j in jobs]  # type: ignore[misc]


async def batched(db: Database, jobs: list[IngestJob], max_batch: int) -> tuple[list[IngestResult], int]:
    writer = Writer(db, max_batch=max_batch)
    writer.start()
    try:
        results = await asyncio.gather(
            *(
                writer.submit(
                    lambda conn, j=j: apply_event(conn, j, NOW, reparse),  # type: ignore[misc]
                    key=j.source_id,
                    ingest=True,
                    plan=lambda j=j: prefetch(j),  # type: ignore[misc]
                )
                for j in jobs
            )
        )
        return list(results), writer.batches
    finally:
        await writer.stop()


async def both_ways(db_url: str, order: list[tuple[str, str]], max_batch: int) -> list[Any]:
    """The same webhooks one transaction each, then submitted together: what each run stored and said."""
    runs: list[Any] = []
    for together in (False, True):
        db = Database(db_url)
        try:
            tenant, sources = await tenant_with_everything(db)
            jobs = [job(tenant, sources, vendor, name) for vendor, name in order]
            batches = 0
            if together:
                results, batches = await batched(db, jobs, max_batch)
            else:
                results = await one_at_a_time(db, jobs)
            outcomes = [(r.duplicate, r.state, len(r.changes)) for r in results]
            runs.append((await snapshot(db, tenant, sources), outcomes, batches))
        finally:
            await db.dispose()
    return runs


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**32), dupes=st.lists(st.integers(0, len(EVENTS) - 1), max_size=4))
def test_a_batch_stores_what_one_transaction_per_webhook_stores(
    db_url: str, seed: int, dupes: list[int]
) -> None:
    order = EVENTS + [EVENTS[i] for i in dupes]
    random.Random(seed).shuffle(order)
    max_batch = random.Random(seed).randint(2, len(order))
    (alone, alone_outcomes, _), (together, together_outcomes, batches) = asyncio.run(
        both_ways(db_url, order, max_batch)
    )
    assert batches < len(order)  # the webhooks did share batches
    assert together_outcomes == alone_outcomes
    assert together == alone


def variant(tenant: str, sources: dict[str, str], name: str, n: int) -> IngestJob:
    """A callsv1 fixture for call ``n`` (its own call id and event id)."""
    document = json.loads((FIXTURES / "callsv1" / name).read_bytes())
    document["id"] = f"{document['id']}-{n}"
    document["call"]["call_id"] = 1000 + n
    body = json.dumps(document).encode()
    return replace(job(tenant, sources, "callsv1", name), parsed=reparse("callsv1", {}, body), body=body)


def statements(conn: Connection, jobs: list[IngestJob], *, planned: bool) -> list[str]:
    """The statements ``jobs`` run in one transaction, with the batch (``planned``) or without."""
    seen: list[str] = []

    def capture(_c: Any, _cursor: Any, statement: str, *_rest: Any) -> None:
        seen.append(statement)

    event.listen(conn, "before_cursor_execute", capture)
    try:
        if planned:
            prefetching.begin(conn, [prefetch(j) for j in jobs])
        for j in jobs:
            apply_event(conn, j, NOW, reparse)
        batches.end(conn)
    finally:
        event.remove(conn, "before_cursor_execute", capture)
    return seen


async def test_a_batch_of_webhooks_runs_its_statements_once_not_once_per_webhook(db: Database) -> None:
    tenant, sources = await tenant_with_everything(db, crm=False)  # a CRM sync costs an UPDATE a job
    # eight calls created, then each ended: every job reads its call, writes it, its timeline, its outbox
    started = [replace(variant(tenant, sources, "call_started.json", n), pull_parts=()) for n in range(8)]
    ended = [replace(variant(tenant, sources, "call_ended.json", n), pull_parts=()) for n in range(8)]
    alone = variant(tenant, sources, "call_started.json", 99)
    created = await db.run_write(lambda conn: statements(conn, started, planned=True))
    changed = await db.run_write(lambda conn: statements(conn, ended, planned=True))
    one = await db.run_write(lambda conn: statements(conn, [alone], planned=False))
    # raw events, calls read, calls inserted or updated, timeline, outbox, and the tenant's
    # subscriptions, connections and CRM syncs: a handful however many webhooks
    assert len(one) >= 6, one  # one webhook on its own
    assert len(created) <= len(one) + 1, created
    assert len(changed) <= len(one) + 1, changed
    async with db.reading() as conn:
        query = select(calls.c.status).where(calls.c.tenant_id == tenant, calls.c.vendor == "callsv1")
        stored = sorted((await conn.execute(query)).scalars())
    assert stored == ["completed"] * 8 + ["in_progress"]


async def test_a_failing_webhook_in_a_batch_fails_alone_and_the_rest_is_stored(db: Database) -> None:
    tenant, sources = await tenant_with_everything(db)
    jobs = [variant(tenant, sources, "call_started.json", n) for n in range(4)]

    def failing(conn: Connection) -> IngestResult:
        apply_event(conn, jobs[2], NOW, reparse)  # its writes are deferred with the others'
        raise PayloadError("refused after its writes")

    writer = Writer(db, max_batch=16)
    writer.start()
    try:
        outcomes: list[Any] = await asyncio.gather(
            *(
                writer.submit(
                    failing if n == 2 else (lambda conn, j=j: apply_event(conn, j, NOW, reparse)),  # type: ignore[misc]
                    ingest=True,
                    plan=lambda j=j: prefetch(j),  # type: ignore[misc]
                )
                for n, j in enumerate(jobs)
            ),
            return_exceptions=True,
        )
        shared = writer.batches < len(jobs)
    finally:
        await writer.stop()
    assert shared  # the four went through one batched pass (then its savepoint pass), not one by one
    assert isinstance(outcomes[2], PayloadError)
    assert all(isinstance(o, IngestResult) and not o.duplicate for i, o in enumerate(outcomes) if i != 2)
    async with db.reading() as conn:
        query = select(raw_events.c.id).where(raw_events.c.tenant_id == tenant)
        stored = set((await conn.execute(query)).scalars())
        ids = select(calls.c.vendor_call_id).where(calls.c.tenant_id == tenant)
        call_ids = sorted((await conn.execute(ids)).scalars())
    assert stored == {j.raw_id for n, j in enumerate(jobs) if n != 2}
    assert call_ids == ["1000", "1001", "1003"]


async def test_storage_gone_under_a_batch_answers_every_webhook_unavailable(sqlite_url: str) -> None:
    """The batch's first statement (its raw events) fails on a database that is not there: every webhook
    of the batch is told to retry (503), the writer survives and serves again once storage is back."""
    db = Database(sqlite_url)
    writer = Writer(db, max_batch=16)
    writer.start()
    db_file = Path(sqlite_url.split("///", 1)[1])
    jobs = [job("ten_x", {"callsv1": "src_x"}, "callsv1", "call_started.json") for _ in range(4)]
    try:
        make_unreachable(db_file)  # before the writer's first connection
        outcomes = await asyncio.gather(
            *(
                writer.submit(
                    lambda conn, j=j: apply_event(conn, j, NOW, reparse),  # type: ignore[misc]
                    ingest=True,
                    plan=lambda j=j: prefetch(j),  # type: ignore[misc]
                )
                for j in jobs
            ),
            return_exceptions=True,
        )
        assert all(isinstance(o, StorageUnavailable) for o in outcomes), outcomes
        assert writer.running
        await asyncio.to_thread(db_file.rmdir)
        await asyncio.to_thread(upgrade, sqlite_url)
        assert await writer.submit(lambda conn: "back") == "back"
    finally:
        await writer.stop()
        await db.dispose()
