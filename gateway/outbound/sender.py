"""Sending one delivery's HTTP request, in this process or in a child process of its own.

A delivery's request through ``httpx`` costs about 2 ms of CPU here (connection-pool bookkeeping, anyio
stream attributes, h11), more than ingesting the webhook that caused it. In ``serve`` that CPU came from the
same core, under the same GIL, as ingest: one subscription at 100-200 webhooks/s starved the vendors'
acknowledgements. ``ProcessSender`` moves the requests to a child process (the machine's other core) while
every database write stays with the worker in the parent - on SQLite one process keeps the single write
lock, and the worker's claims and attempt results keep sharing the ingest group commits.

The worker decides everything (SSRF check, pinned address, signatures, what the outcome means); a sender
only sends: ``Send`` in, ``(Outcome, response text)`` out. Parent and child speak over a private
``socketpair`` in length-prefixed pickle frames; the child exits when the parent's end closes (the parent
stopped or died), and a child that dies fails its in-flight requests as errors - the worker retries them,
at least once as always - and is started again for the next request.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import pickle
import signal
import socket
import ssl
import struct
import subprocess
import sys
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx
import structlog

from gateway.outbound.retry import Outcome

log = structlog.get_logger("callgate.sender")

BODY_LIMIT = 8 * 1024  # of the response, kept with the attempt
MAX_POOLS = 256  # endpoints with a connection pool at once; the oldest is closed beyond that
_LENGTH = struct.Struct("!I")


@dataclass(frozen=True, slots=True)
class Send:
    """One request, ready: the URL already pinned to the checked address, every header made."""

    endpoint: str  # the subscription: one connection pool each
    url: str
    headers: Mapping[str, str]
    body: bytes
    extensions: Mapping[str, Any] = field(default_factory=dict)


Answer = tuple[Outcome, str | None]


class Sender(Protocol):
    async def start(self) -> None: ...

    async def send(self, request: Send) -> Answer: ...

    async def close(self) -> None: ...


SHARD_CONNECTIONS = 4  # connections per httpx pool: an endpoint's connections are spread over several


@dataclass(slots=True)
class _Shard:
    transport: httpx.AsyncHTTPTransport
    busy: int = 0


class InlineSender:
    """Sends from this process. Each endpoint has its own connections (unless a client is given), so a slow
    endpoint cannot take every connection; they are spread over small ``httpx`` pools of
    ``SHARD_CONNECTIONS`` each and a request goes to the least busy one. httpcore scans every connection
    of a pool on every request and every answer (with two system calls per idle connection): one pool of 32
    connections spent 60 % of the sender's CPU there at 64 requests in flight (py-spy, docs/benchmarks.md).
    """

    def __init__(self, *, timeout: float, connections: int, client: httpx.AsyncClient | None = None) -> None:
        self.timeout = timeout
        self.connections = connections
        self._client = client  # given (tests): every request goes through it, and it is not closed here
        self._pools: dict[str, list[_Shard]] = {}
        self._tls: ssl.SSLContext | None = None  # one for every pool: building one costs ~10 ms
        self._timeouts = httpx.Timeout(timeout).as_dict()
        self._closing: set[asyncio.Task[None]] = set()

    def _shard(self, endpoint: str) -> _Shard:
        shards = self._pools.get(endpoint)
        if shards is None:
            if len(self._pools) >= MAX_POOLS:
                self._retire(next(iter(self._pools)))
            shards = self._pools[endpoint] = []
        shard = min(shards, key=lambda s: s.busy, default=None)
        wanted = -(-self.connections // SHARD_CONNECTIONS)
        if shard is None or (shard.busy >= SHARD_CONNECTIONS and len(shards) < wanted):
            if self._tls is None:
                self._tls = httpx.create_ssl_context()  # what httpx builds by default (certifi, env)
            size = min(SHARD_CONNECTIONS, self.connections - SHARD_CONNECTIONS * len(shards))
            limits = httpx.Limits(max_connections=size)
            shard = _Shard(httpx.AsyncHTTPTransport(limits=limits, verify=self._tls))
            shards.append(shard)
        return shard

    def _retire(self, endpoint: str) -> None:
        for shard in self._pools.pop(endpoint):
            closing = asyncio.create_task(shard.transport.aclose())
            self._closing.add(closing)
            closing.add_done_callback(self._closing.discard)

    async def start(self) -> None:
        pass

    async def send(self, request: Send) -> Answer:
        if self._client is not None:
            client = self._client
            return await self._send(request, lambda built: client.send(built, stream=True))
        shard = self._shard(request.endpoint)
        shard.busy += 1
        try:
            return await self._send(request, shard.transport.handle_async_request)
        finally:
            shard.busy -= 1

    async def _send(
        self, request: Send, send: Callable[[httpx.Request], Awaitable[httpx.Response]]
    ) -> Answer:
        try:
            # straight to the transport: a delivery needs none of the client's cookies, redirects, auth
            # or event hooks, which cost a fifth of a request's CPU (docs/benchmarks.md); its timeouts
            # ride in the request's extensions, as the client would put them
            built = httpx.Request(
                "POST",
                request.url,
                content=request.body,
                headers=request.headers,
                extensions={**request.extensions, "timeout": self._timeouts},
            )
            response = await send(built)
            try:
                kept = bytearray()
                async for chunk in response.aiter_raw():
                    kept += chunk
                    if len(kept) >= BODY_LIMIT:
                        break
            finally:
                await response.aclose()
            text = bytes(kept[:BODY_LIMIT]).decode("utf-8", "replace")
            retry_after = response.headers.get("retry-after")
            return Outcome(status_code=response.status_code, retry_after=retry_after), text
        except httpx.TimeoutException:
            return Outcome(error=f"timeout after {self.timeout:g} s", timed_out=True), None
        except (httpx.HTTPError, OSError) as exc:
            return Outcome(error=f"{type(exc).__name__}: {exc}"[:500]), None

    async def close(self) -> None:
        for endpoint in list(self._pools):
            self._retire(endpoint)
        await asyncio.gather(*self._closing, return_exceptions=True)


def _frame(message: object) -> bytes:
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    return _LENGTH.pack(len(data)) + data


async def _read_frame(reader: asyncio.StreamReader) -> Any:
    (length,) = _LENGTH.unpack(await reader.readexactly(_LENGTH.size))
    # Only ever frames this module wrote, over a socketpair private to the parent and its own child.
    return pickle.loads(await reader.readexactly(length))  # noqa: S301


EXITED = "the delivery process exited before the request finished"
UNANSWERED = "the delivery process did not answer in time and was restarted"


class ProcessSender:
    """Sends from a child process (``python -m gateway.outbound.sender``), started with the worker (or by the
    first request). A child that does not answer within the request timeout plus ``grace`` is killed: a
    wedged child must not hold the worker's slots forever (httpx's own timeout bounds a healthy one)."""

    grace = 5.0  # seconds past the request timeout before the child counts as wedged

    def __init__(self, *, timeout: float, connections: int) -> None:
        self.timeout = timeout
        self.connections = connections
        self._child: subprocess.Popen[bytes] | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._reader_task: asyncio.Task[None] | None = None
        self._pending: dict[int, asyncio.Future[Answer]] = {}
        self._keys = itertools.count()
        self._starting = asyncio.Lock()
        self.started = 0  # children started (a test kills one and sees the next)

    @property
    def pid(self) -> int | None:
        return self._child.pid if self._child is not None else None

    async def _ensure(self) -> asyncio.StreamWriter:
        async with self._starting:
            if self._writer is not None and not self._writer.is_closing():
                return self._writer
            await self._reap()
            ours, theirs = socket.socketpair()
            try:
                self._child = subprocess.Popen(  # noqa: S603, ASYNC220 - our own module; a fork/exec, no wait
                    [
                        sys.executable,
                        "-m",
                        "gateway.outbound.sender",
                        "--fd",
                        str(theirs.fileno()),
                        "--timeout",
                        repr(self.timeout),
                        "--connections",
                        str(self.connections),
                    ],
                    pass_fds=(theirs.fileno(),),
                    stdin=subprocess.DEVNULL,
                )
            finally:
                theirs.close()
            self.started += 1
            reader, writer = await asyncio.open_unix_connection(sock=ours)
            self._writer = writer
            self._reader_task = asyncio.create_task(self._read(reader, writer), name="callgate-sender-read")
            return writer

    async def _read(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                key, outcome, text = await _read_frame(reader)
                future = self._pending.pop(key, None)
                if future is not None and not future.done():
                    future.set_result((outcome, text))
        except (asyncio.IncompleteReadError, ConnectionError, OSError):
            pass
        finally:
            writer.close()
            if self._writer is writer:
                self._writer = None
            pending, self._pending = self._pending, {}
            for future in pending.values():
                if not future.done():
                    future.set_result((Outcome(error=EXITED), None))

    async def _reap(self) -> None:
        """The previous child, if any: gone, or made so (its socket is closed: it is exiting anyway)."""
        child, self._child = self._child, None
        if child is None:
            return
        try:
            await asyncio.wait_for(asyncio.to_thread(child.wait), timeout=5)
        except TimeoutError:
            child.kill()
            await asyncio.to_thread(child.wait)

    async def start(self) -> None:
        """Starts the child now, so the first delivery does not wait for its imports (~0.3 s)."""
        await self._ensure()

    async def send(self, request: Send) -> Answer:
        writer = await self._ensure()
        key = next(self._keys)
        future: asyncio.Future[Answer] = asyncio.get_running_loop().create_future()
        self._pending[key] = future
        try:
            writer.write(_frame((key, request)))
            await writer.drain()
        except (ConnectionError, OSError):
            self._pending.pop(key, None)
            return Outcome(error=EXITED), None
        try:
            return await asyncio.wait_for(asyncio.shield(future), timeout=self.timeout + self.grace)
        except TimeoutError:
            self._abandon()
            return Outcome(error=UNANSWERED, timed_out=True), None
        finally:
            self._pending.pop(key, None)

    def _abandon(self) -> None:
        """The child is wedged: kill it and drop its socket, so every request it held fails (``_read``)
        and the next request starts a new child."""
        if self._child is not None:
            self._child.kill()
        writer, self._writer = self._writer, None
        if writer is not None:
            writer.close()

    async def close(self) -> None:
        """Closes the child's socket: it finishes nothing more and exits."""
        writer, self._writer = self._writer, None
        if writer is not None:
            writer.close()
            with contextlib.suppress(ConnectionError, OSError):
                await writer.wait_closed()
        if self._reader_task is not None:
            await asyncio.gather(self._reader_task, return_exceptions=True)
            self._reader_task = None
        await self._reap()


async def serve_parent(fd: int, request_timeout: float, connections: int) -> None:
    """The child's side: each request its own task through an ``InlineSender``, answers as they finish."""
    reader, writer = await asyncio.open_unix_connection(sock=socket.socket(fileno=fd))
    sender = InlineSender(timeout=request_timeout, connections=connections)
    tasks: set[asyncio.Task[None]] = set()

    async def one(key: int, request: Send) -> None:
        answer = await sender.send(request)
        if not writer.is_closing():
            writer.write(_frame((key, *answer)))
            with contextlib.suppress(ConnectionError, OSError):
                await writer.drain()

    try:
        while True:
            key, request = await _read_frame(reader)
            task = asyncio.create_task(one(key, request))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
    except (asyncio.IncompleteReadError, ConnectionError, OSError):
        pass  # the parent closed its end or is gone
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await sender.close()
        writer.close()


def main() -> None:
    parser = argparse.ArgumentParser(description="callgate's delivery process (started by the worker)")
    parser.add_argument("--fd", type=int, required=True)
    parser.add_argument("--timeout", type=float, required=True)
    parser.add_argument("--connections", type=int, required=True)
    args = parser.parse_args()
    # Ctrl-C reaches the whole process group: the parent stops gracefully and closes the socket, which ends
    # this process once the requests under way are answered or cancelled.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    asyncio.run(serve_parent(args.fd, args.timeout, args.connections))


if __name__ == "__main__":
    main()
