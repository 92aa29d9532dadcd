"""The retry policy, pure: what to do after one delivery attempt.

The contract (architecture.md, "Delivery semantics"): the schedule immediately, 5 s, 5 min, 30 min, 2 h, 5 h,
10 h, 10 h with ±20 % jitter; 2xx is done; 3xx is a failure (redirects are not followed); 410 disables the
endpoint; 429/502/503/504 throttle: ``Retry-After`` (seconds or an HTTP date) is honoured, clamped to
[scheduled, 2x scheduled] so it can only lengthen a wait, and never less than 60 s (timeouts too). When the
schedule is exhausted the delivery is dead. An endpoint failing continuously for 5 days is disabled.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from enum import StrEnum

THROTTLED = frozenset({429, 502, 503, 504})


class Verdict(StrEnum):
    SUCCEEDED = "succeeded"
    RETRY = "retry"
    DEAD = "dead"  # schedule exhausted
    GONE = "gone"  # 410: the endpoint asked to be removed; the delivery is dead and the endpoint disabled


@dataclass(frozen=True, slots=True)
class Policy:
    schedule: Sequence[float] = (0, 5, 300, 1800, 7200, 18_000, 36_000, 36_000)
    jitter: float = 0.2
    throttle_floor: float = 60.0
    disable_after: float = 5 * 86_400


@dataclass(frozen=True, slots=True)
class Outcome:
    """One attempt as the worker saw it: a status code, or an error (timeout, refused, blocked)."""

    status_code: int | None = None
    error: str | None = None
    timed_out: bool = False
    retry_after: str | None = None  # the raw header


@dataclass(frozen=True, slots=True)
class Decision:
    verdict: Verdict
    next_attempt_at: datetime | None = None
    delay_seconds: float | None = None


def parse_retry_after(raw: str | None, now: datetime) -> float | None:
    """Seconds to wait: ``Retry-After`` as delta-seconds or an HTTP date. None when absent or unreadable."""
    if raw is None:
        return None
    raw = raw.strip()
    if raw.isdigit():
        return float(raw)
    try:
        when = parsedate_to_datetime(raw)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


def decide(policy: Policy, attempts: int, outcome: Outcome, now: datetime, rng: random.Random) -> Decision:
    """``attempts`` counts the attempts made so far in this schedule, including the one just made."""
    code = outcome.status_code
    if code is not None and 200 <= code < 300:
        return Decision(Verdict.SUCCEEDED)
    if code == 410:
        return Decision(Verdict.GONE)
    if attempts >= len(policy.schedule):
        return Decision(Verdict.DEAD)
    scheduled = policy.schedule[attempts] * rng.uniform(1 - policy.jitter, 1 + policy.jitter)
    delay = scheduled
    if outcome.timed_out or code in THROTTLED:
        asked = parse_retry_after(outcome.retry_after, now)
        if asked is not None:
            delay = min(max(asked, scheduled), 2 * scheduled)
        delay = max(delay, policy.throttle_floor)
    return Decision(Verdict.RETRY, now + timedelta(seconds=delay), delay)


def should_disable(policy: Policy, failing_since: datetime | None, now: datetime) -> bool:
    """Continuous failure for ``disable_after`` seconds (no success since ``failing_since``)."""
    return failing_since is not None and (now - failing_since).total_seconds() >= policy.disable_after
