"""A small HTTP/1.1 load generator over raw asyncio streams: pre-built requests, keep-alive connections,
either at a fixed rate (open loop: latency is measured from the scheduled send time, so a slow server
cannot hide its queue) or as fast as ``connections`` allow (closed loop). httpx as a client tops out near
240 requests/s on this machine; this one costs a few microseconds per request."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field


@dataclass
class Result:
    sent: list[float] = field(default_factory=list)  # scheduled send time (unix) per request index
    acked: list[float] = field(default_factory=list)  # answer time, or nan
    statuses: list[int] = field(default_factory=list)


def request_bytes(host: str, port: int, path: str, body: bytes, headers: dict[str, str]) -> bytes:
    lines = [f"POST {path} HTTP/1.1", f"host: {host}:{port}", f"content-length: {len(body)}"]
    lines += [f"{k}: {v}" for k, v in headers.items() if k.lower() not in ("host", "content-length")]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def _read_response(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    if length:
        await reader.readexactly(length)
    return status


async def run(
    host: str, port: int, requests: list[bytes], *, rate: float | None, connections: int = 64
) -> Result:
    """Sends every request once. ``rate`` per second (open loop), or None (closed loop)."""
    n = len(requests)
    result = Result([0.0] * n, [float("nan")] * n, [0] * n)
    queue: asyncio.Queue[int] = asyncio.Queue()
    start = time.time() + 0.2

    async def producer() -> None:
        for i in range(n):
            if rate is not None:
                due = start + i / rate
                delay = due - time.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                result.sent[i] = due
            queue.put_nowait(i)
        for _ in range(connections):
            queue.put_nowait(-1)

    async def connection() -> None:
        reader, writer = await asyncio.open_connection(host, port)
        try:
            while True:
                i = await queue.get()
                if i < 0:
                    return
                if rate is None:
                    result.sent[i] = time.time()
                writer.write(requests[i])
                await writer.drain()
                result.statuses[i] = await _read_response(reader)
                result.acked[i] = time.time()
        finally:
            writer.close()

    await asyncio.gather(producer(), *(connection() for _ in range(connections)))
    return result


def percentile(values: list[float], p: float) -> float:
    clean = sorted(v for v in values if v == v)
    if not clean:
        return float("nan")
    return clean[min(len(clean) - 1, round(p / 100 * (len(clean) - 1)))]
