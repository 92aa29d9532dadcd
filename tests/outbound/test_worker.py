"""The outbox worker against real loopback endpoints and a real database, with an injected clock: signed
deliveries, retries (flapping, 429 with Retry-After, 301, 410, timeouts), rotation, per-call order."""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import pytest
from sqlalchemy import select
from standardwebhooks import Webhook

from gateway import outbox
from gateway import subscriptions as service
from gateway.ids import new_whsec
from gateway.metrics import Metrics
from gateway.outbound.retry import Policy
from gateway.outbound.sender import EXITED, ProcessSender
from gateway.outbound.ssrf import TargetPolicy
from gateway.outbound.worker import Worker, WorkerConfig
from gateway.store.db import Database
from gateway.store.tables import deliveries, delivery_attempts, operator_events, subscriptions
from tests.helpers import FIXTURES, FakeClock
from tests.outbound.receiver import Received, Receiver, Reply, receiver
from tests.store.helpers import ingest, ingest_fixture, new_source

pytestmark = pytest.mark.anyio

LOOPBACK = TargetPolicy.build(False, ["127.0.0.0/8"])
START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


@dataclass
class Setup:
    db: Database
    clock: FakeClock
    tenant: str
    source: str
    subscription: dict[str, Any]
    secret: str
    worker: Worker

    async def ingest(self, name: str, vendor: str = "graph8") -> None:
        await ingest_fixture(self.db, self.tenant, self.source, vendor, name, self.clock())

    async def rows(self, table: Any = deliveries) -> list[dict[str, Any]]:
        async with self.db.reading() as conn:
            query = select(table).where(table.c.tenant_id == self.tenant).order_by(table.c.id)
            result = await conn.execute(query)
            return [dict(r) for r in result.mappings().all()]


@pytest.fixture
async def make(db: Database) -> AsyncIterator[Any]:
    workers: list[Worker] = []

    async def build(
        url: str,
        policy: Policy | None = None,
        delivery_timeout: float = 2.0,
        process: bool = False,
        **sub: Any,
    ) -> Setup:
        clock = FakeClock(START)
        tenant, source = await new_source(db, "graph8")
        row, secret = await service.create(
            db,
            LOOPBACK,
            clock(),
            tenant_id=tenant,
            url=url,
            event_types=sub.pop("event_types", ["call.*"]),
            **sub,
        )
        config = WorkerConfig(policy=policy or Policy(), targets=LOOPBACK, timeout=delivery_timeout)
        sender = ProcessSender(timeout=delivery_timeout, connections=config.connections) if process else None
        worker = Worker(db, config, clock, rng=random.Random(7), sender=sender)
        workers.append(worker)
        return Setup(db, clock, tenant, source, row, secret, worker)

    yield build
    for worker in workers:
        await worker.stop(grace=1)


def scripted(*statuses: int | tuple[int, dict[str, str]]) -> Any:
    """Answers the given statuses in order, then 200 forever."""
    queue = list(statuses)

    def behave(state: Receiver, request: Received) -> Reply:
        if not queue:
            return 200, {}, b"ok"
        item = queue.pop(0)
        status, headers = item if isinstance(item, tuple) else (item, {})
        return status, headers, f"status {status}".encode()

    return behave


async def test_a_change_is_delivered_signed_and_verifiable(make: Any) -> None:
    with receiver() as endpoint:
        s = await make(endpoint.url)
        s.clock.now = datetime.now(UTC).replace(microsecond=0)  # real time: Webhook.verify checks it
        await s.ingest("call_completed.json")
        # (on PostgreSQL, other tests' retries, whose clocks stopped in the past, are due now too)
        assert await s.worker.run_once() >= 1
        (got,) = endpoint.received
        Webhook(s.secret).verify(got.body, got.headers)  # the reference library, timestamp check and all
        assert got.verifies_with(s.secret)
        assert not got.verifies_with(new_whsec())
        assert got.json["type"] == "call.completed"
        assert got.json["data"]["call"]["status"] == "completed"
        assert got.json["data"]["version"] == 1
        assert got.headers["user-agent"].startswith("callgate/")
        (row,) = await s.rows()
        assert got.headers["webhook-id"] == row["id"]
        assert row["status"] == "succeeded"
        (attempt,) = await s.rows(delivery_attempts)
        assert attempt["status_code"] == 200
        assert attempt["response_body"] == '{"ok": true}'


async def test_a_flapping_endpoint_is_retried_on_schedule_with_a_stable_id(make: Any) -> None:
    with receiver(scripted(500, 500)) as endpoint:
        s = await make(endpoint.url)
        await s.ingest("call_completed.json")
        await s.worker.run_once()
        (row,) = await s.rows()
        assert row["status"] == "pending"
        wait = (row["next_attempt_at"] - s.clock.now).total_seconds()
        assert 4 <= wait <= 6  # 5 s ± 20 %
        assert await s.worker.run_once() == 0  # not due yet: the clock has not moved
        s.clock.advance(wait)
        await s.worker.run_once()
        (row,) = await s.rows()
        assert 240 <= (row["next_attempt_at"] - s.clock.now).total_seconds() <= 360  # 5 min ± 20 %
        s.clock.advance(400)
        await s.worker.run_once()
        (row,) = await s.rows()
        assert row["status"] == "succeeded"
        assert len({r.headers["webhook-id"] for r in endpoint.received}) == 1
        assert len({r.headers["webhook-timestamp"] for r in endpoint.received}) == 3  # per attempt
        assert [a["status_code"] for a in await s.rows(delivery_attempts)] == [500, 500, 200]


@pytest.mark.parametrize("as_date", [False, True])
async def test_retry_after_is_honoured_within_the_clamp(make: Any, as_date: bool) -> None:
    policy = Policy(schedule=(0, 100, 100), throttle_floor=60)
    retry_after = format_datetime(START + timedelta(seconds=150), usegmt=True) if as_date else "150"
    with receiver(scripted((429, {"retry-after": retry_after}))) as endpoint:
        s = await make(endpoint.url, policy=policy)
        await s.ingest("call_completed.json")
        await s.worker.run_once()
        (row,) = await s.rows()
        # scheduled 100 s ± 20 %, the endpoint asked for 150 s: within [scheduled, 2 x scheduled], so honoured
        assert (row["next_attempt_at"] - START).total_seconds() == pytest.approx(150, abs=1)
        assert endpoint.received


async def test_a_redirect_is_a_failure_and_is_not_followed(make: Any) -> None:
    with receiver() as elsewhere, receiver(scripted((301, {"location": "REPLACE"}))) as endpoint:
        endpoint.behaviour = scripted((301, {"location": elsewhere.url}))
        s = await make(endpoint.url)
        await s.ingest("call_completed.json")
        await s.worker.run_once()
        (row,) = await s.rows()
        assert (row["status"], row["last_status_code"]) == ("pending", 301)
        assert elsewhere.received == []


async def test_410_disables_the_endpoint_and_records_an_operator_event(make: Any) -> None:
    with receiver(scripted(410)) as endpoint:
        s = await make(endpoint.url)
        await s.ingest("call_completed.json")
        await s.worker.run_once()
        (row,) = await s.rows()
        assert row["status"] == "dead"
        (sub,) = await s.rows(subscriptions)
        assert not sub["enabled"]
        assert "410" in sub["disabled_reason"]
        (event,) = await s.rows(operator_events)
        assert event["kind"] == "subscription.disabled"
        await s.ingest("call_transcript_ready.json")  # a disabled endpoint gets nothing new
        assert len(await s.rows()) == 1


async def test_a_hanging_endpoint_times_out_and_waits_at_least_a_minute(make: Any) -> None:
    with receiver(delay=1.5) as endpoint:
        s = await make(endpoint.url, delivery_timeout=0.3)
        await s.ingest("call_completed.json")
        await s.worker.run_once()
        (row,) = await s.rows()
        assert row["status"] == "pending"
        assert "timeout" in row["last_error"]
        assert (row["next_attempt_at"] - s.clock.now).total_seconds() >= 60


async def test_rotation_signs_with_both_secrets_until_the_old_one_expires(make: Any) -> None:
    with receiver() as endpoint:
        s = await make(endpoint.url)
        _, new = await service.rotate(s.db, s.tenant, s.subscription["id"], s.clock(), grace_seconds=86_400)
        await s.ingest("call_initiating.json")
        await s.worker.run_once()
        first = endpoint.received[-1]
        assert len(first.headers["webhook-signature"].split()) == 2
        assert first.verifies_with(s.secret)
        assert first.verifies_with(new)
        s.clock.advance(86_401)
        await s.ingest("call_ringing.json")
        await s.worker.run_once()
        later = endpoint.received[-1]
        assert later.verifies_with(new)
        assert not later.verifies_with(s.secret)


async def test_one_calls_events_stay_in_order_under_retries_while_other_calls_flow(make: Any) -> None:
    """Call A's first delivery fails twice; its later events wait for it; call B is not held up."""
    failures = {"left": 2}

    def behave(state: Receiver, request: Received) -> Reply:
        call = request.json["data"]["call"]["vendor_call_id"]
        if call == "rm_a" and request.json["data"]["version"] == 1 and failures["left"]:
            failures["left"] -= 1
            return 503, {}, b"busy"
        return 200, {}, b"ok"

    with receiver(behave) as endpoint:
        s = await make(endpoint.url, event_types=["call.initiating", "call.ringing", "call.in_progress"])
        for room in ("rm_a", "rm_b"):
            for name in ("call_initiating.json", "call_ringing.json", "call_in_progress.json"):
                body = (await _fixture_with_room(name, room)).encode()
                await ingest(s.db, s.tenant, s.source, "graph8", body, s.clock())
        for _ in range(6):
            await s.worker.run_once()
        delivered = [
            (r.json["data"]["call"]["vendor_call_id"], r.json["data"]["version"]) for r in endpoint.received
        ]
        assert [v for c, v in delivered if c == "rm_b"] == [1, 2, 3]  # B flowed
        assert [v for c, v in delivered if c == "rm_a"] == [1]  # A: only its head, which failed
        for _ in range(6):  # retries at ~60 s (throttled), then ~5 min
            s.clock.advance(400)
            await s.worker.run_once()
        delivered = [
            (r.json["data"]["call"]["vendor_call_id"], r.json["data"]["version"]) for r in endpoint.received
        ]
        assert [v for c, v in delivered if c == "rm_a"] == [1, 1, 1, 2, 3]  # retried, then in order
        assert {r["status"] for r in await s.rows()} == {"succeeded"}


async def _fixture_with_room(name: str, room: str) -> str:
    doc = json.loads((FIXTURES / "graph8" / name).read_bytes())
    doc["id"] = f"{doc['id']}_{room}"
    doc["data"]["room_name"] = room
    return json.dumps(doc)


async def test_five_days_of_failure_disable_the_endpoint(make: Any) -> None:
    with receiver(lambda state, request: (500, {}, b"down")) as endpoint:
        s = await make(endpoint.url, policy=Policy(schedule=(0, 3600) * 100, disable_after=5 * 86_400))
        await s.ingest("call_completed.json")
        for _ in range(130):
            await s.worker.run_once()
            s.clock.advance(4400)
            (sub,) = await s.rows(subscriptions)
            if not sub["enabled"]:
                break
        assert not sub["enabled"]
        assert "failing continuously" in sub["disabled_reason"]
        assert s.clock.now - START >= timedelta(days=5)
        assert len(endpoint.received) < 130


async def test_exhausted_rows_are_dead_and_recover_requeues_them(make: Any) -> None:
    with receiver(scripted(500, 500)) as endpoint:
        s = await make(endpoint.url, policy=Policy(schedule=(0,)))
        await s.ingest("call_completed.json")
        await s.worker.run_once()
        (row,) = await s.rows()
        assert row["status"] == "dead"
        count = await outbox.recover(
            s.db, s.tenant, s.subscription["id"], START - timedelta(hours=1), s.clock()
        )
        assert count == 1
        await s.worker.run_once()  # 500 again: dead again (one attempt per schedule)
        await outbox.retry(s.db, s.tenant, row["id"], s.clock())
        await s.worker.run_once()
        (row,) = await s.rows()
        assert row["status"] == "succeeded"
        assert len(endpoint.received) == 3


async def test_max_concurrency_holds_requests_to_the_endpoint(make: Any) -> None:
    """The endpoint never sees more requests at once than its ``max_concurrency``: the claim leases no
    more of its rows than that (across workers: tests/outbound/test_limits.py)."""
    lock = threading.Lock()
    now_open = [0]
    most = [0]

    def slow(state: Receiver, request: Received) -> Reply:
        with lock:
            now_open[0] += 1
            most[0] = max(most[0], now_open[0])
        time.sleep(0.05)
        with lock:
            now_open[0] -= 1
        return 200, {}, b"ok"

    with receiver(slow) as endpoint:
        s = await make(endpoint.url, max_concurrency=1)
        for room in ("rm_1", "rm_2", "rm_3", "rm_4"):
            await ingest(
                s.db,
                s.tenant,
                s.source,
                "graph8",
                (await _fixture_with_room("call_completed.json", room)).encode(),
                s.clock(),
            )
        claimed = [await s.worker.run_once() for _ in range(4)]
        assert claimed == [1, 1, 1, 1]  # a capped endpoint's leases, every worker's, never pass the cap
        assert len(endpoint.received) == 4
        assert most[0] == 1


async def test_a_ping_and_the_ssrf_check_at_delivery_time(make: Any) -> None:
    with receiver() as endpoint:
        s = await make(endpoint.url)
        await outbox.send_ping(s.db, s.tenant, s.subscription["id"], s.clock())
        await s.worker.run_once()
        assert endpoint.received[-1].json["type"] == "ping"
        strict = Worker(s.db, replace(s.worker.config, targets=TargetPolicy()), s.clock)
        await outbox.send_ping(s.db, s.tenant, s.subscription["id"], s.clock())
        await strict.run_once()
        await strict.stop(grace=1)
        assert len(endpoint.received) == 1
        blocked = [a for a in await s.rows(delivery_attempts) if a["error"]]
        assert "blocked" in blocked[0]["error"]


async def test_a_receiver_answering_unstorable_bytes_is_logged_as_text(make: Any) -> None:
    """Whatever a receiver answers - NUL, bytes that are not UTF-8 - its attempt is still recorded (on
    PostgreSQL a NUL in ``text`` would fail the write) and reads back."""

    def hostile(state: Receiver, request: Received) -> Reply:
        return 500, {}, b"bad\x00\xed\xa0\x80\xff"

    with receiver(hostile) as endpoint:
        s = await make(endpoint.url)
        await s.ingest("call_completed.json")
        assert await s.worker.run_once() == 1
    (attempt,) = await s.rows(delivery_attempts)
    assert attempt["status_code"] == 500
    assert attempt["response_body"] == "bad\ufffd" + "\ufffd" * 4
    (row,) = await s.rows()
    assert row["status"] == "pending"


# --- the same worker with its requests in a child process (what serve and callgate worker run) ----------


async def test_a_delivery_sent_by_the_delivery_process_is_signed_and_recorded(make: Any) -> None:
    with receiver(scripted((503, {"retry-after": "150"}))) as endpoint:
        s = await make(endpoint.url, Policy(schedule=(0, 100, 100), jitter=0), process=True)
        s.clock.now = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=151)  # Webhook.verify
        await s.ingest("call_completed.json")
        assert await s.worker.run_once() >= 1  # (other tests' old retries too, on PostgreSQL)
        (row,) = await s.rows()
        assert (row["status"], row["last_status_code"]) == ("pending", 503)
        assert (row["next_attempt_at"] - s.clock.now).total_seconds() == 150  # Retry-After came back too
        (attempt,) = await s.rows(delivery_attempts)
        assert attempt["response_body"] == "status 503"
        s.clock.advance(151)
        await s.worker.run_once()  # (on PostgreSQL other tests' retries may be due now too)
        first, second = endpoint.received
        Webhook(s.secret).verify(second.body, second.headers)
        assert first.headers["webhook-id"] == second.headers["webhook-id"] == row["id"]
        (row,) = await s.rows()
        assert row["status"] == "succeeded"
        assert isinstance(s.worker.sender, ProcessSender)
        assert s.worker.sender.started == 1  # one child for both attempts


async def test_a_delivery_process_that_dies_mid_request_fails_the_attempt_and_is_replaced(make: Any) -> None:
    answer = threading.Event()

    def held(state: Receiver, request: Received) -> Reply:
        answer.wait(10)  # the first request waits here until its sender is gone
        return 200, {}, b"ok"

    with receiver(held) as endpoint:
        s = await make(endpoint.url, process=True)
        sender = s.worker.sender
        assert isinstance(sender, ProcessSender)
        await s.ingest("call_completed.json")
        running = asyncio.create_task(s.worker.run_once())
        await asyncio.to_thread(endpoint.wait_for, 1)  # the child's request is at the endpoint
        assert sender.pid is not None
        os.kill(sender.pid, signal.SIGKILL)
        await running
        answer.set()
        (row,) = await s.rows()
        assert row["status"] == "pending"  # retried later: at least once, as with any failed attempt
        assert row["last_error"] == EXITED
        s.clock.advance(600)
        await s.worker.run_once()
        assert sender.started == 2
        (row,) = await s.rows()
        assert row["status"] == "succeeded"


async def test_stopping_the_worker_ends_its_delivery_process(make: Any) -> None:
    with receiver() as endpoint:
        s = await make(endpoint.url, process=True)
        await s.ingest("call_completed.json")
        await s.worker.run_once()
        sender = s.worker.sender
        assert isinstance(sender, ProcessSender)
        pid = sender.pid
        assert pid is not None
        await s.worker.stop(grace=1)
        assert sender.pid is None
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)  # reaped, not a zombie


def another_call() -> bytes:
    document = json.loads((FIXTURES / "graph8" / "call_completed.json").read_text())
    document["id"] = "evt_another_call"
    document["data"]["room_name"] = "rm_another_call"
    return json.dumps(document).encode()


async def test_a_worker_yields_to_saturated_ingest_but_claims_at_least_every_yield_seconds(make: Any) -> None:
    """In serve the worker yields while webhooks queue for their commit: it takes nothing at commit and
    claims at most every ``yield_seconds``, so a burst's acknowledgements get the core; the rows wait in
    the outbox and still go out (the floor claim), and at once when ingest eases."""
    with receiver() as endpoint:
        s = await make(endpoint.url)
        busy = [False]
        config = replace(s.worker.config, yield_seconds=2.0, poll_seconds=0.05)
        metrics = Metrics()
        worker = Worker(
            s.db, config, s.clock, rng=random.Random(7), saturated=lambda: busy[0], metrics=metrics
        )
        worker.start()
        try:
            await asyncio.sleep(0.2)  # it has claimed (nothing yet): its last claim is now
            busy[0] = True
            assert worker.offer() is None  # nothing taken at commit while ingest is saturated
            await s.ingest("call_completed.json")
            worker.wake()
            await asyncio.sleep(0.3)
            assert endpoint.received == []  # waited, though woken
            assert worker.yielded > 0
            waited = metrics.registry.get_sample_value("callgate_worker_yield_seconds_total")
            assert waited is not None
            assert waited >= 0.1  # counted for operators
            # the floor: a claim within yield_seconds of the last, though still saturated
            await asyncio.to_thread(endpoint.wait_for, 1, 5)
            busy[0] = False
            assert worker.offer() is not None
            await ingest(s.db, s.tenant, s.source, "graph8", another_call(), s.clock())
            worker.wake()
            await asyncio.to_thread(endpoint.wait_for, 2, 5)  # ingest eased: it goes at once
        finally:
            await worker.stop(grace=1)


async def test_a_worker_with_yield_seconds_zero_never_yields(make: Any) -> None:
    with receiver() as endpoint:
        s = await make(endpoint.url)
        config = replace(s.worker.config, yield_seconds=0)
        worker = Worker(s.db, config, s.clock, rng=random.Random(7), saturated=lambda: True)
        assert worker.offer() is None  # not running yet
        worker.start()
        try:
            assert worker.offer() is not None
            await s.ingest("call_completed.json")
            worker.wake()
            await asyncio.to_thread(endpoint.wait_for, 1, 5)
            assert worker.yielded == 0
        finally:
            await worker.stop(grace=1)
