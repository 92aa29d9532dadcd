"""Sources: creating, changing and deleting them (with the vendor's default verification), and the
hot-path cache with its invalidation rule.

The hook path must not pay a database round trip per webhook to learn how to verify it, so active
sources are cached with their built verifier for ``source_cache_seconds`` (one load per source at a
time, refreshed ahead of need: ``SourceCache``). Changes made through this process drop the entry at
once; another process sees them within two TTLs.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import ValidationError
from sqlalchemy.engine import RowMapping

from gateway.clock import Clock
from gateway.errors import NotFound, ValidationFailed, found
from gateway.ids import new_id
from gateway.inbound import Headers, InboundAdapter
from gateway.pull.parts import parts_for
from gateway.signing import VerificationConfig, generate, scheme_for, verification_adapter
from gateway.store import sources as store
from gateway.store import tenants as tenant_store
from gateway.store.db import Database


def _first_error(exc: ValidationError, prefix: str) -> ValidationFailed:
    error = exc.errors()[0]
    location = ".".join(str(p) for p in error["loc"])
    return ValidationFailed(error["msg"], field=f"{prefix}.{location}" if location else prefix)


def build_verification(
    adapter: InboundAdapter, given: Mapping[str, Any] | None
) -> tuple[VerificationConfig, str | None, str | None]:
    """The source's verification: as given, or the vendor's default with a generated secret.

    Returns the configuration, the generated secret (shown once) and, for LiveKit, the generated key.
    """
    try:
        if given is None:
            made = generate(adapter.default_verification)
            return made.config, made.secret, made.api_key
        # strict, as the API reads every body: JSON's own types, "60" is no number of seconds
        return verification_adapter.validate_python(dict(given), strict=True), None, None
    except ValidationError as exc:
        raise _first_error(exc, "verification") from None


async def create(
    db: Database,
    adapters: Mapping[str, InboundAdapter],
    clock: Clock,
    *,
    tenant_id: str,
    name: str,
    vendor: str,
    verification: Mapping[str, Any] | None,
    enabled: bool = True,
    pull: Mapping[str, Any] | None = None,
) -> tuple[RowMapping, str | None, str | None]:
    """``pull``: the read-API columns, as ``gateway.pull.source.stored_values`` made them."""
    adapter = adapters.get(vendor)
    if adapter is None:
        raise ValidationFailed(f"unknown vendor; one of {', '.join(sorted(adapters))}", field="vendor")
    config, generated, api_key = build_verification(adapter, verification)
    now = clock()
    source_id = new_id("src")
    async with db.writing() as conn:
        if await tenant_store.get_tenant(conn, tenant_id) is None:
            raise NotFound("no such tenant", field="tenant_id")
        await store.create(
            conn,
            {
                "id": source_id,
                "tenant_id": tenant_id,
                "name": name,
                "vendor": vendor,
                "verification": config.model_dump(),
                "enabled": enabled,
                "created_at": now,
                "updated_at": now,
                **(pull or {}),
            },
        )
        row = await store.get(conn, tenant_id, source_id)
    return found(row, "source"), generated, api_key


async def modify(
    db: Database,
    cache: SourceCache,
    adapters: Mapping[str, InboundAdapter],
    now: datetime,
    *,
    tenant_id: str,
    source_id: str,
    name: str | None = None,
    enabled: bool | None = None,
    verification: Mapping[str, Any] | None = None,
    pull: Mapping[str, Any] | None = None,
) -> RowMapping:
    """Changes what is given; the cache entry of this process is dropped at once (others: within the TTL).
    ``pull``: the read-API columns (``gateway.pull.source``), or their cleared values."""
    async with db.writing() as conn:
        row = found(await store.get(conn, tenant_id, source_id), "source")
        values: dict[str, Any] = {"updated_at": now}
        if name is not None:
            values["name"] = name
        if enabled is not None:
            values["enabled"] = enabled
        if verification is not None:
            config, _, _ = build_verification(adapters[row["vendor"]], verification)
            values["verification"] = config.model_dump()
        if pull is not None:
            values.update(pull)
        await store.modify(conn, tenant_id, source_id, values)
        row = found(await store.get(conn, tenant_id, source_id), "source")
    cache.invalidate(source_id)
    return row


async def delete(db: Database, cache: SourceCache, now: datetime, *, tenant_id: str, source_id: str) -> None:
    async with db.writing() as conn:
        deleted = await store.soft_delete(conn, tenant_id, source_id, now)
    cache.invalidate(source_id)
    if not deleted:
        raise NotFound("no such source")


async def get(db: Database, tenant_id: str, source_id: str) -> RowMapping:
    async with db.reading() as conn:
        return found(await store.get(conn, tenant_id, source_id), "source")


async def list_for_tenant(db: Database, tenant_id: str) -> Sequence[RowMapping]:
    async with db.reading() as conn:
        return await store.list_for_tenant(conn, tenant_id)


@dataclass(frozen=True, slots=True)
class ActiveSource:
    id: str
    tenant_id: str
    vendor: str
    enabled: bool
    adapter: InboundAdapter
    verify: Callable[[bytes, Headers], None]
    pull_parts: tuple[str, ...] = ()  # the parts its read API fills in after a call (gateway.pull.parts)


class SourceCache:
    """Active sources with their built verifiers, for ``ttl`` seconds.

    One load per source at a time: when an entry is missing, the webhooks that ask for it meanwhile wait
    for the same read instead of each reading it (a burst of 64 at an expiry was a 200-300 ms stall of
    every webhook, measured). An entry that expired less than one more TTL ago is still answered while one
    refresh runs in the background, so a busy source never waits for its reload; an older one is waited
    for. ``invalidate`` drops the entry and any load in flight (its answer may predate the change).
    ``ttl`` 0 turns caching off: every webhook reads its source."""

    MAX_ENTRIES = 10_000

    def __init__(
        self, db: Database, adapters: Mapping[str, InboundAdapter], clock: Clock, ttl_seconds: float
    ) -> None:
        self._db = db
        self._adapters = adapters
        self._clock = clock
        self._ttl = ttl_seconds
        self._entries: dict[str, tuple[float, ActiveSource | None]] = {}
        self._loading: dict[str, asyncio.Future[ActiveSource | None]] = {}

    async def get(self, source_id: str) -> ActiveSource | None:
        """The active source, or None if it does not exist, was deleted, or its vendor is unknown."""
        if self._ttl <= 0:
            return await self._read(source_id)
        now = time.monotonic()
        hit = self._entries.get(source_id)
        if hit is not None:
            expires, source = hit
            if expires > now:
                return source
            if expires + self._ttl > now:
                self._load(source_id)  # answered from the entry; the refresh runs meanwhile
                return source
        return await asyncio.shield(self._load(source_id))

    def invalidate(self, source_id: str) -> None:
        self._entries.pop(source_id, None)
        self._loading.pop(source_id, None)

    def _load(self, source_id: str) -> asyncio.Future[ActiveSource | None]:
        """The load in flight for ``source_id``, or a new one."""
        loading = self._loading.get(source_id)
        if loading is None:
            loading = self._loading[source_id] = asyncio.ensure_future(self._read(source_id))
            loading.add_done_callback(lambda done: self._store(source_id, done))
        return loading

    def _store(self, source_id: str, done: asyncio.Future[ActiveSource | None]) -> None:
        failed = done.cancelled() or done.exception() is not None  # retrieved, even if nobody waits
        if self._loading.get(source_id) is not done:
            return  # invalidated while it ran
        del self._loading[source_id]
        if failed:
            return  # the waiters see the error (503); a background refresh keeps the entry
        if len(self._entries) >= self.MAX_ENTRIES:
            self._entries.clear()
        self._entries[source_id] = (time.monotonic() + self._ttl, done.result())

    async def _read(self, source_id: str) -> ActiveSource | None:
        async with self._db.reading() as conn:
            row = await store.get_active(conn, source_id)
        return self._build(row) if row is not None else None

    def _build(self, row: RowMapping) -> ActiveSource | None:
        adapter = self._adapters.get(row["vendor"])
        if adapter is None:
            return None
        config = verification_adapter.validate_python(row["verification"])
        return ActiveSource(
            id=row["id"],
            tenant_id=row["tenant_id"],
            vendor=row["vendor"],
            enabled=bool(row["enabled"]),
            adapter=adapter,
            verify=scheme_for(config, self._clock).verify,
            pull_parts=parts_for(row),
        )


__all__ = [
    "ActiveSource",
    "SourceCache",
    "build_verification",
    "create",
    "delete",
    "get",
    "list_for_tenant",
    "modify",
]
