"""Calls through the whole CRM path: ingest -> outbox -> worker -> the real connector -> the CRM double over
loopback HTTP, on SQLite and PostgreSQL. One call's lifecycle with rate limits and failures in the way ends
as exactly one CRM record holding the latest values.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from gateway import app as root
from gateway import connections as connection_service
from gateway.outbound.retry import Policy
from gateway.outbound.ssrf import TargetPolicy
from gateway.outbound.worker import Worker, WorkerConfig
from gateway.store.db import Database
from gateway.store.tables import connections, crm_records, deliveries, delivery_attempts
from gateway.vault import Vault
from tests.conftest import make_settings
from tests.crm.kinds import KINDS, Kind
from tests.doubles import serving
from tests.helpers import FakeClock
from tests.store.helpers import ingest_fixture, new_source

pytestmark = pytest.mark.anyio

LOOPBACK = TargetPolicy.build(False, ["127.0.0.0/8"])
LIFECYCLE = (
    "call_initiating.json",
    "call_in_progress.json",
    "call_completed.json",
    "call_transcript_ready.json",
    "call_graded.json",
)


@dataclass
class Rig:
    db: Database
    clock: FakeClock
    kind: Kind
    state: Any
    tenant: str
    source: str
    connection_id: str
    worker: Worker

    async def ingest(self, name: str) -> None:
        await ingest_fixture(self.db, self.tenant, self.source, "graph8", name, self.clock())

    async def drain(self, rounds: int = 6, step: float = 0.0) -> None:
        """Runs the worker until nothing is due; ``step`` moves the clock between rounds (pauses, retries)."""
        for _ in range(rounds):
            if await self.worker.run_once() == 0 and step == 0:
                return
            self.clock.advance(step)

    async def table(self, table: Any) -> list[dict[str, Any]]:
        async with self.db.reading() as conn:
            query = select(table).where(table.c.tenant_id == self.tenant)
            return [dict(r) for r in (await conn.execute(query)).mappings().all()]

    async def call(self) -> dict[str, Any]:
        from gateway.store.tables import calls

        async with self.db.reading() as conn:
            row = (await conn.execute(select(calls).where(calls.c.tenant_id == self.tenant))).mappings().one()
        from gateway import render

        return render.call(row)


@pytest.fixture(params=sorted(KINDS))
def kind(request: pytest.FixtureRequest) -> Kind:
    return KINDS[request.param]


@pytest.fixture
async def rig(db: Database, kind: Kind) -> AsyncIterator[Rig]:
    settings = make_settings(db.url, allowed_target_cidrs=["127.0.0.0/8"])
    state = kind.new_state()
    with serving(kind.app(state)) as base_url:
        crm = root.crm_runtime(settings, Vault(Vault.new_key()))
        clock = FakeClock()
        tenant, source = await new_source(db, "graph8")
        row = await connection_service.create(
            db,
            crm.specs,
            crm.vault,
            LOOPBACK,
            clock(),
            tenant_id=tenant,
            kind=kind.name,
            base_url=base_url,
            credentials=kind.credentials,
        )
        worker = Worker(
            db, WorkerConfig(policy=Policy(), targets=LOOPBACK), clock, rng=random.Random(5), crm=crm
        )
        try:
            yield Rig(db, clock, kind, state, tenant, source, row["id"], worker)
        finally:
            await worker.stop(grace=1)
            await crm.client.aclose()
            await connection_service.delete(db, clock(), tenant_id=tenant, connection_id=row["id"])


async def test_a_lifecycle_with_rate_limits_and_failures_ends_as_one_record_with_the_latest(rig: Rig) -> None:
    kind = rig.kind
    for name in LIFECYCLE[:3]:
        await rig.ingest(name)
    kind.rate_limit_next(rig.state)  # the CRM's own rate-limit answer on the first request
    await rig.drain(rounds=8, step=3600)  # pauses and retries pass as the clock moves
    assert len(kind.records(rig.state)) == 1
    kind.fail_next(rig.state)  # a 5xx on the next request
    await rig.ingest(LIFECYCLE[3])
    await rig.drain(rounds=8, step=3600)
    await rig.ingest(LIFECYCLE[4])
    await rig.drain(rounds=8, step=3600)

    call = await rig.call()
    records = kind.records(rig.state)
    assert len(records) == 1, records
    kind.check_latest(rig.state, call)
    (mapping,) = await rig.table(crm_records)
    assert mapping["version"] == call["version"]
    assert mapping["record_id"] == kind.record_id(records[0])
    rows = await rig.table(deliveries)
    assert {r["status"] for r in rows} == {"succeeded"}
    answers = [a["status_code"] for a in await rig.table(delivery_attempts)]
    assert kind.rate_limit_status in answers  # the trouble really happened, and was ridden out
    assert 503 in answers
    async with rig.db.reading() as conn:
        query = select(connections.c.state).where(connections.c.id == rig.connection_id)
        assert (await conn.execute(query)).scalar_one() == "active"


async def test_a_record_made_before_a_crash_is_found_not_made_twice(rig: Rig) -> None:
    """The CRM created the record but callgate never saved its id (killed between the two)."""
    await rig.ingest("call_completed.json")
    await rig.drain()
    async with rig.db.writing() as conn:  # forget the mapping, as if the commit never happened
        await conn.execute(crm_records.delete().where(crm_records.c.tenant_id == rig.tenant))
    from gateway import outbox

    await outbox.resync(rig.db, rig.tenant, rig.connection_id, rig.clock() - timedelta(days=1), rig.clock())
    await rig.drain()
    assert len(rig.kind.records(rig.state)) == 1
    assert len(await rig.table(crm_records)) == 1


async def test_resync_keeps_one_record_per_call(rig: Rig) -> None:
    await rig.ingest("call_completed.json")
    await rig.ingest("call_busy.json")
    await rig.drain()
    assert len(rig.kind.records(rig.state)) == 2
    from gateway import outbox

    queued = await outbox.resync(
        rig.db, rig.tenant, rig.connection_id, rig.clock() - timedelta(days=1), rig.clock()
    )
    assert queued == 2
    await rig.drain()
    assert len(rig.kind.records(rig.state)) == 2
    assert len(await rig.table(crm_records)) == 2


async def test_a_refused_credential_stops_the_connection_visibly(rig: Rig) -> None:
    rig.kind.refuse_credentials(rig.state)
    await rig.ingest("call_completed.json")
    await rig.drain()
    async with rig.db.reading() as conn:
        row = (
            (await conn.execute(select(connections).where(connections.c.id == rig.connection_id)))
            .mappings()
            .one()
        )
    assert row["state"] == "auth_failed"
    assert rig.kind.records(rig.state) == []
    (pending,) = await rig.table(deliveries)
    assert pending["status"] == "pending"  # kept for when the credentials are fixed
    token = next(iter(rig.kind.credentials.values()))
    assert token not in str(row["last_error"])
