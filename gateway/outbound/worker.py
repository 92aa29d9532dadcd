"""The outbox worker: claim -> send -> finish. It runs no SQL: ``gateway.outbox`` owns every row change.

- A claim is one short transaction that leases rows (``FOR UPDATE SKIP LOCKED`` on PostgreSQL); the HTTP
  request happens after it commits, and its outcome is written in another. No network I/O ever happens
  inside a database transaction. A worker that dies leaves its leases to expire; the rows are claimed again.
- Only the oldest pending row of each (subscription, call) is claimable, so one call's events reach an
  endpoint in order, while other calls flow (``store.outbox.claim``).
- Per-endpoint ``max_concurrency`` is applied when claiming, ``rate_limit_per_second`` before sending.
- Every URL is checked against the SSRF policy before every attempt, and the request connects to the
  address that was checked.
- The request itself is made by a ``Sender`` (``gateway.outbound.sender``): in ``serve`` and ``callgate
  worker`` a child process, so deliveries' HTTP CPU is not taken from ingest; everything else stays here.
- ``wake()`` makes an idle worker claim at once: the ingest path calls it after a commit that enqueued
  deliveries, so the happy path has no polling delay. Otherwise it polls every ``poll_seconds``.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Any

import httpx
import structlog

from gateway import __version__, outbox
from gateway.clock import Clock
from gateway.ids import new_id
from gateway.metrics import Metrics
from gateway.outbound.crm import CrmRuntime, run_sync
from gateway.outbound.listen import listen
from gateway.outbound.retry import Outcome, Policy, decide
from gateway.outbound.sender import Answer, InlineSender, Send, Sender
from gateway.outbound.ssrf import BlockedTarget, TargetPolicy, blocked_error, checked_address, pinned_request
from gateway.signing import sign_standard_webhooks
from gateway.store.db import Database, Writes
from gateway.subscriptions import signing_secrets

log = structlog.get_logger("callgate.worker")


@dataclass(frozen=True, slots=True)
class WorkerConfig:
    policy: Policy
    targets: TargetPolicy
    timeout: float = 15.0
    lease_seconds: float = 60.0
    batch: int = 100
    concurrency: int = 64
    poll_seconds: float = 1.0
    crm_concurrency: int = 4
    connections: int = 32  # connections per endpoint, and deliveries in flight to one without max_concurrency
    yield_seconds: float = 0.5  # while ingest is saturated: claim at most this often (0: never yield)


YIELD_POLL = 0.05  # seconds between looks at whether ingest is still saturated


def signature_headers(secrets: Sequence[str], msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    signatures = " ".join(sign_standard_webhooks(s, msg_id, timestamp, body) for s in secrets)
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signatures,
        "content-type": "application/json",
        "user-agent": f"callgate/{__version__}",
    }


class Worker:
    def __init__(
        self,
        db: Database,
        config: WorkerConfig,
        clock: Clock,
        *,
        client: httpx.AsyncClient | None = None,
        rng: random.Random | None = None,
        crm: CrmRuntime | None = None,
        writes: Writes | None = None,
        metrics: Metrics | None = None,
        sender: Sender | None = None,
        saturated: Callable[[], bool] | None = None,
    ) -> None:
        self.db = db
        # True while this process's ingest is saturated (serve: webhooks queue for the group commit). The
        # in-process worker then yields the core to the vendors' acknowledgements: no deliveries taken at
        # commit, a claim at most every ``yield_seconds``; the rows wait, durable, and go when it eases.
        self.saturated = saturated
        self.metrics = metrics
        self.writes: Writes = writes or db  # in serve: the group-commit writer, shared with ingest
        self.crm = crm
        self.config = config
        self.clock = clock
        self.owner = new_id("wrk")
        self.rng = rng or random.Random()
        # where the requests are made: here (a given client, tests), or a child process (serve, worker)
        self.sender: Sender = sender or InlineSender(
            timeout=config.timeout, connections=config.connections, client=client
        )
        self._wake = asyncio.Event()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None
        self._listener: asyncio.Task[None] | None = None
        self.listening = asyncio.Event()  # set once LISTEN is in place (PostgreSQL)
        self._inflight: dict[str, asyncio.Task[None]] = {}
        self._ready: list[Mapping[Any, Any]] = []  # leased by an ingest transaction, waiting for a slot
        self._holding: set[str] = set()  # rows whose request to their endpoint is under way
        self._backlog = False  # rows wait for a claim (held behind an earlier row, a full claim, syncs)
        self._held: set[tuple[str, str | None]] = set()  # (endpoint, call) with a row waiting behind one
        self._claimed: set[str] = set()  # rows from a claim: the next row of their call may be due after
        self._per_endpoint: defaultdict[str, int] = defaultdict(int)
        self._last_claim = 0.0  # time.monotonic() of the last claim
        self.attempts = 0
        self.yielded = 0  # times the worker waited for ingest (metrics, tests)

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def wake(self) -> None:
        self._wake.set()

    def offer(self) -> outbox.Dispatch | None:
        """For the ingest path: take fresh deliveries straight from its transaction while there is room."""
        room = self.config.concurrency - len(self._inflight) - len(self._ready)
        if not self.running or self._stopping or room <= 0 or self._yielding():
            return None
        until = self.clock() + timedelta(seconds=self.config.lease_seconds)
        return outbox.Dispatch(self.owner, until, room)

    def take(self, dispatch: outbox.Dispatch) -> None:
        """After the commit: send what the transaction leased to this worker; claim what it left."""
        for row in dispatch.rows:
            self._start_or_queue(row)
        self._held.update(dispatch.held)
        if dispatch.held or dispatch.syncs:
            self._backlog = True
            self._wake.set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="callgate-outbox-worker")
        if not self.db.is_sqlite:  # other processes' new rows wake this one (LISTEN/NOTIFY)
            self._listener = asyncio.create_task(
                listen(self.db.url, self.wake, self.listening), name="callgate-outbox-listen"
            )

    async def stop(self, grace: float | None = None) -> None:
        """Stops claiming, lets in-flight deliveries finish (up to ``grace``), releases the rest."""
        self._stopping = True
        self._wake.set()
        if self._listener is not None:
            self._listener.cancel()
            await asyncio.gather(self._listener, return_exceptions=True)
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)
        never_started, self._ready = [row["id"] for row in self._ready], []
        pending = list(self._inflight.values())
        if pending:
            _, unfinished = await asyncio.wait(
                pending, timeout=grace if grace is not None else self.config.timeout + 5
            )
            for task in unfinished:
                task.cancel()
            await asyncio.gather(*unfinished, return_exceptions=True)
        await outbox.release(self.writes, [*self._inflight, *never_started], self.owner)
        await self.sender.close()

    async def _loop(self) -> None:
        try:
            await self.sender.start()
        except Exception:  # the first delivery tries again
            log.exception("starting the delivery process failed")
        while not self._stopping:
            if self._yielding() and time.monotonic() - self._last_claim < self.config.yield_seconds:
                self.yielded += 1
                await asyncio.sleep(YIELD_POLL)  # ingest first; a claim at least every yield_seconds
                if self.metrics is not None:
                    self.metrics.worker_yielded(YIELD_POLL)
                continue
            self._wake.clear()  # before claiming: a wake-up during the claim is not lost
            self._backlog = False
            try:
                claimed = await self.claim_and_dispatch()
            except Exception:  # the database is away: keep the worker alive, try again soon
                log.exception("outbox claim failed")
                claimed = 0
            if claimed == 0 and not self._stopping:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=self.config.poll_seconds)

    async def run_once(self) -> int:
        """Claims what is due now, delivers it, and waits for the outcomes (tests, and draining)."""
        claimed = await self.claim_and_dispatch()
        while self._inflight:  # queued rows start as slots free: wait for those too
            await asyncio.gather(*self._inflight.values(), return_exceptions=True)
        return claimed

    def _yielding(self) -> bool:
        return self.config.yield_seconds > 0 and self.saturated is not None and self.saturated()

    async def claim_and_dispatch(self) -> int:
        self._last_claim = time.monotonic()
        room = self.config.concurrency - len(self._inflight) - len(self._ready)
        if room <= 0:
            return 0
        rows, more = await outbox.claim(
            self.writes,
            owner=self.owner,
            now=self.clock(),
            lease_seconds=self.config.lease_seconds,
            room=room,
            batch=self.config.batch,
            busy=self._load(),
            inflight={*self._inflight, *(r["id"] for r in self._ready)},
            crm_concurrency=self.config.crm_concurrency,
            crm_rates={kind: spec.rate_per_second for kind, spec in self.crm.specs.items()}
            if self.crm
            else {},
            syncs=self.crm is not None,
            endpoint_concurrency=self.config.connections,
        )
        for row in rows:
            self._claimed.add(row["id"])
            self._start_or_queue(row)
        if more:
            self._backlog = True  # due rows were left: claim again when a slot frees
        return len(rows)

    def _load(self) -> dict[str, int]:
        """Rows per endpoint this worker holds: being sent, and leased waiting for a slot."""
        load = dict(self._per_endpoint)
        for row in self._ready:
            load[outbox.endpoint(row)] = load.get(outbox.endpoint(row), 0) + 1
        return load

    def _start(self, row: Mapping[Any, Any]) -> None:
        self._per_endpoint[outbox.endpoint(row)] += 1
        self._holding.add(row["id"])
        task = asyncio.create_task(self._deliver(row))
        self._inflight[row["id"]] = task
        task.add_done_callback(partial(self._done, row))

    def _start_or_queue(self, row: Mapping[Any, Any]) -> None:
        cap = row["max_concurrency"] or self.config.connections
        if self._per_endpoint.get(outbox.endpoint(row), 0) >= cap:
            self._ready.append(row)  # leased to this worker; sent when its endpoint has a free slot
        else:
            self._start(row)

    def _free_slot(self, row: Mapping[Any, Any]) -> None:
        """The endpoint's request is over (its outcome may still be being recorded): the slot is free for
        the next request to that endpoint. Idempotent."""
        if row["id"] not in self._holding:
            return
        self._holding.discard(row["id"])
        sub = outbox.endpoint(row)
        self._per_endpoint[sub] -= 1
        if self._per_endpoint[sub] <= 0:
            del self._per_endpoint[sub]
        waiting, self._ready = self._ready, []
        for queued in waiting:
            self._start_or_queue(queued)

    def _done(self, row: Mapping[Any, Any], _task: object) -> None:
        self._inflight.pop(row["id"], None)
        self._free_slot(row)
        key = (outbox.endpoint(row), row["call_id"])
        claimed = row["id"] in self._claimed
        self._claimed.discard(row["id"])
        if self._backlog or claimed or key in self._held:
            self._held.discard(key)
            self._wake.set()  # a slot is free, and the next row of this call may be due now

    async def _deliver(self, row: Mapping[Any, Any]) -> None:
        send_at = row.get("send_at")  # an endpoint with a rate limit: its slot, shared by every worker
        if send_at is not None and (wait := (send_at - self.clock()).total_seconds()) > 0:
            await asyncio.sleep(wait)
        if row["connection_id"] is not None:
            if self.crm is None:  # a worker built without CRM support leaves the row to one that has it
                await outbox.release(self.writes, [row["id"]], self.owner)
                return
            verdict = await run_sync(
                self.db, self.writes, self.crm, row, self.owner, self.clock, self.config.policy, self.rng
            )
            self.attempts += 1
            if self.metrics is not None:
                self.metrics.attempt("crm", verdict)
            return
        attempted_at = self.clock()
        started = time.perf_counter()
        outcome, body_text = await self._send(row, attempted_at)
        latency_ms = round((time.perf_counter() - started) * 1000)
        self._free_slot(row)
        self.attempts += 1
        now = self.clock()
        decision = decide(self.config.policy, row["attempts"] + 1, outcome, now, self.rng)
        attempt = outbox.Attempt(attempted_at, outcome, latency_ms, body_text)
        try:
            await outbox.finish_attempt(
                self.writes, row, self.owner, attempt, decision, self.config.policy, now
            )
        except Exception:  # the lease expires and the delivery is sent again: at least once
            log.exception("recording a delivery attempt failed", delivery_id=row["id"])
            return
        if self.metrics is not None:
            self.metrics.attempt("subscription", decision.verdict.value)
        log.info(
            "delivery",
            delivery_id=row["id"],
            subscription_id=row["subscription_id"],
            event_type=row["event_type"],
            status_code=outcome.status_code,
            error=outcome.error,
            verdict=decision.verdict.value,
            latency_ms=latency_ms,
        )

    async def _send(self, row: Mapping[Any, Any], now: datetime) -> Answer:
        secrets = signing_secrets(row["secrets"], now)
        headers = signature_headers(secrets, row["id"], int(now.timestamp()), row["payload"])
        try:
            address = await checked_address(self.config.targets, row["url"])
        except BlockedTarget as exc:
            return Outcome(error=blocked_error(exc)), None
        url, host, extensions = pinned_request(row["url"], address)
        request = Send(row["subscription_id"], url, {**headers, **host}, row["payload"], extensions)
        return await self.sender.send(request)
