"""Where one webhook's time goes: verify, parse + normalize, and the unit of work in SQL, each alone.

    python bench/stages.py --events 4000

No event loop and no HTTP: each stage runs in a plain loop over pre-built inputs, so the numbers add up to
the CPU one webhook costs, before uvicorn and Starlette.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time

from adapters.registry import INBOUND
from bench.ingest import events, setup_source
from gateway.clock import system_clock
from gateway.ingest import IngestJob, apply_event, reparser, storable_event
from gateway.signing import scheme_for, verification_adapter
from gateway.store.db import create_sqlite_writer
from gateway.store.migrate import upgrade


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=4000)
    parser.add_argument("--batch", type=int, default=64)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="callgate-stages-") as workdir:  # removed afterwards
        measure(args.events, args.batch, f"sqlite+aiosqlite:///{workdir}/stages.db")


def measure(n: int, batch_size: int, url: str) -> None:
    upgrade(url)
    tenant, source, secret = asyncio.run(setup_source(url))
    batch = events(n, secret)
    config = verification_adapter.validate_python({"scheme": "standard-webhooks", "secrets": [secret]})
    verify = scheme_for(config, system_clock).verify
    reparse = reparser(INBOUND, "US")

    started = time.perf_counter()
    for body, headers in batch:
        verify(body, headers)
    verify_us = (time.perf_counter() - started) / n * 1e6

    started = time.perf_counter()
    parsed = [reparse("graph8", headers, body) for body, headers in batch]
    parse_us = (time.perf_counter() - started) / n * 1e6

    started = time.perf_counter()  # the part of parse+normalize that makes content storable
    for event in parsed:
        storable_event(event)
    storable_us = (time.perf_counter() - started) / n * 1e6

    engine = create_sqlite_writer(url)
    jobs = [
        IngestJob(tenant, source, "graph8", p, h, b, system_clock())
        for p, (b, h) in zip(parsed, batch, strict=True)
    ]
    started = time.perf_counter()
    for i in range(0, n, batch_size):
        with engine.begin() as conn:
            for job in jobs[i : i + batch_size]:
                apply_event(conn, job, system_clock(), reparse)
    apply_us = (time.perf_counter() - started) / n * 1e6
    engine.dispose()
    print(
        f"per webhook: verify {verify_us:.0f} us, parse+normalize {parse_us:.0f} us "
        f"(of which storable {storable_us:.0f} us), "
        f"store (batches of {batch_size}, synchronous=FULL) {apply_us:.0f} us"
    )


if __name__ == "__main__":
    main()
