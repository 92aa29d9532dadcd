"""graph8 Voice & Dialer read API (seed 000), pulled into graph8 webhooks (design/vendors.md, "graph8").

Seed, "Calls":

    GET /api/v1/voice/dialer/calls?contact_id=5028106&limit=25&page=1
        Filterable: contact_id, user_email, campaign_id, date_from, date_to, limit, page.
    GET /api/v1/voice/dialer/calls/{room_name}/transcript
        Returns status: "ready" with a transcript array of { speaker, text, timestamp } entries. Returns
        status: "empty" (with transcript: []) when the call ended but the transcript wasn't flushed.
    GET /api/v1/voice/dialer/calls/{room_name}/grading

Auth "Bearer + X-Org-Id"; "The 5 rps rate limit applies to every read endpoint"; 429 "Backoff per
Retry-After header"; 5xx "Retry with exponential backoff (5s -> 30s -> 120s)". The list's envelope is the
one the seed shows for sessions: ``{"data": [...], "pagination": {"page", "page_size", "total_items"}}``.

There is no single-call endpoint: a call record comes from the list (``find_call`` pages a window).
Missed callbacks are not pulled: the seed shows no id for one, and the adapter keys an id-less callback by
its event id, so a pulled twin of a delivered callback would become a second call.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime

import httpx

from gateway.errors import VendorError
from gateway.pull.base import (
    JSONObject,
    Missing,
    Page,
    Part,
    PulledEvent,
    Reconciled,
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

VENDOR = "graph8"
CALLS = "/api/v1/voice/dialer/calls"
POLICY = Policy(VENDOR, backoff=(5.0, 30.0, 120.0), throttle_seconds=1.0)  # 5 rps: a second frees a slot
PARTS = frozenset({Part.CALL, Part.TRANSCRIPT, Part.GRADE})
PAGE_SIZE = 50

# data.status -> the webhook type that announces it (the adapter reads data.status first; a busy line is a
# failed dial and a voicemail a completed one, as graph8's own webhooks send them).
STATUS_TYPE: Mapping[str, str] = {
    "dialing": "call.initiating",
    "ringing": "call.ringing",
    "in_progress": "call.in_progress",
    "completed": "call.completed",
    "failed": "call.failed",
    "no_answer": "call.no_answer",
    "busy": "call.failed",
    "voicemail": "call.completed",
}


@dataclass(frozen=True, slots=True)
class Graph8Credentials:
    """A server-side API key and the organization it belongs to (both are sent on every request)."""

    base_url: str
    token: str = field(repr=False)
    org_id: str

    def url(self, path: str) -> str:
        return self.base_url.rstrip("/") + path

    def headers(self) -> dict[str, str]:
        return {"authorization": f"Bearer {self.token}", "x-org-id": self.org_id}


# --- reading the API (I/O) --------------------------------------------------------------------------------


async def list_page(
    http: httpx.AsyncClient,
    creds: Graph8Credentials,
    window: Window,
    cursor: str | None = None,
    *,
    limit: int = PAGE_SIZE,
    contact_id: str | None = None,
) -> Page:
    """One page of the calls that started in ``window``; the cursor is the next page number."""
    page = int(cursor or "1")
    since, until = window.bounds()
    params = {"date_from": since, "date_to": until, "limit": str(limit), "page": str(page)}
    if contact_id is not None:
        params["contact_id"] = contact_id
    answer = await get_json(http, creds.url(CALLS), POLICY, "calls", headers=creds.headers(), params=params)
    if isinstance(answer, Missing):
        raise VendorError(f"graph8 has no calls endpoint at {creds.base_url}: {answer.reason}")
    body = require_object(answer, "graph8 calls")
    items = require_list(body.get("data"), "graph8 calls data")
    for item in items:
        require_id(item, "room_name", "a graph8 call")
    raw_pagination = body.get("pagination")
    pagination: JSONObject = raw_pagination if isinstance(raw_pagination, dict) else {}
    total = count(pagination.get("total_items"))
    size = count(pagination.get("page_size")) or limit
    more = page * size < total if total is not None else len(items) >= limit
    return Page(tuple(items), str(page + 1) if more and items else None, total)


def list_calls(
    http: httpx.AsyncClient, creds: Graph8Credentials, window: Window, *, limit: int = PAGE_SIZE
) -> AsyncIterator[Page]:
    async def fetch(cursor: str | None) -> Page:
        return await list_page(http, creds, window, cursor, limit=limit)

    return walk(fetch)


async def find_call(
    http: httpx.AsyncClient,
    creds: Graph8Credentials,
    room_name: str,
    around: Window,
    *,
    contact_id: str | None = None,
) -> JSONObject | Missing:
    """One call's record: graph8 has no single-call read, so page the window it started in (narrowed to
    its contact when known) until the room shows up."""
    cursor: str | None = None
    while True:
        page = await list_page(http, creds, around, cursor, contact_id=contact_id)
        for item in page.items:
            if str(item.get("room_name")) == room_name:
                return item
        if page.next_cursor is None or not page.items:
            return Missing(f"graph8 lists no call {room_name} in the window")
        cursor = page.next_cursor


async def transcript(
    http: httpx.AsyncClient, creds: Graph8Credentials, room_name: str
) -> JSONObject | Missing:
    """``{"status": "ready", "transcript": [...]}``, or ``Missing`` for an unknown call and for the seed's
    ``status: "empty"`` (never flushed: it will not come later)."""
    url = creds.url(f"{CALLS}/{segment(room_name)}/transcript")
    answer = await get_json(http, url, POLICY, "transcript", headers=creds.headers())
    if isinstance(answer, Missing):
        return answer
    body = require_object(answer, "graph8 transcript")
    lines = require_list(body.get("transcript", []), "graph8 transcript.transcript")
    status = body.get("status")
    if status == "empty" or (status == "ready" and not lines):
        return Missing(f"graph8 transcript of {room_name} is empty")
    if status != "ready":  # the seed knows only ready and empty: anything else is a contract change
        raise VendorError(f"graph8 transcript of {room_name} has status {status!r}", field="status")
    return {"status": status, "transcript": lines}


async def grading(http: httpx.AsyncClient, creds: Graph8Credentials, room_name: str) -> JSONObject | Missing:
    """The AI grading (``overall_score`` 0-100, ``segments``, ...), or ``Missing`` when not graded."""
    url = creds.url(f"{CALLS}/{segment(room_name)}/grading")
    answer = await get_json(http, url, POLICY, "grading", headers=creds.headers())
    if isinstance(answer, Missing):
        return answer
    return require_object(answer, "graph8 grading")


async def pull(
    http: httpx.AsyncClient,
    creds: Graph8Credentials,
    room_name: str,
    part: Part,
    observed_at: datetime,
    *,
    started_at: str | None = None,
    around: Window | None = None,
) -> list[PulledEvent] | Missing:
    """One part of one call as webhook events. ``started_at`` (the call's start as graph8 gave it) places
    transcript lines on the call's clock; ``around`` is the window a ``CALL`` pull searches."""
    if part is Part.TRANSCRIPT:
        got = await transcript(http, creds, room_name)
        if isinstance(got, Missing):
            return got
        return [
            transcript_event(
                room_name, got, org_id=creds.org_id, observed_at=observed_at, started_at=started_at
            )
        ]
    if part is Part.GRADE:
        graded = await grading(http, creds, room_name)
        if isinstance(graded, Missing):
            return graded
        return [grading_event(room_name, graded, org_id=creds.org_id, observed_at=observed_at)]
    if part is Part.CALL:
        if around is None:
            raise ValueError("a graph8 call is found by listing: pass the window it started in")
        record = await find_call(http, creds, room_name, around)
        if isinstance(record, Missing):
            return record
        return [call_event(record, org_id=creds.org_id, observed_at=observed_at)]
    return Missing(f"graph8 has no {part.value} to pull")


async def reconcile(
    http: httpx.AsyncClient,
    creds: Graph8Credentials,
    window: Window,
    cursor: str | None,
    observed_at: datetime,
) -> Reconciled:
    """One page of the window's calls as ``call.*`` events: what was dropped, or is behind, catches up."""
    page = await list_page(http, creds, window, cursor)
    events = tuple(call_event(record, org_id=creds.org_id, observed_at=observed_at) for record in page.items)
    return Reconciled(events, page.next_cursor)


# --- webhook-shaped bodies (pure) ---------------------------------------------------------------------------


def _event(
    part: Part, room_name: str, event_type: str, org_id: str, data: JSONObject, at: datetime
) -> PulledEvent:
    content = {"type": event_type, "org_id": org_id, "data": data}
    return pulled(
        VENDOR,
        room_name,
        part,
        content,
        lambda key: {
            "id": key,
            "type": event_type,
            "created_at": observed(at),
            "org_id": org_id,
            "data": data,
        },
    )


def call_type(record: Mapping[str, object]) -> str:
    """The webhook type of a record. A status the seed does not list is announced by the record's own
    times (ended, answered, dialing); the adapter still keeps the raw status as ``unmapped_status``."""
    status = record.get("status")
    if isinstance(status, str) and status in STATUS_TYPE:
        return STATUS_TYPE[status]
    if record.get("ended_at"):
        return "call.completed"
    if record.get("answered_at"):
        return "call.in_progress"
    return "call.initiating"


def call_event(record: JSONObject, *, org_id: str, observed_at: datetime) -> PulledEvent:
    """A listed call record, whole, as the ``call.<status>`` webhook whose ``data`` it is."""
    room = require_id(record, "room_name", "a graph8 call")
    return _event(Part.CALL, room, call_type(record), org_id, record, observed_at)


def transcript_event(
    room_name: str,
    transcript: JSONObject,
    *,
    org_id: str,
    observed_at: datetime,
    started_at: str | None = None,
) -> PulledEvent:
    """``call.transcript.ready`` with ``data.transcript`` exactly as the transcript endpoint returned it."""
    data: JSONObject = {"room_name": room_name}
    if started_at is not None:
        data["started_at"] = started_at  # the adapter measures each line's offset from it
    data["transcript"] = {"status": transcript.get("status"), "transcript": transcript.get("transcript", [])}
    return _event(Part.TRANSCRIPT, room_name, "call.transcript.ready", org_id, data, observed_at)


def grading_event(room_name: str, grading: JSONObject, *, org_id: str, observed_at: datetime) -> PulledEvent:
    """``call.graded`` with ``data.grading`` exactly as the grading endpoint returned it."""
    data = {"room_name": room_name, "grading": grading}
    return _event(Part.GRADE, room_name, "call.graded", org_id, data, observed_at)
