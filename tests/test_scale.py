"""Scale-out on PostgreSQL, as deployed: two ``serve`` processes (no in-process worker) behind a
round-robin client and three ``callgate worker`` processes on one database, one subscriber endpoint with
``max_concurrency`` 2 that checks every signature.

2,000 webhooks over 400 calls (five lifecycle events each, graph8), the events of one call spread over
both servers and some of them sent to both at the same moment (a vendor's retry racing its original), and
some pairs of one call's events sent at once to different servers. Midway one worker is SIGKILLed (leases
of 2 s). At the end:

- ingest: one raw event per webhook, one call per call, each call's versions 1..n with one timeline entry
  and one delivery row per change (the database's unique constraints and row locks, across processes);
- delivery: every delivery row succeeded and reached the endpoint, each call's changes in version order,
  never more than 2 requests at once at the endpoint, duplicates only from the killed worker's leases.

Runs only with ``CALLGATE_TEST_DATABASE_URL`` (PostgreSQL); about 30-60 s. Its figures go to
``build/scale.json`` (docs/deploy.md quotes them).
"""

from __future__ import annotations

import asyncio
import json
import random
import signal
import subprocess
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import make_url
from standardwebhooks import Webhook

from gateway import subscriptions as subscription_service
from gateway.clock import system_clock
from gateway.outbound.ssrf import TargetPolicy
from gateway.signing import StandardWebhooks, StandardWebhooksConfig
from gateway.store.db import Database
from gateway.store.tables import call_events, calls, deliveries, raw_events
from tests.conftest import PG_URL, _pg_admin
from tests.helpers import FIXTURES
from tests.outbound.receiver import Received, Receiver, Reply, receiver
from tests.process import free_port, seed, start_server, start_worker

pytestmark = pytest.mark.skipif(not PG_URL, reason="CALLGATE_TEST_DATABASE_URL is not set (PostgreSQL)")

CALLS = 400
LIFECYCLE = ("call_initiating", "call_ringing", "call_in_progress", "call_completed", "call_transcript_ready")
BOTH_SERVERS = 0.1  # of the webhooks, sent to both servers at the same moment
RACED_CALLS = 0.1  # of the calls, two events sent at once to different servers
CAP = 2
IN_FLIGHT = 32  # client connections posting webhooks
ROOT = Path(__file__).parent.parent


@pytest.fixture
def database() -> Iterator[str]:
    assert PG_URL is not None
    name = f"callgate_scale_{uuid.uuid4().hex[:10]}"
    asyncio.run(_pg_admin(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        asyncio.run(_pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


class Endpoint:
    """The subscriber: verifies each request with the reference library, counts requests open at once."""

    def __init__(self, secret: str) -> None:
        self.webhook = Webhook(secret)
        self.lock = threading.Lock()
        self.open = 0
        self.most = 0
        self.bad_signatures = 0
        self.first_at: float | None = None
        self.last_at = 0.0

    def __call__(self, state: Receiver, request: Received) -> Reply:
        with self.lock:
            self.open += 1
            self.most = max(self.most, self.open)
            self.first_at = self.first_at or time.monotonic()
        try:
            self.webhook.verify(request.body, request.headers)
        except Exception:
            with self.lock:
                self.bad_signatures += 1
        time.sleep(0.002)  # a little work: requests overlap when nothing holds them back
        with self.lock:
            self.open -= 1
            self.last_at = time.monotonic()
        return 200, {}, b"ok"


def webhooks() -> list[tuple[str, bytes]]:
    """(call, body) for every webhook: five lifecycle events of each call, unique event ids."""
    templates = [json.loads((FIXTURES / "graph8" / f"{name}.json").read_bytes()) for name in LIFECYCLE]
    out = []
    for n in range(CALLS):
        for template in templates:
            event = json.loads(json.dumps(template))
            event["id"] = f"{template['id']}_scale_{n}"
            event["data"]["room_name"] = f"rm_scale_{n}"
            out.append((f"rm_scale_{n}", json.dumps(event).encode()))
    return out


async def post_all(ports: list[int], source: dict[str, Any], items: list[tuple[str, bytes]]) -> Counter[int]:
    """Every webhook, IN_FLIGHT at a time, alternating servers; some to both at once, and for some calls
    two events at once to different servers. Answers counted by status."""
    scheme = StandardWebhooks(StandardWebhooksConfig(secrets=[source["secret"]]), system_clock)
    rng = random.Random(12)
    path = f"/hooks/{source['id']}"
    statuses: Counter[int] = Counter()
    # a call's events go in order, but the next one may start before the last is answered (another
    # server): the calls are interleaved so that one call's events are near each other in the queue
    by_call: defaultdict[str, list[bytes]] = defaultdict(list)
    for call, body in items:
        by_call[call].append(body)
    raced = set(rng.sample(sorted(by_call), int(len(by_call) * RACED_CALLS)))
    jobs: list[list[bytes]] = []  # each job is posted at once: one body to both servers, or two bodies
    for call, bodies in by_call.items():
        if call in raced:
            jobs += [[bodies[0]], [bodies[1], bodies[2]], *([b] for b in bodies[3:])]
        else:
            jobs += [[b] for b in bodies]
    queue: asyncio.Queue[tuple[int, list[bytes]]] = asyncio.Queue()
    for i, job in enumerate(jobs):
        queue.put_nowait((i, job))

    # idle connections are dropped well before the server's keep-alive timeout (5 s, httpx's default
    # too): reusing one just as the server closed it was a ReadError that failed a full-suite run
    limits = httpx.Limits(max_connections=IN_FLIGHT * 2, keepalive_expiry=1.0)
    async with httpx.AsyncClient(timeout=30, limits=limits) as client:

        async def post(port: int, body: bytes, msg_id: str) -> None:
            headers = scheme.sign(body, msg_id=msg_id)
            for _ in range(20):  # a vendor retries what was not acknowledged
                response = await client.post(f"http://127.0.0.1:{port}{path}", content=body, headers=headers)
                statuses[response.status_code] += 1
                if response.status_code < 500:
                    return
                await asyncio.sleep(0.2)

        async def sender() -> None:
            while not queue.empty():
                i, job = queue.get_nowait()
                if len(job) == 2:  # two events of one call at once, on different servers
                    await asyncio.gather(post(ports[0], job[0], f"m{i}a"), post(ports[1], job[1], f"m{i}b"))
                elif rng.random() < BOTH_SERVERS:  # the same webhook to both servers at once
                    await asyncio.gather(*(post(port, job[0], f"m{i}") for port in ports))
                else:
                    await post(ports[i % 2], job[0], f"m{i}")

        await asyncio.gather(*(sender() for _ in range(IN_FLIGHT)))
    return statuses


async def setup_subscription(url: str, tenant_id: str, endpoint: str) -> tuple[str, str]:
    db = Database(url)
    try:
        row, secret = await subscription_service.create(
            db,
            TargetPolicy(allow_private=True),
            datetime.now(UTC),
            tenant_id=tenant_id,
            url=endpoint,
            event_types=["call.*"],
            max_concurrency=CAP,
        )
        return str(row["id"]), secret
    finally:
        await db.dispose()


async def stored(url: str) -> dict[str, Any]:
    db = Database(url)
    try:
        async with db.reading() as conn:

            async def rows(query: Any) -> list[Any]:
                return list((await conn.execute(query)).all())

            return {
                "raw_events": (await rows(select(func.count()).select_from(raw_events)))[0][0],
                "calls": await rows(select(calls.c.id, calls.c.version, calls.c.status)),
                "timeline": await rows(
                    select(
                        call_events.c.call_id,
                        call_events.c.raw_event_id,
                        call_events.c.version,
                        call_events.c.changed,
                    )
                ),
                "deliveries": await rows(
                    select(
                        deliveries.c.id,
                        deliveries.c.call_id,
                        deliveries.c.call_version,
                        deliveries.c.event_type,
                        deliveries.c.status,
                    )
                ),
            }
    finally:
        await db.dispose()


def test_two_servers_and_three_workers_on_one_postgresql(database: str) -> None:
    seeded = seed(database)
    items = webhooks()
    servers: list[subprocess.Popen[bytes]] = []
    workers: list[subprocess.Popen[bytes]] = []
    with receiver() as endpoint:
        subscription_id, secret = asyncio.run(setup_subscription(database, seeded["tenant_id"], endpoint.url))
        endpoint.behaviour = gauge = Endpoint(secret)
        ports = [free_port(), free_port()]
        try:
            for port in ports:
                servers.append(start_server(database, port, CALLGATE_WORKER="false"))
            workers = [
                start_worker(database, lease_seconds=2, CALLGATE_WORKER_CONCURRENCY="64") for _ in range(3)
            ]
            started = time.monotonic()
            statuses = asyncio.run(post_all(ports, seeded["source"], items))
            ingest_seconds = time.monotonic() - started
            assert [server.poll() for server in servers] == [None, None]  # both served it all

            # one worker dies in the middle of the deliveries; its leases expire and the others resend
            deadline = time.monotonic() + 60
            while len(endpoint.received) < len(items) // 3 and time.monotonic() < deadline:
                time.sleep(0.02)
            workers[0].send_signal(signal.SIGKILL)
            workers[0].wait(timeout=10)

            # done when every row is recorded as succeeded (a row the killed worker sent but never recorded
            # is seen at once and succeeds only when another worker sends it again after its lease)
            deadline = time.monotonic() + 90
            while time.monotonic() < deadline:
                rows = asyncio.run(stored(database))["deliveries"]
                if rows and all(r.status == "succeeded" for r in rows):
                    break
                time.sleep(0.25)
        finally:
            for process in [*workers[1:], *servers]:
                process.send_signal(signal.SIGTERM)
            for process in [*workers, *servers]:
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    process.kill()
        received = list(endpoint.received)

    after = asyncio.run(stored(database))
    # --- ingest, across two processes ---
    assert set(statuses) <= {200, 202}, statuses
    assert after["raw_events"] == len(items)  # one per webhook, however many times and where it was sent
    assert len(after["calls"]) == CALLS
    assert {status for _, _, status in after["calls"]} == {"completed"}  # no update lost, any order
    assert len({t.raw_event_id for t in after["timeline"]}) == len(after["timeline"]) == len(items)
    changes: defaultdict[str, list[int]] = defaultdict(list)
    for t in after["timeline"]:
        if t.changed:
            changes[t.call_id].append(t.version)
    delivered_versions: defaultdict[str, set[int]] = defaultdict(set)
    for row in after["deliveries"]:
        delivered_versions[row.call_id].add(row.call_version)
    rows_once = Counter((r.call_id, r.call_version, r.event_type) for r in after["deliveries"])
    assert max(rows_once.values()) == 1  # every change's outbox rows written once
    for call, version, _ in after["calls"]:
        # each change made exactly once, one after another: versions 1..n, none shared, none skipped
        assert sorted(changes[call]) == list(range(1, version + 1)), call
        assert delivered_versions[call] == set(changes[call]), call

    # --- delivery, across three workers (one killed) ---
    assert {row.status for row in after["deliveries"]} == {"succeeded"}
    ids = Counter(r.headers["webhook-id"] for r in received)
    assert set(ids) == {row.id for row in after["deliveries"]}  # every change delivered
    assert gauge.bad_signatures == 0
    assert gauge.most <= CAP
    duplicates = sum(n - 1 for n in ids.values())
    order_violations = 0
    highest: dict[str, int] = {}
    seen_ids: set[str] = set()
    for r in received:
        body = r.json["data"]
        call, version = body["call"]["id"], body["version"]
        if r.headers["webhook-id"] in seen_ids:
            continue  # a redelivery after the kill: its place in the order was kept the first time
        seen_ids.add(r.headers["webhook-id"])
        if version < highest.get(call, 0):  # (one change may be several event types: the same version)
            order_violations += 1
        highest[call] = max(version, highest.get(call, 0))
    assert order_violations == 0
    assert duplicates <= 2 * CAP  # only the killed worker's leased rows can arrive twice

    assert gauge.first_at is not None
    figures = {
        "webhooks": len(items),
        "posts": sum(statuses.values()),
        "ingest_seconds": round(ingest_seconds, 2),
        "webhooks_per_second_two_servers": round(len(items) / ingest_seconds),
        "deliveries": len(ids),
        "delivery_seconds": round(gauge.last_at - gauge.first_at, 2),
        "deliveries_per_second_three_workers": round(len(received) / (gauge.last_at - gauge.first_at)),
        "duplicates": duplicates,
        "order_violations": order_violations,
        "most_concurrent": gauge.most,
        "max_concurrency": CAP,
        "subscription_id": subscription_id,
    }
    (ROOT / "build").mkdir(exist_ok=True)
    (ROOT / "build" / "scale.json").write_text(json.dumps(figures, indent=2))
    print(json.dumps(figures))
