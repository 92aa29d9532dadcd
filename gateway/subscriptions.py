"""Customer subscriptions: endpoints that receive signed ``call.*`` deliveries.

A subscription has a ``whsec_`` secret (32 random bytes, shown once). Rotating it makes a new current
secret and keeps the old one signing until it expires (24 h by default), so the receiver can verify either
while it switches. Secrets are never rendered after creation and never logged.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

import structlog
from sqlalchemy.engine import Connection, RowMapping

from gateway import outbox
from gateway.errors import ValidationFailed, found
from gateway.ids import new_id, new_whsec
from gateway.model import format_ts, parse_ts
from gateway.outbound.ssrf import ALLOW_HINT, TargetPolicy, blocked_hosts, check_target
from gateway.store import subscriptions as store
from gateway.store.db import Database

log = structlog.get_logger("callgate.subscriptions")


def signing_secrets(stored: Sequence[Mapping[str, Any]], now: datetime) -> list[str]:
    """The secrets that sign a delivery now: the current one and any rotated one not yet expired."""
    return [s["secret"] for s in stored if s.get("expires_at") is None or parse_ts(s["expires_at"]) > now]


def validate_event_types(event_types: Sequence[str]) -> list[str]:
    unknown = [t for t in event_types if not outbox.valid_filter(t)]
    if unknown:
        raise ValidationFailed(f"unknown event type {unknown[0]!r}", field="event_types")
    if not event_types:
        raise ValidationFailed("event_types must name at least one type (or call.*)", field="event_types")
    return list(dict.fromkeys(event_types))


async def create(
    db: Database,
    policy: TargetPolicy,
    now: datetime,
    *,
    tenant_id: str,
    url: str,
    event_types: Sequence[str],
    description: str = "",
    rate_limit_per_second: float | None = None,
    max_concurrency: int | None = None,
    enabled: bool = True,
) -> tuple[dict[str, Any], str]:
    event_types = validate_event_types(event_types)
    await check_target(policy, url)
    secret = new_whsec()
    row = {
        "id": new_id("sub"),
        "tenant_id": tenant_id,
        "url": url,
        "description": description,
        "event_types": event_types,
        "secrets": [{"secret": secret, "expires_at": None}],
        "enabled": enabled,
        "disabled_reason": None,
        "rate_limit_per_second": rate_limit_per_second,
        "max_concurrency": max_concurrency,
        "failing_since": None,
        "created_at": now,
        "updated_at": now,
        "deleted_at": None,
    }

    await db.run_write(lambda conn: store.insert_one(conn, row))
    return row, secret


def enabled_change(enabled: bool) -> dict[str, Any]:
    """What pausing or resuming a subscription sets: resumed by its owner, its failure streak starts over
    and the reason it was disabled goes (the API's PATCH and the console's buttons)."""
    if enabled:
        return {"enabled": True, "disabled_reason": None, "failing_since": None}
    return {"enabled": False}


def _locked(conn: Connection, tenant_id: str, subscription_id: str) -> RowMapping:
    return found(store.lock(conn, tenant_id, subscription_id), "subscription")


async def modify(db: Database, tenant_id: str, subscription_id: str, values: Mapping[str, Any]) -> RowMapping:
    def work(conn: Connection) -> RowMapping:
        _locked(conn, tenant_id, subscription_id)
        store.change(conn, subscription_id, values)
        return store.by_id(conn, subscription_id)

    return await db.run_write(work)


async def rotate(
    db: Database, tenant_id: str, subscription_id: str, now: datetime, grace_seconds: float
) -> tuple[RowMapping, str]:
    """A new current secret; the previous ones keep signing for ``grace_seconds`` (or their own expiry)."""
    secret = new_whsec()
    grace_end = format_ts(now + timedelta(seconds=grace_seconds))

    def work(conn: Connection) -> RowMapping:
        row = _locked(conn, tenant_id, subscription_id)
        kept = []
        for old in row["secrets"]:
            if old.get("expires_at") is None:
                kept.append({"secret": old["secret"], "expires_at": grace_end})
            elif parse_ts(old["expires_at"]) > now:
                kept.append(old)
        stored = [{"secret": secret, "expires_at": None}, *kept][:10]
        store.change(conn, subscription_id, {"secrets": stored, "updated_at": now})
        return _locked(conn, tenant_id, subscription_id)

    return await db.run_write(work), secret


async def warn_blocked_targets(db: Database, policy: TargetPolicy) -> dict[str, str]:
    """At start: endpoints with deliveries waiting that this process's SSRF policy now refuses (a loopback
    receiver from a test session, restarted without ``CALLGATE_ALLOWED_TARGET_CIDRS``). Their deliveries
    would retry as ``blocked`` until they die, so say so once, loudly, with the fix. Hosts only: a URL's
    path or query may hold a token."""
    async with db.reading() as conn:
        urls = await store.urls_with_pending(conn)
    refused = await blocked_hosts(policy, urls)
    if refused:
        log.warning(
            "blocked_targets",
            endpoints=len(refused),
            hosts=sorted(refused)[:5],
            reason=next(iter(refused.values())),
            fix=ALLOW_HINT,
        )
    return refused
