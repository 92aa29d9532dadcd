"""What every vendor's pull client shares. Pure: no I/O here (``gateway.pull.http`` does the requests).

The outcomes of a pull are three, and each has one home:

* data: the vendor object (a JSON object, exactly as served) or a ``Page`` of them;
* ``Missing``: nothing to pull (404, an empty transcript, a survey never started) - stop, do not retry;
* an exception of ``gateway.errors``: ``VendorRetryLater`` (try again after ``retry_delay``),
  ``VendorAuthFailed`` (credentials refused), ``VendorError`` (anything else the vendor did wrong).

A pulled part becomes a ``PulledEvent``: a vendor-webhook-shaped body and the dedupe key its adapter will
read from it. The key digests the body's content without its id and its observation time, so fetching the
same content twice gives the same key (a duplicate to the gateway), and changed content a new one.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any
from urllib.parse import quote

from gateway.errors import VendorError, VendorRetryLater
from gateway.model import format_ts

JSONObject = dict[str, Any]

# For vendors whose seed documents no back-off of their own: about the outbox's own first steps.
DEFAULT_BACKOFF: tuple[float, ...] = (10.0, 60.0, 300.0, 1800.0)
# A 429 that names no wait: the outbox's throttle floor (architecture.md, "Delivery semantics").
DEFAULT_THROTTLE_SECONDS = 60.0


class Part(StrEnum):
    """What one pull fetches. ``CALL`` is the call record itself (status, times, numbers, billing, the
    recording reference); the others are the parts a terminal call may still lack."""

    CALL = "call"
    TRANSCRIPT = "transcript"
    GRADE = "grade"
    SURVEY = "survey"
    ISSUES = "issues"


@dataclass(frozen=True, slots=True)
class Credentials:
    """A source's read-API credentials: the API's base URL (scheme and host, plus any path prefix the
    account's host puts before the documented paths) and its bearer token."""

    base_url: str
    token: str = field(repr=False)

    def url(self, path: str) -> str:
        return self.base_url.rstrip("/") + path

    def headers(self) -> dict[str, str]:
        """The bearer token, as every one of these read APIs takes it."""
        return {"authorization": f"Bearer {self.token}"}


def segment(value: str | int) -> str:
    """One path segment from a vendor id. Ids come from webhooks, so nothing in one may climb out of its
    segment (``../``, ``?``, ``#``, ``/``); a bare ``.`` or ``..`` is a dot segment clients resolve, so
    its dots are escaped too."""
    quoted = quote(str(value), safe="")
    return quoted.replace(".", "%2E") if quoted in (".", "..") else quoted


@dataclass(frozen=True, slots=True)
class Window:
    """``since`` <= a call's start < ``until``, both aware. A fixed ``until`` also keeps offset pagination
    stable while the vendor adds calls: new ones fall after the window, not onto a page already read."""

    since: datetime
    until: datetime

    def __post_init__(self) -> None:
        if self.since.tzinfo is None or self.until.tzinfo is None:
            raise ValueError("a pull window needs aware datetimes")
        if self.since > self.until:
            raise ValueError("a pull window must not end before it starts")

    @classmethod
    def last(cls, age: timedelta, now: datetime) -> Window:
        """``callgate reconcile --since 6h``: the last ``age`` up to ``now``."""
        return cls(now - age, now)

    def bounds(self) -> tuple[str, str]:
        return iso_seconds(self.since), iso_seconds(self.until)


@dataclass(frozen=True, slots=True)
class Page:
    """One page of a vendor's list. ``next_cursor`` is opaque (a page number or an offset, as the vendor
    paginates): pass it back for the next page; ``None`` on the last one. Keep it to resume after a 429."""

    items: tuple[JSONObject, ...]
    next_cursor: str | None
    total: int | None = None


@dataclass(frozen=True, slots=True)
class Missing:
    """Nothing to pull: the vendor has no such call or part, or has it empty. Stop; retrying cannot help."""

    reason: str


@dataclass(frozen=True, slots=True)
class RecordingLink:
    """A playable, signed, expiring recording URL. Hand it to a player; never store it as if it were
    permanent (architecture.md, ``recording``): ask for a fresh one when it is about to expire."""

    url: str = field(repr=False)  # the signature in it is a credential
    expires_at: datetime | None

    def fresh(self, now: datetime, margin: timedelta = timedelta(seconds=60)) -> bool:
        """Still good for at least ``margin``: a link without an expiry is trusted once, never cached."""
        return self.expires_at is not None and now + margin < self.expires_at


@dataclass(frozen=True, slots=True)
class PulledEvent:
    """A pulled part as its vendor's webhook: ``body`` parses with ``INBOUND[vendor]`` (no headers needed:
    the body carries its id), and ``event_key`` is the dedupe key that adapter returns for it."""

    vendor: str
    vendor_call_id: str
    part: Part
    event_key: str
    body: bytes


@dataclass(frozen=True, slots=True)
class Reconciled:
    """One listed page as events, and the cursor of the next page (``None``: the window is done)."""

    events: tuple[PulledEvent, ...]
    next_cursor: str | None


# --- bodies and keys -------------------------------------------------------------------------------------


def canonical(value: Any) -> bytes:
    """Key order and whitespace do not change what a vendor said."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


MAX_READABLE_KEY = 200  # the gateway hashes event keys beyond its column (300): stay well inside it


def event_key(part: Part, vendor_call_id: str, content: Any) -> str:
    """``pull:<part>:<call>:<digest>``: readable in a timeline, unique per content, stable per content.
    A call id too long for that leaves the key as ``pull:<part>:<digest>`` (the digest covers it)."""
    digest = hashlib.sha256(canonical([vendor_call_id, content])).hexdigest()[:32]
    key = f"pull:{part.value}:{vendor_call_id}:{digest}"
    return key if len(key) <= MAX_READABLE_KEY else f"pull:{part.value}:{digest}"


def encode(body: JSONObject) -> bytes:
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()


def pulled(
    vendor: str,
    vendor_call_id: str,
    part: Part,
    content: JSONObject,
    envelope: Callable[[str], JSONObject],
) -> PulledEvent:
    """The event of ``content`` (the body without its id and observation time); ``envelope(key)`` builds
    the whole body around the key."""
    key = event_key(part, vendor_call_id, content)
    return PulledEvent(vendor, vendor_call_id, part, key, encode(envelope(key)))


def observed(at: datetime) -> str:
    """An observation time as webhook text. It orders the pulled event among the webhooks (last writer
    wins by event time): what the read API shows at ``at`` is the vendor's truth as of ``at``."""
    return format_ts(at)


def iso_seconds(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# --- outcomes -----------------------------------------------------------------------------------------------


def retry_delay(error: VendorRetryLater, attempt: int = 0) -> float:
    """Seconds before the next try, for the outbox: the vendor's ``Retry-After`` when it sent one, else its
    documented back-off step for this ``attempt`` (0-based; the last step repeats)."""
    if error.retry_after is not None:
        return max(0.0, error.retry_after)
    steps = error.backoff or DEFAULT_BACKOFF
    return steps[min(max(attempt, 0), len(steps) - 1)]


def require_object(value: Any, what: str) -> JSONObject:
    if not isinstance(value, dict):
        raise VendorError(f"{what} is not a JSON object")
    return value


def require_list(value: Any, what: str) -> list[JSONObject]:
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise VendorError(f"{what} is not a list of objects")
    return value


def require_id(item: Mapping[str, Any], key: str, what: str) -> str:
    """A vendor id (a string, or an integer such as callsv1's ``call_id``) as text."""
    value = item.get(key)
    if isinstance(value, bool) or not isinstance(value, str | int) or value == "":
        raise VendorError(f"{what} has no {key}", field=key)
    return str(value)


def count(value: Any) -> int | None:
    """A non-negative count from a pagination block, or None when absent or unusable."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return int(value) if value >= 0 else None


async def walk(fetch: Callable[[str | None], Awaitable[Page]]) -> AsyncIterator[Page]:
    """Every page from the first, in order. A ``VendorRetryLater`` escapes between pages: resume with the
    ``next_cursor`` of the last page seen."""
    cursor: str | None = None
    while True:
        page = await fetch(cursor)
        yield page
        if page.next_cursor is None or not page.items:
            return
        cursor = page.next_cursor
