"""What the request handlers share. Built once by ``gateway.app.create_app`` (the composition root)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from itsdangerous import URLSafeSerializer

from gateway.clock import Clock
from gateway.config import Settings
from gateway.inbound import InboundAdapter, Reparse
from gateway.metrics import Metrics
from gateway.outbound.crm import CrmRuntime
from gateway.outbound.ssrf import TargetPolicy
from gateway.outbound.worker import Worker
from gateway.sources import SourceCache
from gateway.store.db import Database
from gateway.writer import Writer


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
    crm: CrmRuntime
    targets: TargetPolicy = field(default_factory=TargetPolicy)
    worker: Worker | None = None  # the in-process outbox worker, when serve runs one
    metrics: Metrics = field(default_factory=Metrics)

    def wake_worker(self) -> None:
        """After a commit that enqueued deliveries: the in-process worker claims them at once."""
        if self.worker is not None:
            self.worker.wake()
