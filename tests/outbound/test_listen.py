"""PostgreSQL: a delivery queued by one process wakes the idle worker of another at once (LISTEN/NOTIFY),
long before its poll would have found it."""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime

import pytest

from gateway import subscriptions as service
from gateway.outbound.retry import Policy
from gateway.outbound.ssrf import TargetPolicy
from gateway.outbound.worker import Worker, WorkerConfig
from gateway.store.db import Database
from tests.outbound.receiver import receiver
from tests.store.helpers import ingest_fixture, new_source

pytestmark = pytest.mark.anyio

LOOPBACK = TargetPolicy.build(False, ["127.0.0.0/8"])
POLL = 60.0  # the fallback: far longer than the test waits


async def test_a_delivery_queued_elsewhere_wakes_an_idle_worker(postgres_url: str) -> None:
    worker_db, other_process = Database(postgres_url), Database(postgres_url)
    config = WorkerConfig(policy=Policy(), targets=LOOPBACK, timeout=5, poll_seconds=POLL)
    worker = Worker(worker_db, config, lambda: datetime.now(UTC), rng=random.Random(1))
    try:
        with receiver() as endpoint:
            tenant, source = await new_source(other_process, "graph8")
            await service.create(
                other_process,
                LOOPBACK,
                datetime.now(UTC),
                tenant_id=tenant,
                url=endpoint.url,
                event_types=["*"],
            )
            worker.start()
            await asyncio.wait_for(worker.listening.wait(), 10)
            await asyncio.sleep(0.2)  # the worker's first claim found nothing: it now waits on its poll
            await ingest_fixture(
                other_process, tenant, source, "graph8", "call_completed.json", datetime.now(UTC)
            )
            got = await asyncio.to_thread(endpoint.wait_for, 1, 10.0)
            assert len(got) >= 1  # delivered within seconds, though the worker polls once a minute
    finally:
        await worker.stop(grace=1)
        await worker_db.dispose()
        await other_process.dispose()
