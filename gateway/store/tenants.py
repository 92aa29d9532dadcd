"""Tenants, API keys (stored as SHA-256 hashes) and the small key-value table."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import func, insert, select, update
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.store.tables import api_keys, kv, tenants


async def create_tenant(conn: AsyncConnection, tenant_id: str, name: str, now: datetime) -> None:
    await conn.execute(insert(tenants).values(id=tenant_id, name=name, created_at=now))


async def get_tenant(conn: AsyncConnection, tenant_id: str) -> RowMapping | None:
    return (await conn.execute(select(tenants).where(tenants.c.id == tenant_id))).mappings().first()


async def count_tenants(conn: AsyncConnection) -> int:
    return int((await conn.execute(select(func.count()).select_from(tenants))).scalar_one())


async def create_api_key(
    conn: AsyncConnection,
    *,
    key_id: str,
    tenant_id: str | None,
    name: str,
    key_hash: str,
    key_hint: str,
    now: datetime,
) -> None:
    await conn.execute(
        insert(api_keys).values(
            id=key_id,
            tenant_id=tenant_id,
            name=name,
            key_hash=key_hash,
            key_hint=key_hint,
            is_operator=tenant_id is None,
            created_at=now,
        )
    )


async def find_api_key(conn: AsyncConnection, key_hash: str) -> RowMapping | None:
    query = select(api_keys.c.id, api_keys.c.tenant_id, api_keys.c.is_operator).where(
        api_keys.c.key_hash == key_hash, api_keys.c.revoked_at.is_(None)
    )
    return (await conn.execute(query)).mappings().first()


async def get_kv(conn: AsyncConnection, key: str) -> str | None:
    return (await conn.execute(select(kv.c.value).where(kv.c.key == key))).scalar_one_or_none()


async def put_kv(conn: AsyncConnection, key: str, value: str) -> None:
    await conn.execute(insert(kv).values(key=key, value=value))


async def list_tenants(conn: AsyncConnection) -> Sequence[RowMapping]:
    """Every tenant, oldest first, with how many API keys it has that are not revoked."""
    active = (
        select(api_keys.c.tenant_id, func.count().label("active_keys"))
        .where(api_keys.c.revoked_at.is_(None))
        .group_by(api_keys.c.tenant_id)
        .subquery()
    )
    query = (
        select(tenants, func.coalesce(active.c.active_keys, 0).label("active_keys"))
        .outerjoin(active, active.c.tenant_id == tenants.c.id)
        .order_by(tenants.c.id)
    )
    return (await conn.execute(query)).mappings().all()


async def list_api_keys(
    conn: AsyncConnection, *, tenant_id: str | None, operator: bool
) -> Sequence[RowMapping]:
    """Keys without their hashes: a tenant's, the operators', or (neither given) all."""
    query = select(*[c for c in api_keys.c if c.name != "key_hash"]).order_by(api_keys.c.id)
    if tenant_id is not None:
        query = query.where(api_keys.c.tenant_id == tenant_id)
    elif operator:
        query = query.where(api_keys.c.tenant_id.is_(None))
    return (await conn.execute(query)).mappings().all()


async def get_api_key(conn: AsyncConnection, key_id: str) -> RowMapping | None:
    query = select(*[c for c in api_keys.c if c.name != "key_hash"]).where(api_keys.c.id == key_id)
    return (await conn.execute(query)).mappings().first()


async def revoke_api_key(conn: AsyncConnection, key_id: str, now: datetime) -> bool:
    """Revokes a key that is not revoked yet; False when there was none such."""
    result = await conn.execute(
        update(api_keys)
        .where(api_keys.c.id == key_id, api_keys.c.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    return bool(result.rowcount)
