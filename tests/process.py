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
    url: str, port: int, *, command: str = "serve", stdout: int | None = subprocess.DEVNULL, **env: str
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
        stderr=subprocess.DEVNULL,
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


def run_cli(url: str, *args: str) -> dict[str, Any]:
    """``callgate <args> --json`` against the database at ``url``, as the operator would run it."""
    env = {**os.environ, "CALLGATE_DATABASE_URL": url}
    done = subprocess.run(
        [sys.executable, "-m", "gateway.cli", *args, "--json"], env=env, capture_output=True, check=True
    )
    result: dict[str, Any] = json.loads(done.stdout)
    return result
