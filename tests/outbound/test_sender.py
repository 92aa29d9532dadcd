"""Senders against a real loopback endpoint: each answer reaches the request that asked for it, and an
endpoint never gets more connections than it is allowed, however its pools are split."""

from __future__ import annotations

import asyncio
import os
import signal
import threading

import pytest

from gateway.outbound.sender import (
    SHARD_CONNECTIONS,
    UNANSWERED,
    InlineSender,
    ProcessSender,
    Send,
    Sender,
)
from tests.outbound.receiver import Received, Receiver, Reply, receiver

pytestmark = pytest.mark.anyio


def echo(state: Receiver, request: Received) -> Reply:
    return 200 + int(request.path.rsplit("/", 1)[-1]) % 3, {}, request.path.encode()


@pytest.mark.parametrize("kind", ["inline", "process"])
async def test_every_answer_reaches_its_own_request(kind: str) -> None:
    sender: Sender = (
        InlineSender(timeout=5, connections=8)
        if kind == "inline"
        else ProcessSender(timeout=5, connections=8)
    )
    with receiver(echo) as endpoint:
        base = endpoint.url.rsplit("/", 1)[0]
        try:
            answers = await asyncio.gather(
                *(sender.send(Send("sub_a", f"{base}/hook/{i}", {}, b"{}")) for i in range(60))
            )
        finally:
            await sender.close()
    for i, (outcome, text) in enumerate(answers):
        assert (outcome.status_code, text) == (200 + i % 3, f"/hook/{i}")


async def test_an_endpoint_gets_at_most_its_connections_across_pools() -> None:
    allowed = 3 * SHARD_CONNECTIONS - 1  # three pools, the last one smaller
    lock = threading.Lock()
    now = peak = 0
    release = threading.Event()

    def slow(state: Receiver, request: Received) -> Reply:
        nonlocal now, peak
        with lock:
            now += 1
            peak = max(peak, now)
        release.wait(0.5)
        with lock:
            now -= 1
        return 200, {}, b"ok"

    sender = InlineSender(timeout=10, connections=allowed)
    with receiver(slow) as endpoint:
        try:
            answers = await asyncio.gather(
                *(sender.send(Send("sub_a", endpoint.url, {}, b"{}")) for _ in range(40))
            )
        finally:
            await sender.close()
    assert all(outcome.status_code == 200 for outcome, _ in answers)
    assert 2 * SHARD_CONNECTIONS < peak <= allowed  # several pools used, never more in all


async def test_a_wedged_delivery_process_is_killed_and_replaced() -> None:
    sender = ProcessSender(timeout=0.3, connections=4)
    sender.grace = 0.3
    with receiver() as endpoint:
        try:
            await sender.start()
            assert sender.pid is not None
            os.kill(sender.pid, signal.SIGSTOP)  # alive, but answers nothing
            outcome, _ = await sender.send(Send("sub_a", endpoint.url, {}, b"{}"))
            assert (outcome.error, outcome.timed_out) == (UNANSWERED, True)
            outcome, _ = await sender.send(Send("sub_a", endpoint.url, {}, b"{}"))
            assert (outcome.status_code, sender.started) == (200, 2)  # a new child took over
        finally:
            await sender.close()
