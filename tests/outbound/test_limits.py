"""An endpoint's ``max_concurrency`` and ``rate_limit_per_second`` hold across every worker, not per
process: two workers, each with its own database engine (as two processes have), against one endpoint.
The claim decides through the database (``gateway.outbox.limits``): leases counted, rate slots shared."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest

from gateway import subscriptions as service
from gateway.clock import system_clock
from gateway.outbound.retry import Policy
from gateway.outbound.ssrf import TargetPolicy
from gateway.outbound.worker import Worker, WorkerConfig
from gateway.store import deliveries as delivery_store
from gateway.store.db import Database
from gateway.store.tables import deliveries
from tests.helpers import FIXTURES
from tests.outbound.receiver import Received, Receiver, Reply, receiver
from tests.store.helpers import ingest, new_source

pytestmark = pytest.mark.anyio

LOOPBACK = TargetPolicy.build(False, ["127.0.0.0/8"])
CONFIG = WorkerConfig(policy=Policy(), targets=LOOPBACK, timeout=5.0, poll_seconds=0.02)


class Gauge:
    """Requests open at the receiver right now, the most ever, and when each arrived."""

    def __init__(self, hold: float) -> None:
        self.hold = hold
        self.lock = threading.Lock()
        self.open = 0
        self.most = 0
        self.arrivals: list[float] = []

    def __call__(self, state: Receiver, request: Received) -> Reply:
        with self.lock:
            self.open += 1
            self.most = max(self.most, self.open)
            self.arrivals.append(time.monotonic())
        time.sleep(self.hold)
        with self.lock:
            self.open -= 1
        return 200, {}, b"ok"


@pytest.fixture
async def second(db_url: str) -> AsyncIterator[Database]:
    """The same database through another engine and pool: what a second process has."""
    other = Database(db_url)
    yield other
    await other.dispose()


async def _setup(db: Database, url: str, calls: int, **limits: Any) -> tuple[str, str]:
    now = system_clock()
    tenant, source = await new_source(db, "graph8")
    row, _ = await service.create(
        db, LOOPBACK, now, tenant_id=tenant, url=url, event_types=["call.*"], **limits
    )
    template = json.loads((FIXTURES / "graph8" / "call_completed.json").read_bytes())
    event_id = template["id"]
    for n in range(calls):  # one change each of distinct calls: nothing orders them, only the limits
        template["id"], template["data"]["room_name"] = f"{event_id}_lim{n}", f"lim_{n}"
        await ingest(db, tenant, source, "graph8", json.dumps(template).encode(), now)
    return tenant, str(row["id"])


async def _run(workers: list[Worker], endpoint: Receiver, count: int) -> None:
    for worker in workers:
        worker.start()
    try:
        await asyncio.to_thread(endpoint.wait_for, count, 30.0)
    finally:
        for worker in workers:
            await worker.stop(grace=5)


async def test_max_concurrency_holds_across_two_workers(db: Database, second: Database) -> None:
    gauge = Gauge(hold=0.1)
    with receiver(gauge) as endpoint:
        await _setup(db, endpoint.url, 12, max_concurrency=2)
        workers = [Worker(db, CONFIG, system_clock), Worker(second, CONFIG, system_clock)]
        await _run(workers, endpoint, 12)
        assert len(endpoint.received) == 12
        assert gauge.most <= 2  # each worker alone would have allowed 2, so 4 if the cap were per process


async def test_a_dead_workers_leases_hold_their_slots_until_they_expire(
    db: Database, second: Database
) -> None:
    """A worker killed mid-request may still have its request at the endpoint: its slot stays taken
    until its lease runs out, then the other workers use it and send the row again."""
    gauge = Gauge(hold=0.1)
    with receiver(gauge) as endpoint:
        tenant, _ = await _setup(db, endpoint.url, 3, max_concurrency=2)
        async with db.reading() as conn:
            rows = (await conn.execute(deliveries.select())).mappings().all()
        killed = min(r["id"] for r in rows if r["tenant_id"] == tenant)
        leased_until = system_clock() + timedelta(seconds=1.5)
        await db.run_write(lambda conn: delivery_store.lease(conn, [killed], "wrk_killed", leased_until))
        started = time.monotonic()
        await _run([Worker(second, CONFIG, system_clock)], endpoint, 3)
        assert gauge.most == 1  # one slot of two was the killed worker's
        assert endpoint.received[-1].headers["webhook-id"] == killed  # sent again once its lease expired
        assert gauge.arrivals[-1] - started >= 1.0


async def test_a_rate_limit_holds_across_two_workers(db: Database, second: Database) -> None:
    rate = 20.0
    gauge = Gauge(hold=0.0)
    with receiver(gauge) as endpoint:
        await _setup(db, endpoint.url, 30, rate_limit_per_second=rate)
        workers = [Worker(db, CONFIG, system_clock), Worker(second, CONFIG, system_clock)]
        await _run(workers, endpoint, 30)
        arrivals = sorted(gauge.arrivals)
        assert len(arrivals) == 30
        # slots are 1/rate apart whichever worker holds them: no second of arrivals holds more than the rate
        # (+1 for both ends of the window, +2 for requests a busy machine sent late, which bunch up with
        # later ones); two per-process budgets would let 30 arrive within 0.75 s, and a burst at once
        most_in_a_second = max(sum(1 for b in arrivals if a <= b < a + 1.0) for a in arrivals)
        assert most_in_a_second <= rate + 3
        assert arrivals[-1] - arrivals[0] >= 1.0  # 29 slots 50 ms apart: 1.45 s, less a late first one
