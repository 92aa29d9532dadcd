"""HubSpot: a call becomes one call engagement (``/crm/v3/objects/calls``), updated in place as it grows.

The record carries the call's latest state (crm.md "What lands"): ``properties`` maps the call document to
HubSpot's property values, all strings, ``hs_call_duration`` in milliseconds (research §0.1). The summary,
outcome, grade and transcript go into ``hs_call_body`` as simple HTML: the Transcripts API needs a
calling-extension scope a private-app token does not have (research §1.2).

Exactly one record per call: the callgate call id sits in a custom call property (``call_id_property``,
which the portal must have). A sync without a stored record first searches that property, so a record
created by an attempt that crashed before callgate saved its id is found and updated, never duplicated.
HubSpot's search index can lag a fresh create by seconds (research §1.7); the worker's retry schedule
leaves more than that between attempts, which is what this relies on.

The API facts behind it (endpoints, limits, error shapes) are summarised in ``docs/crm.md``.
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

import httpx
import phonenumbers

from adapters.outbound.base import call_title
from adapters.outbound.base import header as _header
from adapters.outbound.base import non_negative as _seconds
from adapters.outbound.base import text as _text
from adapters.outbound.base import when as _when
from gateway.connectors import (
    ConnectorSpec,
    ContactCache,
    CrmFailure,
    CrmOutcome,
    CrmVerdict,
    SyncedRecord,
)
from gateway.phones import to_e164

JSON = dict[str, Any]

KIND = "hubspot"
DEFAULT_BASE_URL = "https://api.hubapi.com"
DEFAULT_OPTIONS: Mapping[str, Any] = {
    "call_id_property": "callgate_call_id",
    "owner_id": None,
    "match_contacts": True,
    "statuses": ["completed", "failed", "no_answer", "busy", "canceled"],
}
RECORD_TYPE = "call"

CALLS = "/crm/v3/objects/calls"
CONTACTS_SEARCH = "/crm/v3/objects/contacts/search"
CALL_TO_CONTACT = 194  # HUBSPOT_DEFINED association type id, call -> contact (research §1.3)

# The most often cited maximum length of a HubSpot string property value (research §8.7, unverified): the
# body is cut below it, in characters.
BODY_LIMIT = 65_536
TITLE_LIMIT = 255
MESSAGE_LIMIT = 1_000
CONTACT_SEARCH_LIMIT = 10
MAX_PAUSE = 86_400.0
DEFAULT_PAUSE = 10.0  # the burst window (TEN_SECONDLY_ROLLING)
LOCKED_MIN_RETRY = 2.0  # "423 Locked: wait at least 2 s" (research §1.8)

DIRECTIONS: Mapping[str, str] = {"inbound": "INBOUND", "outbound": "OUTBOUND"}
# callgate status -> ``hs_call_status`` (the documented enum, research §1.2).
STATUSES: Mapping[str, str] = {
    "queued": "QUEUED",
    "initiating": "CONNECTING",
    "ringing": "RINGING",
    "in_progress": "IN_PROGRESS",
    "completed": "COMPLETED",
    "failed": "FAILED",
    "no_answer": "NO_ANSWER",
    "busy": "BUSY",
    "canceled": "CANCELED",
}
# Contact properties whose raw value is re-checked; HubSpot stores ``phone`` as typed (research §1.7).
PHONE_PROPERTIES = ("phone", "mobilephone")
# The national digits HubSpot derives from those [S], searched besides the E.164 form.
CALCULATED_PROPERTIES = ("hs_searchable_calculated_phone_number", "hs_searchable_calculated_mobile_number")


# --- pure mapping -------------------------------------------------------------------------------------


def _iso_ms(moment: datetime) -> str:
    """UTC ISO 8601 with milliseconds, the form of HubSpot's own examples; the year always 4 digits."""
    return (
        f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d}T{moment.hour:02d}:{moment.minute:02d}:"
        f"{moment.second:02d}.{moment.microsecond // 1000:03d}Z"
    )


def _timestamp(call: Mapping[str, Any]) -> str:
    """``hs_timestamp`` is required and places the call on the timeline: its start, else its creation."""
    for name in ("started_at", "answered_at", "created_at", "updated_at"):
        moment = _when(call.get(name))
        if moment is not None:
            return _iso_ms(moment)
    return _iso_ms(datetime(1970, 1, 1, tzinfo=UTC))


def duration_ms(call: Mapping[str, Any]) -> int | None:
    """The call's length in milliseconds (HubSpot's unit): ``duration_seconds``, else start to end."""
    seconds = _seconds(call.get("duration_seconds"))
    if seconds is None:
        start = _when(call.get("started_at")) or _when(call.get("answered_at"))
        end = _when(call.get("ended_at"))
        if start is None or end is None or end < start:
            return None
        seconds = (end - start).total_seconds()
    try:
        return round(seconds * 1000)
    except OverflowError:
        return None


def _title(call: Mapping[str, Any]) -> str:
    return call_title(call)[:TITLE_LIMIT]


def _recording_url(call: Mapping[str, Any]) -> str | None:
    """HubSpot accepts only HTTPS recording URLs (research §1.2); anything else stays out."""
    recording = call.get("recording")
    url = recording.get("url") if isinstance(recording, Mapping) else None
    if not isinstance(url, str):
        return None
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return None
    return url.strip() if parts.scheme.lower() == "https" and parts.hostname else None


def _esc(text: str) -> str:
    """Text inside HTML paragraphs: ``<``, ``>`` and ``&`` escaped, quotes kept as they read."""
    return html.escape(text, quote=False)


def _facts(call: Mapping[str, Any]) -> list[str]:
    """Summary, outcome, grade as HTML paragraphs (escaped)."""
    parts: list[str] = []
    raw = call.get("grade")
    grade: Mapping[str, Any] = raw if isinstance(raw, Mapping) else {}
    summary = _text(grade.get("summary"))
    if summary:
        parts.append(f"<p><strong>Summary:</strong> {_esc(summary)}</p>")
    line = [f"<strong>Status:</strong> {_esc(str(call.get('status') or 'unknown'))}"]
    outcome = _text(call.get("outcome"))
    if outcome:
        line.append(f"<strong>Outcome:</strong> {_esc(outcome)}")
    end_reason = _text(call.get("end_reason"))
    if end_reason:
        line.append(f"<strong>Ended:</strong> {_esc(end_reason)}")
    parts.append("<p>" + " · ".join(line) + "</p>")
    score = _seconds(grade.get("score"))
    if score is not None:
        status = _esc(_text(grade.get("status")) or "graded")
        parts.append(f"<p><strong>Grade:</strong> {round(score * 100)}/100 ({status})</p>")
    return parts


def _turns(call: Mapping[str, Any]) -> Iterable[str]:
    transcript = call.get("transcript")
    for turn in transcript if isinstance(transcript, list) else []:
        if isinstance(turn, Mapping) and _text(turn.get("text")):
            speaker = _text(turn.get("speaker")) or "?"
            yield _esc(f"{speaker}: {_text(turn.get('text'))}")


def call_body(call: Mapping[str, Any]) -> str:
    """``hs_call_body``: the facts, then the transcript turn by turn while it fits ``BODY_LIMIT``, then a
    footer naming the call. Whole turns are dropped, never a cut tag."""
    footer = f"<p>callgate call {_esc(str(call.get('id')))} · {_esc(str(call.get('vendor')))}</p>"
    head = "".join(_facts(call))
    turns = list(_turns(call))
    if not turns:
        return (head + footer)[:BODY_LIMIT]
    reserve = 120  # the "cut" paragraph and the closing tag
    room = BODY_LIMIT - len(head) - len(footer) - len("<p><strong>Transcript:</strong><br>") - reserve
    kept: list[str] = []
    for turn in turns:
        if len(turn) + 4 > room:
            break
        kept.append(turn)
        room -= len(turn) + 4
    transcript = "<p><strong>Transcript:</strong><br>" + "<br>".join(kept) + "</p>"
    if len(kept) < len(turns):
        transcript += f"<p>… transcript cut ({len(turns) - len(kept)} more turns)</p>"
    return (head + transcript + footer)[:BODY_LIMIT]


def properties(call: Mapping[str, Any], options: Mapping[str, Any]) -> dict[str, str]:
    """The call's engagement properties, every value a string as HubSpot's schema types them. Properties
    callgate has no value for are left out (an empty string would clear them)."""
    props: dict[str, str] = {
        "hs_timestamp": _timestamp(call),
        "hs_call_title": _title(call),
        "hs_call_body": call_body(call),
    }
    direction = DIRECTIONS.get(str(call.get("direction")))
    if direction:
        props["hs_call_direction"] = direction
    status = STATUSES.get(str(call.get("status")))
    if status:
        props["hs_call_status"] = status
    ms = duration_ms(call)
    if ms is not None:
        props["hs_call_duration"] = str(ms)
    for name, prop in (("from_number", "hs_call_from_number"), ("to_number", "hs_call_to_number")):
        number = _text(call.get(name))
        if number:
            props[prop] = number
    url = _recording_url(call)
    if url:
        props["hs_call_recording_url"] = url
    owner = _text(options.get("owner_id"))
    if owner:
        props["hubspot_owner_id"] = owner
    props[_call_id_property(options)] = str(call["id"])
    return props


def _call_id_property(options: Mapping[str, Any]) -> str:
    return _text(options.get("call_id_property")) or str(DEFAULT_OPTIONS["call_id_property"])


# --- pure classification ------------------------------------------------------------------------------


def _json_object(raw: object) -> dict[str, Any]:
    """HubSpot's JSON error object, or {} for anything else (an HTML page from a proxy, garbage)."""
    if isinstance(raw, bytes | bytearray):
        raw = bytes(raw).decode("utf-8", errors="replace")
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except (ValueError, RecursionError):
            return {}
    if isinstance(raw, Mapping):
        return {str(key): value for key, value in raw.items()}
    return {}


def _retry_after(headers: Mapping[str, str], now: datetime) -> float | None:
    """``Retry-After`` in seconds (a number or an HTTP date), capped at a day; None when absent or bad."""
    raw = _header(headers, "retry-after")
    if raw is None:
        return None
    raw = raw.strip()
    try:
        value: float | None = float(raw)
    except ValueError:
        try:
            value = (parsedate_to_datetime(raw) - now).total_seconds()
        except (TypeError, ValueError, IndexError, OverflowError):
            value = None
    if value is None or not math.isfinite(value):
        return None
    return min(max(value, 0.0), MAX_PAUSE)


def _until_midnight(now: datetime) -> float:
    """The daily limit resets at midnight in the account's time zone, which callgate does not know; the
    next UTC midnight is close enough, and a pause that ends early only meets another 429."""
    midnight = datetime(now.year, now.month, now.day, tzinfo=UTC) + timedelta(days=1)
    return (midnight - now).total_seconds()


def _pause(headers: Mapping[str, str], error: Mapping[str, Any], now: datetime) -> float:
    """How long the connection waits: Retry-After if HubSpot sends one, else by ``policyName``."""
    pause = _retry_after(headers, now)
    if pause is None:
        policy = str(error.get("policyName") or "").upper()
        message = str(error.get("message") or "").lower()
        if policy == "DAILY" or (not policy and "daily" in message):
            pause = _until_midnight(now)
        elif policy == "SECONDLY" or (not policy and "secondly limit" in message):
            pause = 1.0
        else:
            interval = _header(headers, "x-hubspot-ratelimit-interval-milliseconds")
            pause = DEFAULT_PAUSE
            if interval is not None and interval.strip().isdigit():
                pause = int(interval.strip()) / 1000
    return min(max(pause, 1.0), MAX_PAUSE)


def _message(error: Mapping[str, Any], status_code: int) -> str:
    text = error.get("message")
    if not isinstance(text, str) or not text:
        text = f"HubSpot answered HTTP {status_code}"
    return text[:MESSAGE_LIMIT]


def _code(error: Mapping[str, Any], fallback: str) -> str:
    for key in ("category", "policyName", "errorType"):
        value = error.get(key)
        if isinstance(value, str) and value:
            return value[:100]
    return fallback


def classify(
    status_code: int, headers: Mapping[str, str], body: bytes, now: datetime | None = None
) -> CrmOutcome:
    """One HubSpot answer -> what the worker does (research §6.4, §1.8, §1.9). Never raises."""
    error = _json_object(body)
    message = _message(error, status_code)
    moment = now or datetime.now(UTC)
    if 200 <= status_code < 300:
        return CrmOutcome(CrmVerdict.DONE, status_code)
    if status_code == 429:
        pause = _pause(headers, error, moment)
        return CrmOutcome(CrmVerdict.PAUSED, status_code, _code(error, "rate_limited"), message, None, pause)
    if status_code == 401:
        return CrmOutcome(CrmVerdict.AUTH_FAILED, status_code, _code(error, "unauthorized"), message)
    if status_code == 403:
        # A missing scope (research §1.9: "permission, not auth"). The token is valid, but the fault is the
        # app's, not this call's: every sync of the connection would fail the same way. PERMANENT would
        # kill each pending sync one by one; AUTH_FAILED stops the connection visibly and keeps them until
        # the scopes are fixed and the credentials patched.
        return CrmOutcome(CrmVerdict.AUTH_FAILED, status_code, _code(error, "forbidden"), message)
    if status_code in (408, 423, 477) or status_code >= 500:
        retry = _retry_after(headers, moment)
        if status_code == 423:
            retry = max(retry or 0.0, LOCKED_MIN_RETRY)
        return CrmOutcome(CrmVerdict.RETRY, status_code, _code(error, "unavailable"), message, retry)
    if 400 <= status_code < 500:
        return CrmOutcome(CrmVerdict.PERMANENT, status_code, _code(error, "rejected"), message)
    return CrmOutcome(CrmVerdict.RETRY, status_code, "unexpected_status", message)


# --- the connector ------------------------------------------------------------------------------------


def _bad_response(what: str) -> CrmFailure:
    return CrmFailure(CrmOutcome(CrmVerdict.RETRY, None, "bad_response", f"HubSpot answered {what}"))


def _results(answer: Mapping[str, Any]) -> list[dict[str, Any]]:
    """A search answer's ``results`` that have an id. An answer without a ``results`` list (a proxy's
    page behind a 200) is not "nothing found": read as that, it would make a second record."""
    results = answer.get("results")
    if not isinstance(results, list):
        raise _bad_response("a search without results")
    return [item for item in results if isinstance(item, dict) and isinstance(item.get("id"), str | int)]


def matching_contacts(answer: Mapping[str, Any], e164: str, region: str) -> list[str]:
    """Ids of the found contacts with a ``phone`` or ``mobilephone`` that is ``e164`` once re-normalized
    (numbers without a country code are read in the customer's region); the most recently modified
    first, then the oldest id."""
    found: list[tuple[str, int, str]] = []
    for item in _results(answer):
        raw = item.get("properties")
        props: Mapping[str, Any] = raw if isinstance(raw, Mapping) else {}
        phones = [props.get(name) for name in PHONE_PROPERTIES]
        if any(isinstance(phone, str) and to_e164(phone, region) == e164 for phone in phones):
            contact_id = str(item["id"])
            modified = str(props.get("lastmodifieddate") or item.get("updatedAt") or "")
            found.append((modified, -int(contact_id) if contact_id.isdigit() else 0, contact_id))
    return [contact_id for _, _, contact_id in sorted(found, reverse=True)]


class HubSpotConnector:
    """One HubSpot account (a private-app or OAuth access token) over the worker's shared client."""

    kind = KIND

    def __init__(
        self,
        base_url: str,
        access_token: str,
        options: Mapping[str, Any],
        client: httpx.AsyncClient,
        contacts: ContactCache,
    ) -> None:
        self._base = base_url.rstrip("/")
        self._token = access_token
        self._options = {**DEFAULT_OPTIONS, **options}
        self._client = client
        self._contacts = contacts

    async def test(self) -> None:
        """One harmless read of the object callgate writes: proves the token and its scope for calls."""
        await self._request("GET", CALLS, params={"limit": 1})

    async def sync(self, call: Mapping[str, Any], existing: SyncedRecord | None) -> SyncedRecord:
        props = properties(call, self._options)
        if existing is not None:
            known = existing.extra.get("contact_id")
            known_id = None if known is None else str(known)
            contact_id = known_id or await self._match(call)
            if await self._update(existing.record_id, props):
                if contact_id is not None and contact_id != known_id:
                    contact_id = await self._associate(call, existing.record_id, contact_id)
                return SyncedRecord(existing.record_id, RECORD_TYPE, {"contact_id": contact_id})
            # The record was deleted in HubSpot: find (or make) it again, as if it never existed.
        contact_id = await self._match(call)
        record_id = await self._find(str(call["id"]))
        if record_id is not None and await self._update(record_id, props):
            if contact_id is not None:  # a PUT: harmless when the association is already there
                contact_id = await self._associate(call, record_id, contact_id)
        else:
            record_id, contact_id = await self._create(call, props, contact_id)
        return SyncedRecord(record_id, RECORD_TYPE, {"contact_id": contact_id})

    # --- the call record

    async def _find(self, call_id: str) -> str | None:
        """The record an earlier, interrupted attempt created for this call; the oldest if several."""
        prop = _call_id_property(self._options)
        request = {
            "filterGroups": [{"filters": [{"propertyName": prop, "operator": "EQ", "value": call_id}]}],
            "properties": [prop],
            "limit": 10,
        }
        answer = await self._request("POST", f"{CALLS}/search", json=request)
        found = [str(item["id"]) for item in _results(answer)]
        if not found:
            return None
        return min(found, key=lambda record_id: (len(record_id), record_id))  # numeric order of the ids

    async def _update(self, record_id: str, props: Mapping[str, str]) -> bool:
        """Overwrites the record's properties; False when HubSpot no longer has it (404)."""
        try:
            await self._request("PATCH", f"{CALLS}/{record_id}", json={"properties": dict(props)})
        except CrmFailure as failure:
            if failure.outcome.status_code == 404:
                return False
            raise
        return True

    async def _create(
        self, call: Mapping[str, Any], props: Mapping[str, str], contact_id: str | None
    ) -> tuple[str, str | None]:
        """A new record, associated inline with the contact. A refusal (4xx) created nothing; when it may
        be the association's fault (a contact deleted since it was cached), the call is logged without
        it: a wrong association must not cost the call. The second refusal, if any, is the one raised."""
        request: JSON = {"properties": dict(props)}
        if contact_id is not None:
            types = [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": CALL_TO_CONTACT}]
            request["associations"] = [{"to": {"id": contact_id}, "types": types}]
        try:
            answer = await self._request("POST", CALLS, json=request)
        except CrmFailure as failure:
            if contact_id is None or failure.outcome.status_code not in (400, 404):
                raise
            self._forget(call)
            contact_id = None
            answer = await self._request("POST", CALLS, json={"properties": dict(props)})
        record_id = answer.get("id")
        if not isinstance(record_id, str | int) or isinstance(record_id, bool) or not str(record_id):
            raise _bad_response("a created call without an id")
        return str(record_id), contact_id

    async def _associate(self, call: Mapping[str, Any], record_id: str, contact_id: str) -> str | None:
        """The v4 default association (call -> contact), idempotent; the contact id, or None when HubSpot
        no longer has that contact (the record exists: it was just written)."""
        path = f"/crm/v4/objects/calls/{record_id}/associations/default/contacts/{contact_id}"
        try:
            await self._request("PUT", path)
        except CrmFailure as failure:
            if failure.outcome.status_code != 404:
                raise
            self._forget(call)
            return None
        return contact_id

    # --- the contact

    async def _match(self, call: Mapping[str, Any]) -> str | None:
        """The contact whose phone is the customer's number: the cache, else a search (hit or miss kept)."""
        enabled = bool(self._options.get("match_contacts", True))
        return await self._contacts.match(call, enabled, self._search_contact)

    def _forget(self, call: Mapping[str, Any]) -> None:
        """The cached contact of the customer's number is gone in HubSpot: remember "no contact" until the
        cache entry expires, instead of failing on it again."""
        self._contacts.forget(call)

    async def _search_contact(self, e164: str, parsed: phonenumbers.PhoneNumber) -> str | None:
        """One search, OR over the E.164 form in the typed phone fields and the national digits in the
        calculated ones (research §1.7); every result is re-checked, since HubSpot's match is textual."""
        national = str(parsed.national_number)
        groups = [
            {"filters": [{"propertyName": name, "operator": "EQ", "value": e164}]}
            for name in PHONE_PROPERTIES
        ] + [
            {"filters": [{"propertyName": name, "operator": "EQ", "value": national}]}
            for name in CALCULATED_PROPERTIES
        ]
        request = {
            "filterGroups": groups,
            "properties": [*PHONE_PROPERTIES, *CALCULATED_PROPERTIES, "lastmodifieddate"],
            "limit": CONTACT_SEARCH_LIMIT,
        }
        answer = await self._request("POST", CONTACTS_SEARCH, json=request)
        region = phonenumbers.region_code_for_number(parsed) or "ZZ"
        matches = matching_contacts(answer, e164, region)
        return matches[0] if matches else None

    # --- HTTP

    async def _request(
        self, method: str, path: str, *, params: Mapping[str, Any] | None = None, json: JSON | None = None
    ) -> dict[str, Any]:
        """One call to HubSpot; its JSON object when it succeeded, else ``CrmFailure``. The token travels
        in the Authorization header only and is scrubbed from every message in case an answer echoes it."""
        headers = {"authorization": f"Bearer {self._token}", "accept": "application/json"}
        try:
            response = await self._client.request(
                method, f"{self._base}{path}", params=params, json=json, headers=headers
            )
        except httpx.TransportError as exc:
            text = self._scrub(f"{type(exc).__name__}: {exc}")[:MESSAGE_LIMIT]
            raise CrmFailure(CrmOutcome(CrmVerdict.RETRY, None, "network", text)) from None
        outcome = classify(response.status_code, response.headers, response.content)
        if outcome.verdict is not CrmVerdict.DONE:
            raise CrmFailure(replace(outcome, message=self._scrub(outcome.message)))
        return _json_object(response.content)  # any JSON object; {} for an empty 200/204

    def _scrub(self, text: str) -> str:
        return text.replace(self._token, "***") if self._token else text


def build(
    base_url: str,
    credentials: Mapping[str, str],
    options: Mapping[str, Any],
    client: httpx.AsyncClient,
    contacts: ContactCache,
) -> HubSpotConnector:
    return HubSpotConnector(
        base_url or DEFAULT_BASE_URL, credentials["access_token"], options, client, contacts
    )


SPEC = ConnectorSpec(
    kind=KIND,
    default_base_url=DEFAULT_BASE_URL,
    credential_keys=(frozenset({"access_token"}),),
    default_options=DEFAULT_OPTIONS,
    build=build,
    # A first sync spends up to 3 requests (contact search, call search, create); 100 per 10 s is the
    # smallest burst limit, and search alone is ~5 per second per account (research §1.8).
    rate_per_second=4.0,
)
