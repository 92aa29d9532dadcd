"""CRM connections: one CRM account of a tenant. Creating, changing, testing and resyncing them.

Credentials are write-only: sealed with ``gateway.vault`` before they are stored, never rendered, never
logged. The base URL goes through the SSRF guard like a subscription URL. Options are the kind's defaults
overlaid with what was given; an unknown option is a 422, not silently kept.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Connection, RowMapping

from gateway.connectors import ConnectorSpec, CrmFailure
from gateway.errors import NotFound, ValidationFailed, found
from gateway.ids import new_id
from gateway.model import Status
from gateway.outbound.crm import CrmRuntime
from gateway.outbound.ssrf import TargetPolicy, check_target
from gateway.store import connections as store
from gateway.store.db import Database
from gateway.vault import Vault, VaultError

STATUSES = frozenset(s.value for s in Status)
MAX_SECRET = 4096


def _spec(specs: Mapping[str, ConnectorSpec], kind: str) -> ConnectorSpec:
    spec = specs.get(kind)
    if spec is None:
        raise ValidationFailed(f"unknown kind; one of {', '.join(sorted(specs))}", field="kind")
    return spec


def check_credentials(spec: ConnectorSpec, credentials: Mapping[str, Any]) -> dict[str, str]:
    """Exactly one of the kind's credential shapes, every value a non-empty string."""
    keys = frozenset(credentials)
    if keys not in spec.credential_keys:
        shapes = " or ".join("{" + ", ".join(sorted(s)) + "}" for s in spec.credential_keys)
        raise ValidationFailed(f"{spec.kind} credentials are {shapes}", field="credentials")
    for key, value in credentials.items():
        if not isinstance(value, str) or not value or len(value) > MAX_SECRET:
            raise ValidationFailed("each credential is a non-empty string", field=f"credentials.{key}")
    return {k: str(v) for k, v in credentials.items()}


def check_options(
    spec: ConnectorSpec, given: Mapping[str, Any], current: Mapping[str, Any]
) -> dict[str, Any]:
    unknown = sorted(set(given) - set(spec.default_options))
    if unknown:
        known = ", ".join(sorted(spec.default_options))
        raise ValidationFailed(f"unknown option {unknown[0]!r}; {spec.kind} has {known}", field="options")
    options = {**spec.default_options, **current, **given}
    statuses = options.get("statuses")
    if not isinstance(statuses, list) or not statuses or not set(statuses) <= STATUSES:
        raise ValidationFailed("statuses must list call statuses", field="options.statuses")
    if not isinstance(options.get("match_contacts", True), bool):
        raise ValidationFailed("match_contacts is true or false", field="options.match_contacts")
    return options


async def _base_url(spec: ConnectorSpec, given: str | None, targets: TargetPolicy) -> str:
    base_url = (given or spec.default_base_url or "").rstrip("/")
    if not base_url:
        raise ValidationFailed(f"{spec.kind} needs base_url (the instance URL)", field="base_url")
    await check_target(targets, base_url, "base_url")
    return base_url


async def create(
    db: Database,
    specs: Mapping[str, ConnectorSpec],
    vault: Vault,
    targets: TargetPolicy,
    now: datetime,
    *,
    tenant_id: str,
    kind: str,
    credentials: Mapping[str, Any],
    name: str | None = None,
    base_url: str | None = None,
    options: Mapping[str, Any] | None = None,
    enabled: bool = True,
) -> RowMapping:
    spec = _spec(specs, kind)
    row = {
        "id": new_id("con"),
        "tenant_id": tenant_id,
        "kind": kind,
        "name": name or f"{kind} connection",
        "base_url": await _base_url(spec, base_url, targets),
        "credentials": vault.seal(check_credentials(spec, credentials)),
        "options": check_options(spec, options or {}, {}),
        "enabled": enabled,
        "state": "active",
        "paused_until": None,
        "last_error": None,
        "created_at": now,
        "updated_at": now,
        "deleted_at": None,
    }

    def work(conn: Connection) -> RowMapping:
        store.insert_one(conn, row)
        return found(store.by_id(conn, str(row["id"])), "connection")

    return await db.run_write(work)


async def modify(
    db: Database,
    specs: Mapping[str, ConnectorSpec],
    vault: Vault,
    targets: TargetPolicy,
    now: datetime,
    *,
    tenant_id: str,
    connection_id: str,
    name: str | None = None,
    base_url: str | None = None,
    credentials: Mapping[str, Any] | None = None,
    options: Mapping[str, Any] | None = None,
    enabled: bool | None = None,
) -> RowMapping:
    """New credentials, or re-enabling, clear ``auth_failed``: the connection's pending syncs go on."""
    async with db.reading() as conn:
        current = found(await store.get(conn, tenant_id, connection_id), "connection")
    spec = _spec(specs, current["kind"])
    values: dict[str, Any] = {"updated_at": now}
    if name is not None:
        values["name"] = name
    if base_url is not None:
        values["base_url"] = await _base_url(spec, base_url, targets)
    if options is not None:
        values["options"] = check_options(spec, options, current["options"])
    if credentials is not None:
        values["credentials"] = vault.seal(check_credentials(spec, credentials))
    if enabled is not None:
        values["enabled"] = enabled
    if credentials is not None or enabled:
        values |= {"state": "active", "paused_until": None, "last_error": None}

    def work(conn: Connection) -> RowMapping:
        found(store.lock(conn, tenant_id, connection_id), "connection")
        store.change(conn, connection_id, values)
        return found(store.by_id(conn, connection_id), "connection")

    return await db.run_write(work)


async def delete(db: Database, now: datetime, *, tenant_id: str, connection_id: str) -> None:
    """Soft: the mapping and the delivery log keep pointing at it; its pending syncs stop."""

    def work(conn: Connection) -> None:
        found(store.lock(conn, tenant_id, connection_id), "connection")
        store.change(conn, connection_id, {"deleted_at": now, "enabled": False, "updated_at": now})

    await db.run_write(work)


async def get(db: Database, tenant_id: str, connection_id: str) -> tuple[RowMapping, int]:
    """The connection and how many calls it holds a record of."""
    async with db.reading() as conn:
        row = found(await store.get(conn, tenant_id, connection_id), "connection")
        return row, await store.count_records(conn, connection_id)


async def list_for_tenant(
    db: Database, tenant_id: str, *, before_id: str | None, limit: int
) -> Sequence[RowMapping]:
    async with db.reading() as conn:
        return await store.list_for_tenant(conn, tenant_id, before_id=before_id, limit=limit)


async def records(
    db: Database, tenant_id: str, connection_id: str, *, before_call_id: str | None, limit: int
) -> Sequence[RowMapping]:
    async with db.reading() as conn:
        found(await store.get(conn, tenant_id, connection_id), "connection")
        return await store.list_records(
            conn, tenant_id, connection_id, before_call_id=before_call_id, limit=limit
        )


async def test(db: Database, crm: CrmRuntime, tenant_id: str, connection_id: str) -> dict[str, Any]:
    """One harmless authenticated read against the CRM: ``{"ok": true}`` or ``{"ok": false, "error"}``."""
    async with db.reading() as conn:
        row = found(await store.get(conn, tenant_id, connection_id), "connection")
    if row["kind"] not in crm.specs:
        raise NotFound("no connector for this kind")
    try:
        await crm.connector(row).test()
    except VaultError as exc:
        return {"ok": False, "error": {"code": exc.code, "message": exc.message, "status_code": None}}
    except CrmFailure as failure:
        outcome = failure.outcome
        return {
            "ok": False,
            "error": {
                "code": outcome.code or outcome.verdict.value,
                "message": outcome.message,
                "status_code": outcome.status_code,
            },
        }
    return {"ok": True}
