"""What an inbound vendor adapter produces, in the core: the normalized event and the adapter's shape.

Vendors (``adapters/inbound/<vendor>.py``) import this module; the core never imports a vendor. Only
``gateway.app`` (the composition root) and the CLI's entry point read the registry.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from gateway.model import CallUpdate

Headers = Mapping[str, str]


@dataclass(frozen=True, slots=True)
class ParsedEvent:
    """One vendor webhook, normalized.

    ``event_key`` is the dedupe key (unique per source). ``known`` is False for an event type the adapter
    has no mapping for: it is stored and logged, and changes no call. ``unmapped`` holds the vendor values
    the adapter read but could not map to the call model's vocabulary (``{"status": "weird"}``): they are
    logged at warning level, and also kept in the call's ``vendor_extra`` so nothing is lost. ``invalid``
    names the optional fields the adapter dropped because it could not use them (a time that is not a
    time): the event is applied without them, and they are flagged in ``vendor_extra`` and logged.
    """

    event_key: str
    event_type: str
    occurred_at: datetime | None
    updates: tuple[CallUpdate, ...] = ()
    known: bool = True
    unmapped: Mapping[str, Any] = field(default_factory=dict)
    invalid: Mapping[str, str] = field(default_factory=dict)


# (run id, start of the sample call) -> the vendor's webhook bodies of one sample call, in order
SampleMaker = Callable[[str, datetime], list[dict[str, Any]]]


@dataclass(frozen=True, slots=True)
class InboundAdapter:
    """A vendor: its name, its parse function, the verification a new source gets by default, and the
    sample webhooks ``callgate demo`` sends for it."""

    name: str
    parse: Callable[[Headers, bytes], ParsedEvent]
    default_verification: Mapping[str, Any] = field(default_factory=dict)
    samples: SampleMaker | None = None


Reparse = Callable[[str, Headers, bytes], ParsedEvent]
