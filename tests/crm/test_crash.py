"""SIGKILL ``callgate worker`` while the CRM is creating the call's record, start it again: one record."""

from __future__ import annotations

import asyncio
import signal
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway import app as root
from gateway import auth
from gateway import connections as connection_service
from gateway.outbound.ssrf import TargetPolicy
from gateway.store.db import Database
from gateway.store.migrate import upgrade_async
from gateway.store.tables import crm_records, deliveries
from tests.conftest import make_settings
from tests.crm.kinds import KINDS, Kind
from tests.doubles import serving
from tests.process import start_worker
from tests.store.helpers import ingest_fixture, new_source


def slow_answer(app: ASGIApp, method: str, path: str, seconds: float) -> ASGIApp:
    """The double does its work at once (the record exists) but holds its answer ``seconds``: the window
    in which a worker that dies has created a record it never heard about."""

    async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != method or not scope["path"].startswith(path):
            await app(scope, receive, send)
            return
        held: list[Message] = []

        async def hold(message: Message) -> None:
            held.append(message)

        await app(scope, receive, hold)
        await asyncio.sleep(seconds)
        for message in held:
            await send(message)

    return wrapped


async def prepare(url: str, base_url: str, kind: Kind) -> None:
    await upgrade_async(url)
    db = Database(url)
    try:
        settings = make_settings(url)
        secret = await auth.secret_key(db, None)  # the worker process derives the same credentials key
        crm = root.crm_runtime(settings, root.vault(settings, secret))
        tenant, source = await new_source(db, "graph8")
        await connection_service.create(
            db,
            crm.specs,
            crm.vault,
            TargetPolicy.build(False, ["127.0.0.0/8"]),
            datetime.now(UTC),
            tenant_id=tenant,
            kind=kind.name,
            base_url=base_url,
            credentials=kind.credentials,
        )
        await crm.client.aclose()
        await ingest_fixture(db, tenant, source, "graph8", "call_completed.json", datetime.now(UTC))
    finally:
        await db.dispose()


async def outcome(url: str) -> tuple[list[str], int]:
    db = Database(url)
    try:
        async with db.reading() as conn:
            statuses = [s for (s,) in (await conn.execute(select(deliveries.c.status))).all()]
            records = len((await conn.execute(select(crm_records))).all())
        return statuses, records
    finally:
        await db.dispose()


def wait_for(check: Any, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.05)


@pytest.mark.parametrize("name", sorted(KINDS))
def test_sigkill_while_the_crm_creates_the_record_still_ends_with_one(tmp_path: Path, name: str) -> None:
    kind = KINDS[name]
    url = f"sqlite+aiosqlite:///{tmp_path / 'crash.db'}"
    state = kind.new_state()
    with serving(slow_answer(kind.app(state), kind.create_method, kind.create_path, 5.0)) as base_url:
        asyncio.run(prepare(url, base_url, kind))
        first = start_worker(url)
        try:
            wait_for(lambda: len(kind.records(state)) == 1, timeout=30)  # created; the answer is held
        finally:
            first.send_signal(signal.SIGKILL)
            first.wait(timeout=10)
        assert asyncio.run(outcome(url)) == (["pending"], 0)  # callgate never learned of the record
        second = start_worker(url)
        try:
            wait_for(lambda: asyncio.run(outcome(url))[0] == ["succeeded"], timeout=60)
        finally:
            second.send_signal(signal.SIGTERM)
            assert second.wait(timeout=30) == 0
    assert len(kind.records(state)) == 1  # found again (marker, call-id property), not created twice
    assert asyncio.run(outcome(url)) == (["succeeded"], 1)
