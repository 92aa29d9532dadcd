"""The console's tests: a gateway whose deliveries stay as queued (no worker), loopback endpoints allowed."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.conftest import Gateway, make_settings, start_gateway


@pytest.fixture
def gateway(db_url: str) -> Iterator[Gateway]:
    yield from start_gateway(make_settings(db_url, worker=False, allowed_target_cidrs=["127.0.0.0/8"]))
