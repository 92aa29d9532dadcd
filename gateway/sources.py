"""Sources: creating them (with the vendor's default verification), showing them, and the hot-path cache.

The hook path must not pay a database round trip per webhook to learn how to verify it, so active
sources are cached with their built verifier for ``source_cache_seconds``. Changes made through this
process drop the entry at once; another process sees them within the TTL.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError
from sqlalchemy.engine import RowMapping

from adapters.base import InboundAdapter
from gateway.clock import Clock
from gateway.errors import NotFound, ValidationFailed
from gateway.ids import new_id, new_token, new_whsec
from gateway.render import ts
from gateway.signing import (
    VerificationConfig,
    Verifier,
    build_verifier,
    redact,
    verification_adapter,
)
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
    generated: str | None = None
    api_key: str | None = None
    if given is None:
        settings = dict(adapter.default_verification)
        scheme = settings.get("scheme")
        if scheme == "standard-webhooks":
            generated = new_whsec()
            settings["secrets"] = [generated]
        elif scheme == "livekit":
            api_key, generated = "API" + secrets.token_hex(6), secrets.token_urlsafe(32)
            settings["keys"] = {api_key: generated}
        else:
            generated = new_token()
            settings["secrets"] = [generated]
        given = settings
    try:
        return verification_adapter.validate_python(dict(given)), generated, api_key
    except ValidationError as exc:
        raise _first_error(exc, "verification") from None


def render(row: RowMapping, base_url: str) -> dict[str, Any]:
    config = verification_adapter.validate_python(row["verification"])
    return {
        "id": row["id"],
        "name": row["name"],
        "vendor": row["vendor"],
        "enabled": bool(row["enabled"]),
        "hook_url": f"{base_url}/hooks/{row['id']}",
        "verification": redact(config),
        "created_at": ts(row["created_at"]),
        "updated_at": ts(row["updated_at"]),
    }


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
) -> tuple[RowMapping, str | None, str | None]:
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
            },
        )
        row = await store.get(conn, tenant_id, source_id)
    if row is None:  # we just wrote it in this transaction
        raise NotFound("source vanished")
    return row, generated, api_key


@dataclass(frozen=True, slots=True)
class ActiveSource:
    id: str
    tenant_id: str
    vendor: str
    enabled: bool
    adapter: InboundAdapter
    verify: Verifier


class SourceCache:
    MAX_ENTRIES = 10_000

    def __init__(
        self, db: Database, adapters: Mapping[str, InboundAdapter], clock: Clock, ttl_seconds: float
    ) -> None:
        self._db = db
        self._adapters = adapters
        self._clock = clock
        self._ttl = ttl_seconds
        self._entries: dict[str, tuple[float, ActiveSource | None]] = {}

    async def get(self, source_id: str) -> ActiveSource | None:
        """The active source, or None if it does not exist, was deleted, or its vendor is unknown."""
        now = time.monotonic()
        hit = self._entries.get(source_id)
        if hit is not None and hit[0] > now:
            return hit[1]
        async with self._db.reading() as conn:
            row = await store.get_active(conn, source_id)
        source = self._build(row) if row is not None else None
        if len(self._entries) >= self.MAX_ENTRIES:
            self._entries.clear()
        self._entries[source_id] = (now + self._ttl, source)
        return source

    def invalidate(self, source_id: str) -> None:
        self._entries.pop(source_id, None)

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
            verify=build_verifier(config, self._clock),
        )


__all__ = ["ActiveSource", "SourceCache", "build_verification", "create", "render"]
