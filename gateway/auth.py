"""Tenants, API keys and authentication: who is calling, shared by the HTTP API and the CLI."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.clock import Clock
from gateway.errors import NotFound, Unauthorized
from gateway.ids import hash_api_key, new_api_key, new_id
from gateway.store import tenants as store
from gateway.store.db import Database


@dataclass(frozen=True, slots=True)
class Principal:
    key_id: str
    tenant_id: str | None
    is_operator: bool


@dataclass(frozen=True, slots=True)
class IssuedKey:
    key_id: str
    tenant_id: str | None
    api_key: str


async def create_tenant(db: Database, name: str, clock: Clock) -> tuple[str, IssuedKey]:
    tenant_id = new_id("ten")
    async with db.writing() as conn:
        await store.create_tenant(conn, tenant_id, name, clock())
        key = await _issue(conn, tenant_id, "default", clock)
    return tenant_id, key


async def create_api_key(db: Database, tenant_id: str | None, name: str, clock: Clock) -> IssuedKey:
    async with db.writing() as conn:
        if tenant_id is not None and await store.get_tenant(conn, tenant_id) is None:
            raise NotFound("no such tenant", field="tenant_id")
        return await _issue(conn, tenant_id, name, clock)


async def _issue(conn: AsyncConnection, tenant_id: str | None, name: str, clock: Clock) -> IssuedKey:
    key = new_api_key()
    key_id = new_id("key")
    await store.create_api_key(
        conn,
        key_id=key_id,
        tenant_id=tenant_id,
        name=name,
        key_hash=hash_api_key(key),
        key_hint=key[-4:],
        now=clock(),
    )
    return IssuedKey(key_id, tenant_id, key)


async def list_tenants(db: Database) -> Sequence[RowMapping]:
    async with db.reading() as conn:
        return await store.list_tenants(conn)


async def require_tenant(db: Database, tenant_id: str) -> None:
    """``NotFound`` for a tenant that does not exist (the CLI's ``--tenant`` is checked once, here)."""
    async with db.reading() as conn:
        if await store.get_tenant(conn, tenant_id) is None:
            raise NotFound(f"no such tenant {tenant_id}", field="tenant_id")


async def list_api_keys(
    db: Database, *, tenant_id: str | None = None, operator: bool = False
) -> Sequence[RowMapping]:
    if tenant_id is not None:
        await require_tenant(db, tenant_id)
    async with db.reading() as conn:
        return await store.list_api_keys(conn, tenant_id=tenant_id, operator=operator)


async def revoke_api_key(db: Database, key_id: str, clock: Clock) -> tuple[RowMapping, bool]:
    """(the key, whether this call revoked it: False when it was revoked already). Unknown: ``NotFound``."""
    async with db.writing() as conn:
        row = await store.get_api_key(conn, key_id)
        if row is None:
            raise NotFound(f"no such API key {key_id}", field="key_id")
        revoked = await store.revoke_api_key(conn, key_id, clock())
        return (await store.get_api_key(conn, key_id) or row), revoked


async def bootstrap(db: Database, clock: Clock) -> tuple[str, IssuedKey] | None:
    """On an empty database: a first tenant and its key (shown once by the caller)."""
    async with db.reading() as conn:
        if await store.count_tenants(conn) > 0:
            return None
    return await create_tenant(db, "default", clock)


async def authenticate(db: Database, authorization: str | None) -> Principal:
    if not authorization or authorization[:7].lower() != "bearer ":
        raise Unauthorized("send Authorization: Bearer <api key>")
    return await authenticate_key(db, authorization[7:].strip())


async def authenticate_key(db: Database, key: str) -> Principal:
    """The principal of an API key as given (the header's, or the console's sign-in form's)."""
    async with db.reading() as conn:
        row = await store.find_api_key(conn, hash_api_key(key))
    if row is None:
        raise Unauthorized("unknown or revoked API key")
    return Principal(row["id"], row["tenant_id"], bool(row["is_operator"]))


async def principal_of_key(db: Database, key_id: str) -> Principal:
    """The principal of a key named by its id, if it still exists and is not revoked: a console session
    names its key (never holds it) and is checked with this on every request."""
    async with db.reading() as conn:
        row = await store.get_api_key(conn, key_id)
    if row is None or row["revoked_at"] is not None:
        raise Unauthorized("unknown or revoked API key")
    return Principal(row["id"], row["tenant_id"], bool(row["is_operator"]))


async def secret_key(db: Database, configured: str | None) -> str:
    """The key that signs cursors: configured, or generated once and kept in the database."""
    if configured:
        return configured
    async with db.writing() as conn:
        value = await store.get_kv(conn, "secret_key")
        if value is None:
            value = secrets.token_urlsafe(32)
            await store.put_kv(conn, "secret_key", value)
    return value
