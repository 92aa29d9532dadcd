"""Pipedrive: a call becomes one call log (``POST /v1/callLogs``), and what arrives later goes into one Note.

Pipedrive call logs cannot be updated (no PUT or PATCH, research §0.2), so the log is written once, with
the call as it is when it first reaches a synced status, and everything later (transcript, grade, summary,
and changed log fields) lives in a single Note on the matched person, created once and then replaced with
``PUT /v1/notes/{id}``. Deleting and re-creating the log was the other option; it was rejected because a
deleted log leaves its activity behind (a duplicate in the timeline), loses any uploaded recording and
changes the record id the mapping table holds.

Exactly one log per call, across crashes: the log's subject ends with a marker holding the callgate call
id, and a sync without a stored record first looks for that marker among the token user's call logs.
The Note carries the same marker and is looked up the same way on the person before a second is created.

The API facts behind it (endpoints, fields, limits, errors) are summarised in ``docs/crm.md``.
"""

from __future__ import annotations

import hashlib
import html
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import phonenumbers

from adapters.outbound.base import call_title
from adapters.outbound.base import header as _header
from adapters.outbound.base import non_negative as _seconds
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

KIND = "pipedrive"
DEFAULT_BASE_URL = "https://api.pipedrive.com"
DEFAULT_OPTIONS: Mapping[str, Any] = {
    "user_id": None,
    "match_contacts": True,
    "statuses": ["completed", "failed", "no_answer", "busy", "canceled"],
}
RECORD_TYPE = "callLog"

# The six values ``AddCallLogRequest.outcome`` accepts (research §3.2).
OUTCOMES = frozenset({"connected", "no_answer", "left_message", "left_voicemail", "wrong_number", "busy"})
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

NOTE_LIMIT = 20_000  # characters of HTML; Pipedrive documents no limit, this keeps notes readable and cheap
SUBJECT_LIMIT = 255
MESSAGE_LIMIT = 500
LOG_PAGE_SIZE = 50  # the documented maximum for GET /v1/callLogs
LOG_PAGES = 4  # crash recovery scans at most 200 logs (20 tokens a page)
NOTE_PAGE_SIZE = 100
NOTE_PAGES = 2
SEARCH_LIMIT = 10
DEFAULT_PAUSE = 2.0  # Pipedrive's burst window is 2 seconds
MAX_PAUSE = 86_400.0

# Free-text callgate outcomes that name one of Pipedrive's outcomes more precisely than the status does.
OUTCOME_WORDS: tuple[tuple[str, str], ...] = (
    ("wrong_number", "wrong_number"),
    ("invalid_number", "wrong_number"),
    ("voicemail", "left_voicemail"),
    ("left_message", "left_message"),
    ("message_left", "left_message"),
    ("busy", "busy"),
    ("no_answer", "no_answer"),
)
# Status -> outcome. failed/canceled have no Pipedrive value: no_answer is the lossy fallback (§6.1); the
# real status is written in the note.
STATUS_OUTCOMES: Mapping[str, str] = {
    "completed": "connected",
    "in_progress": "connected",
    "busy": "busy",
    "no_answer": "no_answer",
    "failed": "no_answer",
    "canceled": "no_answer",
}


# --- pure mapping -------------------------------------------------------------------------------------


def marker(call: Mapping[str, Any]) -> str:
    """What crash recovery looks for in subjects and notes: the callgate call id."""
    return f"[callgate {call['id']}]"


def _shift(moment: datetime, seconds: float) -> datetime:
    """``moment`` moved by ``seconds``, or unmoved when that leaves the calendar (a nonsense duration)."""
    try:
        return moment + timedelta(seconds=seconds)
    except OverflowError:
        return moment


def _format(moment: datetime) -> str:
    """UTC ``YYYY-MM-DD HH:MM:SS`` as Pipedrive wants, always with a 4-digit year (strftime drops the
    leading zeros on some libcs)."""
    return (
        f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d} "
        f"{moment.hour:02d}:{moment.minute:02d}:{moment.second:02d}"
    )


def _span(call: Mapping[str, Any]) -> tuple[datetime, datetime]:
    """Start and end, both always present (Pipedrive requires both): the end is derived from the start and
    the duration when missing, the start from the end; with no times at all, the call's creation."""
    duration = _seconds(call.get("duration_seconds")) or 0.0
    start = _when(call.get("started_at")) or _when(call.get("answered_at"))
    end = _when(call.get("ended_at"))
    if start is None and end is not None:
        start = _shift(end, -duration)
    if start is None:
        start = _when(call.get("created_at")) or _when(call.get("updated_at")) or EPOCH
    if end is None:
        end = _shift(start, duration)
    return start, max(start, end)


def pipedrive_outcome(call: Mapping[str, Any]) -> str:
    """One of the six outcomes: a precise callgate outcome (voicemail, wrong number) wins over the status."""
    raw = call.get("outcome")
    if isinstance(raw, str) and raw:
        word = raw.strip().lower().replace("-", "_").replace(" ", "_")
        if word in OUTCOMES:
            return word
        for needle, outcome in OUTCOME_WORDS:
            if needle in word:
                return outcome
    return STATUS_OUTCOMES.get(str(call.get("status")), "no_answer")


def _subject(call: Mapping[str, Any]) -> str:
    """Direction and the other party (call logs have no direction field), then the marker."""
    base = call_title(call)
    tail = f" {marker(call)}"
    return base[: max(0, SUBJECT_LIMIT - len(tail))] + tail


def _id_value(value: object) -> object:
    """Pipedrive ids are integers; a numeric string is sent as one."""
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return value


def call_log(call: Mapping[str, Any], options: Mapping[str, Any], person_id: str | None) -> JSON:
    """The ``POST /v1/callLogs`` body: the four required fields always present, times in UTC
    ``YYYY-MM-DD HH:MM:SS``, ``duration`` in seconds as a string, the marker at the end of ``subject``."""
    start, end = _span(call)
    duration = _seconds(call.get("duration_seconds"))
    if duration is None:
        duration = (end - start).total_seconds()
    body: JSON = {
        "outcome": pipedrive_outcome(call),
        # Required even for web calls that have no number; "unknown" is what such a log shows [U: whether
        # Pipedrive validates the value as a number].
        "to_phone_number": call.get("to_number") or "unknown",
        "start_time": _format(start),
        "end_time": _format(end),
        "duration": str(round(duration)),
        "subject": _subject(call),
        "note": note_content(call),
    }
    if call.get("from_number"):
        body["from_phone_number"] = call["from_number"]
    if person_id is not None:
        body["person_id"] = _id_value(person_id)
    if options.get("user_id") is not None:
        body["user_id"] = _id_value(options["user_id"])
    return body


def _p(text: str) -> str:
    return f"<p>{html.escape(text)}</p>"


def _header_lines(call: Mapping[str, Any]) -> list[str]:
    """The log fields as text: the note repeats them because the log itself can never be corrected."""
    start, end = _span(call)
    direction = str(call.get("direction") or "unknown").capitalize()
    lines = [
        marker(call),
        f"{direction} call · status {call.get('status') or 'unknown'} · outcome "
        f"{call.get('outcome') or pipedrive_outcome(call)}",
        f"From {call.get('from_number') or 'unknown'} to {call.get('to_number') or 'unknown'}",
        f"Started {_format(start)} UTC · ended {_format(end)} UTC",
    ]
    timing = []
    if _seconds(call.get("duration_seconds")) is not None:
        timing.append(f"duration {round(call['duration_seconds'])} s")
    if _seconds(call.get("talk_time_seconds")) is not None:
        timing.append(f"talk time {round(call['talk_time_seconds'])} s")
    if call.get("end_reason"):
        timing.append(f"ended because: {call['end_reason']}")
    if timing:
        lines.append(" · ".join(timing))
    return lines


def _grade_lines(call: Mapping[str, Any]) -> list[str]:
    grade = call.get("grade")
    if not isinstance(grade, Mapping):
        return []
    lines = []
    if isinstance(grade.get("summary"), str) and grade["summary"]:
        lines.append(f"Summary: {grade['summary']}")
    score = _seconds(grade.get("score"))  # a non-negative finite number, like a duration
    if score is not None:
        lines.append(f"Grade: {round(score * 100)}/100 ({grade.get('status') or 'graded'})")
    return lines


def _recording_line(call: Mapping[str, Any]) -> list[str]:
    """Pipedrive takes recordings as uploads, not URLs (§0.3): the HTTPS link goes into the note."""
    recording = call.get("recording")
    if isinstance(recording, Mapping) and str(recording.get("url") or "").startswith("https://"):
        return [f"Recording: {recording['url']}"]
    return []


def _turns(call: Mapping[str, Any]) -> Iterable[str]:
    transcript = call.get("transcript")
    if not isinstance(transcript, list):
        return
    for turn in transcript:
        if isinstance(turn, Mapping) and turn.get("text"):
            yield f"{turn.get('speaker') or '?'}: {turn['text']}"


def note_content(call: Mapping[str, Any]) -> str:
    """The call as HTML: marker first (so a cut never loses it), log fields, summary, grade, recording
    link, then the transcript until ``NOTE_LIMIT``."""
    parts = [_p(line) for line in (*_header_lines(call), *_grade_lines(call), *_recording_line(call))]
    content = "".join(parts)
    turns = list(_turns(call))
    if not turns:
        return content[:NOTE_LIMIT]
    content += _p("Transcript:")
    kept: list[str] = []
    room = NOTE_LIMIT - len(content) - 80  # room for the closing tags and the "cut" line
    for turn in turns:
        escaped = html.escape(turn)
        if len(escaped) + 4 > room:
            break
        kept.append(escaped)
        room -= len(escaped) + 4
    content += "<p>" + "<br>".join(kept) + "</p>"
    if len(kept) < len(turns):
        content += _p(f"… transcript cut ({len(turns) - len(kept)} more turns)")
    return content[:NOTE_LIMIT]


# --- pure classification ------------------------------------------------------------------------------


def _envelope(body: object) -> dict[str, Any]:
    """Pipedrive's JSON envelope, or {} for anything that is not one (HTML error pages, garbage)."""
    if isinstance(body, bytes | bytearray):
        body = bytes(body).decode("utf-8", errors="replace")
    if isinstance(body, str):
        try:
            body = json.loads(body)
        except (ValueError, RecursionError):
            return {}
    if isinstance(body, Mapping):
        return {str(key): value for key, value in body.items()}
    return {}


def _header_seconds(headers: Mapping[str, str], name: str) -> float | None:
    raw = _header(headers, name)
    if raw is None:
        return None
    try:
        value = float(raw.strip())
    except ValueError:
        return None  # an HTTP-date Retry-After: fall back to x-ratelimit-reset
    return _seconds(value)


def _message(envelope: Mapping[str, Any], status_code: int) -> str:
    pieces = [envelope[key] for key in ("error", "error_info") if isinstance(envelope.get(key), str)]
    text = " — ".join(piece for piece in pieces if piece) or f"Pipedrive answered HTTP {status_code}"
    return text[:MESSAGE_LIMIT]


def _code(envelope: Mapping[str, Any], fallback: str) -> str:
    for key in ("code", "errorCode"):
        value = envelope.get(key)
        if isinstance(value, str | int) and not isinstance(value, bool) and str(value):
            return str(value)[:100]
    return fallback


def classify(status_code: int, headers: Mapping[str, str], body: object) -> CrmOutcome:
    """One Pipedrive answer -> what the worker does (research §6.4, §3.4, §3.5). Never raises."""
    envelope = _envelope(body)
    message = _message(envelope, status_code)

    def outcome(
        verdict: CrmVerdict, code: str, retry_after: float | None = None, pause_seconds: float | None = None
    ) -> CrmOutcome:
        return CrmOutcome(verdict, status_code, code, message, retry_after, pause_seconds)

    if 200 <= status_code < 300:
        success = envelope.get("success")
        if success is True:
            return CrmOutcome(CrmVerdict.DONE, status_code)
        if success is False:  # a 2xx that says it failed: refused, like a 400
            return outcome(CrmVerdict.PERMANENT, _code(envelope, "unsuccessful"))
        # No envelope: a proxy or a wrong base URL answered; worth retrying, never worth calling done.
        text = f"Pipedrive answered HTTP {status_code} without its JSON envelope"
        return CrmOutcome(CrmVerdict.RETRY, status_code, "bad_response", text)
    if status_code == 429:
        pause = _header_seconds(headers, "retry-after")
        if pause is None:
            pause = _header_seconds(headers, "x-ratelimit-reset")
        pause = min(max(pause if pause is not None else DEFAULT_PAUSE, 1.0), MAX_PAUSE)
        return outcome(CrmVerdict.PAUSED, "rate_limited", pause_seconds=pause)
    if status_code == 401:
        return outcome(CrmVerdict.AUTH_FAILED, _code(envelope, "unauthorized"))
    if status_code == 403:
        # A 403 is about the token or the account, never about this call: a missing OAuth scope
        # (phone-integration), a user without the right to log calls for ``user_id``, or an account cap
        # (``feature_capping_…``). Marking each call dead would burn every pending sync; stopping the
        # connection keeps them until the credentials or options are fixed, and shows the reason.
        return outcome(CrmVerdict.AUTH_FAILED, _code(envelope, "forbidden"))
    if status_code in (408, 423) or status_code >= 500:
        return outcome(CrmVerdict.RETRY, _code(envelope, "server_error"), retry_after=_retry_after(headers))
    if 400 <= status_code < 500:
        return outcome(CrmVerdict.PERMANENT, _code(envelope, "rejected"))
    return outcome(CrmVerdict.RETRY, "unexpected_status")


def _retry_after(headers: Mapping[str, str]) -> float | None:
    value = _header_seconds(headers, "retry-after")
    return None if value is None else min(value, MAX_PAUSE)


# --- the connector ------------------------------------------------------------------------------------


def _digest(content: str) -> str:
    return hashlib.sha256(content.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class _Linked:
    """Where a call lives in Pipedrive: its log, the person, the note, and a digest of the content
    Pipedrive shows for it (the note's, or the log's own note while there is no Note)."""

    log_id: str
    person_id: str | None
    note_id: str | None
    shown: str | None

    @classmethod
    def of(cls, record: SyncedRecord) -> _Linked:
        extra = record.extra

        def text(key: str) -> str | None:
            value = extra.get(key)
            return None if value is None else str(value)

        return cls(record.record_id, text("person_id"), text("note_id"), text("content_sha256"))

    def record(self) -> SyncedRecord:
        extra = {"note_id": self.note_id, "person_id": self.person_id, "content_sha256": self.shown}
        return SyncedRecord(self.log_id, RECORD_TYPE, extra)


def _items(envelope: Mapping[str, Any]) -> list[dict[str, Any]]:
    """``data`` as a list of objects; Pipedrive answers ``data: null`` for an empty list."""
    data = envelope.get("data")
    if not isinstance(data, list):
        return []
    return [item for item in data if isinstance(item, dict)]


def _next_start(envelope: Mapping[str, Any]) -> int | None:
    extra = envelope.get("additional_data")
    pagination = extra.get("pagination") if isinstance(extra, Mapping) else None
    if not isinstance(pagination, Mapping) or pagination.get("more_items_in_collection") is not True:
        return None
    start = pagination.get("next_start")
    return start if isinstance(start, int) and not isinstance(start, bool) else None


def _bad_response(what: str) -> CrmFailure:
    return CrmFailure(CrmOutcome(CrmVerdict.RETRY, 200, "bad_response", f"Pipedrive answered {what}"))


class PipedriveConnector:
    """One Pipedrive account (an API token) over the worker's shared client."""

    kind = KIND

    def __init__(
        self,
        base_url: str,
        api_token: str,
        options: Mapping[str, Any],
        client: httpx.AsyncClient,
        contacts: ContactCache,
    ) -> None:
        self._base = base_url.rstrip("/")
        self._token = api_token
        self._options = {**DEFAULT_OPTIONS, **options}
        self._client = client
        self._contacts = contacts

    async def test(self) -> None:
        """The cheapest authenticated read there is: who the token belongs to."""
        await self._request("GET", "/v1/users/me")

    async def sync(self, call: Mapping[str, Any], existing: SyncedRecord | None) -> SyncedRecord:
        content = note_content(call)
        linked = _Linked.of(existing) if existing is not None else await self._log(call, content)
        return (await self._note(call, content, linked)).record()

    # --- the call log

    async def _log(self, call: Mapping[str, Any], content: str) -> _Linked:
        """The call's log: the one an interrupted earlier sync created, else a new one (with the person)."""
        found = await self._find_log(marker(call))
        if found is not None:
            person = found.get("person_id")
            return _Linked(
                str(found["id"]),
                None if person is None else str(person),
                None,
                _digest(str(found.get("note") or "")),
            )
        person_id = await self._match(call)
        envelope = await self._request("POST", "/v1/callLogs", json=call_log(call, self._options, person_id))
        data = envelope.get("data")
        log_id = data.get("id") if isinstance(data, Mapping) else None
        if not isinstance(log_id, str | int) or isinstance(log_id, bool):
            raise _bad_response("a created call log without an id")
        return _Linked(str(log_id), person_id, None, _digest(content))

    async def _find_log(self, mark: str) -> dict[str, Any] | None:
        """The log whose subject carries ``mark``, in the first ``LOG_PAGES`` pages of the token user's logs.
        Pipedrive lists call logs per user only (no filter by person or subject), so this is a bounded
        scan filtered here. [U] whether the list is newest first; a log owned by another ``user_id`` is not
        in it."""
        start: int | None = 0
        for _ in range(LOG_PAGES):
            if start is None:
                break
            envelope = await self._request(
                "GET", "/v1/callLogs", params={"start": start, "limit": LOG_PAGE_SIZE}
            )
            for log in _items(envelope):
                if mark in str(log.get("subject") or "") and log.get("id") is not None:
                    return log
            start = _next_start(envelope)
        return None

    # --- the note

    async def _note(self, call: Mapping[str, Any], content: str, linked: _Linked) -> _Linked:
        """Makes the one Note show ``content`` when Pipedrive does not show it yet. The log's status,
        times and duration can never be corrected, so their newer values live here too."""
        wanted = _digest(content)
        if linked.shown == wanted:
            return linked
        if linked.person_id is None:
            # Notes need a person, deal, org, lead or project (§3.2); an unmatched call has none, so its
            # late data stays out of Pipedrive rather than in a note attached to nothing.
            return linked
        note_id = linked.note_id
        if note_id is None:
            found = await self._find_note(marker(call), linked.person_id)
            if found is not None and _digest(str(found.get("content") or "")) == wanted:
                return replace(linked, note_id=str(found["id"]), shown=wanted)
            note_id = None if found is None else str(found["id"])
        if note_id is not None and await self._put_note(note_id, content):
            return replace(linked, note_id=note_id, shown=wanted)
        body: JSON = {"content": content, "person_id": _id_value(linked.person_id)}
        if self._options.get("user_id") is not None:
            body["user_id"] = _id_value(self._options["user_id"])
        envelope = await self._request("POST", "/v1/notes", json=body)
        data = envelope.get("data")
        created = data.get("id") if isinstance(data, Mapping) else None
        if created is None:
            raise _bad_response("a created note without an id")
        return replace(linked, note_id=str(created), shown=wanted)

    async def _put_note(self, note_id: str, content: str) -> bool:
        """Replaces the note's content; False when the note is gone (deleted in Pipedrive): make another."""
        try:
            await self._request("PUT", f"/v1/notes/{note_id}", json={"content": content})
        except CrmFailure as failure:
            if failure.outcome.status_code in (404, 410):
                return False
            raise
        return True

    async def _find_note(self, mark: str, person_id: str) -> dict[str, Any] | None:
        """The person's note carrying ``mark``, newest first, if an interrupted sync created one."""
        start: int | None = 0
        for _ in range(NOTE_PAGES):
            if start is None:
                break
            params = {
                "person_id": person_id,
                "start": start,
                "limit": NOTE_PAGE_SIZE,
                "sort": "add_time DESC",
            }
            envelope = await self._request("GET", "/v1/notes", params=params)
            for note in _items(envelope):
                if mark in str(note.get("content") or "") and note.get("id") is not None:
                    return note
            start = _next_start(envelope)
        return None

    # --- the person

    async def _match(self, call: Mapping[str, Any]) -> str | None:
        """The person whose phone is the customer's number: the cache, else a search (hit or miss kept)."""
        enabled = bool(self._options.get("match_contacts", True))
        return await self._contacts.match(call, enabled, self._search)

    async def _search(self, e164: str, parsed: phonenumbers.PhoneNumber) -> str | None:
        """Exact E.164 first, then the national digits (how Pipedrive normalizes phones is unknown, §3.3);
        every returned phone is re-parsed and must be the same E.164. Several persons: the oldest id."""
        region = phonenumbers.region_code_for_number(parsed) or "ZZ"
        for term, exact in ((e164, "true"), (str(parsed.national_number), "false")):
            params = {"term": term, "fields": "phone", "exact_match": exact, "limit": SEARCH_LIMIT}
            envelope = await self._request("GET", "/api/v2/persons/search", params=params)
            matches = sorted(_person_ids(envelope, e164, region))
            if matches:
                return str(matches[0])
        return None

    # --- HTTP

    async def _request(
        self, method: str, path: str, *, params: Mapping[str, Any] | None = None, json: JSON | None = None
    ) -> dict[str, Any]:
        """One call to Pipedrive; its envelope when it succeeded, else ``CrmFailure``. The token travels
        in a header only, and is scrubbed from every message in case an error echoes it."""
        headers = {"x-api-token": self._token, "accept": "application/json"}
        try:
            response = await self._client.request(
                method, f"{self._base}{path}", params=params, json=json, headers=headers
            )
        except httpx.TransportError as exc:
            outcome = CrmOutcome(
                CrmVerdict.RETRY, None, "network", self._scrub(f"{type(exc).__name__}: {exc}")
            )
            raise CrmFailure(outcome) from None
        outcome = classify(response.status_code, response.headers, response.content)
        if outcome.verdict is not CrmVerdict.DONE:
            raise CrmFailure(replace(outcome, message=self._scrub(outcome.message)))
        return _envelope(response.content)

    def _scrub(self, text: str) -> str:
        return text.replace(self._token, "***") if self._token else text


def _person_ids(envelope: Mapping[str, Any], e164: str, region: str) -> Iterable[int]:
    """Ids of the found persons with a phone that is ``e164`` once re-normalized (v2 search shape)."""
    data = envelope.get("data")
    items = data.get("items") if isinstance(data, Mapping) else None
    for entry in items if isinstance(items, list) else []:
        item = entry.get("item") if isinstance(entry, Mapping) else None
        if not isinstance(item, Mapping) or not isinstance(item.get("id"), int):
            continue
        phones = item.get("phones")
        for phone in phones if isinstance(phones, list) else []:
            if isinstance(phone, str) and to_e164(phone, region) == e164:
                yield item["id"]
                break


def build(
    base_url: str,
    credentials: Mapping[str, str],
    options: Mapping[str, Any],
    client: httpx.AsyncClient,
    contacts: ContactCache,
) -> PipedriveConnector:
    return PipedriveConnector(
        base_url or DEFAULT_BASE_URL, credentials["api_token"], options, client, contacts
    )


SPEC = ConnectorSpec(
    kind=KIND,
    default_base_url=DEFAULT_BASE_URL,
    credential_keys=(frozenset({"api_token"}),),
    default_options=DEFAULT_OPTIONS,
    build=build,
    rate_per_second=4.0,  # a first sync spends 3-5 requests; the example burst budget is 40 per 2 s
)
