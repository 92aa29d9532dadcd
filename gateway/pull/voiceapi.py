"""The LiveKit-based Voice API's read endpoints (seed 001), pulled into its ``call.*`` webhooks.

Seed, "Endpoints" and "Rate Limits":

    GET /voice/sessions            agent_id, status (completed, failed, in_progress), limit (default 20,
                                   max 100), offset, start_date, end_date (ISO 8601)      30/min
    GET /voice/sessions/{session_id}                                                      (Get status: 60/min)
    GET /voice/recording/{recording_id}     "Returns the recording details"

Auth: "All voice API endpoints require a Bearer token". The seed shows no response body, so these shapes
are assumed, each from the seed's own vocabulary: a list is ``{"data": [session], "total", "limit",
"offset"}``; a session is the dial request's fields (``agent_id``, ``direction``, ``to_number``,
``from_number``, ``context``, ``max_duration``, ``recording``, ``scheduled_at``) plus ``session_id``,
``status`` (the six event names without ``call.``), ``started_at``, ``answered_at``, ``ended_at``, and
the completion fields of the webhooks (``duration``, ``end_reason``, ``recording_id``, ``error``); a
recording is ``{"recording_id", "url", "expires_at"?}``. No back-off is documented.

The webhook reads its event's ``timestamp`` as the moment the event describes (initiating starts the call,
in_progress answers it, a terminal event ends it), so a pulled session becomes the lifecycle events whose
times it knows, each at its own time - never at the time of the pull. Its transcript endpoint
(``/v1/widget/transcript/{id}``) is not pulled: the webhook has no place for a transcript.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from datetime import datetime
from typing import Any

import httpx

from gateway.errors import VendorError
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
    pulled,
    require_id,
    require_list,
    require_object,
    segment,
    walk,
)
from gateway.pull.http import Policy, get_json
from gateway.when import parse_time

VENDOR = "voiceapi"
LIST_POLICY = Policy(VENDOR, throttle_seconds=2.0)  # "List sessions 30/min"
GET_POLICY = Policy(VENDOR, throttle_seconds=1.0)  # "Get status 60/min"
PARTS = frozenset({Part.CALL})  # the recording reference (recording_id) comes with the session
PAGE_SIZE = 100  # the seed's maximum: fewer requests against 30/min

TERMINAL = frozenset({"completed", "failed", "no_answer"})
# Fields a webhook carries in its envelope (or implies by its event) rather than in ``data``.
ENVELOPE = frozenset({"session_id", "status", "started_at", "answered_at", "ended_at"})
COMPLETION = frozenset({"duration", "end_reason", "recording_id", "error"})  # only on the terminal event


# --- reading the API (I/O) --------------------------------------------------------------------------------


async def list_page(
    http: httpx.AsyncClient,
    creds: Credentials,
    window: Window,
    cursor: str | None = None,
    *,
    limit: int = PAGE_SIZE,
    status: str | None = None,
) -> Page:
    """One page of the sessions of ``window``; the cursor is the next offset."""
    offset = int(cursor or "0")
    since, until = window.bounds()
    params = {"start_date": since, "end_date": until, "limit": str(limit), "offset": str(offset)}
    if status is not None:
        params["status"] = status
    url = creds.url("/voice/sessions")
    answer = await get_json(http, url, LIST_POLICY, "sessions", headers=creds.headers(), params=params)
    if isinstance(answer, Missing):
        raise VendorError(f"voiceapi has no sessions endpoint at {creds.base_url}: {answer.reason}")
    body = require_object(answer, "voiceapi sessions")
    items = require_list(body.get("data"), "voiceapi sessions data")
    for item in items:
        require_id(item, "session_id", "a voiceapi session")
    total = count(body.get("total"))
    after = offset + len(items)
    more = after < total if total is not None else len(items) >= limit
    return Page(tuple(items), str(after) if more and items else None, total)


def list_sessions(
    http: httpx.AsyncClient, creds: Credentials, window: Window, *, limit: int = PAGE_SIZE
) -> AsyncIterator[Page]:
    async def fetch(cursor: str | None) -> Page:
        return await list_page(http, creds, window, cursor, limit=limit)

    return walk(fetch)


async def session(http: httpx.AsyncClient, creds: Credentials, session_id: str) -> JSONObject | Missing:
    url = creds.url(f"/voice/sessions/{segment(session_id)}")
    answer = await get_json(http, url, GET_POLICY, "session", headers=creds.headers())
    if isinstance(answer, Missing):
        return answer
    found = require_object(answer, "voiceapi session")
    require_id(found, "session_id", "a voiceapi session")
    return found


async def recording_link(
    http: httpx.AsyncClient, creds: Credentials, recording_id: str
) -> RecordingLink | Missing:
    """A playable URL of a session's recording (``recording_id`` from its ``call.completed``)."""
    url = creds.url(f"/voice/recording/{segment(recording_id)}")
    answer = await get_json(http, url, GET_POLICY, "recording", headers=creds.headers())
    if isinstance(answer, Missing):
        return answer
    body = require_object(answer, "voiceapi recording")
    link = body.get("url")
    if not isinstance(link, str) or not link:
        return Missing(f"voiceapi recording {recording_id} has no url")
    return RecordingLink(link, _time(body.get("expires_at")))


async def pull(
    http: httpx.AsyncClient, creds: Credentials, session_id: str, part: Part, observed_at: datetime
) -> list[PulledEvent] | Missing:
    """The session's lifecycle as webhooks. ``observed_at`` is unused by design (the events carry the
    session's own times) and kept for a signature common to every vendor."""
    if part is not Part.CALL:
        return Missing(f"voiceapi has no {part.value} to pull")
    found = await session(http, creds, session_id)
    if isinstance(found, Missing):
        return found
    return session_events(found)


async def reconcile(
    http: httpx.AsyncClient, creds: Credentials, window: Window, cursor: str | None, observed_at: datetime
) -> Reconciled:
    page = await list_page(http, creds, window, cursor)
    events = tuple(event for item in page.items for event in session_events(item))
    return Reconciled(events, page.next_cursor)


def _time(value: Any) -> datetime | None:
    if not isinstance(value, str | int | float) or isinstance(value, bool):
        return None
    try:
        return parse_time(value)
    except ValueError:
        return None


# --- webhook-shaped bodies (pure) ---------------------------------------------------------------------------


def _event(session_id: str, event: str, at: Any, data: JSONObject) -> PulledEvent:
    content: JSONObject = {"event": event, "session_id": session_id, "data": data}
    if at is not None:
        content["timestamp"] = at
    return pulled(VENDOR, session_id, Part.CALL, content, lambda key: {"event_id": key, **content})


def session_events(found: Mapping[str, Any]) -> list[PulledEvent]:
    """The webhooks a full stream would have carried for what the session shows: ``call.initiating`` at
    ``started_at``, ``call.in_progress`` at ``answered_at``, and the current status's event (terminal ones
    with ``duration``/``end_reason``/``recording_id``/``error``) at its time. A status without a known
    time is sent without a ``timestamp``: the state machine takes it as the weakest, latest claim."""
    session_id = require_id(found, "session_id", "a voiceapi session")
    status = found.get("status")
    if not isinstance(status, str) or not status:
        raise VendorError(f"voiceapi session {session_id} has no status", field="status")
    dial = {k: v for k, v in found.items() if k not in ENVELOPE and k not in COMPLETION}
    events: list[PulledEvent] = []
    if found.get("started_at") and status != "initiating":
        events.append(_event(session_id, "call.initiating", found["started_at"], dial))
    if found.get("answered_at") and status not in ("initiating", "ringing", "in_progress"):
        events.append(_event(session_id, "call.in_progress", found["answered_at"], dial))
    if status in TERMINAL:
        done = {**dial, **{k: v for k, v in found.items() if k in COMPLETION and v is not None}}
        events.append(_event(session_id, f"call.{status}", found.get("ended_at"), done))
    else:
        at = {"initiating": found.get("started_at"), "in_progress": found.get("answered_at")}.get(status)
        events.append(_event(session_id, f"call.{status}", at, dial))
    return events
