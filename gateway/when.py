"""One reader for the times people and vendors write: ISO-8601 (``Z`` or an offset; a space for ``T``;
no zone means UTC), Unix epoch seconds or milliseconds, and, where a window is meant, an age such as
``90m``, ``6h`` or ``7d`` (that long before now).

Every time that comes out is aware, in UTC, and inside ``EARLIEST``..``LATEST``: what the store, the JSON
documents and every reader round-trip. The API's filters, the CLI's flags and the vendor adapters all
read times here, so ``since=6h`` means the same in each. Errors are ``ValueError`` with a message a person
can act on; each caller wraps it in its own error (a 422, a CLI error, a dropped vendor field).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

EARLIEST = datetime(1, 1, 2, tzinfo=UTC)  # a day's margin at each end: any offset still converts
LATEST = datetime(9999, 12, 30, tzinfo=UTC)

# epoch numbers above this are milliseconds: 1e11 seconds is the year 5138, 1e11 ms is March 1973
_MILLIS_FROM = 100_000_000_000
_AGE = re.compile(r"(\d{1,9})\s*([smhdw])")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
_EPOCH = re.compile(r"-?\d{1,16}(\.\d{1,9})?")

FORMS = "an ISO-8601 time (2026-11-22T10:00:00Z) or Unix epoch seconds or milliseconds"


def bounded(value: datetime) -> datetime:
    """``value`` in UTC (a naive time is taken as UTC), or ``ValueError`` outside what the store keeps."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    try:
        value = value.astimezone(UTC)
    except OverflowError:
        raise ValueError("is out of range") from None
    if not EARLIEST <= value <= LATEST:
        raise ValueError(f"is out of range ({EARLIEST.year:04d}-{LATEST.year})")
    return value


def from_epoch(value: float) -> datetime:
    """Epoch seconds, or milliseconds when the number is too large to be seconds."""
    if value != value or value in (float("inf"), float("-inf")):
        raise ValueError("is not a number")
    seconds = value / 1000 if abs(value) >= _MILLIS_FROM else value
    try:
        return bounded(datetime.fromtimestamp(seconds, UTC))
    except (OverflowError, OSError, ValueError):
        raise ValueError("is out of range") from None


def parse_time(raw: str | int | float) -> datetime:
    """A point in time in any of ``FORMS``."""
    if isinstance(raw, bool):
        raise ValueError(f"must be {FORMS}")
    if isinstance(raw, int | float):
        return from_epoch(float(raw))
    text = raw.strip()
    if _EPOCH.fullmatch(text):
        return from_epoch(float(text))
    iso = text.replace("Z", "+00:00").replace("z", "+00:00")
    if len(iso) > 10 and iso[10] == " ":
        iso = iso[:10] + "T" + iso[11:]
    try:
        value = datetime.fromisoformat(iso)
    except ValueError:
        raise ValueError(f"must be {FORMS}") from None
    return bounded(value)


def parse_when(raw: str, now: datetime) -> datetime:
    """A point in time (``parse_time``) or an age before ``now`` such as ``90m``, ``6h``, ``7d``, ``2w``."""
    age = _AGE.fullmatch(raw.strip())
    if age:
        unit = _UNITS[age.group(2)]
        try:
            return bounded(now - timedelta(**{unit: int(age.group(1))}))
        except OverflowError:
            raise ValueError("is out of range") from None
    try:
        return parse_time(raw)
    except ValueError as exc:
        if "out of range" in str(exc):
            raise
        raise ValueError(f"must be {FORMS}, or an age such as 90m, 6h or 7d") from None
