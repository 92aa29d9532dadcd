"""Tenants, API keys (stored as SHA-256 hashes) and the small key-value table."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, insert, select
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
