"""The ``subscriptions`` table: customer endpoints, their secrets and their failure state."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import bindparam, func, insert, select, update
from sqlalchemy.engine import Connection, RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.store.db import forget, once_per_transaction
from gateway.store.tables import deliveries, subscriptions

_ACTIVE = select(
    subscriptions.c.id,
    subscriptions.c.event_types,
    subscriptions.c.url,
    subscriptions.c.secrets,
    subscriptions.c.rate_limit_per_second,
    subscriptions.c.max_concurrency,
    subscriptions.c.failing_since,
).where(
    subscriptions.c.tenant_id == bindparam("tenant_id"),
    subscriptions.c.enabled.is_(True),
    subscriptions.c.deleted_at.is_(None),
)


def _live(tenant_id: str, subscription_id: str) -> Any:
    return select(subscriptions).where(
        subscriptions.c.tenant_id == tenant_id,
        subscriptions.c.id == subscription_id,
        subscriptions.c.deleted_at.is_(None),
    )


def active_for_tenant(conn: Connection, tenant_id: str) -> Sequence[RowMapping]:
    """The ingest path's question: which enabled endpoints of this tenant may want a change.

    Asked once per tenant per transaction (a batch of webhooks reads it once); the writes below drop it."""
    return once_per_transaction(
        conn,
        ("subscriptions", tenant_id),
        lambda: conn.execute(_ACTIVE, {"tenant_id": tenant_id}).mappings().all(),
    )


def insert_one(conn: Connection, values: Mapping[str, Any]) -> None:
    forget(conn, "subscriptions")
    conn.execute(insert(subscriptions), dict(values))


def lock(conn: Connection, tenant_id: str, subscription_id: str) -> RowMapping | None:
    """The tenant's live subscription, locked for the rest of the transaction (PostgreSQL)."""
    return conn.execute(_live(tenant_id, subscription_id).with_for_update()).mappings().first()


def change(conn: Connection, subscription_id: str, values: Mapping[str, Any]) -> None:
    forget(conn, "subscriptions")
    conn.execute(update(subscriptions).where(subscriptions.c.id == subscription_id).values(**values))


def by_id(conn: Connection, subscription_id: str) -> RowMapping:
    """The row as it is now, deleted or not (what a change just wrote)."""
    return conn.execute(select(subscriptions).where(subscriptions.c.id == subscription_id)).mappings().one()


async def get(conn: AsyncConnection, tenant_id: str, subscription_id: str) -> RowMapping | None:
    return (await conn.execute(_live(tenant_id, subscription_id))).mappings().first()


async def list_for_tenant(conn: AsyncConnection, tenant_id: str) -> Sequence[RowMapping]:
    query = (
        select(subscriptions)
        .where(subscriptions.c.tenant_id == tenant_id, subscriptions.c.deleted_at.is_(None))
        .order_by(subscriptions.c.id)
    )
    return (await conn.execute(query)).mappings().all()


async def urls_with_pending(conn: AsyncConnection, limit: int = 500) -> list[str]:
    """The distinct URLs of enabled subscriptions that have deliveries waiting (every tenant's)."""
    waiting = select(deliveries.c.subscription_id).where(deliveries.c.status == "pending")
    query = (
        select(subscriptions.c.url)
        .where(
            subscriptions.c.enabled.is_(True),
            subscriptions.c.deleted_at.is_(None),
            subscriptions.c.id.in_(waiting),
        )
        .distinct()
        .limit(limit)
    )
    return [str(url) for url in (await conn.execute(query)).scalars()]


async def count_disabled(conn: AsyncConnection) -> int:
    query = select(func.count()).where(
        subscriptions.c.enabled.is_(False),
        subscriptions.c.disabled_reason.is_not(None),
        subscriptions.c.deleted_at.is_(None),
    )
    return int((await conn.execute(query)).scalar_one())
