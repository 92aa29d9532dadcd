"""Real databases for every storing test: SQLite always, PostgreSQL when CALLGATE_TEST_DATABASE_URL is set.

PostgreSQL runs on a database created for this session (and dropped after), so the suite never touches
the data already in the server. SQLite gets a fresh file per test, copied from one migrated template.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Generator, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import make_url
from starlette.testclient import TestClient

from gateway.app import create_app
from gateway.config import Settings
from gateway.store.db import Database
from gateway.store.migrate import upgrade
from gateway.writer import Writer

PG_URL = os.environ.get("CALLGATE_TEST_DATABASE_URL")
BACKENDS = ["sqlite", *(["postgres"] if PG_URL else [])]


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "callgate.db"
    upgrade(f"sqlite+aiosqlite:///{path}")
    return path


async def _pg_admin(sql: str) -> None:
    import asyncpg

    assert PG_URL is not None
    url = make_url(PG_URL)
    conn = await asyncpg.connect(
        host=url.host, port=url.port or 5432, user=url.username, password=url.password, database=url.database
    )
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    if not PG_URL:
        pytest.skip("CALLGATE_TEST_DATABASE_URL is not set")
    name = f"callgate_test_{uuid.uuid4().hex[:12]}"
    asyncio.run(_pg_admin(f'CREATE DATABASE "{name}"'))
    url = make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
    upgrade(url)
    yield url
    asyncio.run(_pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(params=BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_path: Path, sqlite_template: Path) -> str:
    if request.param == "postgres":
        return str(request.getfixturevalue("postgres_url"))
    path = tmp_path / "callgate.db"
    shutil.copy(sqlite_template, path)
    return f"sqlite+aiosqlite:///{path}"


@pytest.fixture
def sqlite_url(tmp_path: Path, sqlite_template: Path) -> str:
    path = tmp_path / "callgate.db"
    shutil.copy(sqlite_template, path)
    return f"sqlite+aiosqlite:///{path}"


def make_settings(db_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": db_url,
        "public_url": "http://testserver",
        "bootstrap_tenant": False,
        "source_cache_seconds": 0,
        "log_format": "json",
        "reconcile_seconds": 0,  # tests/pull/test_periodic.py runs it on purpose
        "hydrate_poll_seconds": 0,  # tests/pull/test_hydrate.py runs it on purpose
        **overrides,
    }
    return Settings(**values)


class Gateway:
    """A running app (lifespan and all) with a fresh tenant and its key."""

    def __init__(self, client: TestClient, operator_key: str) -> None:
        self.client = client
        self.operator_key = operator_key
        response = client.post("/v1/tenants", json={"name": "acme"}, headers=self.operator_headers)
        assert response.status_code == 201, response.text
        self.tenant_id: str = response.json()["tenant_id"]
        self.api_key: str = response.json()["api_key"]

    @property
    def operator_headers(self) -> dict[str, str]:
        return {"authorization": f"Bearer {self.operator_key}"}

    @property
    def headers(self) -> dict[str, str]:
        return {"authorization": f"Bearer {self.api_key}"}

    def new_tenant(self, name: str = "other") -> tuple[str, dict[str, str]]:
        response = self.client.post("/v1/tenants", json={"name": name}, headers=self.operator_headers)
        assert response.status_code == 201, response.text
        return response.json()["tenant_id"], {"authorization": f"Bearer {response.json()['api_key']}"}

    def create_source(self, vendor: str, **body: Any) -> dict[str, Any]:
        response = self.client.post(
            "/v1/sources", json={"name": vendor, "vendor": vendor, **body}, headers=self.headers
        )
        assert response.status_code == 201, response.text
        result: dict[str, Any] = response.json()
        return result

    def post_hook(self, source: dict[str, Any], body: bytes, headers: dict[str, str]) -> Any:
        return self.client.post(f"/hooks/{source['id']}", content=body, headers=headers)

    def calls(self, **params: Any) -> list[dict[str, Any]]:
        response = self.client.get("/v1/calls", params=params, headers=self.headers)
        assert response.status_code == 200, response.text
        data: list[dict[str, Any]] = response.json()["data"]
        return data


def start_gateway(settings: Settings, **app_kwargs: Any) -> Generator[Gateway, None, None]:
    from gateway import auth
    from gateway.clock import system_clock
    from gateway.store.db import Database

    async def operator_key() -> str:
        db = Database(settings.database_url)
        try:
            return (await auth.create_api_key(db, None, "tests", system_clock)).api_key
        finally:
            await db.dispose()

    key = asyncio.run(operator_key())
    app = create_app(settings, configure_logging=False, **app_kwargs)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield Gateway(client, key)


@pytest.fixture
def gateway(db_url: str) -> Iterator[Gateway]:
    yield from start_gateway(make_settings(db_url))


@pytest.fixture
async def db(db_url: str) -> AsyncIterator[Database]:
    database = Database(db_url)
    yield database
    await database.dispose()


@pytest.fixture
async def writer(db: Database) -> AsyncIterator[Writer]:
    running = Writer(db, max_batch=64)
    running.start()
    yield running
    await running.stop()
