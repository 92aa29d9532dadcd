"""Reconciliation end to end: a source with read-API settings, the graph8 double over loopback, webhooks
dropped on purpose, and ``reconcile_source`` / ``callgate reconcile`` restoring the calls the full webhook
stream makes - stored, deduplicated, merged by the state machine and relayed like any webhook."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from gateway import auth
from gateway import subscriptions as subscription_service
from gateway.app import ADAPTERS
from gateway.errors import ValidationFailed
from gateway.ingest import reparser
from gateway.outbound.ssrf import TargetPolicy
from gateway.pull.base import Window
from gateway.pull.service import reconcile_source
from gateway.pull.source import PullIn, stored_values
from gateway.store import sources as source_store
from gateway.store.db import Database
from gateway.store.tables import calls, deliveries
from gateway.vault import Vault
from tests.conftest import Gateway
from tests.doubles.vendors import Swappable
from tests.doubles.vendors.graph8 import State, app
from tests.pull.converge import fixture_json
from tests.store.helpers import ingest, new_source

pytestmark = pytest.mark.anyio

LOOPBACK = TargetPolicy.build(False, ["127.0.0.0/8"])
DAY = Window(datetime(2026, 5, 25, tzinfo=UTC), datetime(2026, 5, 26, tzinfo=UTC))
STREAM = ["call_initiating", "call_ringing", "call_in_progress", "call_completed"]
REPARSE = reparser(ADAPTERS, "US")
NOW = datetime(2026, 5, 25, 15, 0, tzinfo=UTC)


def renamed(name: str, room: str) -> bytes:
    """A fixture webhook of the fixture call, moved to room ``room`` (its own call)."""
    event = fixture_json("graph8", name)
    event["id"] = f"{event['id']}_{room}"
    event["data"]["room_name"] = room
    return json.dumps(event).encode()


@pytest.fixture
def double(server: tuple[Swappable, str]) -> Iterator[tuple[State, str]]:
    """The graph8 double holding two finished calls: ``rm_stuck`` and ``rm_dropped``."""
    swappable, url = server
    state = State(rate_per_second=None)
    record = fixture_json("graph8", "call_completed")["data"]
    for room in ("rm_stuck", "rm_dropped"):
        state.calls[room] = {**record, "room_name": room}
    swappable.current = app(state)
    yield state, url
    swappable.current = None


async def graph8_source(db: Database, vault: Vault, url: str) -> dict[str, Any]:
    tenant, source_id = await new_source(db, "graph8")
    pull = await stored_values(
        "graph8", PullIn(base_url=url, token="g8-test-key", org_id="org_123"), LOOPBACK, vault, None
    )
    async with db.writing() as conn:
        await source_store.modify(conn, tenant, source_id, pull)
        row = await source_store.get(conn, tenant, source_id)
    assert row is not None
    return dict(row)


async def call_data(db: Database, tenant_id: str) -> dict[str, dict[str, Any]]:
    async with db.reading() as conn:
        rows = (await conn.execute(select(calls).where(calls.c.tenant_id == tenant_id))).mappings().all()
    return {r["vendor_call_id"]: {"status": r["status"], **r["data"]} for r in rows}


async def test_reconcile_restores_the_calls_the_full_stream_makes(
    db: Database, double: tuple[State, str]
) -> None:
    _, url = double
    vault = Vault(Vault.new_key())
    source = await graph8_source(db, vault, url)
    tenant = source["tenant_id"]
    await subscription_service.create(
        db, LOOPBACK, NOW, tenant_id=tenant, url="http://127.0.0.1:9/hook", event_types=["call.*"]
    )
    # the webhooks of rm_stuck stopped after in_progress; rm_dropped's never came
    for name in STREAM[:3]:
        await ingest(db, tenant, source["id"], "graph8", renamed(name, "rm_stuck"), NOW)
    # what the whole stream makes, in another tenant
    full_tenant, full_source = await new_source(db, "graph8")
    for room in ("rm_stuck", "rm_dropped"):
        for name in STREAM:
            await ingest(db, full_tenant, full_source, "graph8", renamed(name, room), NOW)

    async with httpx.AsyncClient(timeout=5) as http:
        report = await reconcile_source(db, REPARSE, vault, http, source, DAY, lambda: NOW)
        again = await reconcile_source(db, REPARSE, vault, http, source, DAY, lambda: NOW)

    assert (report.listed, report.calls_created, report.calls_changed) == (2, 1, 1)
    assert await call_data(db, tenant) == await call_data(db, full_tenant)
    assert (again.listed, again.duplicates, again.calls_created, again.calls_changed) == (2, 2, 0, 0)
    async with db.reading() as conn:
        relayed = (
            await conn.execute(select(deliveries.c.event_type).where(deliveries.c.tenant_id == tenant))
        ).scalars()
        types = sorted(relayed)
    assert types.count("call.completed") == 2  # the caught-up call and the created one, relayed as usual


async def test_a_source_without_pull_settings_cannot_be_reconciled(db: Database) -> None:
    tenant, source_id = await new_source(db, "graph8")
    async with db.reading() as conn:
        source = await source_store.get(conn, tenant, source_id)
    assert source is not None
    async with httpx.AsyncClient() as http:
        with pytest.raises(ValidationFailed):
            await reconcile_source(db, REPARSE, Vault(Vault.new_key()), http, source, DAY, lambda: NOW)


# --- the settings through the API -------------------------------------------------------------------------


def test_pull_settings_are_write_only_and_checked(gateway: Gateway) -> None:
    h = gateway.headers
    made = gateway.client.post(
        "/v1/sources",
        json={
            "name": "g8",
            "vendor": "graph8",
            "pull": {"base_url": "https://93.184.215.14", "token": "g8-secret-token", "org_id": "org_9"},
        },
        headers=h,
    )
    assert made.status_code == 201, made.text
    assert made.json()["pull"] == {"base_url": "https://93.184.215.14", "org_id": "org_9", "token_set": True}
    source_id = made.json()["id"]
    for shown in (
        made,
        gateway.client.get(f"/v1/sources/{source_id}", headers=h),
        gateway.client.get("/v1/sources", headers=h),
    ):
        assert "g8-secret-token" not in shown.text

    def refused(body: dict[str, Any], field: str, path: str = "/v1/sources", method: str = "POST") -> None:
        answer = gateway.client.request(method, path, json=body, headers=h)
        assert answer.status_code == 422, answer.text
        assert answer.json()["error"]["field"] == field

    refused(
        {"name": "g8", "vendor": "graph8", "pull": {"base_url": "https://93.184.215.16", "token": "t"}},
        "pull.org_id",
    )
    refused(
        {"name": "q", "vendor": "qualifier", "pull": {"base_url": "https://93.184.215.16", "token": "t"}},
        "pull",
    )
    refused({"name": "v", "vendor": "voiceapi", "pull": {"base_url": "https://93.184.215.16"}}, "pull.token")
    metadata = {
        "name": "v",
        "vendor": "voiceapi",
        "pull": {"base_url": "http://169.254.169.254/", "token": "t"},
    }
    refused(metadata, "pull.base_url")  # SSRF: the cloud metadata address

    # a change without the token keeps it; null removes the settings
    kept = gateway.client.patch(
        f"/v1/sources/{source_id}",
        json={"pull": {"base_url": "https://93.184.215.15", "org_id": "org_9"}},
        headers=h,
    )
    assert kept.status_code == 200, kept.text
    assert kept.json()["pull"] == {"base_url": "https://93.184.215.15", "org_id": "org_9", "token_set": True}
    cleared = gateway.client.patch(f"/v1/sources/{source_id}", json={"pull": None}, headers=h)
    assert cleared.json()["pull"] is None
    untouched = gateway.client.patch(f"/v1/sources/{source_id}", json={"name": "renamed"}, headers=h)
    assert untouched.json()["pull"] is None


# --- the command --------------------------------------------------------------------------------------------


def test_callgate_reconcile_recovers_a_call_whose_webhooks_were_never_sent(
    sqlite_url: str, double: tuple[State, str]
) -> None:
    _, url = double

    async def prepare() -> dict[str, Any]:
        from gateway.store.migrate import upgrade_async

        await upgrade_async(sqlite_url)
        db = Database(sqlite_url)
        try:
            vault = Vault.from_secret(await auth.secret_key(db, None))  # the key the command derives too
            return await graph8_source(db, vault, url)
        finally:
            await db.dispose()

    source = asyncio.run(prepare())
    env = {
        **os.environ,
        "CALLGATE_DATABASE_URL": sqlite_url,
        "CALLGATE_ALLOWED_TARGET_CIDRS": '["127.0.0.0/8"]',
    }
    command = [sys.executable, "-m", "gateway.cli", "reconcile", "--source", source["id"]]
    window = ["--since", "2026-05-25T00:00:00Z", "--until", "2026-05-26T00:00:00Z"]
    done = subprocess.run([*command, *window, "--json"], env=env, capture_output=True, check=True, timeout=60)
    report = json.loads(done.stdout)
    assert (report["listed"], report["calls_created"], report["calls_changed"]) == (2, 2, 0)
    human = subprocess.run(
        [*command, *window], env=env, capture_output=True, text=True, check=True, timeout=60
    )
    assert "2 listed (1 page(s)): 0 created, 0 caught up, 2 already so" in human.stdout
    assert "g8-test-key" not in human.stdout + human.stderr + done.stdout.decode() + done.stderr.decode()


# --- LiveKit: the rooms open now, and the stored calls whose rooms ended unannounced -----------------------


async def test_livekit_reconcile_finds_unannounced_rooms_and_ends_calls_whose_room_is_gone(
    db: Database, server: tuple[Swappable, str]
) -> None:
    from tests.doubles.vendors import livekit as lk_double
    from tests.pull.converge import fixture
    from tests.pull.test_livekit import AFTER, KEY, SECRET, seed_fixture_room

    swappable, url = server
    state = lk_double.State()
    swappable.current = lk_double.app(state)
    try:
        name, _ = seed_fixture_room(state)
        vault = Vault(Vault.new_key())
        tenant, source_id = await new_source(db, "livekit")
        pull = await stored_values("livekit", PullIn(base_url=url), LOOPBACK, vault, None)
        keys = {"verification": {"scheme": "livekit", "keys": {KEY: SECRET}, "leeway_seconds": 60}}
        async with db.writing() as conn:
            await source_store.modify(conn, tenant, source_id, {**pull, **keys})
            source = dict(await source_store.get(conn, tenant, source_id) or {})
        # what the two webhooks make, in another tenant
        full_tenant, full_source = await new_source(db, "livekit")
        for name_ in ("participant_joined_sip_inbound", "room_finished"):
            await ingest(db, full_tenant, full_source, "livekit", fixture("livekit", name_), AFTER)

        async with httpx.AsyncClient(timeout=5) as http:
            first = await reconcile_source(db, REPARSE, vault, http, source, DAY, lambda: AFTER)
            # one SIP participant (the agent carries no call); its call, open, is looked up again: a duplicate
            assert (first.calls_created, first.duplicates, first.rooms_checked) == (1, 1, 1)
            state.finish_room(name)  # the room ends; its webhook is lost
            second = await reconcile_source(db, REPARSE, vault, http, source, DAY, lambda: AFTER)
        assert (second.rooms_checked, second.calls_changed) == (1, 1)
        assert await call_data(db, tenant) == await call_data(db, full_tenant)
        assert (await call_data(db, tenant))["SCL_example"]["status"] == "completed"
    finally:
        swappable.current = None


async def test_livekit_pull_settings_take_no_token(db: Database) -> None:
    with pytest.raises(ValidationFailed) as refused:
        await stored_values(
            "livekit",
            PullIn(base_url="http://127.0.0.1:7880", token="x"),
            LOOPBACK,
            Vault(Vault.new_key()),
            None,
        )
    assert refused.value.field == "pull.token"


async def test_a_429_waits_as_the_vendor_asks_and_a_long_wait_ends_the_run(
    db: Database, double: tuple[State, str]
) -> None:
    from gateway.errors import VendorRetryLater
    from gateway.pull.service import MAX_WAIT

    state, url = double
    vault = Vault(Vault.new_key())
    source = await graph8_source(db, vault, url)
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    state.faults.inject(429, {"error": {"code": "rate_limited"}}, {"Retry-After": "3"}, times=2)
    async with httpx.AsyncClient(timeout=5) as http:
        report = await reconcile_source(db, REPARSE, vault, http, source, DAY, lambda: NOW, sleep)
        assert waits == [3.0, 3.0]  # the page was asked for again after each wait
        assert report.calls_created == 2
        state.faults.inject(429, {"error": {"code": "rate_limited"}}, {"Retry-After": str(int(MAX_WAIT) + 1)})
        with pytest.raises(VendorRetryLater):  # longer than a run waits: the next period tries again
            await reconcile_source(db, REPARSE, vault, http, source, DAY, lambda: NOW, sleep)
    assert waits == [3.0, 3.0]
