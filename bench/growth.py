"""Growth: the same work with 1,000 and with 1,000,000 calls stored (issue "Speed": ≤ 20 % slower).

Per size, on a fresh SQLite file (``synchronous=FULL``): a tenant with a source per vendor and one
subscription; one real call of each vendor ingested through ``serve`` (``bench.mix.check``); then
``calls`` rows copied from those six straight into the ``calls`` table with stdlib ``sqlite3``
``executemany`` (each row a real stored call's ``data`` and ``stamps`` under a new id, vendor call id and
time, spread over the last 30 days, statuses ~70 % completed). Then ``serve`` again (no worker) and:

* ``GET /v1/calls?status=completed&vendor=graph8&limit=50`` with the tenant's API key, one request at a
  time over one keep-alive connection (httpx), p50 / p99;
* ingest peak: wrk, the six-vendor mix, as in the ingest part.
"""

from __future__ import annotations

import base64
import json
import os
import sqlite3
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from bench import mix, servers
from bench.load import percentile

LIST_QUERY = "/v1/calls?status=completed&vendor=graph8&limit=50"
STATUSES = ("completed",) * 14 + ("no_answer", "no_answer", "failed", "busy", "canceled", "in_progress")

_RFC = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
_CROCKFORD = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_TO_CROCKFORD = bytes.maketrans(_RFC, _CROCKFORD)


def ulids(times_ms: list[int]) -> list[str]:
    """ULIDs (Crockford base32 of 48 bits of milliseconds and 80 random bits) for the given times, made in
    bulk: each as 20 big-endian bytes, whose RFC 4648 base32 is 32 characters with 6 leading zeros."""
    randomness = os.urandom(10 * len(times_ms))
    packed = b"".join(
        ((ms << 80) | int.from_bytes(randomness[i * 10 : i * 10 + 10], "big")).to_bytes(20, "big")
        for i, ms in enumerate(times_ms)
    )
    text = base64.b32encode(packed).translate(_TO_CROCKFORD).decode()
    return [text[i + 6 : i + 32] for i in range(0, len(text), 32)]


def _stamp(moment: datetime) -> str:
    """How SQLAlchemy stores a UTC time in SQLite (``UTCDateTime``: naive, microseconds)."""
    return moment.strftime("%Y-%m-%d %H:%M:%S.%f")


def seed(path: Path, tenant_id: str, calls: int, days: int = 30) -> float:
    """Adds ``calls`` calls to the tenant, copied from the calls it has (one per vendor). Seconds taken."""
    started = time.perf_counter()
    conn = sqlite3.connect(path)
    try:
        # written once, straight into the file (no WAL to checkpoint after); serve turns WAL back on
        conn.execute("PRAGMA journal_mode=OFF")
        conn.execute("PRAGMA synchronous=OFF")
        conn.execute("PRAGMA cache_size=-262144")
        conn.row_factory = sqlite3.Row
        templates = [dict(r) for r in conn.execute("SELECT * FROM calls WHERE tenant_id = ?", (tenant_id,))]
        if not templates:
            raise RuntimeError("no call to copy: ingest one call per vendor first")
        conn.row_factory = None
        columns = list(templates[0])
        # one data document per (template, status): the call's own status is in its data too
        variants: dict[tuple[int, str], str] = {}
        for t, template in enumerate(templates):
            for status in set(STATUSES):
                variants[t, status] = json.dumps({**json.loads(template["data"]), "status": status})
        now = datetime.now(UTC) - timedelta(hours=1)
        first = now - timedelta(days=days)
        step = timedelta(days=days) / calls
        chunk = 50_000
        placeholders = ", ".join("?" for _ in columns)
        statement = f"INSERT INTO calls ({', '.join(columns)}) VALUES ({placeholders})"  # noqa: S608
        for offset in range(0, calls, chunk):
            count = min(chunk, calls - offset)
            moments = [first + step * (offset + i) for i in range(count)]
            ids = ulids([int(m.timestamp() * 1000) for m in moments])
            rows: list[tuple[Any, ...]] = []
            for i in range(count):
                n = offset + i
                t = n % len(templates)
                template = templates[t]
                status = STATUSES[(n // len(templates)) % len(STATUSES)]
                stamp = _stamp(moments[i])
                values = {
                    **template,
                    "id": f"call_{ids[i]}",
                    "vendor_call_id": f"seed_{n:08d}",
                    "status": status,
                    "to_number": f"+1415{n % 10_000_000:07d}",
                    "data": variants[t, status],
                    "created_at": stamp,
                    "updated_at": stamp,
                }
                rows.append(tuple(values[c] for c in columns))
            with conn:
                conn.executemany(statement, rows)
        conn.execute("PRAGMA journal_mode=WAL")
    finally:
        conn.close()
    return time.perf_counter() - started


def list_latency(base_url: str, api_key: str, requests: int, seconds: float) -> dict[str, Any]:
    """p50 / p99 of ``LIST_QUERY``, one request at a time after 3 unmeasured: ``requests`` of them, or
    as many as ``seconds`` allow (at least 10)."""
    times: list[float] = []
    headers = {"authorization": f"Bearer {api_key}"}
    with httpx.Client(base_url=base_url, headers=headers, timeout=120) as client:
        for _ in range(3):
            client.get(LIST_QUERY)
        deadline = time.perf_counter() + seconds
        while len(times) < requests and (len(times) < 10 or time.perf_counter() < deadline):
            started = time.perf_counter()
            response = client.get(LIST_QUERY)
            times.append((time.perf_counter() - started) * 1000)
            if response.status_code != 200:
                raise RuntimeError(f"GET {LIST_QUERY} answered {response.status_code}: {response.text[:200]}")
        rows = len(response.json()["data"])
    return {
        "p50_ms": percentile(times, 50),
        "p99_ms": percentile(times, 99),
        "rows": rows,
        "requests": len(times),
    }


@dataclass
class Growth:
    workdir: Path
    subscriber: str
    seconds: float
    list_requests: int
    list_seconds: float

    def measure(self, calls: int) -> dict[str, Any]:
        path = self.workdir / f"growth-{calls}.db"
        url = f"sqlite+aiosqlite:///{path}"
        tenant = servers.prepare(url, self.subscriber)
        with servers.serve(url) as server:
            mix.check(server.base, tenant)
        seconds = seed(path, tenant.tenant_id, calls)
        with servers.serve(url) as server:
            listed = list_latency(server.base, tenant.api_key, self.list_requests, self.list_seconds)
            ingest = servers.ingest_peak(server, url, tenant, self.seconds)
        return {
            "calls": calls,
            "seed_seconds": round(seconds, 1),
            "database_bytes": path.stat().st_size,
            "list": listed,
            "ingest": ingest,
        }
