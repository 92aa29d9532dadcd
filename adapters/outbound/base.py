"""The small pure readers every CRM connector uses on the call document and the CRM's answer. No I/O.

A connector maps a call (``gateway.render.call``'s shape) to its CRM's record; these read that document
defensively - a value of the wrong type is absent, never an exception - and say the same things the same way
in every CRM (a call's title, for one).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any


def when(value: object) -> datetime | None:
    """An ISO timestamp of the call document as an aware UTC datetime; anything else is None."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except (ValueError, OverflowError):
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    try:
        return parsed.astimezone(UTC)
    except OverflowError:
        return None


def non_negative(value: object) -> float | None:
    """A non-negative finite number (a duration, a score), or None; bools are not numbers here."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if not math.isfinite(value) or value < 0:
        return None
    return float(value)


def text(value: object) -> str | None:
    """A scalar as stripped text; None for nothing, an empty string, an object or a list."""
    if value is None or isinstance(value, Mapping | list):
        return None
    stripped = str(value).strip()
    return stripped or None


def header(headers: Mapping[str, str], name: str) -> str | None:
    """A response header by its lower-case name, from any mapping a client or a test hands over."""
    try:
        for key, value in headers.items():
            if str(key).lower() == name:
                return str(value)
    except (AttributeError, TypeError, ValueError):
        return None
    return None


def call_title(call: Mapping[str, Any]) -> str:
    """What the call was, in words every CRM shows the same: direction and the other party."""
    direction = call.get("direction")
    if direction == "inbound":
        return f"Inbound call from {call.get('from_number') or 'an unknown number'}"
    if direction == "outbound":
        return f"Outbound call to {call.get('to_number') or 'an unknown number'}"
    if direction == "web":
        return "Web call"
    return "Call"
