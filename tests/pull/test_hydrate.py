"""Hydration end to end: a graph8 source with read-API settings receives only ``call.initiating`` and
``call.completed`` by webhook; the completed call's transcript and grade are scheduled in the ingest
transaction, pulled from the double by the worker side, applied as events of their own and relayed to a
subscriber. An empty transcript ends its pulls; a 429 waits as the vendor asks."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from gateway import auth
from gateway.app import ADAPTERS
from gateway.ingest import reparser
from gateway.outbound.ssrf import TargetPolicy
from gateway.pull.hydrate import Hydrator
from gateway.pull.parts import FIRST_DELAY
from gateway.store.db import Database
from gateway.store.tables import deliveries, pulls
from gateway.vault import Vault
from tests.conftest import Gateway, make_settings, start_gateway
from tests.doubles.vendors import Swappable
from tests.doubles.vendors.graph8 import State, app
from tests.helpers import FakeClock, source_headers
from tests.pull.converge import fixture_json

ROOM = "rm_5028106_1716647400"  # the graph8 fixture call
LOOPBACK = TargetPolicy.build(False, ["127.0.0.0/8"])


@pytest.fixture
def double(server: tuple[Swappable, str]) -> Iterator[tuple[State, str]]:
    swappable, url = server
    state = State(rate_per_second=None)
    state.calls[ROOM] = fixture_json("graph8", "call_completed")["data"]
    block = fixture_json("graph8", "call_transcript_ready")["data"]["transcript"]
    state.set_transcript(ROOM, block["transcript"], status=block["status"])
    state.set_grading(ROOM, fixture_json("graph8", "call_graded")["data"]["grading"])
    swappable.current = app(state)
    yield state, url
    swappable.current = None


@pytest.fixture
def live(db_url: str) -> Iterator[Gateway]:
    yield from start_gateway(make_settings(db_url, allowed_target_cidrs=["127.0.0.0/8"]))


def webhooks_then_hydrate(
    live: Gateway, db_url: str, url: str, rounds: int = 1, later: float = 0
) -> dict[str, Any]:
    """A graph8 source with pull settings and a subscription; the initiating and completed webhooks; then
    ``rounds`` hydration rounds, ``FIRST_DELAY`` (plus ``later`` seconds each round) after now."""
    source = live.create_source("graph8", pull={"base_url": url, "token": "g8-test-key", "org_id": "org_123"})
    made = live.client.post(
        "/v1/subscriptions",
        json={"url": "http://127.0.0.1:9/hook", "event_types": ["*"]},
        headers=live.headers,
    )
    assert made.status_code == 201, made.text
    for name in ("call_initiating", "call_completed"):
        body = json.dumps(fixture_json("graph8", name)).encode()
        assert live.post_hook(source, body, source_headers(source, body)).status_code == 202

    async def hydrate() -> list[int]:
        db = Database(db_url)
        try:
            vault = Vault.from_secret(await auth.secret_key(db, None))
            clock = FakeClock()
            clock.advance(FIRST_DELAY.total_seconds() + 1)
            async with httpx.AsyncClient(timeout=5) as http:
                runner = Hydrator(db, db, reparser(ADAPTERS, "US"), vault, LOOPBACK, clock, http=http)
                ran = []
                for _ in range(rounds):
                    ran.append(await runner.run_once())
                    clock.advance(later)
                return ran
        finally:
            await db.dispose()

    ran = asyncio.run(hydrate())
    (call,) = live.calls()
    return {"call": live.client.get(f"/v1/calls/{call['id']}", headers=live.headers).json(), "ran": ran}


async def _rows(db_url: str, table: Any, column: Any, tenant_id: str) -> list[Any]:
    db = Database(db_url)
    try:
        async with db.reading() as conn:
            query = select(column).where(table.c.tenant_id == tenant_id).order_by(table.c.id)
            return list((await conn.execute(query)).all())
    finally:
        await db.dispose()


def test_a_completed_calls_transcript_and_grade_are_pulled_and_relayed(
    live: Gateway, double: tuple[State, str], db_url: str
) -> None:
    _, url = double
    got = webhooks_then_hydrate(live, db_url, url, rounds=2)
    call = got["call"]
    assert got["ran"] == [2, 0]  # the transcript and the grade, once
    assert call["status"] == "completed"
    assert call["transcript"][0]["text"]
    assert call["grade"]["score"] == 0.82
    mine = {
        r.event_type for r in asyncio.run(_rows(db_url, deliveries, deliveries.c.event_type, live.tenant_id))
    }
    assert {"call.transcript_ready", "call.graded"} <= mine  # relayed like any change
    statuses = [r.status for r in asyncio.run(_rows(db_url, pulls, pulls.c.status, live.tenant_id))]
    assert statuses == ["done", "done"]


def test_an_empty_transcript_ends_its_pulls_and_a_429_waits(
    live: Gateway, double: tuple[State, str], db_url: str
) -> None:
    state, url = double
    state.set_transcript(ROOM, [], status="empty")
    state.faults.inject(
        429, {"error": {"code": "rate_limited"}}, {"Retry-After": "30"}, path_contains="grading"
    )
    got = webhooks_then_hydrate(live, db_url, url, rounds=3, later=31)
    assert got["ran"] == [2, 1, 0]  # both; then the grade again after the 30 s it was told to wait
    assert not got["call"].get("transcript")
    assert got["call"]["grade"]["score"] == 0.82


def test_a_pull_whose_credentials_cannot_be_opened_waits_and_does_not_stop_the_round(
    live: Gateway, double: tuple[State, str], db_url: str
) -> None:
    """The credentials key changed (``CALLGATE_CREDENTIALS_KEY`` rotated without re-saving the sources): each
    of the call's pulls is put back with the reason, and the round goes on."""
    _, url = double
    source = live.create_source("graph8", pull={"base_url": url, "token": "g8-test-key", "org_id": "org_123"})
    for name in ("call_initiating", "call_completed"):
        body = json.dumps(fixture_json("graph8", name)).encode()
        assert live.post_hook(source, body, source_headers(source, body)).status_code == 202

    async def hydrate_with_another_key() -> int:
        db = Database(db_url)
        try:
            clock = FakeClock()
            clock.advance(FIRST_DELAY.total_seconds() + 1)
            async with httpx.AsyncClient(timeout=5) as http:
                runner = Hydrator(
                    db, db, reparser(ADAPTERS, "US"), Vault(Vault.new_key()), LOOPBACK, clock, http=http
                )
                return await runner.run_once()
        finally:
            await db.dispose()

    assert asyncio.run(hydrate_with_another_key()) == 2
    rows = asyncio.run(_rows(db_url, pulls, pulls.c.status, live.tenant_id))
    assert [r.status for r in rows] == ["pending", "pending"]
    errors = asyncio.run(_rows(db_url, pulls, pulls.c.last_error, live.tenant_id))
    assert all("decrypted" in (r.last_error or "") for r in errors)
