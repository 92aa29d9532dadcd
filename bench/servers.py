"""Running the servers the suite measures, and the ingest measurements on them.

``serve``: ``callgate serve`` in its own process (``bench.outbox.start``) with ``CALLGATE_WORKER=false``
(deliveries do not run: outbox rows are written, not sent) and ``CALLGATE_LOG_LEVEL=warning``, as
``bench.ingest`` runs it. ``reference``: one of ``bench.reference``'s servers.
"""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

import httpx

from bench import load, mix, wrk
from bench.ingest import free_port
from bench.outbox import start, stop, wait_ready
from gateway.clock import system_clock
from gateway.signing import StandardWebhooks, StandardWebhooksConfig
from gateway.store.migrate import upgrade

PREPARED_PER_SECOND = 3000  # requests prepared per second of a wrk run: well above callgate's peak


@dataclass(frozen=True)
class Server:
    port: int

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def prepare(url: str, subscriber: str | None) -> mix.Tenant:
    """A migrated database with the benchmark tenant, its six sources and (optionally) a subscription."""
    upgrade(url)
    return asyncio.run(mix.setup(url, subscriber))


@contextlib.contextmanager
def serve(url: str, **env: str) -> Iterator[Server]:
    port = free_port()
    process = start(
        "serve", url, port, **{"CALLGATE_WORKER": "false", "CALLGATE_LOG_LEVEL": "warning", **env}
    )
    try:
        yield Server(port)
    finally:
        stop(process)


@contextlib.contextmanager
def reference(*args: str) -> Iterator[Server]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "bench.reference", *args, "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_ready(f"http://127.0.0.1:{port}/")  # 404: up
        yield Server(port)
    finally:
        stop(process)


def _wrk_summary(result: wrk.WrkResult, prepared: int) -> dict[str, Any]:
    return {
        "per_second": round(result.per_second, 1),
        "requests": result.requests,
        "prepared": prepared,
        "seconds": round(result.seconds, 2),
        "p50_ms": result.p50_ms,
        "p99_ms": result.p99_ms,
        "statuses": {str(k): v for k, v in sorted(result.statuses.items())},
        "non_2xx": result.non_2xx,
        "socket_errors": result.socket_errors,
    }


def ingest_peak(server: Server, url: str, tenant: mix.Tenant, seconds: float) -> dict[str, Any]:
    """wrk -t1 -c64 for ``seconds`` on the six-vendor mix (after a checked sample of each vendor);
    the raw events stored by the run counted back from the database."""
    mix.check(server.base, tenant)
    before = mix.stored(url, tenant.tenant_id)
    batch = mix.hooks_for(tenant, int(seconds * PREPARED_PER_SECOND))
    result = wrk.run(server.base + "/", mix.wire(server.port, batch), seconds=seconds)
    out = _wrk_summary(result, len(batch))
    out["stored"] = mix.stored(url, tenant.tenant_id) - before
    return out


def ingest_fixed(server: Server, url: str, tenant: mix.Tenant, rate: float, seconds: float) -> dict[str, Any]:
    """The mix at a fixed ``rate`` (open loop, ``bench.load``: latency from the scheduled send time)."""
    mix.check(server.base, tenant)
    before = mix.stored(url, tenant.tenant_id)
    batch = mix.hooks_for(tenant, int(rate * seconds))[: int(rate * seconds)]
    result = asyncio.run(load.run("127.0.0.1", server.port, mix.wire(server.port, batch), rate=rate))
    ack = [(a - s) * 1000 for s, a in zip(result.sent, result.acked, strict=True)]
    ok = sum(1 for s in result.statuses if 200 <= s < 300)
    return {
        "rate": round(rate, 1),
        "requests": len(batch),
        "p50_ms": percentile(ack, 50),
        "p99_ms": percentile(ack, 99),
        "non_2xx": len(batch) - ok,
        "stored": mix.stored(url, tenant.tenant_id) - before,
    }


def percentile(values: list[float], p: float) -> float:
    return round(load.percentile(values, p), 2)


def bare_peak(tenant: mix.Tenant, seconds: float) -> dict[str, Any]:
    """The bare Starlette reference on the same requests (a replay costs it what a new one does)."""
    with reference("bare") as server:
        batch = mix.hooks_for(tenant, int(seconds * PREPARED_PER_SECOND))
        result = wrk.run(server.base + "/", mix.wire(server.port, batch), seconds=seconds, cyclic=True)
    return {**_wrk_summary(result, len(batch)), "cyclic": True}


def naive_peak(tenant: mix.Tenant, database: str, seconds: float) -> dict[str, Any]:
    """The naive reference on the same mix, every webhook signed with its one Standard Webhooks secret."""
    from bench.reference import count_naive
    from gateway.ids import new_whsec

    secret = new_whsec()
    scheme = StandardWebhooks(StandardWebhooksConfig(secrets=[secret]), system_clock)

    def naive(hooks: list[mix.Hook]) -> list[mix.Hook]:
        return [replace(h, path=f"/hooks/{h.vendor}", headers=scheme.sign(h.body)) for h in hooks]

    with reference("naive", "--database", database, "--secret", secret) as server:
        with httpx.Client(base_url=server.base, timeout=30) as client:
            for hook in naive(mix.hooks(tenant, len(mix.VENDORS))):
                answer = client.post(hook.path, content=hook.body, headers=hook.headers)
                if answer.status_code != 202:
                    raise RuntimeError(f"the naive server answered {answer.status_code}: {answer.text[:200]}")
        before = count_naive(database)
        batch = naive(mix.hooks_for(tenant, int(seconds * PREPARED_PER_SECOND)))
        result = wrk.run(server.base + "/", mix.wire(server.port, batch), seconds=seconds)
    out = _wrk_summary(result, len(batch))
    out["stored"] = count_naive(database) - before
    return out
