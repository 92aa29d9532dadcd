"""A client-side token bucket per endpoint (a subscription's ``rate_limit_per_second``, a CRM connection's
burst limit)."""

from __future__ import annotations

import asyncio
import time


class RateLimiter:
    """A token bucket per endpoint (``rate`` deliveries per second, bursts of one second's worth)."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self.tokens = max(rate, 1.0)
        self.updated = time.monotonic()
        self.lock = asyncio.Lock()

    async def acquire(self) -> None:
        async with self.lock:
            while True:
                now = time.monotonic()
                self.tokens = min(max(self.rate, 1.0), self.tokens + (now - self.updated) * self.rate)
                self.updated = now
                if self.tokens >= 1:
                    self.tokens -= 1
                    return
                await asyncio.sleep((1 - self.tokens) / self.rate)
