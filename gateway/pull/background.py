"""What the worker processes' read-API loops share (``Reconciler``, ``Hydrator``): one HTTP client whose
every request is checked against the SSRF policy, as when a source's base URL was saved, and a task that
starts with the worker and is cancelled when it stops."""

from __future__ import annotations

import asyncio
import contextlib

import httpx

from gateway.outbound.ssrf import GuardedTransport, TargetPolicy


class PullLoop:
    name = "callgate-pull"

    def __init__(self, targets: TargetPolicy, http: httpx.AsyncClient | None) -> None:
        self._own_http = http is None
        self.http = http or httpx.AsyncClient(
            transport=GuardedTransport(targets), timeout=30, follow_redirects=False
        )
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name=self.name)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._own_http:
            await self.http.aclose()

    async def _loop(self) -> None:
        raise NotImplementedError
