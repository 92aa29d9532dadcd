"""Real callgate processes for tests that need them (durability, demo, worker)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from typing import Any

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(
    url: str,
    port: int,
    *,
    command: str = "serve",
    stdout: Any = subprocess.DEVNULL,
    stderr: Any = subprocess.DEVNULL,
    **env: str,
) -> subprocess.Popen[bytes]:
    """``callgate serve`` (or another long-running command) as a real process, once it is ready."""
    environment = {
        **os.environ,
        "CALLGATE_DATABASE_URL": url,
        "CALLGATE_PORT": str(port),
        "CALLGATE_BOOTSTRAP_TENANT": "false",
        "CALLGATE_LOG_LEVEL": "error",
        **env,
    }
    server = subprocess.Popen(
        [sys.executable, "-m", "gateway.cli", command],
        env=environment,
        stdout=stdout,
        stderr=stderr,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                return server
        except httpx.HTTPError:
            time.sleep(0.1)
    server.kill()
    raise AssertionError("the server did not become ready")


def start_worker(url: str, lease_seconds: float = 1, **env: str) -> subprocess.Popen[bytes]:
    """``callgate worker`` as a real process (loopback endpoints allowed, short leases so that a killed
    one's rows come back quickly)."""
    environment = {
        **os.environ,
        "CALLGATE_DATABASE_URL": url,
        "CALLGATE_ALLOWED_TARGET_CIDRS": '["127.0.0.0/8"]',
        "CALLGATE_WORKER_LEASE_SECONDS": str(lease_seconds),
        "CALLGATE_WORKER_CONCURRENCY": "4",
        "CALLGATE_LOG_LEVEL": "error",
        **env,
    }
    return subprocess.Popen(
        [sys.executable, "-m", "gateway.cli", "worker"],
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def run_cli(url: str, *args: str) -> dict[str, Any]:
    """``callgate <args> --json`` against the database at ``url``, as the operator would run it."""
    env = {**os.environ, "CALLGATE_DATABASE_URL": url}
    done = subprocess.run(
        [sys.executable, "-m", "gateway.cli", *args, "--json"], env=env, capture_output=True, check=True
    )
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def seed(url: str, vendor: str = "graph8") -> dict[str, Any]:
    """A migrated database with a tenant (its ``api_key``), a ``source`` of ``vendor`` (with its secret) and
    a second tenant's key (``other_key``): in this process, far quicker than the CLI's subprocesses."""
    import asyncio

    from gateway import auth, render
    from gateway import sources as source_service
    from gateway.app import ADAPTERS
    from gateway.clock import system_clock
    from gateway.store.db import Database
    from gateway.store.migrate import upgrade

    upgrade(url)

    async def work() -> dict[str, Any]:
        db = Database(url)
        try:
            tenant_id, key = await auth.create_tenant(db, "acme", system_clock)
            _, other = await auth.create_tenant(db, "other", system_clock)
            row, secret, api_key = await source_service.create(
                db, ADAPTERS, system_clock, tenant_id=tenant_id, name=vendor, vendor=vendor, verification=None
            )
        finally:
            await db.dispose()
        source = {**render.source(row, "http://127.0.0.1"), "secret": secret, "api_key": api_key}
        return {"tenant_id": tenant_id, "api_key": key.api_key, "other_key": other.api_key, "source": source}

    return asyncio.run(work())
