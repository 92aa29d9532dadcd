"""One CRM sync, as the outbox worker runs it: load the call as it is now, ask the connection's connector
to bring the CRM to it, hand the classified answer to ``gateway.outbox.finish_sync``. No SQL here.

Connectors are built once per connection (and again when the connection changes), over one shared
``httpx.AsyncClient`` whose transport checks every request against the SSRF policy. Each connection has
a client-side token bucket below its CRM's burst limit and a contact cache.
"""

from __future__ import annotations

import random
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

import httpx
import structlog

from gateway import outbox
from gateway.clock import Clock
from gateway.connectors import (
    Connector,
    ConnectorSpec,
    ContactCache,
    CrmFailure,
    CrmOutcome,
    CrmVerdict,
    SyncedRecord,
)
from gateway.outbound.retry import Outcome, Policy
from gateway.pull.recordings import RecordingLinks
from gateway.store.db import Database, Writes
from gateway.vault import Vault, VaultError

log = structlog.get_logger("callgate.crm")


@dataclass(slots=True)
class CrmRuntime:
    """What the worker needs for CRM syncs: the registry of kinds, the credentials key, the HTTP client."""

    specs: Mapping[str, ConnectorSpec]
    vault: Vault
    client: httpx.AsyncClient
    contact_ttl: float = 300.0
    _connectors: dict[str, tuple[datetime, Connector]] = field(default_factory=dict)
    _contacts: dict[str, ContactCache] = field(default_factory=dict)
    links: RecordingLinks | None = None  # the call's recording as the gateway's own link (not the vendor's)

    def connector(self, connection: Mapping[Any, Any]) -> Connector:
        """The connection's connector, rebuilt when the connection was changed (credentials, options)."""
        cached = self._connectors.get(connection["id"])
        if cached is not None and cached[0] == connection["updated_at"]:
            return cached[1]
        spec = self.specs[connection["kind"]]
        contacts = self._contacts.setdefault(connection["id"], ContactCache(self.contact_ttl))
        built = spec.build(
            connection["base_url"],
            self.vault.open(connection["credentials"]),
            dict(connection["options"]),
            self.client,
            contacts,
        )
        self._connectors[connection["id"]] = (connection["updated_at"], built)
        return built


async def run_sync(
    db: Database,
    writes: Writes,
    crm: CrmRuntime,
    row: Mapping[Any, Any],
    owner: str,
    clock: Clock,
    policy: Policy,
    rng: random.Random,
) -> str:
    """One sync of one row; returns the verdict (``done``, ``retry`` …), or ``unrecorded`` when its result
    could not be written (the lease expires and the sync runs again)."""
    context = await outbox.sync_context(db, row)
    if context is not None and crm.links is not None:
        context = replace(context, call=crm.links.relay(row["tenant_id"], context.call, clock()))
    attempted_at = clock()
    started = time.perf_counter()
    synced: tuple[SyncedRecord, int] | None = None
    if context is None:
        outcome = CrmOutcome(CrmVerdict.PERMANENT, code="gone", message="the connection or the call is gone")
    elif (
        row["event_type"] == outbox.SYNC
        and context.synced_version is not None
        and context.synced_version >= context.call["version"]
    ):
        outcome = CrmOutcome(CrmVerdict.DONE, message="the CRM holds this version already")
    else:  # (the claim gave the row its rate slot, and the worker waited for it)
        outcome, synced = await _sync(crm, context)
    latency_ms = round((time.perf_counter() - started) * 1000)
    attempt = outbox.Attempt(attempted_at, Outcome(status_code=outcome.status_code), latency_ms, None)
    try:
        await outbox.finish_sync(writes, row, owner, attempt, outcome, synced, policy, clock(), rng)
    except Exception:  # the lease expires and the sync runs again; the connector finds its record
        log.exception("recording a CRM sync failed", delivery_id=row["id"])
        return "unrecorded"
    log.info(
        "crm_sync",
        delivery_id=row["id"],
        connection_id=row["connection_id"],
        call_id=row["call_id"],
        verdict=outcome.verdict.value,
        status_code=outcome.status_code,
        code=outcome.code,
        latency_ms=latency_ms,
    )
    return outcome.verdict.value


async def _sync(
    crm: CrmRuntime, context: outbox.SyncContext
) -> tuple[CrmOutcome, tuple[SyncedRecord, int] | None]:
    try:
        connector = crm.connector(context.connection)
        record = await connector.sync(context.call, context.existing)
    except CrmFailure as failure:
        return failure.outcome, None
    except VaultError as exc:  # the credentials key changed: stop until the credentials are entered again
        return CrmOutcome(CrmVerdict.AUTH_FAILED, code=exc.code, message=exc.message), None
    except Exception as exc:  # a connector bug or a credentials problem: retried on the schedule, logged
        log.exception("crm connector failed", connection_id=context.connection["id"])
        return CrmOutcome(CrmVerdict.RETRY, code="connector_error", message=type(exc).__name__), None
    return CrmOutcome(CrmVerdict.DONE, status_code=200), (record, int(context.call["version"]))
