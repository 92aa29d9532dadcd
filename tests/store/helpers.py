"""Driving the ingest unit of work directly against a real database."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select

from adapters.registry import INBOUND
from gateway import auth
from gateway import sources as source_service
from gateway.clock import system_clock
from gateway.ingest import IngestJob, IngestResult, apply_event, reparser
from gateway.store.db import Database
from gateway.store.tables import calls
from tests.helpers import FIXTURES

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
reparse = reparser(INBOUND, "US")


async def new_source(db: Database, vendor: str) -> tuple[str, str]:
    tenant_id, _ = await auth.create_tenant(db, "t", system_clock)
    row, _, _ = await source_service.create(
        db, INBOUND, system_clock, tenant_id=tenant_id, name=vendor, vendor=vendor, verification=None
    )
    return tenant_id, row["id"]


async def ingest(
    db: Database, tenant_id: str, source_id: str, vendor: str, body: bytes, now: datetime = NOW
) -> IngestResult:
    parsed = reparse(vendor, {}, body)
    job = IngestJob(tenant_id, source_id, vendor, parsed, {"content-type": "application/json"}, body, now)
    return await db.run_write(lambda conn: apply_event(conn, job, now, reparse))


async def ingest_fixture(
    db: Database, tenant_id: str, source_id: str, vendor: str, name: str, now: datetime = NOW
) -> IngestResult:
    return await ingest(db, tenant_id, source_id, vendor, (FIXTURES / vendor / name).read_bytes(), now)


async def call_rows(db: Database, tenant_id: str) -> list[dict[str, Any]]:
    async with db.reading() as conn:
        rows = (await conn.execute(select(calls).where(calls.c.tenant_id == tenant_id))).mappings().all()
    return [dict(r) for r in rows]


def content(row: dict[str, Any]) -> str:
    """What must converge: the call's public data and merge bookkeeping, not ids, versions or clock times."""
    return json.dumps(
        {"data": row["data"], "stamps": row["stamps"], "key": row["vendor_call_id"]}, sort_keys=True
    )
