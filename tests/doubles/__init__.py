"""Local imitations of the CRMs' HTTP APIs, for tests and for trying callgate without a CRM account.

Each double is a Starlette app built by ``app(state)`` over an in-memory ``state`` the test can read and
steer (fault injection, rate limits). ``serving(app)`` runs one on a loopback port in a thread for a test;
``python -m tests.doubles.<crm> --port N`` runs one as a process (``main``).
"""

from __future__ import annotations

import argparse
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn
from starlette.types import ASGIApp


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def serving(app: ASGIApp, port: int | None = None) -> Iterator[str]:
    """Runs ``app`` on 127.0.0.1 in a background thread; yields its base URL (no trailing slash)."""
    port = port or _free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the double did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def main(name: str, app: ASGIApp, default_port: int) -> None:
    """``python -m tests.doubles.<crm> [--port N]``: serve the double until interrupted."""
    parser = argparse.ArgumentParser(prog=f"python -m tests.doubles.{name}")
    parser.add_argument("--port", type=int, default=default_port)
    parser.add_argument("--host", default="127.0.0.1")
    args = parser.parse_args()
    print(f"{name} double on http://{args.host}:{args.port}", flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
