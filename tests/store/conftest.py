from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from gateway.store.db import Database
from gateway.writer import Writer


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
