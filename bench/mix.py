"""The six-vendor ingest mix: for N calls spread evenly over every inbound adapter (``adapters.registry``),
each call's whole sample webhook sequence (``InboundAdapter.samples``: 2 to 5 events a call, 22 for one
call of each vendor), with fresh vendor call ids and event ids, signed for that vendor's source exactly as
``callgate demo`` signs them (Standard Webhooks, HMAC with and without a timestamp, a LiveKit JWT).

Calls are interleaved in blocks (event 1 of 16 calls of each vendor, then event 2 of them, ...), so one
call's events are spread out as they are in life and seldom in flight together.

Signatures are made when the requests are built: build them right before they are sent (Standard Webhooks
and the timestamped HMAC refuse anything older than 5 minutes).
"""

from __future__ import annotations

import asyncio
import itertools
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy import func, select

from adapters.registry import INBOUND
from bench.load import request_bytes
from gateway import auth
from gateway import sources as source_service
from gateway import subscriptions as subscription_service
from gateway.clock import system_clock
from gateway.demo import samples
from gateway.outbound.ssrf import TargetPolicy
from gateway.signing import Scheme, scheme_for, with_secret
from gateway.store.db import Database
from gateway.store.tables import raw_events

VENDORS: tuple[str, ...] = tuple(name for name, adapter in INBOUND.items() if adapter.samples)
BLOCK = 16  # calls of each vendor interleaved together

_sequence = itertools.count(1)  # run ids unique within this process (callsv1 reads run[:8] as hex)


@dataclass(frozen=True)
class Hook:
    """One webhook as a vendor sends it."""

    vendor: str
    path: str
    body: bytes
    headers: dict[str, str]


@dataclass(frozen=True)
class Tenant:
    """A benchmark tenant: its API key and one source per vendor (id and signer)."""

    tenant_id: str
    api_key: str
    sources: dict[str, tuple[str, Scheme]]
    subscription_id: str | None


async def setup(url: str, subscriber: str | None) -> Tenant:
    """A tenant with a source per vendor and, when ``subscriber`` is given, one subscription to
    ``call.*`` there (so every change writes an outbox row)."""
    db = Database(url)
    try:
        tenant_id, key = await auth.create_tenant(db, "bench", system_clock)
        sources: dict[str, tuple[str, Scheme]] = {}
        for vendor in VENDORS:
            row, secret, api_key = await source_service.create(
                db, INBOUND, system_clock, tenant_id=tenant_id, name=f"bench {vendor}", vendor=vendor,
                verification=None,
            )  # fmt: skip
            if secret is None:
                raise RuntimeError(f"no secret generated for the {vendor} source")
            config = with_secret(row["verification"], secret, api_key)
            sources[vendor] = (row["id"], scheme_for(config, system_clock))
        subscription_id = None
        if subscriber is not None:
            subscription, _ = await subscription_service.create(
                db, TargetPolicy(allow_private=True), datetime.now(UTC), tenant_id=tenant_id, url=subscriber,
                event_types=["call.*"],
            )  # fmt: skip
            subscription_id = str(subscription["id"])
        return Tenant(tenant_id, key.api_key, sources, subscription_id)
    finally:
        await db.dispose()


def _run_id() -> str:
    return f"{next(_sequence):08x}{secrets.token_hex(4)}"


def hooks(tenant: Tenant, calls: int) -> list[Hook]:
    """``calls`` new calls (rounded up to a multiple of six), every event of each, signed now."""
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=10)
    now = int(time.time())
    per_vendor = -(-calls // len(VENDORS))
    out: list[Hook] = []
    for block in range(0, per_vendor, BLOCK):
        sequences: list[tuple[str, list[bytes]]] = []
        for _ in range(min(BLOCK, per_vendor - block)):
            for vendor in VENDORS:
                sequences.append((vendor, samples(INBOUND[vendor], _run_id(), start)))
        for step in range(max(len(bodies) for _, bodies in sequences)):
            for vendor, bodies in sequences:
                if step < len(bodies):
                    source_id, scheme = tenant.sources[vendor]
                    body = bodies[step]
                    out.append(Hook(vendor, f"/hooks/{source_id}", body, scheme.sign(body, now=now)))
    return out


def hooks_for(tenant: Tenant, requests: int) -> list[Hook]:
    """At least ``requests`` webhooks (whole calls)."""
    per_call = sum(len(samples(INBOUND[v], "00000000", datetime.now(UTC))) for v in VENDORS) / len(VENDORS)
    return hooks(tenant, int(requests / per_call) + len(VENDORS))


def wire(port: int, batch: Sequence[Hook]) -> list[bytes]:
    """The webhooks as raw HTTP/1.1 requests to ``127.0.0.1:port``."""
    return [request_bytes("127.0.0.1", port, h.path, h.body, h.headers) for h in batch]


def check(base_url: str, tenant: Tenant) -> dict[str, int]:
    """Sends one fresh call of each vendor (every event) and fails unless each is stored (202; a 401 would
    make the benchmark worthless, a 200 would say the ids are not fresh). Returns the answers per vendor."""
    answered: dict[str, int] = {}
    with httpx.Client(base_url=base_url, timeout=30) as client:
        for hook in hooks(tenant, len(VENDORS)):
            response = client.post(hook.path, content=hook.body, headers=hook.headers)
            if response.status_code != 202:
                raise RuntimeError(
                    f"{hook.vendor} sample answered {response.status_code}: {response.text[:300]}"
                )
            answered[hook.vendor] = answered.get(hook.vendor, 0) + 1
    return answered


async def _count(url: str, tenant_id: str) -> int:
    db = Database(url)
    try:
        async with db.reading() as conn:
            query = select(func.count()).select_from(raw_events).where(raw_events.c.tenant_id == tenant_id)
            return int((await conn.execute(query)).scalar_one())
    finally:
        await db.dispose()


def stored(url: str, tenant_id: str) -> int:
    """Raw events stored for the tenant (every vendor)."""
    return asyncio.run(_count(url, tenant_id))
