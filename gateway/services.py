"""What the request handlers share. Built once by ``gateway.app.create_app`` (the composition root)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from dataclasses import dataclass, field

from itsdangerous import URLSafeSerializer, URLSafeTimedSerializer

from gateway.clock import Clock
from gateway.config import Settings
from gateway.inbound import InboundAdapter, Reparse
from gateway.metrics import Metrics
from gateway.outbound.crm import CrmRuntime
from gateway.outbound.ssrf import TargetPolicy
from gateway.outbound.worker import Worker
from gateway.pull.recordings import PlayableLinks, RecordingLinks
from gateway.sources import SourceCache
from gateway.store.db import Database
from gateway.writer import Writer


class Changes:
    """Wakes this process's live streams (``GET /v1/stream``) when it stored a change, so they need not
    wait for their next poll. Waiters time out on their own: other processes' changes come by the poll."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def notify(self) -> None:
        self._event.set()
        self._event = asyncio.Event()

    async def wait(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._event.wait()


@dataclass(slots=True)
class Services:
    settings: Settings
    db: Database
    writer: Writer
    sources: SourceCache
    adapters: Mapping[str, InboundAdapter]
    clock: Clock
    reparse: Reparse
    cursors: URLSafeSerializer
    portal: URLSafeTimedSerializer  # signs portal links (gateway.api.portal)
    console: URLSafeTimedSerializer  # signs the web console's session cookies (gateway.console.session)
    recordings: URLSafeTimedSerializer  # signs shareable recording links (gateway.api.recordings)
    crm: CrmRuntime
    targets: TargetPolicy = field(default_factory=TargetPolicy)
    worker: Worker | None = None  # the in-process outbox worker, when serve runs one
    metrics: Metrics = field(default_factory=Metrics)
    changes: Changes = field(default_factory=Changes)
    playable: PlayableLinks = field(default_factory=PlayableLinks)  # fresh vendor recording links, in memory
    recording_links: RecordingLinks | None = None  # the gateway's own, in what is relayed

    def wake_worker(self) -> None:
        """After a commit that enqueued deliveries: the in-process worker claims them at once."""
        if self.worker is not None:
            self.worker.wake()
