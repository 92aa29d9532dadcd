"""One loopback server per test module, serving the double the current test built (``mount``), and a
plain ``httpx`` client for the pull clients (the product injects one whose transport checks SSRF)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from tests.doubles import serving
from tests.doubles.vendors import Swappable


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[Swappable, str]]:
    swappable = Swappable()
    with serving(swappable) as url:
        yield swappable, url


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=5) as client:
        yield client
