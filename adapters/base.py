"""The small pure helpers inbound adapters share. No I/O here. The adapter's result type
(``ParsedEvent``) and shape (``InboundAdapter``) are the core's, in ``gateway.inbound``.

An adapter is a pure function of (headers, body) -> ``ParsedEvent``. It raises ``PayloadError`` for a
body it cannot read, and nothing else: a wrong type, a missing key or an unparseable time becomes a
``PayloadError`` naming the field, never a ``KeyError`` escaping to the HTTP layer.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from gateway import when
from gateway.errors import PayloadError
from gateway.inbound import Headers, InboundAdapter, ParsedEvent
from gateway.model import CallUpdate, format_ts

JSONObject = dict[str, Any]

__all__ = ["Headers", "InboundAdapter", "JSONObject", "ParsedEvent"]

UNMAPPED = "unmapped_"  # vendor_extra prefix of a value the adapter could not map (kept, and reported)


def parsed_event(
    event_key: str,
    event_type: str,
    occurred_at: datetime | None,
    updates: Sequence[CallUpdate] = (),
    *,
    known: bool = True,
) -> ParsedEvent:
    """The adapter's result. Values an adapter marked ``unmapped_<field>`` in ``vendor_extra`` (kept with
    the call) are also lifted into ``ParsedEvent.unmapped``, which the ingest log reports. Optional fields
    the helpers below could not use were dropped: they are flagged as ``invalid_<path>`` (the value as
    sent) in the first update's ``vendor_extra`` and reported in ``ParsedEvent.invalid``."""
    dropped = _dropped.get() or {}
    _dropped.set(None)
    if dropped and updates:
        first = updates[0]
        flagged = {**first.fields.get("vendor_extra", {}), **{f"invalid_{p}": v for p, v in dropped.items()}}
        updates = [replace(first, fields={**first.fields, "vendor_extra": flagged}), *updates[1:]]
    unmapped = {
        key[len(UNMAPPED) :]: value
        for update in updates
        for key, value in update.fields.get("vendor_extra", {}).items()
        if key.startswith(UNMAPPED)
    }
    invalid = {path: str(value)[:200] for path, value in dropped.items()}
    return ParsedEvent(event_key, event_type, occurred_at, tuple(updates), known, unmapped, invalid)


# --- reading JSON defensively -------------------------------------------------------------------------
#
# A readable event with one unusable optional field is still applied: the helpers drop that field and
# flag it (``_unusable``) instead of refusing the whole body. Only what the event cannot do without - its
# identity, its call key (``required=True``), a body that is not a JSON object - is a ``PayloadError``.

_dropped: ContextVar[dict[str, Any] | None] = ContextVar("callgate_dropped_fields", default=None)


def _unusable(path: str, value: Any, message: str) -> None:
    """Within a parse (``load_object`` began it), an optional field that cannot be used is dropped and
    remembered for ``parsed_event``; outside one, it is an error."""
    dropped = _dropped.get()
    if dropped is None:
        raise PayloadError(message, field=path)
    dropped[path] = value


def load_object(body: bytes) -> JSONObject:
    """The body as a JSON object; also begins a parse (see ``_unusable``)."""
    _dropped.set({})
    if not body.strip():
        raise PayloadError("empty body")
    try:
        value = json.loads(body)
    except (ValueError, RecursionError):  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise PayloadError("body is not valid JSON") from None
    if not isinstance(value, dict):
        raise PayloadError("body is not a JSON object")
    return value


def body_sha256(body: bytes) -> str:
    return "sha256:" + hashlib.sha256(body).hexdigest()


def obj(parent: Mapping[str, Any], key: str, path: str, *, required: bool = False) -> JSONObject:
    value = parent.get(key)
    if value is None:
        if required:
            raise PayloadError(f"{path} is required", field=path)
        return {}
    if not isinstance(value, dict):
        if required:
            raise PayloadError(f"{path} must be an object", field=path)
        _unusable(path, value, f"{path} must be an object")
        return {}
    return value


def arr(parent: Mapping[str, Any], key: str, path: str) -> list[Any]:
    value = parent.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        _unusable(path, value, f"{path} must be an array")
        return []
    return value


def text(parent: Mapping[str, Any], key: str, path: str, *, required: bool = False) -> str | None:
    """A string field. Numbers are accepted and turned into text (ids arrive as either)."""
    value = parent.get(key)
    if value is None or value == "":
        if required:
            raise PayloadError(f"{path} is required", field=path)
        return None
    problem = None
    if isinstance(value, bool) or not isinstance(value, str | int):
        problem = f"{path} must be a string"
    elif isinstance(value, str) and len(value) > 10_000:
        problem = f"{path} is too long"
    if problem is not None:
        if required:
            raise PayloadError(problem, field=path)
        _unusable(path, value, problem)
        return None
    return str(value)


MAX_INT = 2**53  # beyond what every JSON consumer can represent exactly


def integer(parent: Mapping[str, Any], key: str, path: str) -> int | None:
    """An integer field; int64 values arrive as strings in protobuf JSON, so digits in a string count."""
    value = parent.get(key)
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        _unusable(path, value, f"{path} must be an integer")
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, str) and re.fullmatch(r"-?\d{1,19}", value.strip()):
        value = int(value)
    if not isinstance(value, int) or abs(value) > 2**63:
        _unusable(path, value, f"{path} must be an integer")
        return None
    return value


def number(parent: Mapping[str, Any], key: str, path: str) -> float | None:
    value = parent.get(key)
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        _unusable(path, value, f"{path} must be a number")
        return None
    try:
        result = float(value)
    except (ValueError, OverflowError):
        _unusable(path, value, f"{path} must be a number")
        return None
    if not math.isfinite(result) or abs(result) > MAX_INT:
        _unusable(path, value, f"{path} is out of range")
        return None
    return result


def timestamp(parent: Mapping[str, Any], key: str, path: str) -> datetime | None:
    """A time in any form ``gateway.when`` reads (ISO-8601, a space for ``T``, epoch seconds or
    milliseconds); a time without a zone is UTC. An aware UTC datetime, or None (dropped if unusable)."""
    value = parent.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str | int | float) or isinstance(value, bool) or len(str(value)) > 64:
        _unusable(path, value, f"{path} must be {when.FORMS}")
        return None
    try:
        return when.parse_time(value)
    except ValueError as exc:
        _unusable(path, value, f"{path} {exc}")
        return None


def unix_seconds(parent: Mapping[str, Any], key: str, path: str) -> datetime | None:
    return _epoch(parent, key, path, 1)


def unix_millis(parent: Mapping[str, Any], key: str, path: str) -> datetime | None:
    return _epoch(parent, key, path, 1000)


def _epoch(parent: Mapping[str, Any], key: str, path: str, per_second: int) -> datetime | None:
    value = integer(parent, key, path)
    if value is None or value == 0:
        return None
    try:
        return when.bounded(datetime.fromtimestamp(value / per_second, UTC))
    except (OverflowError, OSError, ValueError):
        _unusable(path, value, f"{path} is out of range")
        return None


def iso(value: datetime | None) -> str | None:
    return format_ts(value) if value is not None else None


_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


def snake(value: str | None) -> str | None:
    """Vendor vocabulary to lower_snake_case: ``NoAnswer`` and ``no-answer`` both become ``no_answer``."""
    if value is None:
        return None
    return _CAMEL.sub("_", value.strip()).replace("-", "_").replace(" ", "_").lower()


def compact(values: Mapping[str, Any]) -> JSONObject:
    """Drops absent values: a missing optional field is simply absent, never a null that clears data."""
    return {k: v for k, v in values.items() if v is not None and v != {} and v != []}


def extra(source: Mapping[str, Any], mapped: set[str], prefix: str = "") -> JSONObject:
    """Every vendor field the adapter did not map, kept under its (prefixed) name."""
    return {f"{prefix}{k}": v for k, v in source.items() if k not in mapped and v is not None}


SPEAKERS: Mapping[str, str] = {
    # the agent side: a voice bot, an AI, or the human rep placing the call
    "agent": "agent",
    "ai": "agent",
    "assistant": "agent",
    "bot": "agent",
    "rep": "agent",
    "sdr": "agent",
    # the person called (or calling): OpenAI-style "user", CRM-style "lead"/"contact"/"prospect"
    "customer": "customer",
    "user": "customer",
    "lead": "customer",
    "contact": "customer",
    "prospect": "customer",
    "caller": "customer",
    "callee": "customer",
    "human": "customer",
    "system": "system",
    "tool": "tool",
    "tool_call": "tool",
    "tool_response": "tool",
    "function": "tool",
}


def segment(speaker: str | None, words: str | None, **times: Any) -> JSONObject:
    """One transcript segment in the call model's shape. An unmapped speaker is kept as ``vendor_speaker``."""
    raw = (speaker or "").strip()
    mapped = SPEAKERS.get(raw.lower())
    seg: JSONObject = {"speaker": mapped or "system", "text": words or ""}
    if mapped is None:
        seg["vendor_speaker"] = raw
    seg.update(compact(times))
    return seg


def objects(parent: Mapping[str, Any], key: str, path: str) -> list[tuple[str, JSONObject]]:
    """The objects of a list field, each with its path for error messages (``transcript[2]``)."""
    out = []
    for i, item in enumerate(arr(parent, key, path)):
        item_path = f"{path}[{i}]"
        if not isinstance(item, dict):
            _unusable(item_path, item, f"{item_path} must be an object")
            continue
        out.append((item_path, item))
    return out


def at_offset(start: datetime | None, millis: int | None) -> str | None:
    """The instant ``millis`` after ``start`` (a transcript offset), as call-model text."""
    if start is None or millis is None:
        return None
    try:
        return iso(when.bounded(start + timedelta(milliseconds=millis)))
    except (OverflowError, ValueError):
        return None


def offset_ms(start: datetime | None, at: datetime | None) -> int | None:
    if start is None or at is None:
        return None
    delta = round((at - start).total_seconds() * 1000)
    return delta if delta >= 0 else None


@dataclass(frozen=True, slots=True)
class SampleTimes:
    """Times of a sample call (``callgate demo``), as seconds after its start."""

    start: datetime

    def at(self, seconds: float) -> str:
        return (self.start + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")

    def unix(self, seconds: float) -> int:
        return int((self.start + timedelta(seconds=seconds)).timestamp())
