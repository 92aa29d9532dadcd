"""Nothing that got a 2xx is ever lost: SIGKILL the server under load, then look at the database."""

from __future__ import annotations

import asyncio
import json
import signal
import sqlite3
import subprocess
from pathlib import Path
from typing import Any

import httpx

from adapters.registry import INBOUND
from gateway import auth
from gateway import sources as source_service
from gateway.clock import system_clock
from gateway.store.db import Database
from tests.helpers import FIXTURES, standard_webhook_headers
from tests.process import free_port, start_server

EVENTS = 300
KILL_AFTER = 100


async def make_source(url: str) -> dict[str, Any]:
    db = Database(url)
    try:
        tenant_id, _ = await auth.create_tenant(db, "durable", system_clock)
        row, secret, _ = await source_service.create(
            db, INBOUND, system_clock, tenant_id=tenant_id, name="g8", vendor="graph8", verification=None
        )
        return {"id": row["id"], "secret": secret}
    finally:
        await db.dispose()


def bodies() -> list[bytes]:
    template = json.loads((FIXTURES / "graph8" / "call_completed.json").read_bytes())
    out = []
    for i in range(EVENTS):
        template["id"] = f"evt_durable_{i}"
        template["data"]["room_name"] = f"rm_durable_{i // 3}"  # three events per call
        out.append(json.dumps(template).encode())
    return out


async def send_all(
    port: int, source: dict[str, Any], payloads: list[bytes], kill: subprocess.Popen[bytes] | None
) -> dict[str, int]:
    """Posts every payload (16 in flight); returns event key -> status for those answered."""
    answered: dict[str, int] = {}
    queue = list(enumerate(payloads))
    async with httpx.AsyncClient(timeout=10) as client:

        async def worker() -> None:
            while queue:
                i, body = queue.pop(0)
                headers = standard_webhook_headers(source["secret"], body, f"msg_{i}")
                try:
                    response = await client.post(
                        f"http://127.0.0.1:{port}/hooks/{source['id']}", content=body, headers=headers
                    )
                except httpx.HTTPError:
                    continue
                answered[f"evt_durable_{i}"] = response.status_code
                if kill is not None and len(answered) == KILL_AFTER:
                    kill.send_signal(signal.SIGKILL)

        await asyncio.gather(*(worker() for _ in range(16)))
    return answered


def stored_keys(db_file: Path) -> set[str]:
    with sqlite3.connect(db_file) as conn:
        return {key for (key,) in conn.execute("SELECT event_key FROM raw_events")}


def test_sigkill_under_load_loses_no_acknowledged_webhook(sqlite_url: str) -> None:
    db_file = Path(sqlite_url.split("///", 1)[1])
    source = asyncio.run(make_source(sqlite_url))
    payloads = bodies()

    port = free_port()
    server = start_server(sqlite_url, port)
    try:
        first = asyncio.run(send_all(port, source, payloads, kill=server))
    finally:
        server.kill()
        server.wait(timeout=10)
    acknowledged = {key for key, status in first.items() if 200 <= status < 300}
    assert len(acknowledged) >= KILL_AFTER - 16  # the kill came mid-stream, after this many answers
    assert len(acknowledged) < EVENTS  # and before the end, or this test proved nothing
    assert acknowledged <= stored_keys(db_file)  # every 2xx survived the SIGKILL

    # the vendors retry everything they did not see acknowledged (and some they did): all of it lands once
    port = free_port()
    server = start_server(sqlite_url, port)
    try:
        second = asyncio.run(send_all(port, source, payloads, kill=None))
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
    assert all(status in (200, 202) for status in second.values())
    assert {k for k, s in second.items() if s == 200} >= acknowledged  # already stored: duplicates
    assert len(stored_keys(db_file)) == EVENTS
    with sqlite3.connect(db_file) as conn:
        assert conn.execute("SELECT count(*) FROM calls").fetchone() == (EVENTS // 3,)
        assert conn.execute("SELECT count(*) FROM call_events").fetchone() == (EVENTS,)
