"""A real HTTP endpoint on loopback that records what it receives and answers as it is told."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks import Webhook


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    path: str

    @property
    def json(self) -> Any:
        return json.loads(self.body)

    def verifies_with(self, secret: str) -> bool:
        """One of the signatures is the library's signature of this body with ``secret``.

        (``Webhook.verify`` also checks the timestamp against the real clock; tests that move an injected
        clock use this, and the live tests call ``Webhook.verify`` itself.)
        """
        stamp = datetime.fromtimestamp(int(self.headers["webhook-timestamp"]), UTC)
        expected = Webhook(secret).sign(self.headers["webhook-id"], stamp, self.body.decode())
        return expected in self.headers["webhook-signature"].split()


Reply = tuple[int, dict[str, str], bytes]
Behaviour = Callable[["Receiver", Received], Reply]


def ok(receiver: Receiver, request: Received) -> Reply:
    return 200, {}, b'{"ok": true}'


@dataclass
class Receiver:
    behaviour: Behaviour = ok
    delay: float = 0.0
    received: list[Received] = field(default_factory=list)
    url: str = ""
    lock: threading.Lock = field(default_factory=threading.Lock)

    def wait_for(self, count: int, timeout: float = 10.0) -> list[Received]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.received) >= count:
                    return list(self.received)
            time.sleep(0.01)
        raise AssertionError(f"expected {count} deliveries, got {len(self.received)}")


@contextmanager
def receiver(behaviour: Behaviour = ok, delay: float = 0.0) -> Iterator[Receiver]:
    state = Receiver(behaviour, delay)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            request = Received({k.lower(): v for k, v in self.headers.items()}, body, self.path)
            if state.delay:
                time.sleep(state.delay)
            with state.lock:
                state.received.append(request)
            status, headers, reply = state.behaviour(state, request)
            try:
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("content-length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the sender gave up (a timeout test)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
