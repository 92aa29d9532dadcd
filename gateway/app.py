"""The composition root: the only place that builds the parts and wires them together."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any

import httpx
from itsdangerous import URLSafeSerializer
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware

from adapters.base import Headers, InboundAdapter, ParsedEvent
from adapters.registry import INBOUND
from gateway import admin, logs
from gateway.api import admin as admin_api
from gateway.api import calls, deliveries, health, hooks, sources, subscriptions
from gateway.api.common import handle_callgate_error, handle_http_error
from gateway.clock import Clock, system_clock
from gateway.config import Settings
from gateway.errors import CallgateError
from gateway.ingest import prepare
from gateway.middleware import RequestContext
from gateway.outbound.worker import Worker, WorkerConfig
from gateway.services import Services
from gateway.sources import SourceCache
from gateway.store.db import Database
from gateway.store.migrate import upgrade_async
from gateway.writer import Writer

BootstrapHook = Callable[[str, str], None]


def print_bootstrap(tenant_id: str, api_key: str) -> None:
    """Shown once, on the console, never in the logs."""
    print(
        "\n  callgate: created tenant " + tenant_id + " on an empty database.\n"
        "  Its API key (shown only this once, stored hashed):\n\n"
        "    " + api_key + "\n\n"
        "  export CALLGATE_API_KEY=" + api_key + "\n",
        file=sys.stdout,
        flush=True,
    )


def make_reparse(
    adapters: Mapping[str, InboundAdapter], region: str
) -> Callable[[str, Headers, bytes], ParsedEvent]:
    def reparse(vendor: str, headers: Headers, body: bytes) -> ParsedEvent:
        return prepare(adapters[vendor].parse(headers, body), region)

    return reparse


def create_app(
    settings: Settings | None = None,
    *,
    clock: Clock = system_clock,
    adapters: Mapping[str, InboundAdapter] = INBOUND,
    on_bootstrap: BootstrapHook | None = print_bootstrap,
    configure_logging: bool = True,
    http_client: httpx.AsyncClient | None = None,
) -> Starlette:
    settings = settings or Settings()
    if configure_logging:
        logs.configure(settings.log_level, settings.log_format)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
        if settings.auto_migrate:
            await upgrade_async(settings.database_url)
        db = Database(
            settings.database_url, pool_size=settings.db_pool_size, synchronous=settings.sqlite_synchronous
        )
        writer = Writer(db, max_batch=settings.writer_max_batch)
        worker: Worker | None = None
        try:
            if settings.bootstrap_tenant:
                created = await admin.bootstrap(db, clock)
                if created is not None and on_bootstrap is not None:
                    on_bootstrap(created[0], created[1].api_key)
            secret = await admin.secret_key(db, settings.secret_key)
            writer.start()
            config = WorkerConfig.from_settings(settings)
            if settings.worker:
                worker = Worker(db, config, clock, client=http_client)
                worker.start()
            yield {
                "services": Services(
                    settings=settings,
                    db=db,
                    writer=writer,
                    sources=SourceCache(db, adapters, clock, settings.source_cache_seconds),
                    adapters=adapters,
                    clock=clock,
                    reparse=make_reparse(adapters, settings.default_region),
                    cursors=URLSafeSerializer(secret, salt="callgate.cursor"),
                    targets=config.targets,
                    worker=worker,
                )
            }
        finally:
            if worker is not None:
                await worker.stop()
            await writer.stop()
            await db.dispose()

    return Starlette(
        routes=[
            *hooks.routes,
            *calls.routes,
            *sources.routes,
            *subscriptions.routes,
            *deliveries.routes,
            *admin_api.routes,
            *health.routes,
        ],
        middleware=[Middleware(RequestContext)],
        exception_handlers={CallgateError: handle_callgate_error, HTTPException: handle_http_error},
        lifespan=lifespan,
    )
