"""CRM syncs per second through one connection: N calls that just ended, synced by one worker to the CRM
double on loopback (its thread shares this process, so this is a floor). Once with the kind's client-side
rate limit (what production does: it stays under the CRM's burst limit), once with it lifted (what the
connector, the outbox and the double can do).

    python -m bench.crm --calls 200
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import tempfile
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import func, select

from adapters.registry import OUTBOUND
from gateway import connections as connection_service
from gateway.outbound.crm import CrmRuntime
from gateway.outbound.retry import Policy
from gateway.outbound.ssrf import GuardedTransport, TargetPolicy
from gateway.outbound.worker import Worker, WorkerConfig
from gateway.store.db import Database
from gateway.store.migrate import upgrade
from gateway.store.tables import crm_records
from gateway.vault import Vault
from tests.crm.kinds import KINDS
from tests.doubles import serving
from tests.helpers import FIXTURES
from tests.store.helpers import ingest, new_source

LOOPBACK = TargetPolicy.build(False, ["127.0.0.0/8"])


async def one(kind_name: str, calls: int, workdir: Path, limited: bool) -> float:
    import httpx

    kind = KINDS[kind_name]
    url = f"sqlite+aiosqlite:///{workdir / f'{kind_name}-{limited}.db'}"
    await asyncio.to_thread(upgrade, url)
    db = Database(url)
    state = kind.new_state()
    spec = OUTBOUND[kind_name] if limited else replace(OUTBOUND[kind_name], rate_per_second=10_000)
    client = httpx.AsyncClient(transport=GuardedTransport(LOOPBACK), timeout=20)
    crm = CrmRuntime({kind_name: spec}, Vault(Vault.new_key()), client)
    try:
        with serving(kind.app(state)) as base_url:
            tenant, source = await new_source(db, "graph8")
            await connection_service.create(
                db, crm.specs, crm.vault, LOOPBACK, datetime.now(UTC),
                tenant_id=tenant, kind=kind_name, base_url=base_url, credentials=kind.credentials,
            )  # fmt: skip
            template = json.loads((FIXTURES / "graph8" / "call_completed.json").read_bytes())
            for i in range(calls):
                template["id"] = f"evt_crm_{i}"
                template["data"]["room_name"] = f"rm_crm_{i}"
                await ingest(db, tenant, source, "graph8", json.dumps(template).encode(), datetime.now(UTC))
            worker = Worker(db, WorkerConfig(Policy(), LOOPBACK), lambda: datetime.now(UTC), crm=crm,
                            rng=random.Random(1))  # fmt: skip
            started = time.perf_counter()
            while True:
                await worker.run_once()
                async with db.reading() as conn:
                    done = (await conn.execute(select(func.count()).select_from(crm_records))).scalar_one()
                if done >= calls:
                    break
            elapsed = time.perf_counter() - started
            await worker.stop()
            return calls / elapsed
    finally:
        await client.aclose()
        await db.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--calls", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        print("| kind | syncs/s, kind's rate limit | syncs/s, limit lifted |")
        print("|---|---|---|")
        for name in sorted(KINDS):
            limited = asyncio.run(one(name, args.calls, Path(tmp), True))
            lifted = asyncio.run(one(name, args.calls, Path(tmp), False))
            print(f"| {name} | {limited:.1f} | {lifted:.1f} |", flush=True)


if __name__ == "__main__":
    main()
