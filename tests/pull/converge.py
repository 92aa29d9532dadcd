"""Webhook bodies through the real inbound adapters and the real state machine, as ingest applies them
(``prepare``, ``stamp_of``, ``merge``), so a test can compare what pulled bodies and webhook fixtures
make of one call. Room events (LiveKit) reach their call through its aliases, as in the store."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from adapters.registry import INBOUND
from gateway.inbound import ParsedEvent
from gateway.ingest import prepare, stamp_of
from gateway.model import CallState, CallUpdate, Stamp, merge
from gateway.pull.base import PulledEvent
from tests.helpers import FIXTURES


def fixture(vendor: str, name: str) -> bytes:
    return (FIXTURES / vendor / f"{name}.json").read_bytes()


def fixture_json(vendor: str, name: str) -> dict[str, Any]:
    value: dict[str, Any] = json.loads(fixture(vendor, name))
    return value


def parse(event: PulledEvent) -> ParsedEvent:
    """The pulled body through its vendor's adapter, unchanged; its key must be the one announced."""
    parsed = prepare(INBOUND[event.vendor].parse({}, event.body), "US")
    assert parsed.known, parsed.event_type
    assert parsed.event_key == event.event_key
    return parsed


def fold(vendor: str, bodies: Iterable[bytes]) -> dict[str, dict[str, Any]]:
    """The calls (``data`` by vendor call id) that ``bodies`` make, in the order given. Duplicate event
    keys are dropped as the gateway drops them (200, nothing changes)."""
    calls: dict[str, CallState] = {}
    aliases: dict[str, str] = {}
    pending: list[tuple[CallUpdate, Stamp]] = []
    seen: set[str] = set()

    def apply(update: CallUpdate, stamp: Stamp) -> bool:
        target = update.vendor_call_id or aliases.get(update.link_alias or "")
        if target is None:
            return False
        calls[target] = merge(calls.get(target), update, stamp).state
        for alias in update.aliases:
            aliases[alias] = target
        return True

    for body in bodies:
        parsed = prepare(INBOUND[vendor].parse({}, body), "US")
        if parsed.event_key in seen:
            continue
        seen.add(parsed.event_key)
        for update in parsed.updates:
            if not apply(update, stamp_of(parsed)):
                pending.append((update, stamp_of(parsed)))
    for update, stamp in pending:
        apply(update, stamp)
    return {key: state.data for key, state in calls.items()}
