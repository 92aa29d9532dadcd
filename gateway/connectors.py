"""What a CRM connector is, in the core: the verdicts, the record a sync leaves, the contact cache.

Connectors live in ``adapters/outbound/<crm>.py`` and import only this module, ``gateway.errors``,
``gateway.model``/``gateway.phones`` helpers and ``httpx`` (see ``adapters/outbound/__init__.py``). The
outbox worker drives them: it claims a CRM sync row, asks the connector to bring the CRM up to the call's
latest state, and turns the outcome into the row's next state with the same owner that finishes
subscription deliveries.

A connector answers either a ``SyncedRecord`` (done) or raises ``CrmFailure`` carrying a
``CrmOutcome``: the pure classification of the CRM's answer (``classify`` in each adapter).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

import httpx
import phonenumbers

from gateway.errors import CallgateError

JSON = dict[str, Any]


class CrmVerdict(StrEnum):
    DONE = "done"  # the CRM holds this version
    RETRY = "retry"  # transient (5xx, 423, a network error): try again later on the retry schedule
    PAUSED = "paused"  # rate limited: pause the whole connection until ``pause_seconds`` have passed
    AUTH_FAILED = "auth_failed"  # credentials refused: stop the connection until they are patched
    PERMANENT = "permanent"  # the CRM refuses this version (validation, 404): dead, visible, never blocks


@dataclass(frozen=True, slots=True)
class CrmOutcome:
    """One classified CRM answer. ``retry_after`` (RETRY) and ``pause_seconds`` (PAUSED) are seconds."""

    verdict: CrmVerdict
    status_code: int | None = None
    code: str | None = None  # the CRM's own error code (``VALIDATION_ERROR``, ``REQUEST_LIMIT_EXCEEDED``…)
    message: str = ""
    retry_after: float | None = None
    pause_seconds: float | None = None


class CrmFailure(CallgateError):
    """A sync that did not complete; ``outcome`` says what the worker should do about it."""

    status_code = 502
    code = "crm_error"

    def __init__(self, outcome: CrmOutcome) -> None:
        super().__init__(outcome.message or outcome.verdict.value)
        self.outcome = outcome


@dataclass(frozen=True, slots=True)
class SyncedRecord:
    """Where one call lives in one CRM: the record's id and type, plus what the connector needs next time
    (Pipedrive: the note id and the person id; HubSpot: the associated contact)."""

    record_id: str
    record_type: str
    extra: Mapping[str, Any] = field(default_factory=dict)


class Connector(Protocol):
    """One CRM account. Built per connection by the adapter's ``build``; holds no database handle."""

    kind: str

    async def test(self) -> None:
        """One harmless authenticated read; raises ``CrmFailure`` when it fails."""
        ...

    async def sync(self, call: Mapping[str, Any], existing: SyncedRecord | None) -> SyncedRecord:
        """Brings the CRM to ``call`` (the public call document, ``gateway.render.call``): creates the
        record, or updates ``existing``; after a crash between a create and our commit (``existing`` is
        None although a record exists) it finds that record instead of creating a second one."""
        ...


@dataclass(frozen=True, slots=True)
class ConnectorSpec:
    """A CRM kind as the registry knows it."""

    kind: str
    default_base_url: str | None  # None: the user must give one (Salesforce's instance URL)
    credential_keys: tuple[frozenset[str], ...]  # accepted credential shapes (any one of them)
    default_options: Mapping[str, Any]
    build: Callable[[str, Mapping[str, str], Mapping[str, Any], httpx.AsyncClient, ContactCache], Connector]
    rate_per_second: float = 5.0  # the client-side bucket per connection, below the CRM's burst limit


class ContactCache:
    """E.164 number -> CRM contact id (or None: no match), kept ``ttl`` seconds, per connection."""

    def __init__(self, ttl: float = 300.0, clock: Callable[[], float] = time.monotonic, size: int = 10_000):
        self._ttl = ttl
        self._clock = clock
        self._size = size
        self._entries: dict[str, tuple[float, str | None]] = {}

    def get(self, number: str) -> tuple[bool, str | None]:
        """(hit, contact id): a hit may be a remembered "no contact has this number"."""
        entry = self._entries.get(number)
        if entry is None or entry[0] <= self._clock():
            return False, None
        return True, entry[1]

    def put(self, number: str, contact_id: str | None) -> None:
        if len(self._entries) >= self._size:
            self._entries.clear()
        self._entries[number] = (self._clock() + self._ttl, contact_id)

    async def match(
        self,
        call: Mapping[str, Any],
        enabled: bool,
        search: Callable[[str, phonenumbers.PhoneNumber], Awaitable[str | None]],
    ) -> str | None:
        """The CRM contact of the call's customer: the cache, else ``search`` (E.164, parsed); a hit or a
        miss is remembered. None when matching is off or the call has no usable number."""
        found = customer(call) if enabled else None
        if found is None:
            return None
        e164, parsed = found
        hit, contact_id = self.get(e164)
        if hit:
            return contact_id
        contact_id = await search(e164, parsed)
        self.put(e164, contact_id)
        return contact_id

    def forget(self, call: Mapping[str, Any]) -> None:
        """The cached contact turned out to be gone (deleted in the CRM): remember "no contact" instead."""
        found = customer(call)
        if found is not None:
            self.put(found[0], None)


def customer_number(call: Mapping[str, Any]) -> str | None:
    """The other party's number: the callee of an outbound call, the caller of an inbound one."""
    if call.get("direction") == "inbound":
        return call.get("from_number") or None
    return call.get("to_number") or call.get("from_number") or None


def customer(call: Mapping[str, Any]) -> tuple[str, phonenumbers.PhoneNumber] | None:
    """The customer's number in E.164 and parsed, or None when the call has no usable one (the call
    document holds E.164, so no default region is needed)."""
    number = customer_number(call)
    if not isinstance(number, str):
        return None
    try:
        parsed = phonenumbers.parse(number, None)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(parsed):
        return None
    return str(phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)), parsed
