"""CRM syncs through the outbox, on SQLite and PostgreSQL: which changes queue a sync, coalescing to the
latest version, the mapping table, and what each classified CRM answer does to the row and the connection.

The connector here is scripted (it answers what the test says, and records what it was asked): these tests
are about the outbox's state machine. The connectors themselves are tested over HTTP against the CRM
doubles (``tests/crm/``), and the two together end to end in ``tests/crm/test_end_to_end.py``.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from gateway import connections as connection_service
from gateway import outbox
from gateway.connectors import (
    ConnectorSpec,
    CrmFailure,
    CrmOutcome,
    CrmVerdict,
    SyncedRecord,
)
from gateway.outbound.crm import CrmRuntime
from gateway.outbound.retry import Policy
from gateway.outbound.ssrf import TargetPolicy
from gateway.outbound.worker import Worker, WorkerConfig
from gateway.store.db import Database
from gateway.store.tables import connections, crm_records, deliveries, operator_events
from gateway.vault import Vault
from tests.helpers import FakeClock
from tests.store.helpers import ingest_fixture, new_source

pytestmark = pytest.mark.anyio

LOOPBACK = TargetPolicy.build(False, ["127.0.0.0/8"])
START = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


@dataclass
class Script:
    """What the scripted CRM answers, in order (then success), and every call it was asked to sync."""

    answers: list[CrmOutcome] = field(default_factory=list)
    asked: list[tuple[dict[str, Any], SyncedRecord | None]] = field(default_factory=list)
    credentials: list[Mapping[str, str]] = field(default_factory=list)


class ScriptedConnector:
    kind = "scripted"

    def __init__(self, script: Script, credentials: Mapping[str, str]) -> None:
        self.script = script
        script.credentials.append(dict(credentials))

    async def test(self) -> None:
        return None

    async def sync(self, call: Mapping[str, Any], existing: SyncedRecord | None) -> SyncedRecord:
        self.script.asked.append((dict(call), existing))
        if self.script.answers:
            answer = self.script.answers.pop(0)
            if answer.verdict is not CrmVerdict.DONE:
                raise CrmFailure(answer)
        record_id = existing.record_id if existing else f"rec_{len(self.script.asked)}"
        return SyncedRecord(record_id, "call", {"seen": call["version"]})


@dataclass
class Setup:
    db: Database
    clock: FakeClock
    tenant: str
    source: str
    connection: dict[str, Any]
    script: Script
    worker: Worker
    crm: CrmRuntime

    async def ingest(self, name: str) -> None:
        await ingest_fixture(self.db, self.tenant, self.source, "graph8", name, self.clock())

    async def rows(self, table: Any = deliveries) -> list[dict[str, Any]]:
        async with self.db.reading() as conn:
            query = select(table).where(table.c.tenant_id == self.tenant)
            return [dict(r) for r in (await conn.execute(query)).mappings().all()]

    async def connection_row(self) -> dict[str, Any]:
        async with self.db.reading() as conn:
            query = select(connections).where(connections.c.id == self.connection["id"])
            return dict((await conn.execute(query)).mappings().one())


@pytest.fixture
async def make(db: Database) -> AsyncIterator[Any]:
    built: list[Setup] = []

    async def build(**options: Any) -> Setup:
        clock = FakeClock(START)
        script = Script()
        spec = ConnectorSpec(
            kind="scripted",
            default_base_url="http://127.0.0.1:9",
            credential_keys=(frozenset({"token"}),),
            default_options={"statuses": list(outbox.TERMINAL), "match_contacts": True},
            build=lambda base_url, creds, opts, client, contacts: ScriptedConnector(script, creds),
            rate_per_second=1000,
        )
        crm = CrmRuntime({"scripted": spec}, Vault(Vault.new_key()), httpx.AsyncClient())
        tenant, source = await new_source(db, "graph8")
        row = await connection_service.create(
            db,
            crm.specs,
            crm.vault,
            LOOPBACK,
            clock(),
            tenant_id=tenant,
            kind="scripted",
            credentials={"token": "t0ps3cret"},
            options=options,
        )
        config = WorkerConfig(policy=Policy(), targets=LOOPBACK)
        worker = Worker(db, config, clock, rng=random.Random(3), crm=crm)
        setup = Setup(db, clock, tenant, source, dict(row), script, worker, crm)
        built.append(setup)
        return setup

    yield build
    for setup in built:
        await setup.worker.stop(grace=1)
        await setup.crm.client.aclose()
        # PostgreSQL tests share one database: leave no claimable sync behind for the next test's worker
        await connection_service.delete(
            db, setup.clock(), tenant_id=setup.tenant, connection_id=setup.connection["id"]
        )


async def test_a_call_is_synced_when_it_ends_and_updated_by_enrichment_as_one_record(make: Any) -> None:
    s = await make()
    await s.ingest("call_initiating.json")
    await s.ingest("call_in_progress.json")
    assert await s.rows() == []  # not a synced status yet: nothing queued
    await s.ingest("call_completed.json")
    assert await s.worker.run_once() == 1
    (call, existing), *_ = s.script.asked
    assert call["status"] == "completed"
    assert existing is None
    (record,) = await s.rows(crm_records)
    assert (record["record_id"], record["version"]) == ("rec_1", call["version"])
    await s.ingest("call_transcript_ready.json")
    assert await s.worker.run_once() == 1
    later, existing = s.script.asked[-1]
    assert existing is not None
    assert existing.record_id == "rec_1"
    assert existing.extra == {"seen": call["version"]}  # what the connector kept for next time
    assert later["transcript"]
    assert later["version"] > call["version"]
    (record,) = await s.rows(crm_records)
    assert record["version"] == later["version"]
    assert {r["status"] for r in await s.rows()} == {"succeeded"}
    assert s.script.credentials[0] == {"token": "t0ps3cret"}  # sealed at rest, opened for the connector
    stored = (await s.connection_row())["credentials"]
    assert "t0ps3cret" not in stored


async def test_changes_queued_before_the_worker_runs_coalesce_into_one_sync_of_the_latest(make: Any) -> None:
    s = await make()
    for name in ("call_completed.json", "call_transcript_ready.json", "call_graded.json"):
        await s.ingest(name)
    pending = [r for r in await s.rows() if r["status"] == "pending"]
    assert len(pending) == 1  # one pending sync per (connection, call)
    assert await s.worker.run_once() == 1
    ((call, _),) = s.script.asked
    assert call["grade"] is not None
    assert call["transcript"]


async def test_a_rate_limit_pauses_the_connection_without_burning_attempts(make: Any) -> None:
    s = await make()
    s.script.answers = [CrmOutcome(CrmVerdict.PAUSED, 429, "RATE_LIMIT", "ten secondly", pause_seconds=10)]
    await s.ingest("call_completed.json")
    assert await s.worker.run_once() == 1
    connection = await s.connection_row()
    assert connection["state"] == "paused"
    assert connection["last_error"]["code"] == "RATE_LIMIT"
    assert [r["attempts"] for r in await s.rows()] == [0]  # no attempt counted
    await s.ingest("call_busy.json")  # another call of the same connection
    asked = len(s.script.asked)
    assert await s.worker.run_once() == 0  # the whole connection waits, not only that call
    s.clock.advance(10)
    await s.worker.run_once()
    await s.worker.run_once()
    assert len(s.script.asked) > asked
    assert {r["status"] for r in await s.rows()} == {"succeeded"}
    assert (await s.connection_row())["state"] == "active"


async def test_an_auth_failure_stops_the_connection_until_credentials_are_patched(make: Any) -> None:
    s = await make()
    s.script.answers = [CrmOutcome(CrmVerdict.AUTH_FAILED, 401, "UNAUTHORIZED", "bad token")]
    await s.ingest("call_completed.json")
    await s.worker.run_once()
    assert (await s.connection_row())["state"] == "auth_failed"
    (event,) = await s.rows(operator_events)
    assert event["kind"] == "connection.auth_failed"
    s.clock.advance(3600)
    assert await s.worker.run_once() == 0  # stopped, and the sync kept (pending), not dropped
    (row,) = await s.rows()
    assert row["status"] == "pending"
    assert row["attempts"] == 0
    await connection_service.modify(
        s.db,
        s.crm.specs,
        s.crm.vault,
        LOOPBACK,
        s.clock(),
        tenant_id=s.tenant,
        connection_id=s.connection["id"],
        credentials={"token": "n3w"},
    )
    assert await s.worker.run_once() == 1
    assert (await s.connection_row())["state"] == "active"
    assert s.script.credentials[-1] == {"token": "n3w"}  # the connector was rebuilt with them


async def test_a_refused_version_is_dead_and_never_blocks_the_next_call(make: Any) -> None:
    s = await make()
    s.script.answers = [CrmOutcome(CrmVerdict.PERMANENT, 400, "VALIDATION_ERROR", "hs_call_status: bad")]
    await s.ingest("call_completed.json")
    await s.worker.run_once()
    await s.ingest("call_busy.json")
    await s.worker.run_once()
    rows = sorted(await s.rows(), key=lambda r: r["created_at"])
    assert [r["status"] for r in rows] == ["dead", "succeeded"]
    assert rows[0]["last_error"] == "VALIDATION_ERROR: hs_call_status: bad"
    assert (await s.connection_row())["state"] == "active"


async def test_a_transient_failure_retries_no_sooner_than_the_crm_asked(make: Any) -> None:
    s = await make()
    s.script.answers = [CrmOutcome(CrmVerdict.RETRY, 503, "UNAVAILABLE", "later", retry_after=120)]
    await s.ingest("call_completed.json")
    await s.worker.run_once()
    (row,) = await s.rows()
    assert row["attempts"] == 1
    assert row["status"] == "pending"
    assert row["next_attempt_at"] >= s.clock() + timedelta(seconds=120)
    s.clock.advance(121)
    assert await s.worker.run_once() == 1
    assert (await s.rows())[0]["status"] == "succeeded"


async def test_resync_sends_calls_again_to_their_record_and_only_synced_statuses(make: Any) -> None:
    s = await make()
    await s.ingest("call_completed.json")
    await s.ingest("call_ringing.json")  # the same call, an older event: no new status
    await s.worker.run_once()
    assert len(s.script.asked) == 1
    count = await outbox.resync(s.db, s.tenant, s.connection["id"], START - timedelta(days=1), s.clock())
    assert count == 1
    assert await s.worker.run_once() == 1
    _, existing = s.script.asked[-1]
    assert existing is not None
    assert existing.record_id == "rec_1"
    assert len(await s.rows(crm_records)) == 1


async def test_statuses_option_chooses_what_is_synced(make: Any) -> None:
    s = await make(statuses=["in_progress", "completed"])
    await s.ingest("call_in_progress.json")
    assert await s.worker.run_once() == 1
    assert s.script.asked[0][0]["status"] == "in_progress"


async def test_a_change_queues_syncs_only_for_its_own_tenants_connections(make: Any) -> None:
    s = await make()
    other = await make()
    await s.ingest("call_completed.json")
    assert [r["connection_id"] for r in await s.rows()] == [s.connection["id"]]
    assert await other.rows() == []


async def test_credentials_sealed_with_another_key_stop_the_connection_not_the_worker(make: Any) -> None:
    s = await make()
    s.crm.vault = Vault(Vault.new_key())  # the operator changed CALLGATE_CREDENTIALS_KEY
    s.crm._connectors.clear()
    await s.ingest("call_completed.json")
    await s.worker.run_once()
    connection = await s.connection_row()
    assert connection["state"] == "auth_failed"
    assert connection["last_error"]["code"] == "credentials_unreadable"
    assert s.script.asked == []
    result = await connection_service.test(s.db, s.crm, s.tenant, s.connection["id"])
    assert result["ok"] is False
    assert result["error"]["code"] == "credentials_unreadable"
    await connection_service.modify(
        s.db,
        s.crm.specs,
        s.crm.vault,
        LOOPBACK,
        s.clock(),
        tenant_id=s.tenant,
        connection_id=s.connection["id"],
        credentials={"token": "again"},
    )
    assert await s.worker.run_once() == 1
    assert len(s.script.asked) == 1
