"""Endpoint limits that hold across every worker process, decided inside the claim's transaction.

An endpoint (a subscription, or a CRM connection) is *governed* when it has a limit: a subscription's
``max_concurrency`` or ``rate_limit_per_second``; a CRM connection always (``crm_concurrency`` syncs in
flight and its kind's ``rate_per_second``). For those, a claim

- locks the endpoint's budget row (``endpoint_budgets``), so claims in other processes decide one after
  another (PostgreSQL row lock; SQLite has one writer anyway);
- counts the rows every worker holds for it right now (unexpired leases) and leases at most
  ``max_concurrency`` minus that, so the endpoint never sees more requests at once, however many workers
  run. A worker killed mid-request holds its slots until its leases expire, then they free themselves;
- hands each row a send slot from the rate budget (GCRA: slots 1/rate apart, never earlier than now,
  at most ``HORIZON`` ahead so no worker sits on rows it cannot send soon) and moves the budget on.

Ungoverned subscriptions (the common case) pay nothing of this: no budget row, no extra statement.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.engine import Connection

from gateway.store import deliveries as delivery_store

HORIZON = timedelta(seconds=1)  # how far ahead a claim hands out rate slots


def _endpoint(row: Mapping[Any, Any]) -> str:
    return str(row["subscription_id"] or row["connection_id"])


@dataclass(slots=True)
class EndpointLimits:
    now: datetime
    caps: dict[str, int] = field(default_factory=dict)  # governed endpoints with a concurrency cap
    rates: dict[str, float] = field(default_factory=dict)  # governed endpoints with a rate
    held: defaultdict[str, int] = field(default_factory=lambda: defaultdict(int))  # leased, any worker
    next_slot: dict[str, datetime | None] = field(default_factory=dict)
    moved: set[str] = field(default_factory=set)

    @classmethod
    def load(
        cls,
        conn: Connection,
        candidates: Sequence[Mapping[Any, Any]],
        now: datetime,
        crm_rates: Mapping[str, float],
    ) -> EndpointLimits:
        limits = cls(now)
        kinds: dict[str, str] = {}
        for row in candidates:
            name = _endpoint(row)
            if row["connection_id"] is not None:
                limits.caps[name] = int(row["max_concurrency"])
                rate = crm_rates.get(row["kind"])
                kinds[name] = "connection"
            else:
                if row["max_concurrency"] is None and row["rate_limit_per_second"] is None:
                    continue
                if row["max_concurrency"] is not None:
                    limits.caps[name] = int(row["max_concurrency"])
                rate = row["rate_limit_per_second"]
                kinds[name] = "subscription"
            if rate:
                limits.rates[name] = float(rate)
        if not kinds:
            return limits
        limits.next_slot = delivery_store.lock_budgets(conn, list(kinds))
        for kind in ("subscription", "connection"):
            ids = [name for name, k in kinds.items() if k == kind and name in limits.caps]
            limits.held.update(delivery_store.leased(conn, kind, ids, now))
        return limits

    def governs(self, endpoint: str) -> bool:
        return endpoint in self.caps or endpoint in self.rates

    def take(self, endpoint: str) -> datetime | None:
        """A slot for one more row of a governed endpoint: when it may be sent, or None (no room now)."""
        cap = self.caps.get(endpoint)
        if cap is not None and self.held[endpoint] >= cap:
            return None
        send_at = self.now
        rate = self.rates.get(endpoint)
        if rate is not None:
            slot = max(self.next_slot.get(endpoint) or self.now, self.now)
            if slot > self.now + HORIZON:
                return None
            self.next_slot[endpoint] = slot + timedelta(seconds=1 / rate)
            self.moved.add(endpoint)
            send_at = slot
        self.held[endpoint] += 1
        return send_at

    def save(self, conn: Connection) -> None:
        delivery_store.set_budgets(
            conn, {e: at for e in self.moved if (at := self.next_slot.get(e)) is not None}
        )
