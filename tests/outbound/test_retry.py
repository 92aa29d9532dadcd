"""The retry policy, pure: schedule with jitter, Retry-After clamps and floors, 410, exhaustion, disabling."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.outbound.retry import Outcome, Policy, Verdict, decide, parse_retry_after, should_disable

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
POLICY = Policy()


def delay(attempts: int, outcome: Outcome, seed: int = 0) -> float:
    decision = decide(POLICY, attempts, outcome, NOW, random.Random(seed))
    assert decision.verdict is Verdict.RETRY
    assert decision.next_attempt_at is not None
    return (decision.next_attempt_at - NOW).total_seconds()


@pytest.mark.parametrize("code", [200, 201, 204, 299])
def test_2xx_is_done(code: int) -> None:
    assert decide(POLICY, 1, Outcome(status_code=code), NOW, random.Random()).verdict is Verdict.SUCCEEDED


def test_410_is_gone_at_any_attempt() -> None:
    assert decide(POLICY, 1, Outcome(status_code=410), NOW, random.Random()).verdict is Verdict.GONE


@given(
    attempts=st.integers(1, 7), seed=st.integers(0, 2**32), code=st.sampled_from([500, 301, 400, 404, None])
)
def test_plain_failures_follow_the_schedule_within_jitter(attempts: int, seed: int, code: int | None) -> None:
    outcome = Outcome(status_code=code, error=None if code else "ConnectError")
    wait = delay(attempts, outcome, seed)
    assert 0.8 * POLICY.schedule[attempts] <= wait <= 1.2 * POLICY.schedule[attempts]


def test_the_schedule_is_exhausted_after_eight_attempts() -> None:
    assert decide(POLICY, 8, Outcome(status_code=500), NOW, random.Random()).verdict is Verdict.DEAD
    assert decide(POLICY, 7, Outcome(status_code=500), NOW, random.Random()).verdict is Verdict.RETRY


@pytest.mark.parametrize("code", [429, 502, 503, 504])
def test_throttling_waits_at_least_a_minute(code: int) -> None:
    assert delay(1, Outcome(status_code=code)) == 60  # scheduled ~5 s, floored
    assert delay(1, Outcome(timed_out=True, error="timeout")) == 60


@given(seed=st.integers(0, 2**32), asked=st.integers(0, 100_000))
def test_retry_after_is_clamped_to_scheduled_and_twice_scheduled(seed: int, asked: int) -> None:
    attempts = 3  # scheduled 30 min
    scheduled = POLICY.schedule[attempts] * random.Random(seed).uniform(0.8, 1.2)
    wait = delay(attempts, Outcome(status_code=429, retry_after=str(asked)), seed)
    assert wait == pytest.approx(min(max(asked, scheduled), 2 * scheduled))


def test_retry_after_as_an_http_date() -> None:
    when = NOW + timedelta(seconds=2500)
    assert parse_retry_after(format_datetime(when, usegmt=True), NOW) == 2500
    wait = delay(3, Outcome(status_code=503, retry_after=format_datetime(when, usegmt=True)))
    scheduled = POLICY.schedule[3] * random.Random(0).uniform(0.8, 1.2)
    assert wait == pytest.approx(max(2500, scheduled))


@pytest.mark.parametrize("raw", [None, "", "soon", "-5", "Mon, 99 Foo 2026"])
def test_unreadable_retry_after_is_ignored(raw: str | None) -> None:
    assert parse_retry_after(raw, NOW) is None
    assert delay(1, Outcome(status_code=429, retry_after=raw)) == 60


def test_retry_after_in_the_past_is_zero() -> None:
    assert parse_retry_after(format_datetime(NOW - timedelta(hours=1), usegmt=True), NOW) == 0


def test_five_days_of_failure_disables() -> None:
    assert not should_disable(POLICY, None, NOW)
    assert not should_disable(POLICY, NOW - timedelta(days=4, hours=23), NOW)
    assert should_disable(POLICY, NOW - timedelta(days=5), NOW)
