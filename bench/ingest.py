"""Ingest throughput: verified, durably stored webhooks per second.

Two measurements, both on a fresh SQLite database (WAL, synchronous=FULL unless --sync NORMAL):

* ``http``: ``callgate serve`` in its own process (one event loop, so one core), driven over loopback by
  ``wrk`` (Debian package ``wrk``) with ``--concurrency`` connections, replaying pre-signed requests from
  a generated Lua script. Every request is a Standard-Webhooks-signed graph8 event with its own id; calls
  get several events each, as in life. (A Python client cannot load the server: httpx tops out near
  240 requests/s here, where wrk drives ``/healthz`` at ~4,900/s.)
* ``pipeline``: the same work without HTTP, in this process: verify -> parse -> group-committed
  transaction, with ``--concurrency`` submissions in flight.

    python -m bench.ingest --events 20000 --concurrency 64
    python -m bench.ingest --database postgresql+asyncpg://postgres@127.0.0.1:5432/test

Numbers go to docs/benchmarks.md by hand, with the command line and the machine.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from adapters.registry import INBOUND
from gateway import auth
from gateway import sources as source_service
from gateway.clock import system_clock
from gateway.ingest import IngestJob, apply_event, reparser
from gateway.signing import scheme_for, sign_standard_webhooks, verification_adapter
from gateway.store.db import Database
from gateway.store.migrate import upgrade
from gateway.writer import Writer

TYPES = ["call.initiating", "call.ringing", "call.in_progress", "call.completed"]
STATUS = {"call.initiating": "dialing", "call.ringing": "ringing", "call.in_progress": "in_progress"}


def events(count: int, secret: str) -> list[tuple[bytes, dict[str, str]]]:
    """graph8 events, four per call, each signed as graph8 would sign it."""
    out = []
    now = int(time.time())
    for i in range(count):
        call, step = divmod(i, len(TYPES))
        kind = TYPES[step]
        body = json.dumps(
            {
                "id": f"evt_bench_{i}",
                "type": kind,
                "created_at": f"2026-05-25T14:{step:02d}:00Z",
                "org_id": "org_bench",
                "data": {
                    "room_name": f"rm_bench_{call}",
                    "session_id": "ses_bench",
                    "campaign_id": "cmp_bench",
                    "contact_id": call,
                    "user_email": "sdr@acme.com",
                    "agent_id": "ag_default",
                    "from_phone": "+14155551234",
                    "to_phone": f"+1415555{call % 10000:04d}",
                    "direction": "outbound",
                    "status": STATUS.get(kind, "completed"),
                    "started_at": "2026-05-25T14:00:00Z",
                    **({"ended_at": "2026-05-25T14:03:00Z", "duration_seconds": 180} if step == 3 else {}),
                },
            }
        ).encode()
        msg_id = f"msg_bench_{i}"
        out.append(
            (
                body,
                {
                    "webhook-id": msg_id,
                    "webhook-timestamp": str(now),
                    "webhook-signature": sign_standard_webhooks(secret, msg_id, now, body),
                    "content-type": "application/json",
                },
            )
        )
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def setup_source(url: str) -> tuple[str, str, str]:
    db = Database(url)
    try:
        tenant_id, _ = await auth.create_tenant(db, "bench", system_clock)
        row, secret, _ = await source_service.create(
            db, INBOUND, system_clock, tenant_id=tenant_id, name="bench", vendor="graph8", verification=None
        )
        assert secret is not None
        return tenant_id, row["id"], secret
    finally:
        await db.dispose()


WRK_SCRIPT = """
local requests = dofile("%(requests)s")
local next_index = 0
local counts = {}
request = function()
  next_index = next_index + 1
  return requests[((next_index - 1) %% #requests) + 1]
end
response = function(status, headers, body)
  counts[status] = (counts[status] or 0) + 1
end
done = function(summary, latency, reqs)
  io.write(string.format("RESULT %%d %%.3f %%.2f %%.2f\\n", summary.requests, summary.duration / 1e6,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
"""


def _lua_string(value: str) -> str:
    """A quoted Lua string. (Long brackets would turn CRLF into LF and break the HTTP framing.)"""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\r", "\\r").replace("\n", "\\n")
    return '"' + escaped + '"'


def write_wrk_script(workdir: Path, path: str, batch: list[tuple[bytes, dict[str, str]]]) -> Path:
    lines = ["local r = {}"]
    for body, headers in batch:
        header_lines = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        raw = f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{header_lines}Content-Length: {len(body)}\r\n\r\n"
        lines.append(f"r[#r+1] = {_lua_string(raw + body.decode())}")
    lines.append("return r")
    requests = workdir / "requests.lua"
    requests.write_text("\n".join(lines))
    script = workdir / "ingest.lua"
    script.write_text(WRK_SCRIPT % {"requests": requests})
    return script


def bench_http(database: str, count: int, concurrency: int, sync: str, seconds: int) -> dict[str, Any]:
    if shutil.which("wrk") is None:
        raise SystemExit("the http benchmark needs wrk: apt-get install wrk")
    upgrade(database)
    _, source_id, secret = asyncio.run(setup_source(database))
    path = f"/hooks/{source_id}"
    workdir = Path(tempfile.mkdtemp(prefix="callgate-wrk-"))
    script = write_wrk_script(workdir, path, events(count, secret))
    port = free_port()
    env = {
        **os.environ,
        "CALLGATE_DATABASE_URL": database,
        "CALLGATE_PORT": str(port),
        "CALLGATE_SQLITE_SYNCHRONOUS": sync,
        "CALLGATE_BOOTSTRAP_TENANT": "false",
        "CALLGATE_LOG_LEVEL": "warning",
    }
    server = subprocess.Popen(
        [sys.executable, "-m", "gateway.cli", "serve"],
        env=env,
        stdout=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        for _ in range(100):
            try:
                if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        result = subprocess.run(
            ["wrk", "-t1", f"-c{concurrency}", f"-d{seconds}s", "--timeout", "30s", "-s", str(script),
             f"http://127.0.0.1:{port}{path}"],
            capture_output=True, text=True, check=True, timeout=seconds + 120,
        )  # fmt: skip
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
        shutil.rmtree(workdir, ignore_errors=True)
    line = next(x for x in result.stdout.splitlines() if x.startswith("RESULT"))
    requests, duration, p50, p99 = line.split()[1:]
    stored = asyncio.run(count_raw_events(database, source_id))
    if int(requests) > count:
        raise SystemExit(f"wrk sent {requests} requests but only {count} were prepared: raise --events")
    return {
        "requests": int(requests),
        "stored": stored,
        "seconds": float(duration),
        "per_second": round(int(requests) / float(duration)),
        "p50_ms": float(p50),
        "p99_ms": float(p99),
        "errors": [x.strip() for x in result.stdout.splitlines() if "Non-2xx" in x or "Socket errors" in x],
    }


async def count_raw_events(database: str, source_id: str) -> int:
    from sqlalchemy import func, select

    from gateway.store.tables import raw_events

    db = Database(database)
    try:
        async with db.reading() as conn:
            query = select(func.count()).select_from(raw_events).where(raw_events.c.source_id == source_id)
            return int((await conn.execute(query)).scalar_one())
    finally:
        await db.dispose()


async def bench_pipeline(database: str, count: int, concurrency: int, sync: str) -> dict[str, Any]:
    await asyncio.to_thread(upgrade, database)
    tenant_id, source_id, secret = await setup_source(database)
    batch = events(count, secret)
    db = Database(database, synchronous=sync)
    writer = Writer(db)
    writer.start()
    config = verification_adapter.validate_python({"scheme": "standard-webhooks", "secrets": [secret]})
    verify = scheme_for(config, system_clock).verify
    reparse = reparser(INBOUND, "US")
    queue: asyncio.Queue[tuple[bytes, dict[str, str]]] = asyncio.Queue()
    for item in batch:
        queue.put_nowait(item)

    async def worker() -> None:
        while not queue.empty():
            body, headers = queue.get_nowait()
            verify(body, headers)
            parsed = reparse("graph8", headers, body)
            job = IngestJob(tenant_id, source_id, "graph8", parsed, headers, body, system_clock())

            def work(conn: Any, job: IngestJob = job) -> Any:
                return apply_event(conn, job, system_clock(), reparse)

            await writer.submit(work)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    await writer.stop()
    await db.dispose()
    return {
        "events": count,
        "seconds": round(elapsed, 3),
        "per_second": round(count / elapsed),
        "batches": writer.batches,
        "mean_batch": round(writer.jobs / max(writer.batches, 1), 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=20000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--database", help="a PostgreSQL URL; default: a fresh SQLite file")
    parser.add_argument("--sync", choices=["FULL", "NORMAL"], default="FULL")
    parser.add_argument("--only", choices=["http", "pipeline"])
    parser.add_argument("--seconds", type=int, default=10, help="how long wrk loads the server")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="callgate-bench-"))
    results: dict[str, Any] = {
        "machine": f"{platform.machine()} {os.cpu_count()} cores, Python {platform.python_version()}",
        "database": "PostgreSQL" if args.database else f"SQLite (synchronous={args.sync})",
        "concurrency": args.concurrency,
    }
    try:
        if args.only in (None, "pipeline"):
            url = args.database or f"sqlite+aiosqlite:///{workdir / 'pipeline.db'}"
            results["pipeline"] = asyncio.run(bench_pipeline(url, args.events, args.concurrency, args.sync))
        if args.only in (None, "http"):
            url = args.database or f"sqlite+aiosqlite:///{workdir / 'http.db'}"
            results["http"] = bench_http(url, args.events, args.concurrency, args.sync, args.seconds)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
