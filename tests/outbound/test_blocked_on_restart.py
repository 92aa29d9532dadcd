"""A gateway restarted without the setting that allowed a loopback receiver says so: at start (a warning
with the fix) and in each blocked delivery's error."""

from __future__ import annotations

import asyncio
from collections.abc import MutableMapping
from typing import Any

from structlog.testing import capture_logs

from gateway.outbound.ssrf import BlockedTarget, TargetPolicy, blocked_error
from gateway.store.db import Database
from gateway.subscriptions import warn_blocked_targets
from tests.conftest import make_settings, start_gateway
from tests.helpers import FIXTURES, source_headers


def test_pending_deliveries_to_a_now_refused_host_are_reported_at_start(db_url: str) -> None:
    settings = make_settings(db_url, allowed_target_cidrs=["127.0.0.0/8"], worker=False)
    running = start_gateway(settings)
    gateway = next(running)
    try:
        response = gateway.client.post(
            "/v1/subscriptions", json={"url": "http://127.0.0.1:9/hook?token=s3cret"}, headers=gateway.headers
        )
        assert response.status_code == 201, response.text
        source = gateway.create_source("graph8")
        body = (FIXTURES / "graph8" / "call_completed.json").read_bytes()
        assert gateway.post_hook(source, body, source_headers(source, body)).status_code == 202
    finally:
        running.close()

    async def check(policy: TargetPolicy) -> tuple[dict[str, str], list[MutableMapping[str, Any]]]:
        db = Database(db_url)
        try:
            with capture_logs() as logs:
                refused = await warn_blocked_targets(db, policy)
            return refused, logs
        finally:
            await db.dispose()

    refused, logs = asyncio.run(check(TargetPolicy.build(False, [])))  # restarted without the setting
    assert list(refused) == ["127.0.0.1"]
    (warning,) = [e for e in logs if e["event"] == "blocked_targets"]
    assert warning["log_level"] == "warning"
    assert "CALLGATE_ALLOWED_TARGET_CIDRS" in warning["fix"]
    assert "s3cret" not in str(warning)  # hosts only: a URL's query may hold a token

    refused, logs = asyncio.run(check(TargetPolicy.build(False, ["127.0.0.0/8"])))
    assert refused == {}
    assert not [e for e in logs if e["event"] == "blocked_targets"]


def test_a_blocked_private_delivery_error_says_how_to_allow_it() -> None:
    private = blocked_error(BlockedTarget("127.0.0.1 resolves to a non-public address (127.0.0.1)"))
    assert private.startswith("blocked: ")
    assert "CALLGATE_ALLOWED_TARGET_CIDRS" in private
    unresolvable = blocked_error(BlockedTarget("nowhere.invalid does not resolve"))
    assert "CALLGATE_ALLOWED_TARGET_CIDRS" not in unresolvable
