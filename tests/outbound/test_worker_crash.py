"""SIGKILL the worker process in the middle of deliveries, start it again: every event arrives."""

from __future__ import annotations

import asyncio
import json
import signal
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import select

from gateway import subscriptions as service
from gateway.outbound.ssrf import TargetPolicy
from gateway.store.db import Database
from gateway.store.migrate import upgrade_async
from gateway.store.tables import deliveries
from tests.helpers import FIXTURES
from tests.outbound.receiver import receiver
from tests.process import start_worker
from tests.store.helpers import ingest, new_source

EVENTS = 40


async def prepare(url: str, endpoint: str) -> list[str]:
    await upgrade_async(url)
    db = Database(url)
    try:
        tenant, source = await new_source(db, "graph8")
        await service.create(
            db,
            TargetPolicy(allow_private=True),
            datetime.now(UTC),
            tenant_id=tenant,
            url=endpoint,
            event_types=["*"],
        )
        template = json.loads((FIXTURES / "graph8" / "call_completed.json").read_bytes())
        for i in range(EVENTS):
            template["id"] = f"evt_crash_{i}"
            template["data"]["room_name"] = f"rm_crash_{i}"
            await ingest(db, tenant, source, "graph8", json.dumps(template).encode(), datetime.now(UTC))
        async with db.reading() as conn:
            return [r for (r,) in (await conn.execute(select(deliveries.c.id))).all()]
    finally:
        await db.dispose()


async def statuses(url: str) -> list[str]:
    db = Database(url)
    try:
        async with db.reading() as conn:
            return [s for (s,) in (await conn.execute(select(deliveries.c.status))).all()]
    finally:
        await db.dispose()


def test_sigkill_mid_delivery_loses_nothing(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'crash.db'}"
    with receiver(delay=0.05) as endpoint:
        ids = asyncio.run(prepare(url, endpoint.url))
        assert len(ids) == EVENTS
        first = start_worker(url)
        try:
            endpoint.wait_for(10, timeout=30)
        finally:
            first.send_signal(signal.SIGKILL)
            first.wait(timeout=10)
        seen_before = {r.headers["webhook-id"] for r in endpoint.received}
        assert len(seen_before) < EVENTS  # it really died in the middle
        second = start_worker(url)
        try:
            received = endpoint.wait_for(EVENTS, timeout=60)
            while {r.headers["webhook-id"] for r in received} != set(ids):
                received = endpoint.wait_for(len(received) + 1, timeout=60)
        finally:
            second.send_signal(signal.SIGTERM)
            assert second.wait(timeout=30) == 0  # graceful stop
    assert {r.headers["webhook-id"] for r in endpoint.received} == set(ids)
    assert set(asyncio.run(statuses(url))) == {"succeeded"}
