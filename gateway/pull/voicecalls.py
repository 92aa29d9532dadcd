"""The camelCase Voice Calls read API (seed 004), pulled into its webhooks (design/vendors.md).

Seed, "Endpoints" (scope in brackets):

    GET /api/v1/voice-calls                    [voice:read]     List voice calls with filters: campaignId,
                                                                state, direction, dateFrom, dateTo, page,
                                                                pageSize
    GET /api/v1/voice-calls/{id}               [voice:read]     Get a voice call with full transcript
    GET /api/v1/voice-calls/{id}/recording-url [audio:download] Generate recording SAS URL (15 min expiry)
                                                                -> {"recordingUrl", "expiresAt"}
    GET /api/v1/voice-calls/{id}/epa-results   [voice:read]     Get post-call survey results

"Download the recording (no auth required, URL is pre-signed)": the link is fetched without our token
(it goes to a storage host, which must never see the API's bearer). Assumed where the seed shows no body:
a list page is ``{"data": [call], "page", "pageSize", "totalCount"}`` (its calls may omit the
transcript), and ``epa-results`` answers the ``epaResults`` object itself. No rate limit or back-off is
documented.

The webhook shape has no recording field, so a recording is never a pulled event: ``playable_link`` hands
out a link on demand instead, the way the seed's three-step download flow intends.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from datetime import datetime, timedelta
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

VENDOR = "voicecalls"
CALLS = "/api/v1/voice-calls"
POLICY = Policy(VENDOR)
PARTS = frozenset({Part.CALL, Part.TRANSCRIPT, Part.SURVEY})  # the transcript comes with the call
PAGE_SIZE = 100
LINK_LIFETIME = timedelta(minutes=15)  # "valid for 15 minutes", when the answer names no expiresAt


# --- reading the API (I/O) --------------------------------------------------------------------------------


async def list_page(
    http: httpx.AsyncClient,
    creds: Credentials,
    window: Window,
    cursor: str | None = None,
    *,
    page_size: int = PAGE_SIZE,
    state: str | None = None,
) -> Page:
    """One page of the window's calls; the cursor is the next page number (1-based)."""
    page = int(cursor or "1")
    since, until = window.bounds()
    params = {"dateFrom": since, "dateTo": until, "page": str(page), "pageSize": str(page_size)}
    if state is not None:
        params["state"] = state
    answer = await get_json(
        http, creds.url(CALLS), POLICY, "voice calls", headers=creds.headers(), params=params
    )
    if isinstance(answer, Missing):
        raise VendorError(f"voicecalls has no list endpoint at {creds.base_url}: {answer.reason}")
    body = require_object(answer, "voicecalls list")
    items = require_list(body.get("data"), "voicecalls list data")
    for item in items:
        require_id(item, "id", "a voice call")
    total = count(body.get("totalCount"))
    size = count(body.get("pageSize")) or page_size
    more = page * size < total if total is not None else len(items) >= page_size
    return Page(tuple(items), str(page + 1) if more and items else None, total)


def list_calls(
    http: httpx.AsyncClient, creds: Credentials, window: Window, *, page_size: int = PAGE_SIZE
) -> AsyncIterator[Page]:
    async def fetch(cursor: str | None) -> Page:
        return await list_page(http, creds, window, cursor, page_size=page_size)

    return walk(fetch)


async def call(http: httpx.AsyncClient, creds: Credentials, call_id: str) -> JSONObject | Missing:
    """The voice call with its full transcript (and ``epaResults`` inline when surveyed)."""
    url = creds.url(f"{CALLS}/{segment(call_id)}")
    answer = await get_json(http, url, POLICY, "voice call", headers=creds.headers())
    if isinstance(answer, Missing):
        return answer
    found = require_object(answer, "voicecalls call")
    require_id(found, "id", "a voice call")
    return found


async def epa_results(http: httpx.AsyncClient, creds: Credentials, call_id: str) -> JSONObject | Missing:
    """The survey, or ``Missing`` when the campaign has none (404) or it never started."""
    url = creds.url(f"{CALLS}/{segment(call_id)}/epa-results")
    answer = await get_json(http, url, POLICY, "epa results", headers=creds.headers())
    if isinstance(answer, Missing):
        return answer
    epa = require_object(answer, "voicecalls epa results")
    if epa.get("state") == "NotStarted":
        return Missing(f"voicecalls survey of {call_id} never started")
    return epa


async def recording_link(
    http: httpx.AsyncClient, creds: Credentials, call_id: str, now: datetime
) -> RecordingLink | Missing:
    """A new 15-minute SAS URL; each call of the endpoint signs a fresh one. A token without the
    ``audio:download`` scope is refused (403: ``VendorAuthFailed``)."""
    url = creds.url(f"{CALLS}/{segment(call_id)}/recording-url")
    answer = await get_json(http, url, POLICY, "recording url", headers=creds.headers())
    if isinstance(answer, Missing):
        return answer
    body = require_object(answer, "voicecalls recording url")
    link = body.get("recordingUrl")
    if not isinstance(link, str) or not link:
        raise VendorError(f"voicecalls recording url of {call_id} has no recordingUrl", field="recordingUrl")
    return RecordingLink(link, _time(body.get("expiresAt")) or now + LINK_LIFETIME)


async def playable_link(
    http: httpx.AsyncClient,
    creds: Credentials,
    call_id: str,
    *,
    cached: RecordingLink | None,
    now: datetime,
    margin: timedelta = timedelta(seconds=60),
) -> RecordingLink | Missing:
    """``cached`` while it is valid for ``margin`` more, else a freshly signed one: links that still play."""
    if cached is not None and cached.fresh(now, margin):
        return cached
    return await recording_link(http, creds, call_id, now)


async def pull(
    http: httpx.AsyncClient, creds: Credentials, call_id: str, part: Part, observed_at: datetime
) -> list[PulledEvent] | Missing:
    """``CALL`` and ``TRANSCRIPT``: the call object (it carries the transcript); ``SURVEY``: the EPA."""
    if part in (Part.CALL, Part.TRANSCRIPT):
        found = await call(http, creds, call_id)
        if isinstance(found, Missing):
            return found
        if part is Part.TRANSCRIPT and not found.get("transcript"):
            return Missing(f"voicecalls call {call_id} has no transcript")
        return [call_event(found, observed_at=observed_at)]
    if part is Part.SURVEY:
        epa = await epa_results(http, creds, call_id)
        if isinstance(epa, Missing):
            return epa
        return [epa_event(call_id, epa, observed_at=observed_at)]
    return Missing(f"voicecalls has no {part.value} to pull")


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


def _event(part: Part, call_id: str, event_type: str, data: Mapping[str, Any], at: datetime) -> PulledEvent:
    content = {"eventType": event_type, "data": data}
    return pulled(
        VENDOR, call_id, part, content, lambda key: {"eventId": key, **content, "occurredAt": observed(at)}
    )


def call_type(found: Mapping[str, Any]) -> str:
    """``VoiceCallCompleted`` for a completed call, ``VoiceCallCreated`` for a queued one, else
    ``VoiceCallUpdated``: the adapter takes the status from ``state`` either way."""
    state = found.get("state")
    if state == "Completed":
        return "VoiceCallCompleted"
    return "VoiceCallCreated" if state == "Queued" else "VoiceCallUpdated"


def call_event(found: JSONObject, *, observed_at: datetime) -> PulledEvent:
    """The voice call object, whole, as the webhook's ``data`` ("data carries the full object each time")."""
    call_id = require_id(found, "id", "a voice call")
    return _event(Part.CALL, call_id, call_type(found), found, observed_at)


def epa_event(call_id: str, epa: JSONObject, *, observed_at: datetime) -> PulledEvent:
    """``EpaCompleted`` with only ``id`` and ``epaResults``, as the webhook may carry it."""
    return _event(Part.SURVEY, call_id, "EpaCompleted", {"id": call_id, "epaResults": epa}, observed_at)
