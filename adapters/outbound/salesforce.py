"""Salesforce: a call becomes one Task, upserted by an External ID field that holds the callgate call id.

``PATCH /services/data/{v}/sobjects/Task/{external_id_field}/{call id}`` creates the Task the first time and
updates it afterwards (research §2.4), so the same call always lands on the same Task: a crash between
Salesforce's answer and callgate's commit needs no search, the next attempt simply updates. The org must have
the External ID + Unique field on Activity (default ``Callgate_Call_Id__c``); ``test()`` checks it.

``TaskSubtype`` is create-only (research §2.1): it is sent when callgate knows of no Task yet, and dropped for
one retry when Salesforce says the Task already exists (``INVALID_FIELD_FOR_INSERT_UPDATE``: the crash case).

Auth is a Bearer token, given, or obtained with the client-credentials flow from ``{base_url}/services/
oauth2/token`` and refreshed once when Salesforce answers 401 (research §2.2). Every URL is built on
``base_url`` (the SSRF-checked instance URL), never on the ``instance_url`` a token answer names.
"""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import quote

import httpx
import phonenumbers

from adapters.outbound.base import call_title
from adapters.outbound.base import header as _header
from adapters.outbound.base import non_negative as _number
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

KIND = "salesforce"
DEFAULT_OPTIONS: Mapping[str, Any] = {
    "api_version": "v62.0",
    "external_id_field": "Callgate_Call_Id__c",
    "owner_id": None,
    "match_contacts": True,
    "statuses": ["completed", "failed", "no_answer", "busy", "canceled"],
}
RECORD_TYPE = "Task"
OAUTH_PATH = "/services/oauth2/token"

DESCRIPTION_LIMIT = 32_000  # Task.Description, a textarea (research §2.1, old field reference)
STRING_LIMIT = 255  # Subject and CallDisposition
MESSAGE_LIMIT = 1_000
CONTACT_SEARCH_LIMIT = 20

# Pauses, in seconds. The daily allocation is a rolling 24 h window with no reset moment and no Retry-After
# (research §2.7): the connection waits an hour, then one attempt probes; a 403 again waits another hour.
DAILY_LIMIT_PAUSE = 3_600.0
CONCURRENT_LIMIT_PAUSE = 30.0  # too many long-running requests at once: clears as they finish
RATE_LIMIT_PAUSE = 60.0  # a 429 without Retry-After (not documented for Salesforce; handled defensively)
MAX_PAUSE = 86_400.0

CALL_TYPES: Mapping[str, str] = {"inbound": "Inbound", "outbound": "Outbound"}
# callgate status -> the "Call Result" shown when the call has no outcome of its own.
DISPOSITIONS: Mapping[str, str] = {
    "completed": "Connected",
    "failed": "Failed",
    "no_answer": "No answer",
    "busy": "Busy",
    "canceled": "Canceled",
    "in_progress": "In progress",
    "ringing": "Ringing",
    "initiating": "Initiating",
    "queued": "Queued",
}
PHONE_FIELDS = ("Phone", "MobilePhone")
SOSL_RESERVED = frozenset("?&|!{}[]()^~*:\\\"'+-")
# Salesforce error codes that decide the verdict whatever the HTTP status says.
LIMIT_CODES = frozenset({"REQUEST_LIMIT_EXCEEDED"})
SESSION_CODES = frozenset({"INVALID_SESSION_ID", "INVALID_AUTH_HEADER"})
TRANSIENT_CODES = frozenset({"UNABLE_TO_LOCK_ROW", "SERVER_UNAVAILABLE", "REQUEST_RUNNING_TOO_LONG"})
READ_ONLY = "INVALID_FIELD_FOR_INSERT_UPDATE"  # how an update that sets a create-only field is refused
# OAuth token-endpoint errors that mean "these credentials will not work" (RFC 6749 §5.2).
OAUTH_REFUSALS = frozenset(
    {"invalid_client", "invalid_grant", "unauthorized_client", "invalid_client_id", "inactive_user"}
)


# --- pure mapping -------------------------------------------------------------------------------------


def activity_date(call: Mapping[str, Any]) -> str:
    """``ActivityDate``: the UTC date the call started (else answered, created); a Task has no start time."""
    for name in ("started_at", "answered_at", "created_at", "updated_at"):
        moment = _when(call.get(name))
        if moment is not None:
            return f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d}"
    return "1970-01-01"


def duration_seconds(call: Mapping[str, Any]) -> int | None:
    """Whole seconds (``CallDurationInSeconds`` is an int): ``duration_seconds``, else end minus start."""
    seconds = _number(call.get("duration_seconds"))
    if seconds is None:
        start = _when(call.get("started_at")) or _when(call.get("answered_at"))
        end = _when(call.get("ended_at"))
        if start is None or end is None or end < start:
            return None
        seconds = (end - start).total_seconds()
    try:
        return round(seconds)
    except OverflowError:
        return None


def subject(call: Mapping[str, Any]) -> str:
    return call_title(call)[:STRING_LIMIT]


def _humane(code: str) -> str:
    words = code.replace("_", " ").strip()
    return words[:1].upper() + words[1:]


def disposition(call: Mapping[str, Any]) -> str | None:
    """``CallDisposition`` ("Call Result", free text): the call's own outcome, else its status in words."""
    outcome = _text(call.get("outcome"))
    if outcome:
        return _humane(outcome)[:STRING_LIMIT]
    status = _text(call.get("status"))
    if status is None:
        return None
    return DISPOSITIONS.get(status, _humane(status))[:STRING_LIMIT]


def _recording_url(call: Mapping[str, Any]) -> str | None:
    """Only an HTTPS link goes into the comments: a plain-HTTP one would be a downgrade for the reader."""
    recording = call.get("recording")
    url = recording.get("url") if isinstance(recording, Mapping) else None
    if isinstance(url, str) and url.strip().lower().startswith("https://"):
        return url.strip()
    return None


def _facts(call: Mapping[str, Any]) -> list[str]:
    """Summary, status and outcome, grade, numbers, times and recording, one line each."""
    raw = call.get("grade")
    grade: Mapping[str, Any] = raw if isinstance(raw, Mapping) else {}
    lines: list[str] = []
    summary = _text(grade.get("summary"))
    if summary:
        lines.append(f"Summary: {summary}")
    line = [f"Status: {_text(call.get('status')) or 'unknown'}"]
    for label, name in (("Outcome", "outcome"), ("End reason", "end_reason")):
        value = _text(call.get(name))
        if value:
            line.append(f"{label}: {value}")
    lines.append(" · ".join(line))
    score = _number(grade.get("score"))
    if score is not None:
        lines.append(f"Grade: {round(score * 100)}/100 ({_text(grade.get('status')) or 'graded'})")
    # A Task has no fields for the numbers and the times (research §2.1): they are written here.
    labelled = (
        ("From", "from_number"),
        ("To", "to_number"),
        ("Started", "started_at"),
        ("Ended at", "ended_at"),
    )
    moments = [f"{label}: {value}" for label, name in labelled if (value := _text(call.get(name)))]
    seconds = duration_seconds(call)
    if seconds is not None:
        moments.append(f"Duration: {seconds} s")
    if moments:
        lines.append(" · ".join(moments))
    url = _recording_url(call)
    if url:
        lines.append(f"Recording: {url}")
    return lines


def _turns(call: Mapping[str, Any]) -> Iterable[str]:
    transcript = call.get("transcript")
    for turn in transcript if isinstance(transcript, list) else []:
        if isinstance(turn, Mapping):
            text = _text(turn.get("text"))
            if text:
                yield f"{_text(turn.get('speaker')) or '?'}: {text}"


def description(call: Mapping[str, Any]) -> str:
    """``Description`` (plain text): the facts, then the transcript turn by turn while it fits
    ``DESCRIPTION_LIMIT``, then a footer naming the call. Whole turns are dropped before anything is cut."""
    footer = f"callgate call {call.get('id')} · {call.get('vendor')}"
    head = "\n".join(_facts(call))
    turns = list(_turns(call))
    if not turns:
        return f"{head}\n\n{footer}"[:DESCRIPTION_LIMIT]
    room = DESCRIPTION_LIMIT - len(head) - len(footer) - len("\n\nTranscript:\n\n\n") - 60
    kept: list[str] = []
    for turn in turns:
        if len(turn) + 1 > room:
            break
        kept.append(turn)
        room -= len(turn) + 1
    transcript = "Transcript:\n" + "\n".join(kept)
    if len(kept) < len(turns):
        transcript += f"\n… transcript cut ({len(turns) - len(kept)} more turns)"
    return f"{head}\n\n{transcript}\n\n{footer}"[:DESCRIPTION_LIMIT]


def task_fields(
    call: Mapping[str, Any], options: Mapping[str, Any], *, create: bool, contact_id: str | None
) -> dict[str, Any]:
    """The Task's fields for the call's latest state. ``TaskSubtype`` only on ``create`` (Salesforce refuses
    it on an update); fields callgate has no value for are left out, so an update never clears them."""
    fields: dict[str, Any] = {
        "Subject": subject(call),
        "ActivityDate": activity_date(call),
        "Status": "Completed",
        "Description": description(call),
    }
    call_type = CALL_TYPES.get(str(call.get("direction")))
    if call_type:
        fields["CallType"] = call_type
    seconds = duration_seconds(call)
    if seconds is not None:
        fields["CallDurationInSeconds"] = seconds
    result = disposition(call)
    if result:
        fields["CallDisposition"] = result
    if create:
        fields["TaskSubtype"] = "Call"
    if contact_id:
        fields["WhoId"] = contact_id
    owner = _text(options.get("owner_id"))
    if owner:
        fields["OwnerId"] = owner
    return fields


# --- pure classification ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Problem:
    """What Salesforce said went wrong: the first error's code, every message, every named field."""

    code: str | None
    message: str | None
    fields: frozenset[str]


def _decode(raw: object) -> object:
    if isinstance(raw, bytes | bytearray | memoryview):
        raw = bytes(raw).decode("utf-8", errors="replace")
    if isinstance(raw, str):
        try:
            return json.loads(raw)
        except (ValueError, RecursionError):
            return None
    return raw


def problem(body: object) -> Problem:
    """Reads Salesforce's error array (``[{message, errorCode, fields}]``), a bare error object (some 404s)
    or an OAuth error (``{error, error_description}``); anything else is an empty ``Problem``."""
    data = _decode(body)
    items = data if isinstance(data, list) else [data]
    code: str | None = None
    messages: list[str] = []
    fields: set[str] = set()
    for item in items:
        if not isinstance(item, Mapping):
            continue
        found = item.get("errorCode", item.get("error"))
        text = item.get("message", item.get("error_description"))
        if code is None and isinstance(found, str) and found:
            code = found[:100]
        if isinstance(text, str) and text:
            messages.append(text)
        named = item.get("fields")
        if isinstance(named, list):
            fields.update(name for name in named if isinstance(name, str))
    message = "; ".join(messages)[:MESSAGE_LIMIT] or None
    return Problem(code, message, frozenset(fields))


def _retry_after(headers: Mapping[str, str]) -> float | None:
    """``Retry-After`` in seconds (a number or an HTTP date), capped at a day; None when absent or bad."""
    raw = _header(headers, "retry-after")
    if raw is None:
        return None
    raw = raw.strip()
    try:
        value: float | None = float(raw)
    except ValueError:
        try:
            value = (parsedate_to_datetime(raw) - datetime.now(UTC)).total_seconds()
        except (TypeError, ValueError, IndexError, OverflowError):
            value = None
    if value is None or not math.isfinite(value):
        return None
    return min(max(value, 0.0), MAX_PAUSE)


def _limit_pause(message: str | None) -> float:
    """The concurrent long-running-request limit clears in seconds; the daily allocation in hours."""
    if message and "concurrent" in message.lower():
        return CONCURRENT_LIMIT_PAUSE
    return DAILY_LIMIT_PAUSE


def classify(status_code: int, headers: Mapping[str, str], body: object) -> CrmOutcome:
    """One Salesforce answer -> what the worker does (research §6.4, §2.7, §2.8). Never raises."""
    try:
        return _classify(int(status_code), headers, problem(body), body)
    except Exception:  # the worker must get a verdict whatever arrived
        return CrmOutcome(
            CrmVerdict.RETRY, None, "unreadable_answer", "Salesforce's answer could not be read"
        )


def _ids(body: object) -> str:
    """The record ids in a 300 answer (an array of record URLs), so the duplicates can be found."""
    data = _decode(body)
    urls = [item for item in data if isinstance(item, str)] if isinstance(data, list) else []
    return ", ".join(url.rstrip("/").rsplit("/", 1)[-1] for url in urls[:10]) or "ids not given"


def _classify(status: int, headers: Mapping[str, str], found: Problem, body: object) -> CrmOutcome:
    code, text = found.code, found.message or f"Salesforce answered HTTP {status}"
    if 200 <= status < 300:
        return CrmOutcome(CrmVerdict.DONE, status)
    if code in LIMIT_CODES:
        pause = _retry_after(headers) or _limit_pause(found.message)
        return CrmOutcome(CrmVerdict.PAUSED, status, code, text, None, pause)
    if status == 429 or (status == 503 and _retry_after(headers) is not None):
        pause = _retry_after(headers) or RATE_LIMIT_PAUSE
        return CrmOutcome(CrmVerdict.PAUSED, status, code or "rate_limited", text, None, pause)
    if status == 401 or code in SESSION_CODES:
        return CrmOutcome(CrmVerdict.AUTH_FAILED, status, code or "unauthorized", text)
    if status == 403:
        # Any other 403 is a permission the integration user lacks (API Enabled, access to Task, the
        # external-id field): every sync would fail alike. PERMANENT would kill the pending syncs one by
        # one; AUTH_FAILED stops the connection visibly and keeps them until the permission is fixed and
        # the credentials patched (or the connection re-enabled).
        return CrmOutcome(CrmVerdict.AUTH_FAILED, status, code or "forbidden", text)
    if code in TRANSIENT_CODES or status == 408 or status >= 500:
        return CrmOutcome(CrmVerdict.RETRY, status, code or "unavailable", text, _retry_after(headers))
    if status == 300:
        text = f"several Tasks hold this call's external id ({_ids(body)}); nothing was written"
        return CrmOutcome(CrmVerdict.PERMANENT, status, "MULTIPLE_RECORDS", text)
    if status == 400 and code in OAUTH_REFUSALS:
        return CrmOutcome(CrmVerdict.AUTH_FAILED, status, code, text)
    if 400 <= status < 500:
        return CrmOutcome(CrmVerdict.PERMANENT, status, code or "rejected", text)
    return CrmOutcome(CrmVerdict.RETRY, status, code or "unexpected_status", text)


# --- the connector ------------------------------------------------------------------------------------


class Refused(CrmFailure):
    """A ``CrmFailure`` that remembers which fields Salesforce named, so ``sync`` can fix the body once."""

    def __init__(self, outcome: CrmOutcome, fields: frozenset[str]) -> None:
        super().__init__(outcome)
        self.fields = fields


def _bad_response(what: str) -> CrmFailure:
    return CrmFailure(CrmOutcome(CrmVerdict.RETRY, None, "bad_response", f"Salesforce answered {what}"))


def _object(raw: bytes) -> dict[str, Any]:
    data = _decode(raw)
    return {str(key): value for key, value in data.items()} if isinstance(data, Mapping) else {}


def sosl_escape(term: str) -> str:
    """A SOSL search term with every reserved character backslash-escaped (research §2.6)."""
    return "".join(f"\\{char}" if char in SOSL_RESERVED else char for char in term)


def matching_contacts(answer: object, e164: str, region: str) -> list[str]:
    """Ids of the found Contacts with a ``Phone`` or ``MobilePhone`` that is ``e164`` once re-normalized
    (a number without a country code is read in the customer's region), in id order. Both SOSL answer
    shapes are read: ``{"searchRecords": [...]}`` (current) and a bare list (old API versions)."""
    records = answer.get("searchRecords") if isinstance(answer, Mapping) else answer
    if not isinstance(records, list):
        raise _bad_response("a search without searchRecords")
    found: set[str] = set()
    for item in records:
        if not isinstance(item, Mapping) or not isinstance(item.get("Id"), str):
            continue
        phones = [item.get(name) for name in PHONE_FIELDS]
        if any(isinstance(phone, str) and to_e164(phone, region) == e164 for phone in phones):
            found.add(item["Id"])
    return sorted(found)


class SalesforceConnector:
    """One Salesforce org over the worker's shared client: a given token, or client credentials."""

    kind = KIND

    def __init__(
        self,
        base_url: str,
        credentials: Mapping[str, str],
        options: Mapping[str, Any],
        client: httpx.AsyncClient,
        contacts: ContactCache,
    ) -> None:
        if not base_url:
            raise ValueError("Salesforce needs the org's instance URL as base_url")
        self._base = base_url.rstrip("/")
        self._options = {**DEFAULT_OPTIONS, **options}
        self._client = client
        self._contacts = contacts
        self._client_id = credentials.get("client_id") or None
        self._client_secret = credentials.get("client_secret") or None
        self._token: str | None = credentials.get("access_token") or None
        self._refreshable = self._token is None and bool(self._client_id and self._client_secret)
        self._token_lock = asyncio.Lock()

    @property
    def _api(self) -> str:
        """``/services/data/vNN.N``; "62.0" is read as "v62.0" (Salesforce writes it both ways)."""
        version = _text(self._options.get("api_version")) or str(DEFAULT_OPTIONS["api_version"])
        return f"/services/data/{version if version.startswith('v') else 'v' + version}"

    @property
    def _external_field(self) -> str:
        return _text(self._options.get("external_id_field")) or str(DEFAULT_OPTIONS["external_id_field"])

    async def test(self) -> None:
        """Describes Task: proves the token, the API version and read access to Task, and that the org has
        the external-id field the upsert needs (otherwise every sync would be a 404)."""
        answer = await self._request("GET", f"{self._api}/sobjects/Task/describe")
        fields = answer.get("fields")
        if not isinstance(fields, list):
            raise _bad_response("a Task description without fields")
        wanted = self._external_field
        if not any(
            isinstance(f, Mapping) and f.get("name") == wanted and f.get("externalId") for f in fields
        ):
            message = f"Task has no External ID field {wanted} (make it on Activity: External ID, Unique)"
            raise CrmFailure(CrmOutcome(CrmVerdict.PERMANENT, None, "NOT_FOUND", message[:MESSAGE_LIMIT]))

    async def sync(self, call: Mapping[str, Any], existing: SyncedRecord | None) -> SyncedRecord:
        """One upsert (plus a Contact search on a cache miss); the create shape when no Task is known."""
        known = existing.extra.get("contact_id") if existing is not None else None
        contact_id = str(known) if known else await self._match(call)
        create = existing is None
        for _ in range(3):  # at most one fix per refusal kind below
            fields = task_fields(call, self._options, create=create, contact_id=contact_id)
            try:
                task_id = await self._upsert(str(call["id"]), fields, existing)
            except Refused as refused:
                if refused.outcome.status_code != 400:
                    raise
                if create and refused.outcome.code == READ_ONLY and _names(refused, "TaskSubtype"):
                    create = False  # the Task exists already (an earlier attempt created it): update it
                    continue
                if contact_id is not None and _names(refused, "WhoId"):
                    self._forget(call)  # the cached Contact is gone: log the call without it
                    contact_id = None
                    continue
                raise
            return SyncedRecord(task_id, RECORD_TYPE, {"contact_id": contact_id})
        raise _bad_response("the same refusal three times")  # unreachable in practice: each fix runs once

    # --- the Task

    async def _upsert(self, call_id: str, fields: Mapping[str, Any], existing: SyncedRecord | None) -> str:
        """The upsert; the Task id from its answer (201/200), else the stored one, else a read by the
        external id (API versions before 46.0 answer an update with 204 and no body)."""
        path = self._by_external_id(call_id)
        answer = await self._request("PATCH", path, json=dict(fields))
        task_id = answer.get("id")
        if isinstance(task_id, str) and task_id:
            return task_id
        if existing is not None:
            return existing.record_id
        try:
            record = await self._request("GET", path, params={"fields": "Id"})
        except CrmFailure as failure:
            if failure.outcome.status_code == 404:  # a 2xx that wrote nothing: not the call's fault
                raise _bad_response("a write that left no Task") from None
            raise
        task_id = record.get("Id")
        if not isinstance(task_id, str) or not task_id:
            raise _bad_response("a Task without an Id")
        return task_id

    def _by_external_id(self, call_id: str) -> str:
        field = quote(self._external_field, safe="")
        return f"{self._api}/sobjects/Task/{field}/{quote(call_id, safe='')}"

    # --- the Contact

    async def _match(self, call: Mapping[str, Any]) -> str | None:
        """The Contact whose phone is the customer's number: the cache, else a search (hit or miss kept)."""
        enabled = bool(self._options.get("match_contacts", True))
        return await self._contacts.match(call, enabled, self._search_contact)

    def _forget(self, call: Mapping[str, Any]) -> None:
        self._contacts.forget(call)

    async def _search_contact(self, e164: str, parsed: phonenumbers.PhoneNumber) -> str | None:
        """SOSL over the phone fields with the national digits, the form Salesforce's own sample uses
        (research §2.6); SOSL's phone matching is not documented, so every result is re-checked."""
        term = sosl_escape(str(parsed.national_number))
        query = (
            f"FIND {{{term}}} IN PHONE FIELDS RETURNING Contact({', '.join(('Id', *PHONE_FIELDS))}) "
            f"LIMIT {CONTACT_SEARCH_LIMIT}"
        )
        answer = await self._request_any("GET", f"{self._api}/search/", params={"q": query})
        region = phonenumbers.region_code_for_number(parsed) or "ZZ"
        matches = matching_contacts(answer, e164, region)
        return matches[0] if matches else None

    # --- HTTP and auth

    async def _request(
        self, method: str, path: str, *, params: Mapping[str, str] | None = None, json: JSON | None = None
    ) -> dict[str, Any]:
        """One API call; its JSON object ({} for an empty 2xx), else ``CrmFailure``."""
        answer = await self._request_any(method, path, params=params, json=json)
        return {str(k): v for k, v in answer.items()} if isinstance(answer, Mapping) else {}

    async def _request_any(
        self, method: str, path: str, *, params: Mapping[str, str] | None = None, json: JSON | None = None
    ) -> object:
        """One API call with the Bearer token; on a 401 a client-credentials token is fetched again and
        the call repeated once (research §6.4). Every failure is a scrubbed ``CrmFailure``."""
        token = await self._access_token()
        response = await self._send(method, path, token, params=params, json=json)
        if response.status_code == 401 and self._refreshable:
            token = await self._refresh(stale=token)
            response = await self._send(method, path, token, params=params, json=json)
        outcome = classify(response.status_code, response.headers, response.content)
        if outcome.verdict is not CrmVerdict.DONE:
            fields = problem(response.content).fields
            raise Refused(replace(outcome, message=self._scrub(outcome.message)), fields)
        return _decode(response.content) if response.content else {}

    async def _send(
        self,
        method: str,
        path: str,
        token: str,
        *,
        params: Mapping[str, str] | None = None,
        json: JSON | None = None,
    ) -> httpx.Response:
        headers = {"authorization": f"Bearer {token}", "accept": "application/json"}
        try:
            return await self._client.request(
                method, f"{self._base}{path}", params=params, json=json, headers=headers
            )
        except httpx.TransportError as exc:
            raise self._network(exc) from None

    async def _access_token(self) -> str:
        if self._token is not None:
            return self._token
        return await self._refresh(stale=None)

    async def _refresh(self, stale: str | None) -> str:
        """A new token by client credentials, once for every request that saw ``stale`` refused."""
        async with self._token_lock:
            if self._token is not None and self._token != stale:
                return self._token  # another request refreshed it meanwhile
            self._token = None
            self._token = await self._fetch_token()
            return self._token

    async def _fetch_token(self) -> str:
        if not self._refreshable:
            raise CrmFailure(CrmOutcome(CrmVerdict.AUTH_FAILED, None, "no_credentials", "no usable token"))
        form = {
            "grant_type": "client_credentials",
            "client_id": str(self._client_id),
            "client_secret": str(self._client_secret),
        }
        try:
            response = await self._client.post(
                f"{self._base}{OAUTH_PATH}", data=form, headers={"accept": "application/json"}
            )
        except httpx.TransportError as exc:
            raise self._network(exc) from None
        outcome = classify(response.status_code, response.headers, response.content)
        if outcome.verdict is CrmVerdict.PERMANENT:  # a refused token request is the credentials' fault
            outcome = replace(outcome, verdict=CrmVerdict.AUTH_FAILED)
        if outcome.verdict is not CrmVerdict.DONE:
            raise CrmFailure(replace(outcome, message=self._scrub(outcome.message)))
        token = _object(response.content).get("access_token")
        if not isinstance(token, str) or not token:
            raise _bad_response("a token answer without access_token")
        return token

    def _network(self, exc: Exception) -> CrmFailure:
        text = self._scrub(f"{type(exc).__name__}: {exc}")[:MESSAGE_LIMIT]
        return CrmFailure(CrmOutcome(CrmVerdict.RETRY, None, "network", text))

    def _scrub(self, text: str) -> str:
        """No secret in any message, even when an answer or an exception echoes one."""
        for secret in (self._token, self._client_secret):
            if secret:
                text = text.replace(secret, "***")
        return text


def _names(refused: Refused, field: str) -> bool:
    """Did Salesforce name ``field`` as the problem (in ``fields``, or in the message of old versions)?"""
    return field in refused.fields or field in refused.outcome.message


def build(
    base_url: str,
    credentials: Mapping[str, str],
    options: Mapping[str, Any],
    client: httpx.AsyncClient,
    contacts: ContactCache,
) -> SalesforceConnector:
    return SalesforceConnector(base_url, credentials, options, client, contacts)


SPEC = ConnectorSpec(
    kind=KIND,
    default_base_url=None,
    credential_keys=(frozenset({"access_token"}), frozenset({"client_id", "client_secret"})),
    default_options=DEFAULT_OPTIONS,
    build=build,
    # Salesforce meters a daily allocation, not a burst rate (research §2.7); a first sync spends at most
    # two calls (search, upsert), and 5 per second keeps one connection from eating a small org's day.
    rate_per_second=5.0,
)
