"""The benchmark suite: every target of the "Speed" issue and the table of "the in-process worker starves
ingest", measured in one run on this machine, printed as one table with ratios against the targets, and
written whole to ``build/bench.json``.

    make bench                                   # = python -m bench.suite
    python -m bench.suite --quick                # small sizes, a few seconds a part (while developing)
    python -m bench.suite --only ingest --only growth
    python -m bench.suite --database-pg postgresql+asyncpg://postgres@127.0.0.1:5432/test

Every HTTP figure is one ``serve`` process (one event loop: one core) on a fresh database, driven over
loopback by a load generator on the machine's other core. Ingest requests are the six-vendor mix
(``bench/mix.py``: every vendor's whole sample call, 22 webhooks for six calls, each signed for its
source); one fresh call of each vendor must be stored (202) first, non-2xx answers are counted, and the
raw events each run stored are counted back from the database.

Parts (``--only``):

* ``ingest``: SQLite ``synchronous=FULL``, one subscription to ``call.*`` so every change writes its
  outbox rows, and ``CALLGATE_WORKER=false`` so no delivery runs. Peak = ``wrk -t1 -c64``. Compared with
  the bare Starlette and the naive SQLModel + aiosqlite servers of ``bench/reference.py`` on the same
  requests, measured in the same run; then latency at a fixed 50 % of callgate's own peak rate (open loop,
  ``bench/load.py``: from the scheduled send time).
* ``postgres``: the same peak on PostgreSQL (a scratch database, created and dropped; skipped with a
  note when the server cannot be reached), against the SQLite figure of the same run.
* ``outbox``: ``bench.outbox.Bench``: ack (and webhook → subscriber) latency at 100/s and 200/s for
  ``serve`` without its worker and with its worker and one subscription to ``bench/receiver.py``; peak
  ingest with one subscription against none (medians of three pairs run in turn); a backlog drained
  by ``callgate worker`` against raw ``httpx.AsyncClient`` to the same receiver. The "Speed" table's
  delivery and end-to-end rows are these same measurements.
* ``growth``: ``bench/growth.py``: ingest peak and a filtered ``GET /v1/calls`` page with 1,000 and with
  1,000,000 calls stored.

Full sizes (``FULL``): wrk runs of 10 s (6 s for growth), the fixed-rate run 10 s, 1,500 webhooks per
outbox fixed-rate run, 3,000 per outbox peak, a backlog of 1,500; about 4 minutes here. ``--quick``
(``QUICK``): 3 s runs, 300 / 800 / 400 webhooks, 20,000 calls for growth. ``make bench`` runs
``bench.stages`` and ``bench.crm`` first, outside the table, so that the table is what it prints last.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import report, servers
from bench.growth import LIST_QUERY, Growth
from bench.outbox import Bench, start_receiver

PARTS = ("ingest", "postgres", "outbox", "growth")
# peak runs with and without a subscription: one pair moved the ratio by 10 points from run to run here
# (single runs of 3,000 webhooks, 1,300-1,700/s for the same server); the table takes the medians
PEAK_PAIRS = 3
DEFAULT_PG = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
OUTPUT = Path("build") / "bench.json"


@dataclass(frozen=True)
class Sizes:
    peak_seconds: float  # each wrk run of the ingest and postgres parts
    fixed_seconds: float  # the fixed-rate run at 50 % of the peak
    outbox_events: int  # webhooks per bench.outbox fixed-rate run (as in docs/benchmarks.md)
    outbox_peak: int  # webhooks per bench.outbox peak run
    backlog: int  # deliveries drained
    growth_calls: tuple[int, int]
    growth_seconds: float
    list_requests: int  # at most this many list requests a size,
    list_seconds: float  # and no more after this long (at least 10)


FULL = Sizes(10, 10, 1500, 3000, 1500, (1_000, 1_000_000), 6, 300, 30)
QUICK = Sizes(3, 3, 300, 800, 400, (1_000, 20_000), 3, 30, 3)


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# --- the parts ---------------------------------------------------------------------------------------


def part_ingest(workdir: Path, subscriber: str, sizes: Sizes) -> dict[str, Any]:
    url = f"sqlite+aiosqlite:///{workdir / 'ingest.db'}"
    tenant = servers.prepare(url, subscriber)
    log("ingest: bare Starlette")
    bare = servers.bare_peak(tenant, sizes.peak_seconds)
    log("ingest: naive SQLModel + aiosqlite server")
    naive = servers.naive_peak(tenant, str(workdir / "naive.db"), sizes.peak_seconds)
    log("ingest: callgate serve, peak")
    with servers.serve(url) as server:
        peak = servers.ingest_peak(server, url, tenant, sizes.peak_seconds)
    rate = peak["per_second"] / 2
    log(f"ingest: callgate serve at a fixed {rate:.0f}/s")
    url = f"sqlite+aiosqlite:///{workdir / 'ingest-fixed.db'}"
    tenant = servers.prepare(url, subscriber)
    with servers.serve(url) as server:
        fixed = servers.ingest_fixed(server, url, tenant, rate, sizes.fixed_seconds)
    return {"bare_starlette": bare, "naive": naive, "callgate": peak, "fixed_rate": fixed}


async def _pg(url: str, sql: str) -> None:
    import asyncpg
    from sqlalchemy.engine import make_url

    dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    conn = await asyncio.wait_for(asyncpg.connect(dsn), 5)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def part_postgres(base_url: str, subscriber: str, sizes: Sizes) -> dict[str, Any]:
    from sqlalchemy.engine import make_url

    name = f"callgate_bench_{os.getpid()}_{int(time.time())}"
    try:
        asyncio.run(_pg(base_url, f'CREATE DATABASE "{name}"'))
    except Exception as exc:
        return {"skipped": f"PostgreSQL at {make_url(base_url).render_as_string()} unreachable: {exc!r}"}
    url = make_url(base_url).set(database=name).render_as_string(hide_password=False)
    try:
        tenant = servers.prepare(url, subscriber)
        log("postgres: callgate serve, peak")
        with servers.serve(url) as server:
            return {"callgate": servers.ingest_peak(server, url, tenant, sizes.peak_seconds)}
    finally:
        asyncio.run(_pg(base_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def part_outbox(workdir: Path, receiver_port: int, sizes: Sizes) -> dict[str, Any]:
    bench = Bench(workdir, receiver_port)
    fixed: list[dict[str, Any]] = []
    for rate in (100, 200):
        for worker in (False, True):
            log(f"outbox: {rate}/s, {'worker + 1 subscription' if worker else 'no worker'}")
            result = bench.fixed_rate(rate, sizes.outbox_events, worker=worker)
            fixed.append({"rate": rate, "worker": worker, "webhooks": sizes.outbox_events, **result})
    log(f"outbox: peak, no subscription / one subscription, {PEAK_PAIRS} pairs in turn")
    bares: list[float] = []
    subscribeds: list[float] = []
    for _ in range(PEAK_PAIRS):  # in turn, so a slow spell of the machine falls on both sides
        bares.append(bench.peak(sizes.outbox_peak, subscribed=False))
        subscribeds.append(bench.peak(sizes.outbox_peak, subscribed=True))
    log(f"outbox: drain {sizes.backlog}")
    drain = bench.drain(sizes.backlog)
    return {
        "fixed_rate": fixed,
        "peak": {
            "none": statistics.median(bares),
            "one_subscription": statistics.median(subscribeds),
            "runs": {"none": [round(r) for r in bares], "one_subscription": [round(r) for r in subscribeds]},
            "webhooks": sizes.outbox_peak,
        },
        "drain": {**drain, "backlog": sizes.backlog},
    }


def part_growth(workdir: Path, subscriber: str, sizes: Sizes) -> dict[str, Any]:
    growth = Growth(workdir, subscriber, sizes.growth_seconds, sizes.list_requests, sizes.list_seconds)
    out: dict[str, Any] = {"query": LIST_QUERY}
    for calls in sizes.growth_calls:
        log(f"growth: {calls:,} calls")
        out[str(calls)] = growth.measure(calls)
        (workdir / f"growth-{calls}.db").unlink(missing_ok=True)
    return out


# --- main --------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes: a few seconds a part")
    parser.add_argument("--only", action="append", choices=PARTS, help="run only this part (repeatable)")
    parser.add_argument("--database-pg", default=DEFAULT_PG, help=f"PostgreSQL server (default {DEFAULT_PG})")
    parser.add_argument("--output", type=Path, default=OUTPUT)
    args = parser.parse_args()
    sizes = QUICK if args.quick else FULL
    wanted = [p for p in PARTS if not args.only or p in args.only]
    started = time.time()
    result: dict[str, Any] = {
        "started": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"SQLite {sqlite3.sqlite_version}",
        "quick": args.quick,
        "sizes": sizes.__dict__,
        "parts": {},
    }
    receiver, receiver_port = start_receiver()
    subscriber = f"http://127.0.0.1:{receiver_port}/hook"
    try:
        with tempfile.TemporaryDirectory(prefix="callgate-suite-") as tmp:
            workdir = Path(tmp)
            runners: dict[str, Callable[[], dict[str, Any]]] = {
                "ingest": lambda: part_ingest(workdir, subscriber, sizes),
                "postgres": lambda: part_postgres(args.database_pg, subscriber, sizes),
                "outbox": lambda: part_outbox(workdir, receiver_port, sizes),
                "growth": lambda: part_growth(workdir, subscriber, sizes),
            }
            for part in wanted:
                try:
                    result["parts"][part] = runners[part]()
                except Exception as exc:  # the other parts still run; the report says what failed
                    log(f"{part} failed: {exc!r}")
                    result["parts"][part] = {"error": repr(exc)}
    finally:
        receiver.terminate()
        receiver.wait(timeout=10)
    result["seconds"] = round(time.time() - started, 1)
    result["report"] = report.render(result, str(args.output))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    print(result["report"])
    if any("error" in part for part in result["parts"].values()):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
