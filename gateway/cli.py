"""``callgate``: serve, migrate, administer tenants, keys and sources, replay events, run the demo.

Every command that prints data takes ``--json`` and then prints exactly one JSON document on stdout.
Administrative commands talk to the database named by ``CALLGATE_DATABASE_URL`` directly: they are for
the operator on the host; remote clients use the HTTP API.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Any

from gateway import app as root
from gateway import auth, edge, logs, render, when
from gateway import sources as source_service
from gateway.clock import system_clock
from gateway.config import Settings
from gateway.errors import CallgateError, found
from gateway.model import Direction, Status
from gateway.outbound.crm import CrmRuntime
from gateway.phones import to_e164
from gateway.store.db import Database
from gateway.store.migrate import upgrade, upgrade_async


def _emit(args: argparse.Namespace, payload: Any, human: str) -> None:
    if args.json:
        print(json.dumps(payload, indent=2, sort_keys=False))
    else:
        print(human)


async def _with_db(settings: Settings, work: Callable[[Database], Awaitable[Any]]) -> Any:
    if settings.auto_migrate:
        await upgrade_async(settings.database_url)
    db = root.database(settings)
    try:
        return await work(db)
    finally:
        await db.dispose()


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn

    if args.host:
        settings.host = args.host
    if args.port:
        settings.port = args.port
    base = f"http://{settings.host}:{settings.port}"
    print(f"callgate serving on {base} ({_db_label(settings)})", flush=True)
    print(f"  web console {base}/console · API reference {base}/docs", flush=True)
    uvicorn.run(
        root.create_app(settings, freeze_heap=True),
        host=settings.host,
        port=settings.port,
        log_level="warning",
        access_log=False,
        proxy_headers=True,
        **edge.uvicorn_options(settings),
    )
    return 0


def _db_label(settings: Settings) -> str:
    return "SQLite " + settings.database_url.split("///", 1)[-1] if settings.is_sqlite else "PostgreSQL"


def cmd_migrate(args: argparse.Namespace, settings: Settings) -> int:
    upgrade(settings.database_url)
    _emit(
        args, {"database": _db_label(settings), "revision": "head"}, f"migrated {_db_label(settings)} to head"
    )
    return 0


def cmd_tenants_create(args: argparse.Namespace, settings: Settings) -> int:
    async def work(db: Database) -> tuple[str, auth.IssuedKey]:
        return await auth.create_tenant(db, args.name, system_clock)

    tenant_id, key = asyncio.run(_with_db(settings, work))
    _emit(
        args,
        {"tenant_id": tenant_id, "name": args.name, "api_key": key.api_key},
        f"tenant {tenant_id} ({args.name})\napi key (shown once): {key.api_key}",
    )
    return 0


def cmd_keys_create(args: argparse.Namespace, settings: Settings) -> int:
    if bool(args.tenant) == bool(args.operator):
        raise CallgateError("give exactly one of --tenant ID or --operator")

    async def work(db: Database) -> auth.IssuedKey:
        return await auth.create_api_key(db, args.tenant, args.name, system_clock)

    key = asyncio.run(_with_db(settings, work))
    _emit(
        args,
        {
            "id": key.key_id,
            "tenant_id": key.tenant_id,
            "operator": key.tenant_id is None,
            "api_key": key.api_key,
        },
        f"key {key.key_id} for {key.tenant_id or 'operators'}\napi key (shown once): {key.api_key}",
    )
    return 0


def cmd_tenants_list(args: argparse.Namespace, settings: Settings) -> int:
    rows = asyncio.run(_with_db(settings, auth.list_tenants))
    shown = [
        {
            "id": r["id"],
            "name": r["name"],
            "created_at": render.ts(r["created_at"]),
            "active_keys": r["active_keys"],
        }
        for r in rows
    ]
    lines = [f"{t['id']}  {t['active_keys']} active keys  {t['name']}" for t in shown]
    human = "\n".join(lines) or "no tenants (callgate tenants create NAME makes one)"
    _emit(args, {"data": shown}, human)
    return 0


def cmd_keys_list(args: argparse.Namespace, settings: Settings) -> int:
    async def work(db: Database) -> Any:
        return await auth.list_api_keys(db, tenant_id=args.tenant, operator=args.operator)

    shown = [render.api_key(r) for r in asyncio.run(_with_db(settings, work))]
    lines = [
        f"{k['id']}  …{k['key_hint']}  {k['tenant_id'] or 'operator':<32} "
        f"{'revoked ' + k['revoked_at'] if k['revoked_at'] else 'active'}  {k['name']}"
        for k in shown
    ]
    _emit(args, {"data": shown}, "\n".join(lines) or "no keys")
    return 0


def cmd_keys_revoke(args: argparse.Namespace, settings: Settings) -> int:
    async def work(db: Database) -> Any:
        return await auth.revoke_api_key(db, args.key_id, system_clock)

    row, revoked = asyncio.run(_with_db(settings, work))
    shown = {**render.api_key(row), "revoked_now": revoked}
    human = f"key {row['id']} revoked" if revoked else f"key {row['id']} was already revoked"
    _emit(args, shown, human)
    return 0


def cmd_sources_create(args: argparse.Namespace, settings: Settings) -> int:
    verification = json.loads(args.verification) if args.verification else None

    async def work(db: Database) -> dict[str, Any]:
        row, generated, api_key = await source_service.create(
            db,
            root.ADAPTERS,
            system_clock,
            tenant_id=args.tenant,
            name=args.name or f"{args.vendor} source",
            vendor=args.vendor,
            verification=verification,
        )
        shown = render.source(row, settings.base_url)
        if generated is not None:
            shown["secret"] = generated
        if api_key is not None:
            shown["api_key"] = api_key
        return shown

    shown = asyncio.run(_with_db(settings, work))
    human = f"source {shown['id']} ({shown['vendor']})\nhook url: {shown['hook_url']}"
    if "secret" in shown:
        human += f"\nsecret (shown once): {shown['secret']}"
    if "api_key" in shown:
        human += f"\nLiveKit API key: {shown['api_key']}"
    _emit(args, shown, human)
    return 0


def cmd_sources_list(args: argparse.Namespace, settings: Settings) -> int:
    async def work(db: Database) -> list[dict[str, Any]]:
        rows = await source_service.list_for_tenant(db, args.tenant)
        return [render.source(r, settings.base_url) for r in rows]

    shown = asyncio.run(_with_db(settings, work))
    lines = [f"{s['id']}  {s['vendor']:<11} {'on ' if s['enabled'] else 'off'}  {s['name']}" for s in shown]
    _emit(args, {"data": shown}, "\n".join(lines) or "no sources")
    return 0


def parse_when(raw: str, flag: str = "--since") -> datetime:
    """A time or an age (``6h``) as every command reads it: ``gateway.when``, as the API does."""
    try:
        return when.parse_when(raw, system_clock())
    except ValueError as exc:
        raise CallgateError(f"{flag} {raw!r} {exc}", field=flag.lstrip("-")) from None


def cmd_replay(args: argparse.Namespace, settings: Settings) -> int:
    from gateway.replay import replay

    since = parse_when(args.since) if args.since else None
    reparse = root.reparse(settings)

    async def work(db: Database) -> dict[str, Any]:
        links = root.recording_links(settings, await auth.secret_key(db, settings.secret_key))
        summary = await replay(
            db,
            reparse,
            system_clock,
            source_id=args.source,
            since=since,
            quarantined=args.quarantined,
            links=links,
        )
        return summary.as_json()

    result = asyncio.run(_with_db(settings, work))
    human = (
        f"replayed {result['events']} raw events ({result['unreadable']} still unreadable): "
        f"{result['calls_created']} calls created, {result['calls_changed']} changed, "
        f"{result['calls_unchanged']} unchanged, {result['calls_skipped']} left alone"
    )
    if args.quarantined:
        human += (
            f"\nquarantine: {result['quarantined']} examined, {result['recovered']} recovered, "
            f"{result['still_unreadable']} still unreadable"
        )
    _emit(args, result, human)
    return 0


def cmd_reconcile(args: argparse.Namespace, settings: Settings) -> int:
    import httpx

    from gateway.outbound.ssrf import GuardedTransport
    from gateway.pull.base import Window
    from gateway.pull.service import reconcile_source
    from gateway.store import sources as source_store

    since = parse_when(args.since)
    until = parse_when(args.until, "--until") if args.until else system_clock()
    if since > until:
        raise CallgateError("--since is after --until", field="since")
    reparse = root.reparse(settings)

    async def work(db: Database) -> dict[str, Any]:
        async with db.reading() as conn:
            source = found(await source_store.get_active(conn, args.source), "source")
        secret = await auth.secret_key(db, settings.secret_key)
        vault, links = root.vault(settings, secret), root.recording_links(settings, secret)
        transport = GuardedTransport(root.targets(settings))  # the vendor's host is checked on every request
        async with httpx.AsyncClient(transport=transport, timeout=30, follow_redirects=False) as http:
            window = Window(since, until)
            report = await reconcile_source(
                db, reparse, vault, http, source, window, system_clock, links=links
            )
        return report.as_json()

    result = asyncio.run(_with_db(settings, work))
    human = (
        f"{result['source_id']} ({result['vendor']}), {result['since']} .. {result['until']}: "
        f"{result['listed']} listed ({result['pages']} page(s)): {result['calls_created']} created, "
        f"{result['calls_changed']} caught up, {result['duplicates'] + result['unchanged']} already so"
        + (f", {result['unreadable']} unreadable" if result["unreadable"] else "")
    )
    _emit(args, result, human)
    return 0


def _call_filters(args: argparse.Namespace, settings: Settings) -> dict[str, Any]:
    number = args.number
    if number:
        number = to_e164(number, settings.default_region)
        if number is None:
            raise CallgateError(f"--number {args.number!r} is not a phone number", field="number")
    return {
        "status": args.status,
        "direction": args.direction,
        "vendor": args.vendor,
        "number": number,
        "since": parse_when(args.since) if args.since else None,
        "until": parse_when(args.until, "--until") if args.until else None,
    }


def cmd_calls_list(args: argparse.Namespace, settings: Settings) -> int:
    from gateway.store import calls as call_store

    if not 1 <= args.limit <= 200:
        raise CallgateError("--limit must be 1-200", field="limit")
    filters = _call_filters(args, settings)

    async def work(db: Database) -> list[dict[str, Any]]:
        async with db.reading() as conn:
            rows = await call_store.list_calls(conn, args.tenant, **filters, limit=args.limit)
        return [render.call(r) for r in rows]

    shown = asyncio.run(_with_db(settings, work))
    lines = [
        f"{c['id']}  {c['status'] or '-':<11} {c['direction'] or '-':<8} {c['vendor']:<10} "
        f"{c['from_number'] or '-'} -> {c['to_number'] or '-'}  {c['started_at'] or '-'}  "
        f"{c['duration_seconds'] if c['duration_seconds'] is not None else '-'}s"
        for c in shown
    ]
    _emit(args, {"data": shown}, "\n".join(lines) or "no calls")
    return 0


async def _call(db: Database, tenant_id: str, call_id: str) -> Any:
    from gateway.store import calls as call_store

    async with db.reading() as conn:
        return found(await call_store.get_call(conn, tenant_id, call_id), "call")


def cmd_calls_show(args: argparse.Namespace, settings: Settings) -> int:
    async def work(db: Database) -> dict[str, Any]:
        return render.call(await _call(db, args.tenant, args.call_id))

    shown = asyncio.run(_with_db(settings, work))
    wide = max(len(k) for k in shown)
    lines = [
        f"{key:<{wide}}  {json.dumps(value, ensure_ascii=False) if isinstance(value, dict | list) else value}"
        for key, value in shown.items()
        if value not in (None, {}, [])
    ]
    _emit(args, shown, "\n".join(lines))
    return 0


def cmd_calls_events(args: argparse.Namespace, settings: Settings) -> int:
    from gateway.store import calls as call_store

    async def work(db: Database) -> list[dict[str, Any]]:
        await _call(db, args.tenant, args.call_id)
        async with db.reading() as conn:
            rows = await call_store.list_call_events(conn, args.tenant, args.call_id)
        return [render.call_event(r) for r in rows]

    shown = asyncio.run(_with_db(settings, work))
    lines = [
        f"{e['received_at']}  v{e['version']:<3} {e['event_type']:<28} {e['status'] or '-':<11} "
        f"{','.join(e['types']) or '-'}"
        for e in shown
    ]
    _emit(args, {"data": shown}, "\n".join(lines) or "no events")
    return 0


def cmd_quarantine_list(args: argparse.Namespace, settings: Settings) -> int:
    from gateway.store import events as event_store

    async def work(db: Database) -> list[dict[str, Any]]:
        resolved = {"open": False, "resolved": True}.get(args.status or "")
        async with db.reading() as conn:
            rows = await event_store.list_quarantine(
                conn, args.tenant, source_id=args.source, resolved=resolved, before_id=None, limit=args.limit
            )
        return [render.quarantined(r) for r in rows]

    shown = asyncio.run(_with_db(settings, work))
    lines = [f"{q['id']}  {q['status']:<8} {q['vendor']:<10} {q['received_at']}  {q['error']}" for q in shown]
    _emit(args, {"data": shown}, "\n".join(lines) or "nothing quarantined")
    return 0


def cmd_quarantine_replay(args: argparse.Namespace, settings: Settings) -> int:
    from gateway.replay import replay_quarantined

    reparse = root.reparse(settings)

    async def work(db: Database) -> dict[str, Any]:
        links = root.recording_links(settings, await auth.secret_key(db, settings.secret_key))
        summary, reason = await replay_quarantined(
            db, reparse, system_clock, args.tenant, args.quarantine_id, links
        )
        status = (
            "recovered" if summary.recovered else "unreadable" if summary.still_unreadable else "resolved"
        )
        calls = [{"id": c.call_id, "version": c.version, "status": c.status} for c in summary.changes]
        return {"id": args.quarantine_id, "status": status, "calls": calls, "error": reason}

    shown = asyncio.run(_with_db(settings, work))
    human = f"{shown['id']}: {shown['status']}" + (f" ({shown['error']})" if shown["error"] else "")
    _emit(args, shown, human)
    return 0 if shown["status"] != "unreadable" else 1


def cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    import httpx

    from gateway.demo import run_demo, summary_lines

    api_key = args.api_key or os.environ.get("CALLGATE_API_KEY")
    if not api_key:
        raise CallgateError("give --api-key or set CALLGATE_API_KEY (make run prints a key on first start)")
    url = (args.url or settings.base_url).rstrip("/")
    headers = {"authorization": f"Bearer {api_key}"}
    try:
        with httpx.Client(base_url=url, headers=headers, timeout=15) as client:
            result = run_demo(client, root.ADAPTERS, state=args.state)
    except httpx.TransportError as exc:
        raise CallgateError(f"cannot reach the gateway at {url}: {exc}") from None
    _emit(args, result, "\n".join(summary_lines(result)))
    return 0


def cmd_worker(args: argparse.Namespace, settings: Settings) -> int:
    """The outbox worker alone (no HTTP), until SIGTERM or SIGINT; then it finishes or releases its rows."""
    import signal

    async def run(db: Database) -> None:
        crm = await _crm(db, settings)
        batches = root.writer(settings, db)  # attempt results of concurrent deliveries share a commit
        batches.start()
        worker = root.worker(settings, db, system_clock, crm=crm, writes=batches)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        worker.start()
        periodic = root.reconciler(settings, db, batches, crm.vault, system_clock, crm.links)
        if settings.reconcile_seconds:
            periodic.start()
        hydration = root.hydrator(settings, db, batches, crm.vault, system_clock, crm.links)
        if settings.hydrate_poll_seconds:
            hydration.start()
        print(f"callgate worker {worker.owner} running ({_db_label(settings)})", flush=True)
        root.settle_heap()
        await stop.wait()
        await periodic.stop()
        await hydration.stop()
        await worker.stop()
        await batches.stop()
        await crm.client.aclose()

    asyncio.run(_with_db(settings, run))
    return 0


def cmd_subscriptions_create(args: argparse.Namespace, settings: Settings) -> int:
    from gateway import subscriptions as service

    targets = root.targets(settings)

    async def work(db: Database) -> dict[str, Any]:
        row, secret = await service.create(
            db,
            targets,
            system_clock(),
            tenant_id=args.tenant,
            url=args.url,
            event_types=args.event_type or ["call.*"],
            description=args.description,
        )
        return {**render.subscription(row), "secret": secret}

    shown = asyncio.run(_with_db(settings, work))
    human = f"subscription {shown['id']} -> {shown['url']}\nsecret (shown once): {shown['secret']}"
    _emit(args, shown, human)
    return 0


def cmd_subscriptions_list(args: argparse.Namespace, settings: Settings) -> int:
    from gateway.store import subscriptions as subscription_store

    async def work(db: Database) -> list[dict[str, Any]]:
        async with db.reading() as conn:
            rows = await subscription_store.list_for_tenant(conn, args.tenant)
        return [render.subscription(r) for r in rows]

    shown = asyncio.run(_with_db(settings, work))
    lines = [
        f"{s['id']}  {'on ' if s['enabled'] else 'off'}  {s['url']}  {','.join(s['event_types'])}"
        + (f"  ({s['disabled_reason']})" if s["disabled_reason"] else "")
        for s in shown
    ]
    _emit(args, {"data": shown}, "\n".join(lines) or "no subscriptions")
    return 0


def cmd_deliveries_list(args: argparse.Namespace, settings: Settings) -> int:
    from gateway.store import deliveries as delivery_store

    async def work(db: Database) -> list[dict[str, Any]]:
        async with db.reading() as conn:
            rows = await delivery_store.list_deliveries(
                conn,
                args.tenant,
                subscription_id=args.subscription,
                status=args.status,
                call_id=args.call,
                limit=args.limit,
            )
        return [render.delivery(r) for r in rows]

    shown = asyncio.run(_with_db(settings, work))
    lines = [
        f"{d['id']}  {d['status']:<9} {d['event_type']:<22} attempts={d['attempts']} "
        f"last={d['last_status_code'] or d['last_error'] or '-'}"
        for d in shown
    ]
    _emit(args, {"data": shown}, "\n".join(lines) or "no deliveries")
    return 0


def cmd_deliveries_retry(args: argparse.Namespace, settings: Settings) -> int:
    from gateway import outbox

    async def work(db: Database) -> None:
        await outbox.retry(db, args.tenant, args.delivery_id, system_clock())

    asyncio.run(_with_db(settings, work))
    _emit(args, {"id": args.delivery_id, "status": "pending"}, f"delivery {args.delivery_id} queued again")
    return 0


async def _crm(db: Database, settings: Settings) -> CrmRuntime:
    secret = await auth.secret_key(db, settings.secret_key)
    links = root.recording_links(settings, secret)
    return root.crm_runtime(settings, root.vault(settings, secret), links=links)


def cmd_connections_create(args: argparse.Namespace, settings: Settings) -> int:
    from gateway import connections as service

    credentials = json.loads(args.credentials)
    options = json.loads(args.options) if args.options else {}

    async def work(db: Database) -> dict[str, Any]:
        crm = await _crm(db, settings)
        try:
            row = await service.create(
                db,
                crm.specs,
                crm.vault,
                root.targets(settings),
                system_clock(),
                tenant_id=args.tenant,
                kind=args.kind,
                name=args.name,
                base_url=args.base_url,
                credentials=credentials if isinstance(credentials, dict) else {},
                options=options if isinstance(options, dict) else {},
            )
        finally:
            await crm.client.aclose()
        return render.connection(row)

    shown = asyncio.run(_with_db(settings, work))
    _emit(args, shown, f"connection {shown['id']} ({shown['kind']}) -> {shown['base_url']}")
    return 0


def cmd_connections_list(args: argparse.Namespace, settings: Settings) -> int:
    from gateway import connections as service

    async def work(db: Database) -> list[dict[str, Any]]:
        rows = await service.list_for_tenant(db, args.tenant, before_id=None, limit=200)
        return [render.connection(r) for r in rows]

    shown = asyncio.run(_with_db(settings, work))
    lines = [f"{c['id']}  {c['kind']:<10} {c['state']:<11} {c['base_url']}  {c['name']}" for c in shown]
    _emit(args, {"data": shown}, "\n".join(lines) or "no connections")
    return 0


def cmd_connections_test(args: argparse.Namespace, settings: Settings) -> int:
    from gateway import connections as service

    async def work(db: Database) -> dict[str, Any]:
        crm = await _crm(db, settings)
        try:
            return await service.test(db, crm, args.tenant, args.connection_id)
        finally:
            await crm.client.aclose()

    result = asyncio.run(_with_db(settings, work))
    human = "ok" if result["ok"] else f"failed: {result['error']['code']}: {result['error']['message']}"
    _emit(args, result, human)
    return 0 if result["ok"] else 1


def cmd_connections_resync(args: argparse.Namespace, settings: Settings) -> int:
    from gateway import outbox

    since = parse_when(args.since)

    async def work(db: Database) -> int:
        return await outbox.resync(db, args.tenant, args.connection_id, since, system_clock())

    count = asyncio.run(_with_db(settings, work))
    _emit(args, {"queued": count}, f"{count} calls queued for a resync")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="callgate", description=__doc__.splitlines()[0] if __doc__ else None
    )
    commands = parser.add_subparsers(dest="command", required=True)

    def command(sub: Any, name: str, handler: Callable[..., int], help_text: str) -> argparse.ArgumentParser:
        p: argparse.ArgumentParser = sub.add_parser(name, help=help_text)
        p.add_argument("--json", action="store_true", help="print one JSON document")
        p.set_defaults(handler=handler)
        return p

    serve = command(commands, "serve", cmd_serve, "run the gateway (HTTP API and webhook intake)")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    command(commands, "migrate", cmd_migrate, "upgrade the database schema to the latest revision")

    tenants = commands.add_parser("tenants", help="tenants").add_subparsers(dest="action", required=True)
    command(tenants, "create", cmd_tenants_create, "create a tenant and its first API key").add_argument(
        "name"
    )
    command(tenants, "list", cmd_tenants_list, "list tenants, with how many active keys each has")

    keys = commands.add_parser("keys", help="API keys").add_subparsers(dest="action", required=True)
    create_key = command(keys, "create", cmd_keys_create, "create an API key")
    create_key.add_argument("--tenant", help="tenant id (a tenant key)")
    create_key.add_argument("--operator", action="store_true", help="an operator key (manages tenants)")
    create_key.add_argument("--name", default="cli")
    list_keys = command(keys, "list", cmd_keys_list, "list API keys (never the keys themselves)")
    which = list_keys.add_mutually_exclusive_group()
    which.add_argument("--tenant", help="only this tenant's keys")
    which.add_argument("--operator", action="store_true", help="only operator keys")
    command(keys, "revoke", cmd_keys_revoke, "revoke an API key at once").add_argument("key_id")

    sources = commands.add_parser("sources", help="inbound sources").add_subparsers(
        dest="action", required=True
    )
    create_source = command(sources, "create", cmd_sources_create, "create a source (one webhook URL)")
    create_source.add_argument("--tenant", required=True)
    create_source.add_argument("--vendor", required=True, choices=sorted(root.ADAPTERS))
    create_source.add_argument("--name")
    create_source.add_argument("--verification", help="verification settings as JSON (default: the vendor's)")
    command(sources, "list", cmd_sources_list, "list a tenant's sources").add_argument(
        "--tenant", required=True
    )

    command(commands, "worker", cmd_worker, "run the outbox worker alone (no HTTP)")

    calls = commands.add_parser("calls", help="read calls").add_subparsers(dest="action", required=True)
    list_calls = command(calls, "list", cmd_calls_list, "list a tenant's calls, newest first")
    list_calls.add_argument("--tenant", required=True)
    list_calls.add_argument("--status", choices=[s.value for s in Status])
    list_calls.add_argument("--direction", choices=[d.value for d in Direction])
    list_calls.add_argument("--vendor", choices=sorted(root.ADAPTERS))
    list_calls.add_argument("--number", help="either end, any notation; normalized to E.164")
    list_calls.add_argument("--since", help="created since: ISO-8601 time, epoch, or an age (6h, 7d)")
    list_calls.add_argument("--until", help="created before: ISO-8601 time, epoch, or an age")
    list_calls.add_argument("--limit", type=int, default=50)
    for name, handler, text in (
        ("show", cmd_calls_show, "one call, every field"),
        ("events", cmd_calls_events, "one call's timeline"),
    ):
        one = command(calls, name, handler, text)
        one.add_argument("--tenant", required=True)
        one.add_argument("call_id")

    quarantine = commands.add_parser("quarantine", help="bodies kept instead of stored").add_subparsers(
        dest="action", required=True
    )
    list_q = command(quarantine, "list", cmd_quarantine_list, "list a tenant's quarantined bodies")
    list_q.add_argument("--tenant", required=True)
    list_q.add_argument("--source")
    list_q.add_argument("--status", choices=["open", "resolved"])
    list_q.add_argument("--limit", type=int, default=50)
    replay_q = command(quarantine, "replay", cmd_quarantine_replay, "one body through today's adapters")
    replay_q.add_argument("--tenant", required=True)
    replay_q.add_argument("quarantine_id")

    subs = commands.add_parser("subscriptions", help="customer endpoints").add_subparsers(
        dest="action", required=True
    )
    create_sub = command(
        subs, "create", cmd_subscriptions_create, "subscribe an endpoint (secret shown once)"
    )
    create_sub.add_argument("--tenant", required=True)
    create_sub.add_argument("--url", required=True)
    create_sub.add_argument("--event-type", action="append", help="repeatable; default call.*")
    create_sub.add_argument("--description", default="")
    command(subs, "list", cmd_subscriptions_list, "list a tenant's subscriptions").add_argument(
        "--tenant", required=True
    )

    dels = commands.add_parser("deliveries", help="the delivery log").add_subparsers(
        dest="action", required=True
    )
    list_dels = command(dels, "list", cmd_deliveries_list, "list deliveries, newest first")
    list_dels.add_argument("--tenant", required=True)
    list_dels.add_argument("--subscription")
    list_dels.add_argument("--status", choices=["pending", "succeeded", "dead"])
    list_dels.add_argument("--call")
    list_dels.add_argument("--limit", type=int, default=50)
    retry_del = command(dels, "retry", cmd_deliveries_retry, "send one delivery again now")
    retry_del.add_argument("--tenant", required=True)
    retry_del.add_argument("delivery_id")

    cons = commands.add_parser("connections", help="CRM connections").add_subparsers(
        dest="action", required=True
    )
    create_con = command(cons, "create", cmd_connections_create, "connect a CRM account")
    create_con.add_argument("--tenant", required=True)
    create_con.add_argument("--kind", required=True, choices=sorted(root.CONNECTORS))
    create_con.add_argument("--credentials", required=True, help='JSON, e.g. {"access_token": "..."}')
    create_con.add_argument("--base-url", help="the CRM API base URL (Salesforce: required)")
    create_con.add_argument("--name")
    create_con.add_argument("--options", help="JSON options (see docs/crm.md)")
    command(cons, "list", cmd_connections_list, "list a tenant's CRM connections").add_argument(
        "--tenant", required=True
    )
    test_con = command(cons, "test", cmd_connections_test, "check a connection's credentials (one read)")
    test_con.add_argument("--tenant", required=True)
    test_con.add_argument("connection_id")
    resync_con = command(cons, "resync", cmd_connections_resync, "sync again every call changed since")
    resync_con.add_argument("--tenant", required=True)
    resync_con.add_argument("--since", required=True, help="ISO-8601 time or an age (6h, 7d)")
    resync_con.add_argument("connection_id")

    replay = command(commands, "replay", cmd_replay, "re-run stored raw events through the current adapters")
    replay.add_argument("--source", help="only this source's events")
    replay.add_argument("--since", help="only events received since: ISO-8601 time or an age (6h, 7d)")
    replay.add_argument("--quarantined", action="store_true", help="first retry the quarantined bodies too")

    reconcile = command(
        commands,
        "reconcile",
        cmd_reconcile,
        "list a source's calls from its vendor's API, apply what is missing",
    )
    reconcile.add_argument("--source", required=True, help="a source with read-API settings (pull)")
    reconcile.add_argument(
        "--since", default="6h", help="calls started since: ISO-8601 or an age (default 6h)"
    )
    reconcile.add_argument("--until", help="calls started before: ISO-8601 or an age (default: now)")

    demo = command(commands, "demo", cmd_demo, "send signed sample webhooks of every vendor to a gateway")
    demo.add_argument("--url", help="the gateway's base URL (default: CALLGATE_PUBLIC_URL or host:port)")
    demo.add_argument("--api-key", help="a tenant API key (default: CALLGATE_API_KEY)")
    demo.add_argument(
        "--state", help="where the demo keeps its sources and their secrets (default: var/demo-sources.json)"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    settings = Settings()
    logs.configure(settings.log_level, settings.log_format)
    try:
        if getattr(args, "tenant", None):  # every --tenant names a tenant that exists, or it is an error
            asyncio.run(_with_db(settings, lambda db: auth.require_tenant(db, args.tenant)))
        return int(args.handler(args, settings))
    except CallgateError as exc:
        if getattr(args, "json", False):
            print(json.dumps({"error": {"code": exc.code, "message": exc.message, "field": exc.field}}))
        else:
            print(f"callgate: {exc.message}", file=sys.stderr)
        return 2
    except json.JSONDecodeError as exc:
        print(f"callgate: an argument is not JSON: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
