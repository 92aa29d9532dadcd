"""The agent platform's ``/v1/calls`` read API (seed 002), pulled into its webhooks (design/vendors.md).

Seed, "Endpoints":

    GET /v1/calls                      List calls (paginated, filterable): limit 1-200 (default 50),
                                       offset, start_date / end_date (on start_time); "offset + limit to
                                       page forward; check total to know when you've reached the end"
    GET /v1/calls/{call_id}            the Call object, "or 404 if the call does not belong to your org"
    GET /v1/calls/{call_id}/audio      "a short-lived signed URL to the MP3 recording ... do not store it"
    GET /v1/calls/{call_id}/transcript rows {role, content_type, content, start_ms, end_ms}
    GET /v1/calls/{call_id}/grade      "the latest grade row, or 404 if the call has not been graded";
                                       a re-grade is "status=pending - poll ... (usually under 30 s)"
    GET /v1/calls/{call_id}/issue-reports

Assumed where the seed shows no body (bearer auth; no rate limit or back-off is documented): the list is
``{"data": [Call], "total", "limit", "offset"}``; the transcript ``{"transcript": [row]}``; a grade row
``{score, status, summary, criteria}``; the audio ``{"url", "expires_at"}``; the issue reports
``{"data": [Issue Report]}``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from datetime import datetime
from typing import Any

import httpx

from gateway.errors import VendorError, VendorRetryLater
from gateway.pull.base import (
    Credentials,
    JSONObject,
    Missing,
    Page,
    Part,
    PulledEvent,
    Reconciled,
    RecordingLink,
    Window,
    count,
    observed,
    pulled,
    require_id,
    require_list,
    require_object,
    segment,
    walk,
)
from gateway.pull.http import Policy, get_json
from gateway.when import parse_time

VENDOR = "callsv1"
POLICY = Policy(VENDOR)
PARTS = frozenset({Part.CALL, Part.TRANSCRIPT, Part.GRADE, Part.ISSUES})
PAGE_SIZE = 200  # the seed's maximum
GRADE_POLL_SECONDS = 30.0  # "poll the GET endpoint until status=completed (usually under 30 s)"


def _call_url(creds: Credentials, call_id: str, tail: str = "") -> str:
    return creds.url(f"/v1/calls/{segment(call_id)}{tail}")


# --- reading the API (I/O) --------------------------------------------------------------------------------


async def list_page(
    http: httpx.AsyncClient,
    creds: Credentials,
    window: Window,
    cursor: str | None = None,
    *,
    limit: int = PAGE_SIZE,
) -> Page:
    """One page of the calls that started in ``window``; the cursor is the next offset."""
    offset = int(cursor or "0")
    since, until = window.bounds()
    params = {"start_date": since, "end_date": until, "limit": str(limit), "offset": str(offset)}
    answer = await get_json(
        http, creds.url("/v1/calls"), POLICY, "calls", headers=creds.headers(), params=params
    )
    if isinstance(answer, Missing):
        raise VendorError(f"callsv1 has no calls endpoint at {creds.base_url}: {answer.reason}")
    body = require_object(answer, "callsv1 calls")
    items = require_list(body.get("data"), "callsv1 calls data")
    for item in items:
        require_id(item, "call_id", "a callsv1 call")
    total = count(body.get("total"))
    after = offset + len(items)
    more = after < total if total is not None else len(items) >= limit
    return Page(tuple(items), str(after) if more and items else None, total)


def list_calls(
    http: httpx.AsyncClient, creds: Credentials, window: Window, *, limit: int = PAGE_SIZE
) -> AsyncIterator[Page]:
    async def fetch(cursor: str | None) -> Page:
        return await list_page(http, creds, window, cursor, limit=limit)

    return walk(fetch)


async def call(http: httpx.AsyncClient, creds: Credentials, call_id: str) -> JSONObject | Missing:
    answer = await get_json(http, _call_url(creds, call_id), POLICY, "call", headers=creds.headers())
    if isinstance(answer, Missing):
        return answer
    found = require_object(answer, "callsv1 call")
    require_id(found, "call_id", "a callsv1 call")
    return found


async def transcript(http: httpx.AsyncClient, creds: Credentials, call_id: str) -> list[JSONObject] | Missing:
    """The role-tagged rows, or ``Missing`` when the call is unknown or its transcript has none."""
    url = _call_url(creds, call_id, "/transcript")
    answer = await get_json(http, url, POLICY, "transcript", headers=creds.headers())
    if isinstance(answer, Missing):
        return answer
    rows = require_list(require_object(answer, "callsv1 transcript").get("transcript"), "callsv1 transcript")
    return rows if rows else Missing(f"callsv1 transcript of {call_id} is empty")


async def grade(http: httpx.AsyncClient, creds: Credentials, call_id: str) -> JSONObject | Missing:
    """The latest completed grade row. Pending: ``VendorRetryLater`` at the seed's poll interval. Failed or
    never graded: ``Missing``."""
    url = _call_url(creds, call_id, "/grade")
    answer = await get_json(http, url, POLICY, "grade", headers=creds.headers())
    if isinstance(answer, Missing):
        return answer
    row = require_object(answer, "callsv1 grade")
    status = row.get("status")
    if status == "pending":
        raise VendorRetryLater(f"callsv1 grade of {call_id} is pending", retry_after=GRADE_POLL_SECONDS)
    if status == "failed":
        return Missing(f"callsv1 grading of {call_id} failed")
    return row


async def issue_reports(
    http: httpx.AsyncClient, creds: Credentials, call_id: str
) -> list[JSONObject] | Missing:
    url = _call_url(creds, call_id, "/issue-reports")
    answer = await get_json(http, url, POLICY, "issue reports", headers=creds.headers())
    if isinstance(answer, Missing):
        return answer
    reports = require_list(
        require_object(answer, "callsv1 issue reports").get("data"), "callsv1 issue reports"
    )
    for report in reports:
        require_id(report, "id", "a callsv1 issue report")
    return reports if reports else Missing(f"callsv1 call {call_id} has no issue reports")


async def recording_link(
    http: httpx.AsyncClient, creds: Credentials, call_id: str
) -> RecordingLink | Missing:
    """A fresh signed MP3 URL (``/audio``) for a player; the call's ``recording_url`` is an internal path."""
    answer = await get_json(
        http, _call_url(creds, call_id, "/audio"), POLICY, "audio", headers=creds.headers()
    )
    if isinstance(answer, Missing):
        return answer
    body = require_object(answer, "callsv1 audio")
    url = body.get("url")
    if not isinstance(url, str) or not url:
        raise VendorError(f"callsv1 audio of {call_id} has no url", field="url")
    return RecordingLink(url, _time(body.get("expires_at")))


async def playable_link(
    http: httpx.AsyncClient, creds: Credentials, call_id: str, *, cached: RecordingLink | None, now: datetime
) -> RecordingLink | Missing:
    """``cached`` while it stays valid for a minute more, else a fresh one."""
    if cached is not None and cached.fresh(now):
        return cached
    return await recording_link(http, creds, call_id)


async def pull(
    http: httpx.AsyncClient, creds: Credentials, call_id: str, part: Part, observed_at: datetime
) -> list[PulledEvent] | Missing:
    """One part of one call as webhook events. A transcript and a grade need the call too (its
    ``start_time`` places the lines; its ``grade_*`` fields are the grade's status): two reads each."""
    if part not in PARTS:
        return Missing(f"callsv1 has no {part.value} to pull")
    found = await call(http, creds, call_id)
    if isinstance(found, Missing) or part is Part.CALL:
        return found if isinstance(found, Missing) else [call_event(found, observed_at=observed_at)]
    if part is Part.TRANSCRIPT:
        rows = await transcript(http, creds, call_id)
        if isinstance(rows, Missing):
            return rows
        return [transcript_event(found, rows, observed_at=observed_at)]
    if part is Part.GRADE:
        if found.get("grade_status") == "pending":
            raise VendorRetryLater(f"callsv1 grade of {call_id} is pending", retry_after=GRADE_POLL_SECONDS)
        row = await grade(http, creds, call_id)
        if isinstance(row, Missing):
            return row
        return [grade_event(found, row, observed_at=observed_at)]
    reports = await issue_reports(http, creds, call_id)
    if isinstance(reports, Missing):
        return reports
    return issue_events(found, reports, observed_at=observed_at)


async def reconcile(
    http: httpx.AsyncClient, creds: Credentials, window: Window, cursor: str | None, observed_at: datetime
) -> Reconciled:
    page = await list_page(http, creds, window, cursor)
    return Reconciled(
        tuple(call_event(item, observed_at=observed_at) for item in page.items), page.next_cursor
    )


def _time(value: Any) -> datetime | None:
    if not isinstance(value, str | int | float) or isinstance(value, bool):
        return None
    try:
        return parse_time(value)
    except ValueError:
        return None


# --- webhook-shaped bodies (pure) ---------------------------------------------------------------------------


def _event(part: Part, call_id: str, event: str, content: JSONObject, at: datetime) -> PulledEvent:
    body = {"event": event, **content}
    return pulled(VENDOR, call_id, part, body, lambda key: {"id": key, **body, "created_at": observed(at)})


def call_event(found: JSONObject, *, observed_at: datetime) -> PulledEvent:
    """The Call object, whole: ``call.started`` while in progress, else ``call.ended`` (a status the seed
    does not list ends the call only when it has an ``end_time``)."""
    call_id = require_id(found, "call_id", "a callsv1 call")
    ended = found.get("status") in ("completed", "failed") or (
        found.get("status") != "in_progress" and bool(found.get("end_time"))
    )
    return _event(Part.CALL, call_id, "call.ended" if ended else "call.started", {"call": found}, observed_at)


def _slim(found: Mapping[str, Any], *keys: str) -> JSONObject:
    """The call as a part's webhook needs it: its id and the fields that part reads, nothing that could
    restate an older snapshot of the rest."""
    return {"call_id": found["call_id"], **{k: found[k] for k in keys if found.get(k) is not None}}


def transcript_event(
    found: Mapping[str, Any], rows: list[JSONObject], *, observed_at: datetime
) -> PulledEvent:
    """``call.transcript_ready``: the rows as served, and the call's ``start_time`` they are offsets from."""
    call_id = require_id(found, "call_id", "a callsv1 call")
    content = {"call": _slim(found, "start_time"), "transcript": rows}
    return _event(Part.TRANSCRIPT, call_id, "call.transcript_ready", content, observed_at)


def grade_event(found: Mapping[str, Any], row: Mapping[str, Any], *, observed_at: datetime) -> PulledEvent:
    """``call.graded``: the call's ``grade_score``/``grade_status``/``grade_updated_at`` and the envelope's
    ``grade`` (the row without its status, which the webhook carries on the call)."""
    call_id = require_id(found, "call_id", "a callsv1 call")
    call_fields = _slim(found, "grade_score", "grade_status", "grade_updated_at")
    if "grade_status" not in call_fields and isinstance(row.get("status"), str):
        call_fields["grade_status"] = row["status"]
    content = {"call": call_fields, "grade": {k: v for k, v in row.items() if k != "status"}}
    return _event(Part.GRADE, call_id, "call.graded", content, observed_at)


def issue_events(
    found: Mapping[str, Any], reports: list[JSONObject], *, observed_at: datetime
) -> list[PulledEvent]:
    """One ``issue_report.created`` per report. Its key is the report's content alone, so a report seen
    before stays a duplicate when others arrive; the call carries its counts as of the pull (what a
    report changes on it), so a new report also brings ``issue_count`` up to date."""
    call_id = require_id(found, "call_id", "a callsv1 call")
    counts = _slim(found, "issue_count", "critical_issue_count")

    def event(report: JSONObject) -> PulledEvent:
        body = {"event": "issue_report.created", "call": counts, "issue_report": report}
        keyed = {"event": "issue_report.created", "call_id": counts["call_id"], "issue_report": report}
        return pulled(
            VENDOR,
            call_id,
            Part.ISSUES,
            keyed,
            lambda key: {"id": key, **body, "created_at": observed(observed_at)},
        )

    return [event(report) for report in reports]
