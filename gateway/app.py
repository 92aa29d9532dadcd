"""The composition root: the only place that builds the parts and wires them together.

Every runtime object is built from ``Settings`` by one of the factories below (``database``, ``writer``,
``worker``, ``reparse``) - the server's lifespan, the CLI and the tests all use them, so a setting is
honoured everywhere or nowhere. This is also the only module that reads the adapter registry.
"""

from __future__ import annotations

import asyncio
import gc
import sys
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any

import httpx
from itsdangerous import URLSafeSerializer, URLSafeTimedSerializer
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware

from adapters.registry import INBOUND, OUTBOUND
from gateway import auth, logs
from gateway.api import (
    calls,
    connections,
    deliveries,
    docs,
    health,
    hooks,
    portal,
    quarantine,
    recordings,
    sources,
    stream,
    subscriptions,
    tenants,
)
from gateway.api.common import handle_callgate_error, handle_http_error
from gateway.clock import Clock, system_clock
from gateway.config import Settings
from gateway.connectors import ConnectorSpec
from gateway.console import routes as console
from gateway.errors import CallgateError
from gateway.inbound import InboundAdapter, Reparse
from gateway.ingest import reparser
from gateway.metrics import Metrics
from gateway.middleware import RequestContext
from gateway.outbound.crm import CrmRuntime
from gateway.outbound.retry import Policy
from gateway.outbound.sender import ProcessSender
from gateway.outbound.ssrf import GuardedTransport, TargetPolicy
from gateway.outbound.worker import Worker, WorkerConfig
from gateway.pull.hydrate import Hydrator
from gateway.pull.periodic import Reconciler
from gateway.pull.recordings import SALT as RECORDING_SALT
from gateway.pull.recordings import RecordingLinks
from gateway.services import Services
from gateway.sources import SourceCache
from gateway.store.db import Database, Writes
from gateway.store.migrate import upgrade_async
from gateway.subscriptions import warn_blocked_targets
from gateway.vault import Vault
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


def print_existing(tenants: Sequence[Mapping[Any, Any]]) -> None:
    """On a start with tenants already there: how to get a key again (keys are shown once, stored hashed)."""
    shown = ", ".join(f"{t['id']} ({t['name']})" for t in tenants[:3])
    more = f" and {len(tenants) - 3} more (callgate tenants list)" if len(tenants) > 3 else ""
    print(
        f"\n  callgate: {len(tenants)} tenant(s) exist: {shown}{more}.\n"
        "  Lost the key? Mint another (shown once): callgate keys create --tenant <id>\n",
        file=sys.stdout,
        flush=True,
    )


ADAPTERS: Mapping[str, InboundAdapter] = INBOUND
CONNECTORS: Mapping[str, ConnectorSpec] = OUTBOUND


def database(settings: Settings) -> Database:
    return Database.from_settings(settings)


def writer(settings: Settings, db: Database, metrics: Metrics | None = None) -> Writer:
    return Writer(
        db,
        max_batch=settings.writer_max_batch,
        on_batch=metrics.batch if metrics is not None else None,
        lanes=min(settings.writer_lanes, settings.db_pool_size),
    )


def targets(settings: Settings) -> TargetPolicy:
    """The SSRF policy for every outbound URL (subscriptions, CRM base URLs)."""
    return TargetPolicy.build(settings.allow_private_targets, settings.allowed_target_cidrs)


def worker_config(settings: Settings) -> WorkerConfig:
    return WorkerConfig(
        policy=Policy(
            schedule=tuple(settings.retry_schedule_seconds),
            jitter=settings.retry_jitter,
            throttle_floor=settings.throttle_floor_seconds,
            disable_after=settings.disable_after_seconds,
        ),
        targets=targets(settings),
        timeout=settings.delivery_timeout_seconds,
        lease_seconds=settings.worker_lease_seconds,
        batch=settings.worker_batch,
        concurrency=settings.worker_concurrency,
        poll_seconds=settings.worker_poll_seconds,
        crm_concurrency=settings.crm_concurrency,
        yield_seconds=settings.worker_yield_seconds,
    )


def vault(settings: Settings, secret: str) -> Vault:
    """CRM credentials' key: the configured one, or one derived from the gateway's secret."""
    return Vault(settings.credentials_key) if settings.credentials_key else Vault.from_secret(secret)


def recording_links(settings: Settings, secret: str) -> RecordingLinks:
    """The gateway's recording links (``/recordings/<token>``), as relayed to subscribers and CRMs."""
    serializer = URLSafeTimedSerializer(secret, salt=RECORDING_SALT)
    return RecordingLinks(serializer, settings.base_url, settings.recording_link_seconds)


def crm_runtime(
    settings: Settings,
    sealed: Vault,
    client: httpx.AsyncClient | None = None,
    links: RecordingLinks | None = None,
) -> CrmRuntime:
    """The CRM kinds, the key, and one HTTP client whose every request is checked against the SSRF policy."""
    client = client or httpx.AsyncClient(
        transport=GuardedTransport(targets(settings)),
        timeout=settings.crm_timeout_seconds,
        follow_redirects=False,
    )
    return CrmRuntime(CONNECTORS, sealed, client, contact_ttl=settings.crm_contact_cache_seconds, links=links)


def worker(
    settings: Settings,
    db: Database,
    clock: Clock,
    *,
    client: httpx.AsyncClient | None = None,
    crm: CrmRuntime | None = None,
    writes: Writes | None = None,
    metrics: Metrics | None = None,
    saturated: Callable[[], bool] | None = None,
) -> Worker:
    config = worker_config(settings)
    sender = (
        ProcessSender(timeout=config.timeout, connections=config.connections)
        if settings.delivery_process and client is None
        else None
    )
    return Worker(
        db,
        config,
        clock,
        client=client,
        crm=crm,
        writes=writes,
        metrics=metrics,
        sender=sender,
        saturated=saturated,
    )


def reconciler(
    settings: Settings,
    db: Database,
    writes: Writes,
    sealed: Vault,
    clock: Clock,
    links: RecordingLinks | None,
) -> Reconciler:
    """The periodic reconciliation of the sources with read-API settings (docs/pull.md)."""
    return Reconciler(
        db,
        writes,
        reparse(settings),
        sealed,
        targets(settings),
        clock,
        interval=settings.reconcile_seconds,
        window=settings.reconcile_window_seconds,
        links=links,
    )


def hydrator(
    settings: Settings,
    db: Database,
    writes: Writes,
    sealed: Vault,
    clock: Clock,
    links: RecordingLinks | None,
) -> Hydrator:
    """The pulls of the parts finished calls still lack (docs/pull.md)."""
    return Hydrator(
        db,
        writes,
        reparse(settings),
        sealed,
        targets(settings),
        clock,
        poll=settings.hydrate_poll_seconds,
        links=links,
    )


def reparse(settings: Settings, adapters: Mapping[str, InboundAdapter] = ADAPTERS) -> Reparse:
    return reparser(adapters, settings.default_region)


def settle_heap() -> None:
    """Startup is over: what it made (modules, adapters, compiled statements, pools) leaves the cyclic
    collector's reach for good (``gc.freeze``). A full collection otherwise walks those ~160k objects every
    few seconds under load, a 100 ms pause of the loop and the writer (measured with ``gc.callbacks`` at a
    fixed 536 webhooks/s: each pause was a 100-300 ms stall in the ack latency). For long-running
    processes only (``serve``, ``worker``), not for tests that build many apps."""
    gc.collect()
    gc.freeze()


def create_app(
    settings: Settings | None = None,
    *,
    clock: Clock = system_clock,
    adapters: Mapping[str, InboundAdapter] = ADAPTERS,
    on_bootstrap: BootstrapHook | None = print_bootstrap,
    on_existing: Callable[[Sequence[Mapping[Any, Any]]], None] | None = print_existing,
    configure_logging: bool = True,
    http_client: httpx.AsyncClient | None = None,
    freeze_heap: bool = False,
) -> Starlette:
    settings = settings or Settings()
    if configure_logging:
        logs.configure(settings.log_level, settings.log_format)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
        if settings.auto_migrate:
            await upgrade_async(settings.database_url)
        db = database(settings)
        metrics = Metrics()
        batch_writer = writer(settings, db, metrics)
        outbox_worker: Worker | None = None
        periodic: Reconciler | None = None
        hydration: Hydrator | None = None
        crm: CrmRuntime | None = None
        background: list[asyncio.Task[Any]] = []
        try:
            if settings.bootstrap_tenant:
                created = await auth.bootstrap(db, clock)
                if created is not None and on_bootstrap is not None:
                    on_bootstrap(created[0], created[1].api_key)
                elif created is None and on_existing is not None:
                    on_existing(await auth.list_tenants(db))
            secret = await auth.secret_key(db, settings.secret_key)
            links = recording_links(settings, secret)
            crm = crm_runtime(settings, vault(settings, secret), links=links)
            batch_writer.start()
            if settings.worker:
                outbox_worker = worker(
                    settings,
                    db,
                    clock,
                    client=http_client,
                    crm=crm,
                    writes=batch_writer,
                    metrics=metrics,
                    # webhooks queueing for the commit: the vendors' acknowledgements come first
                    saturated=lambda: batch_writer.ingest_waiting >= settings.worker_yield_waiting,
                )
                outbox_worker.start()
                background.append(asyncio.create_task(warn_blocked_targets(db, targets(settings))))
                if settings.reconcile_seconds:
                    periodic = reconciler(settings, db, batch_writer, crm.vault, clock, links)
                    periodic.start()
                if settings.hydrate_poll_seconds:
                    hydration = hydrator(settings, db, batch_writer, crm.vault, clock, links)
                    hydration.start()
            if freeze_heap:
                settle_heap()
            yield {
                "services": Services(
                    settings=settings,
                    db=db,
                    writer=batch_writer,
                    sources=SourceCache(db, adapters, clock, settings.source_cache_seconds),
                    adapters=adapters,
                    clock=clock,
                    reparse=reparse(settings, adapters),
                    cursors=URLSafeSerializer(secret, salt="callgate.cursor"),
                    portal=URLSafeTimedSerializer(secret, salt="callgate.portal"),
                    console=URLSafeTimedSerializer(secret, salt="callgate.console"),
                    recordings=links.serializer,
                    recording_links=links,
                    crm=crm,
                    targets=targets(settings),
                    worker=outbox_worker,
                    metrics=metrics,
                )
            }
        finally:
            for task in background:
                task.cancel()
            if periodic is not None:
                await periodic.stop()
            if hydration is not None:
                await hydration.stop()
            if outbox_worker is not None:
                await outbox_worker.stop()
            await batch_writer.stop()
            if crm is not None:
                await crm.client.aclose()
            await db.dispose()

    return Starlette(
        routes=[
            *hooks.routes,
            *calls.routes,
            *sources.routes,
            *subscriptions.routes,
            *deliveries.routes,
            *connections.routes,
            *quarantine.routes,
            *stream.routes,
            *portal.routes,
            *recordings.routes,
            *tenants.routes,
            *health.routes,
            *docs.routes,
            *console.routes,
        ],
        middleware=[Middleware(RequestContext)],
        exception_handlers={CallgateError: handle_callgate_error, HTTPException: handle_http_error},
        lifespan=lifespan,
    )
