"""What the request handlers share. Built once by ``gateway.app.create_app`` (the composition root)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from itsdangerous import URLSafeSerializer

from adapters.base import InboundAdapter
from gateway.clock import Clock
from gateway.config import Settings
from gateway.ingest import Reparse
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
