"""The outbox under load (issue "the in-process worker starves ingest"), in one run, on fresh SQLite files:

1. ack and end-to-end latency at a fixed rate (``--rate``, one new call per webhook): ``serve`` without its
   worker (``CALLGATE_WORKER=false``, no subscription) against ``serve`` with its worker and one matching
   subscription to a fast local receiver (``bench/receiver.py``, its own process);
2. peak ingest (closed loop, 64 connections) with no subscription against one matching subscription;
3. draining a backlog: ``callgate worker`` alone against raw ``httpx.AsyncClient`` (64 in flight) posting
   the same bodies to the same receiver.

    python -m bench.outbox --rate 100 --rate 200 --events 1500 --backlog 2000

The load generator is ``bench/load.py`` (open loop at a fixed rate: latency counts from the scheduled send
time). Numbers go to docs/benchmarks.md with the command line and the machine.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from adapters.registry import INBOUND
from bench.ingest import free_port
from bench.load import percentile, request_bytes, run
from gateway import auth
from gateway import sources as source_service
from gateway import subscriptions as subscription_service
from gateway.clock import system_clock
from gateway.outbound.ssrf import TargetPolicy
from gateway.signing import StandardWebhooks, StandardWebhooksConfig
from gateway.store.db import Database
from gateway.store.migrate import upgrade


def bodies(count: int, tag: str) -> list[bytes]:
    """graph8 ``call.completed`` events, one new call each."""
    out = []
    for i in range(count):
        out.append(
            json.dumps(
                {
                    "id": f"evt_{tag}_{i}",
                    "type": "call.completed",
                    "created_at": "2026-05-25T14:03:00Z",
                    "org_id": "org_bench",
                    "data": {
                        "room_name": f"rm_{tag}_{i}",
                        "direction": "outbound",
                        "status": "completed",
                        "from_phone": "+14155551234",
                        "to_phone": f"+1415555{i % 10000:04d}",
                        "started_at": "2026-05-25T14:00:00Z",
                        "ended_at": "2026-05-25T14:03:00Z",
                        "duration_seconds": 180,
                    },
                }
            ).encode()
        )
    return out


async def setup(url: str, subscriber: str | None) -> tuple[str, str]:
    """A tenant, a graph8 source (its id and secret) and, optionally, a subscription to ``subscriber``."""
    db = Database(url)
    try:
        tenant_id, _ = await auth.create_tenant(db, "bench", system_clock)
        row, secret, _ = await source_service.create(
            db, INBOUND, system_clock, tenant_id=tenant_id, name="bench", vendor="graph8", verification=None
        )
        if subscriber is not None:
            await subscription_service.create(
                db,
                TargetPolicy(allow_private=True),
                datetime.now(UTC),
                tenant_id=tenant_id,
                url=subscriber,
                event_types=["call.*"],
            )
        if secret is None:
            raise RuntimeError("no secret generated")
        return row["id"], secret
    finally:
        await db.dispose()


def signed_requests(port: int, source_id: str, secret: str, payloads: list[bytes]) -> list[bytes]:
    scheme = StandardWebhooks(StandardWebhooksConfig(secrets=[secret]), system_clock)
    return [
        request_bytes("127.0.0.1", port, f"/hooks/{source_id}", body, scheme.sign(body, msg_id=f"msg_{i}"))
        for i, body in enumerate(payloads)
    ]


def start(command: str, url: str, port: int, **env: str) -> subprocess.Popen[bytes]:
    environment = {
        **os.environ,
        "CALLGATE_DATABASE_URL": url,
        "CALLGATE_PORT": str(port),
        "CALLGATE_BOOTSTRAP_TENANT": "false",
        "CALLGATE_ALLOW_PRIVATE_TARGETS": "true",
        **env,
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "gateway.cli", command],
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    if command == "serve":
        wait_ready(f"http://127.0.0.1:{port}/readyz")
    return process


def wait_ready(url: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1).status_code in (200, 404):
                return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not come up")


def start_receiver() -> tuple[subprocess.Popen[bytes], int]:
    """``bench/receiver.py`` in its own process, ready: the process and its port."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "bench.receiver", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_ready(f"http://127.0.0.1:{port}/stats")
    return process, port


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()


class Bench:
    def __init__(self, workdir: Path, receiver_port: int) -> None:
        self.workdir = workdir
        self.receiver = f"http://127.0.0.1:{receiver_port}"
        self.runs = 0

    def database(self) -> str:
        self.runs += 1
        url = f"sqlite+aiosqlite:///{self.workdir / f'bench{self.runs}.db'}"
        upgrade(url)
        return url

    def receiver_stats(self) -> dict[str, Any]:
        result: dict[str, Any] = httpx.get(f"{self.receiver}/stats", timeout=10).json()
        return result

    def reset_receiver(self) -> None:
        httpx.post(f"{self.receiver}/reset", timeout=10)

    def fixed_rate(self, rate: float, count: int, *, worker: bool) -> dict[str, Any]:
        url = self.database()
        port = free_port()
        source_id, secret = asyncio.run(setup(url, f"{self.receiver}/hook" if worker else None))
        self.reset_receiver()
        server = start("serve", url, port, CALLGATE_WORKER="true" if worker else "false")
        try:
            tag = f"r{self.runs}"
            payloads = bodies(count, tag)
            requests = signed_requests(port, source_id, secret, payloads)
            result = asyncio.run(run("127.0.0.1", port, requests, rate=rate))
            ack = [(a - s) * 1000 for s, a in zip(result.sent, result.acked, strict=True)]
            out: dict[str, Any] = {
                "ack_p50": percentile(ack, 50),
                "ack_p99": percentile(ack, 99),
                "non_2xx": sum(1 for s in result.statuses if not 200 <= s < 300),
            }
            if worker:
                deadline = time.monotonic() + 120
                arrivals: dict[str, float] = {}
                while time.monotonic() < deadline:
                    arrivals = self.receiver_stats()["arrivals"]
                    if len(arrivals) >= count:
                        break
                    time.sleep(0.2)
                e2e = [
                    (arrivals[f"rm_{tag}_{i}"] - result.sent[i]) * 1000
                    for i in range(count)
                    if f"rm_{tag}_{i}" in arrivals
                ]
                out |= {"e2e_p50": percentile(e2e, 50), "e2e_p99": percentile(e2e, 99), "delivered": len(e2e)}
            return out
        finally:
            stop(server)

    def peak(self, count: int, *, subscribed: bool) -> float:
        url = self.database()
        port = free_port()
        source_id, secret = asyncio.run(setup(url, f"{self.receiver}/hook" if subscribed else None))
        server = start("serve", url, port)
        try:
            requests = signed_requests(port, source_id, secret, bodies(count, f"p{self.runs}"))
            started = time.time()
            result = asyncio.run(run("127.0.0.1", port, requests, rate=None, connections=64))
            elapsed = max(a for a in result.acked if a == a) - started
            return sum(1 for s in result.statuses if 200 <= s < 300) / elapsed
        finally:
            stop(server)

    def drain(self, count: int) -> dict[str, float]:
        url = self.database()
        port = free_port()
        source_id, secret = asyncio.run(setup(url, f"{self.receiver}/hook"))
        server = start("serve", url, port, CALLGATE_WORKER="false")
        try:
            payloads = bodies(count, f"d{self.runs}")
            asyncio.run(run("127.0.0.1", port, signed_requests(port, source_id, secret, payloads), rate=None))
        finally:
            stop(server)
        self.reset_receiver()
        started = time.time()
        worker = start("worker", url, port, CALLGATE_WORKER_POLL_SECONDS="0.05")
        try:
            while self.receiver_stats()["count"] < count:
                time.sleep(0.05)
            worker_rate = count / (time.time() - started)
        finally:
            stop(worker)
        self.reset_receiver()
        raw_rate = asyncio.run(raw_httpx(f"{self.receiver}/hook", payloads))
        return {"worker": worker_rate, "raw_httpx": raw_rate}


async def raw_httpx(url: str, payloads: list[bytes], in_flight: int = 64) -> float:
    """The ceiling for one Python process posting with httpx: 64 requests in flight, nothing else."""
    semaphore = asyncio.Semaphore(in_flight)
    async with httpx.AsyncClient(timeout=15) as client:

        async def post(body: bytes) -> None:
            async with semaphore:
                await client.post(url, content=body, headers={"content-type": "application/json"})

        started = time.time()
        await asyncio.gather(*(post(body) for body in payloads))
        return len(payloads) / (time.time() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rate", type=float, action="append", help="fixed rates, webhooks/s (repeatable)")
    parser.add_argument("--events", type=int, default=1500, help="webhooks per fixed-rate run")
    parser.add_argument("--peak-events", type=int, default=4000)
    parser.add_argument("--backlog", type=int, default=2000)
    args = parser.parse_args()
    rates = args.rate or [100.0, 200.0]
    receiver, receiver_port = start_receiver()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            bench = Bench(Path(tmp), receiver_port)
            print(
                f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
            )
            print("| configuration | rate/s | ack p50 ms | ack p99 ms | e2e p50 ms | e2e p99 ms | non-2xx |")
            print("|---|---|---|---|---|---|---|")
            for rate in rates:
                for worker in (False, True):
                    r = bench.fixed_rate(rate, args.events, worker=worker)
                    name = "serve, with worker, 1 subscription" if worker else "serve, no worker"
                    e2e = f"{r['e2e_p50']:.0f} | {r['e2e_p99']:.0f}" if worker else "— | —"
                    ack = f"{r['ack_p50']:.0f} | {r['ack_p99']:.0f}"
                    print(f"| {name} | {rate:g} | {ack} | {e2e} | {r['non_2xx']} |", flush=True)
            bare = bench.peak(args.peak_events, subscribed=False)
            subscribed = bench.peak(args.peak_events, subscribed=True)
            print(
                f"\npeak ingest, no subscription: {bare:.0f}/s; one subscription: {subscribed:.0f}/s "
                f"({subscribed / bare:.0%})",
                flush=True,
            )
            drain = bench.drain(args.backlog)
            print(
                f"drain {args.backlog}: callgate worker {drain['worker']:.0f}/s; raw httpx "
                f"{drain['raw_httpx']:.0f}/s ({drain['worker'] / drain['raw_httpx']:.0%})"
            )
    finally:
        receiver.terminate()
        receiver.wait(timeout=10)


if __name__ == "__main__":
    main()
