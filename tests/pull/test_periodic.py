"""The periodic reconciliation: each source with read-API settings once per period, by one process of
several (a turn in ``kv``), and a source whose vendor fails does not stop the others."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from gateway.app import ADAPTERS
from gateway.ingest import reparser
from gateway.outbound.ssrf import TargetPolicy
from gateway.pull.periodic import Reconciler
from gateway.pull.source import PullIn, stored_values
from gateway.store import sources as source_store
from gateway.store.db import Database
from gateway.vault import Vault
from tests.doubles.vendors import Swappable
from tests.doubles.vendors.graph8 import State, app
from tests.helpers import FakeClock
from tests.pull.converge import fixture_json
from tests.pull.test_reconcile import NOW, call_data
from tests.store.helpers import new_source

pytestmark = pytest.mark.anyio

LOOPBACK = TargetPolicy.build(False, ["127.0.0.0/8"])
VAULT = Vault(Vault.new_key())
INTERVAL = 900.0


@pytest.fixture
def double(server: tuple[Swappable, str]) -> Iterator[str]:
    swappable, url = server
    state = State(rate_per_second=None)
    state.calls["rm_periodic"] = {
        **fixture_json("graph8", "call_completed")["data"],
        "room_name": "rm_periodic",
    }
    swappable.current = app(state)
    yield url
    swappable.current = None


@pytest.fixture
async def second(db_url: str) -> AsyncIterator[Database]:
    other = Database(db_url)
    yield other
    await other.dispose()


async def with_pull(db: Database, url: str, token: str) -> tuple[str, str]:
    tenant, source_id = await new_source(db, "graph8")
    given = PullIn(base_url=url, token=token, org_id="org_123")
    values = await stored_values("graph8", given, LOOPBACK, VAULT, None)
    async with db.writing() as conn:
        await source_store.modify(conn, tenant, source_id, values)
    return tenant, source_id


def reconciler(db: Database, clock: FakeClock, http: httpx.AsyncClient) -> Reconciler:
    return Reconciler(
        db, db, reparser(ADAPTERS, "US"), VAULT, LOOPBACK, clock, interval=INTERVAL, window=86_400, http=http
    )


async def test_one_process_of_two_reconciles_a_source_each_period(
    db: Database, second: Database, double: str
) -> None:
    tenant, source_id = await with_pull(db, double, "g8-test-key")
    clock = FakeClock(NOW)
    async with httpx.AsyncClient(timeout=5) as http:
        processes = [reconciler(db, clock, http), reconciler(second, clock, http)]

        async def round_of_both() -> list[str]:
            done = await asyncio.gather(*(p.run_once() for p in processes))
            return [r.source_id for reports in done for r in reports if r.source_id == source_id]

        first = await round_of_both()
        assert first == [source_id]  # one of the two ran it
        assert (await call_data(db, tenant))["rm_periodic"]["status"] == "completed"
        assert await round_of_both() == []  # not due again within the period
        clock.advance(INTERVAL - 1)
        assert await round_of_both() == []
        clock.advance(1)
        assert await round_of_both() == [source_id]  # the next period: once again, by one of them


async def test_a_failing_source_does_not_stop_the_others(db: Database, double: str) -> None:
    _, refused = await with_pull(db, double, "a-revoked-key")
    tenant, working = await with_pull(db, double, "g8-test-key")
    async with httpx.AsyncClient(timeout=5) as http:
        reports = await reconciler(db, FakeClock(NOW), http).run_once()
    ran = {r.source_id for r in reports}
    assert working in ran
    assert refused not in ran  # the vendor refused its token: logged, and the round went on
    assert "rm_periodic" in await call_data(db, tenant)


def test_serve_runs_the_pull_loops_and_stops_them(sqlite_url: str) -> None:
    """With the loops on (the defaults of ``serve``), the app starts them with its worker and stops them."""
    from contextlib import closing

    from tests.conftest import make_settings, start_gateway

    settings = make_settings(sqlite_url, reconcile_seconds=900, hydrate_poll_seconds=0.05)

    async def running() -> set[str]:
        return {task.get_name() for task in asyncio.all_tasks()}

    with closing(start_gateway(settings)) as started:
        live = next(started)
        assert live.client.get("/healthz").status_code == 200
        portal = live.client.portal
        assert portal is not None
        assert {"callgate-reconcile", "callgate-hydrate"} <= portal.call(running)
