"""The composition root builds every runtime object from the settings, so a setting holds everywhere."""

from __future__ import annotations

import asyncio

from sqlalchemy import text
from sqlalchemy.engine import Connection
from starlette.testclient import TestClient

from gateway import app as root
from gateway.app import create_app
from gateway.services import Services
from tests.conftest import make_settings


def _busy_timeout(conn: Connection) -> int:
    return int(conn.exec_driver_sql("PRAGMA busy_timeout").scalar_one())


def test_serve_honours_the_sqlite_busy_timeout(sqlite_url: str) -> None:
    """``serve`` once built its database by hand and dropped this setting (every lock wait was 10 s)."""
    settings = make_settings(sqlite_url, sqlite_busy_timeout_ms=200, worker=False)
    app = create_app(settings, configure_logging=False)
    with TestClient(app) as client:
        services: Services = client.app_state["services"]

        async def read() -> int:
            async with services.db.reading() as conn:
                return int((await conn.execute(text("PRAGMA busy_timeout"))).scalar_one())

        async def write() -> int:
            async with services.db.writing() as conn:
                return int((await conn.execute(text("PRAGMA busy_timeout"))).scalar_one())

        assert client.portal is not None
        assert client.portal.call(read) == 200  # the API's reads
        assert client.portal.call(write) == 200  # async writes (sources, keys)
        assert client.portal.call(services.db.run_write, _busy_timeout) == 200  # the group-commit batches


def test_every_runtime_object_comes_from_the_settings(sqlite_url: str) -> None:
    settings = make_settings(
        sqlite_url,
        writer_max_batch=7,
        worker_concurrency=3,
        worker_batch=11,
        worker_lease_seconds=9,
        retry_schedule_seconds=[0, 1],
        throttle_floor_seconds=2,
        delivery_timeout_seconds=4,
        allowed_target_cidrs=["127.0.0.0/8"],
    )
    config = root.worker_config(settings)
    assert (config.concurrency, config.batch, config.lease_seconds, config.timeout) == (3, 11, 9, 4)
    assert tuple(config.policy.schedule) == (0, 1)
    assert config.policy.throttle_floor == 2
    assert root.targets(settings) == config.targets
    db = root.database(settings)
    try:
        assert root.writer(settings, db)._max_batch == 7
    finally:
        asyncio.run(db.dispose())


def test_serve_freezes_what_startup_made_and_tests_do_not(sqlite_url: str) -> None:
    """``serve`` (``freeze_heap=True``) moves startup's objects out of the cyclic collector's reach once the
    lifespan is up; an app built without it, as every other test builds one, leaves the collector alone."""
    import gc

    gc.unfreeze()
    settings = make_settings(sqlite_url, worker=False)
    with TestClient(create_app(settings, configure_logging=False)):
        assert gc.get_freeze_count() == 0
    try:
        with TestClient(create_app(settings, configure_logging=False, freeze_heap=True)):
            assert gc.get_freeze_count() > 10_000  # the modules, adapters and pools, at least
    finally:
        gc.unfreeze()
