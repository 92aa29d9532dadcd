"""Customer subscriptions: endpoints that receive signed ``call.*`` deliveries.

A subscription has a ``whsec_`` secret (32 random bytes, shown once). Rotating it makes a new current
secret and keeps the old one signing until it expires (24 h by default), so the receiver can verify either
while it switches. Secrets are never rendered after creation and never logged.
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.engine import Connection, RowMapping

from gateway import outbox
from gateway.errors import NotFound, ValidationFailed
from gateway.ids import new_id
from gateway.model import format_ts, parse_ts
from gateway.outbound.ssrf import BlockedTarget, TargetPolicy, check_url_shape, checked_address
from gateway.render import ts
from gateway.store import outbox as outbox_store
from gateway.store.db import Database
from gateway.store.tables import deliveries, subscriptions

SECRET_BYTES = 32


def new_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


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


async def check_target(policy: TargetPolicy, url: str) -> None:
    check_url_shape(url)
    try:
        await checked_address(policy, url)
    except BlockedTarget as exc:
        raise ValidationFailed(f"url refused: {exc}", field="url") from None


def render(row: Mapping[Any, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "url": row["url"],
        "description": row["description"],
        "event_types": row["event_types"],
        "enabled": row["enabled"],
        "disabled_reason": row["disabled_reason"],
        "rate_limit_per_second": row["rate_limit_per_second"],
        "max_concurrency": row["max_concurrency"],
        "failing_since": ts(row["failing_since"]),
        "secrets_active": len(row["secrets"]),
        "created_at": ts(row["created_at"]),
        "updated_at": ts(row["updated_at"]),
    }


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
    secret = new_secret()
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

    def work(conn: Connection) -> None:
        conn.execute(insert(subscriptions), row)

    await db.run_write(work)
    return row, secret


def _locked(conn: Connection, tenant_id: str, subscription_id: str) -> RowMapping:
    query = select(subscriptions).where(
        subscriptions.c.tenant_id == tenant_id,
        subscriptions.c.id == subscription_id,
        subscriptions.c.deleted_at.is_(None),
    )
    row = conn.execute(query.with_for_update()).mappings().first()
    if row is None:
        raise NotFound("no such subscription")
    return row


async def modify(db: Database, tenant_id: str, subscription_id: str, values: Mapping[str, Any]) -> RowMapping:
    def work(conn: Connection) -> RowMapping:
        _locked(conn, tenant_id, subscription_id)
        outbox_store.update_subscription(conn, subscription_id, values)
        query = select(subscriptions).where(subscriptions.c.id == subscription_id)
        return conn.execute(query).mappings().one()

    return await db.run_write(work)


async def rotate(
    db: Database, tenant_id: str, subscription_id: str, now: datetime, grace_seconds: float
) -> tuple[RowMapping, str]:
    """A new current secret; the previous ones keep signing for ``grace_seconds`` (or their own expiry)."""
    secret = new_secret()
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
        outbox_store.update_subscription(conn, subscription_id, {"secrets": stored, "updated_at": now})
        return _locked(conn, tenant_id, subscription_id)

    return await db.run_write(work), secret


async def send_test(db: Database, tenant_id: str, subscription_id: str, now: datetime) -> dict[str, Any]:
    row = outbox.ping_row(tenant_id, subscription_id, now)

    def work(conn: Connection) -> None:
        _locked(conn, tenant_id, subscription_id)
        outbox_store.insert_deliveries(conn, [row])

    await db.run_write(work)
    return row


async def recover(db: Database, tenant_id: str, subscription_id: str, since: datetime, now: datetime) -> int:
    """Dead deliveries of the endpoint created since ``since`` go back to pending, with a fresh schedule."""

    def work(conn: Connection) -> int:
        _locked(conn, tenant_id, subscription_id)
        result = conn.execute(
            update(deliveries)
            .where(
                deliveries.c.subscription_id == subscription_id,
                deliveries.c.status == "dead",
                deliveries.c.created_at >= since,
            )
            .values(status="pending", attempts=0, next_attempt_at=now, updated_at=now, completed_at=None)
        )
        return int(result.rowcount)

    return await db.run_write(work)


async def retry_delivery(db: Database, tenant_id: str, delivery_id: str, now: datetime) -> None:
    """One delivery, now: a dead or succeeded one is sent again on a fresh schedule; a pending one is due."""

    def work(conn: Connection) -> None:
        result = conn.execute(
            update(deliveries)
            .where(deliveries.c.tenant_id == tenant_id, deliveries.c.id == delivery_id)
            .values(status="pending", attempts=0, next_attempt_at=now, updated_at=now, completed_at=None)
        )
        if not result.rowcount:
            raise NotFound("no such delivery")

    await db.run_write(work)
