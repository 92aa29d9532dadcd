"""Prometheus metrics: what came in, how fast it was stored, what went out, and what waits.

One ``Metrics`` per app (its own ``CollectorRegistry``, so two apps in one process - the tests - never
share counters). Counters and histograms are updated where things happen (the hook, the writer, the
worker); the gauges of stored state (outbox depth and oldest pending age per endpoint kind, disabled
endpoints, open quarantine) are read from the database when ``/metrics`` is scraped. Labels are vendors,
outcomes and kinds only: never a tenant, an id, a URL or a secret.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from gateway.store import deliveries as delivery_store
from gateway.store import events as event_store
from gateway.store import subscriptions as subscription_store
from gateway.store.db import Database

CONTENT_TYPE = CONTENT_TYPE_LATEST

# ingest answers in milliseconds; a slow disk or a lock shows in the upper buckets
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Stored state at scrape time, per endpoint kind (``subscription`` or ``crm``)."""

    pending: dict[str, int] = field(default_factory=dict)
    oldest_pending_seconds: dict[str, float] = field(default_factory=dict)
    endpoints_disabled: int = 0
    quarantine_open: int = 0


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.webhooks = Counter(
            "callgate_webhooks", "Webhooks received, by vendor and outcome", ["vendor", "outcome"], registry=r
        )
        self.ingest_seconds = Histogram(
            "callgate_ingest_seconds",
            "From request to answer of a webhook (verify, parse, commit)",
            ["vendor"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.batch_jobs = Histogram(
            "callgate_writer_batch_jobs", "Units of work per group commit", buckets=BATCH_BUCKETS, registry=r
        )
        self.attempts = Counter(
            "callgate_delivery_attempts",
            "Delivery attempts by endpoint kind and what was decided",
            ["kind", "outcome"],
            registry=r,
        )
        self.yielded = Counter(
            "callgate_worker_yield_seconds",
            "Seconds serve's in-process worker waited for saturated ingest before claiming",
            registry=r,
        )
        self.pending = Gauge(
            "callgate_outbox_pending", "Deliveries waiting, by endpoint kind", ["kind"], registry=r
        )
        self.oldest = Gauge(
            "callgate_outbox_oldest_pending_seconds",
            "Age of the oldest waiting delivery, by endpoint kind",
            ["kind"],
            registry=r,
        )
        self.disabled = Gauge("callgate_endpoints_disabled", "Subscriptions disabled by failures", registry=r)
        self.quarantine = Gauge("callgate_quarantine_open", "Quarantined bodies not yet replayed", registry=r)
        self._webhook_children: dict[tuple[str, str], tuple[Counter, Histogram]] = {}
        for kind in ("subscription", "crm"):  # present from the start, so dashboards see zeros
            self.pending.labels(kind).set(0)
            self.oldest.labels(kind).set(0)

    def webhook(self, vendor: str, outcome: str, seconds: float) -> None:
        # a labelled child is looked up under the metric's lock each time; there are a few dozen: kept
        counted = self._webhook_children.get((vendor, outcome))
        if counted is None:
            counted = self._webhook_children[(vendor, outcome)] = (
                self.webhooks.labels(vendor, outcome),
                self.ingest_seconds.labels(vendor),
            )
        counted[0].inc()
        counted[1].observe(seconds)

    def batch(self, jobs: int) -> None:
        self.batch_jobs.observe(jobs)

    def attempt(self, kind: str, outcome: str) -> None:
        self.attempts.labels(kind, outcome).inc()

    def worker_yielded(self, seconds: float) -> None:
        self.yielded.inc(seconds)

    def render(self, snapshot: Snapshot) -> bytes:
        for kind in ("subscription", "crm"):
            self.pending.labels(kind).set(snapshot.pending.get(kind, 0))
            self.oldest.labels(kind).set(snapshot.oldest_pending_seconds.get(kind, 0.0))
        self.disabled.set(snapshot.endpoints_disabled)
        self.quarantine.set(snapshot.quarantine_open)
        return bytes(generate_latest(self.registry))


async def snapshot(db: Database, now: datetime) -> Snapshot:
    """The stored state the gauges show, read at scrape time (three small aggregate queries)."""
    async with db.reading() as conn:
        pending = await delivery_store.pending_by_kind(conn)
        disabled = await subscription_store.count_disabled(conn)
        quarantined = await event_store.count_open_quarantine(conn)
    return Snapshot(
        pending={kind: count for kind, (count, _) in pending.items()},
        oldest_pending_seconds={
            kind: max((now - oldest).total_seconds(), 0.0) for kind, (_, oldest) in pending.items() if oldest
        },
        endpoints_disabled=disabled,
        quarantine_open=quarantined,
    )
