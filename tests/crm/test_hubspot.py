"""The HubSpot connector: pure mapping and classification, then real HTTP against the local double."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from starlette.types import ASGIApp, Receive, Scope, Send

from adapters.outbound.hubspot import (
    BODY_LIMIT,
    DEFAULT_OPTIONS,
    SPEC,
    HubSpotConnector,
    build,
    classify,
    properties,
)
from gateway.connectors import ContactCache, CrmFailure, CrmOutcome, CrmVerdict, SyncedRecord
from tests.doubles import serving
from tests.doubles.hubspot import (
    CALL_STATUSES,
    State,
    app,
    error_body,
    rate_limit_body,
    snapshot,
    validated,
)

pytestmark = pytest.mark.anyio

TOKEN = "pat-na1-0f0e0d0c-0b0a-0908-0706-050403020100"
CUSTOMER = "+14155550123"
CALL_ID = "call_01JTESTHUBSPOT00000000000"


def a_call(**changes: Any) -> dict[str, Any]:
    """A rendered call document (``gateway.render.call``), an outbound completed call by default."""
    call: dict[str, Any] = {
        "id": CALL_ID,
        "tenant_id": "ten_1",
        "source_id": "src_1",
        "vendor": "callsv1",
        "vendor_call_id": "88123",
        "vendor_session_id": None,
        "campaign_id": None,
        "agent_id": "14",
        "contact_ref": None,
        "user_email": None,
        "direction": "outbound",
        "status": "completed",
        "from_number": "+14155559876",
        "to_number": CUSTOMER,
        "started_at": "2026-05-25T14:30:00.250000Z",
        "answered_at": "2026-05-25T14:30:05Z",
        "ended_at": "2026-05-25T14:35:12Z",
        "duration_seconds": 312,
        "talk_time_seconds": 307,
        "end_reason": "caller_hangup",
        "outcome": None,
        "recording": None,
        "transcript": [],
        "grade": None,
        "survey": None,
        "qualification": None,
        "billing": None,
        "issues": [],
        "is_test": False,
        "vendor_extra": {},
        "version": 1,
        "created_at": "2026-05-25T14:29:58Z",
        "updated_at": "2026-05-25T14:35:13Z",
    }
    call.update(changes)
    return call


def enriched(version: int, turns: int = 2) -> dict[str, Any]:
    """The same call after a transcript, a grade and a recording arrived."""
    transcript = [{"speaker": "agent" if i % 2 else "customer", "text": f"line {i}"} for i in range(turns)]
    grade = {"score": 0.86, "status": "completed", "summary": "Resolved quickly.", "details": {}}
    recording = {"available": True, "vendor_ref": "r1", "url": "https://media.example.com/r1.mp3"}
    return a_call(
        version=version, transcript=transcript, grade=grade, recording=recording, outcome="interested"
    )


# --- pure: properties ---------------------------------------------------------------------------------------


def test_properties_fields_units_and_call_id() -> None:
    props = properties(a_call(), {**DEFAULT_OPTIONS, "owner_id": 11349275740})

    assert props["hs_timestamp"] == "2026-05-25T14:30:00.250Z"  # the start, UTC, milliseconds
    assert props["hs_call_duration"] == "312000"  # milliseconds
    assert props["hs_call_direction"] == "OUTBOUND"
    assert props["hs_call_status"] == "COMPLETED"
    assert props["hs_call_from_number"] == "+14155559876"
    assert props["hs_call_to_number"] == CUSTOMER
    assert props["hs_call_title"] == f"Outbound call to {CUSTOMER}"
    assert props["hubspot_owner_id"] == "11349275740"
    assert props["callgate_call_id"] == CALL_ID
    assert "hs_call_recording_url" not in props
    assert all(isinstance(value, str) for value in props.values())


def test_properties_custom_call_id_property_and_no_owner() -> None:
    props = properties(a_call(), {**DEFAULT_OPTIONS, "call_id_property": "gw_call_id"})
    assert props["gw_call_id"] == CALL_ID
    assert "callgate_call_id" not in props
    assert "hubspot_owner_id" not in props


@pytest.mark.parametrize(
    ("direction", "expected", "title"),
    [
        ("inbound", "INBOUND", "Inbound call from +14155559876"),
        ("outbound", "OUTBOUND", f"Outbound call to {CUSTOMER}"),
        ("web", None, "Web call"),
        ("unknown", None, "Call"),
    ],
)
def test_properties_direction(direction: str, expected: str | None, title: str) -> None:
    props = properties(a_call(direction=direction), DEFAULT_OPTIONS)
    assert props.get("hs_call_direction") == expected
    assert props["hs_call_title"] == title


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ("completed", "COMPLETED"),
        ("failed", "FAILED"),
        ("no_answer", "NO_ANSWER"),
        ("busy", "BUSY"),
        ("canceled", "CANCELED"),
        ("in_progress", "IN_PROGRESS"),
        ("ringing", "RINGING"),
        ("queued", "QUEUED"),
        ("initiating", "CONNECTING"),
        (None, None),
        ("exploded", None),
    ],
)
def test_properties_status(status: str | None, expected: str | None) -> None:
    props = properties(a_call(status=status), DEFAULT_OPTIONS)
    assert props.get("hs_call_status") == expected
    if expected is not None:
        assert expected in CALL_STATUSES


@pytest.mark.parametrize(
    ("url", "kept"),
    [
        ("https://media.example.com/r1.mp3", True),
        ("HTTPS://media.example.com/r1.wav", True),
        ("http://media.example.com/r1.mp3", False),
        ("s3://bucket/r1.mp3", False),
        ("https://", False),
        ("not a url", False),
        (None, False),
    ],
)
def test_properties_recording_url_only_when_https(url: str | None, kept: bool) -> None:
    recording = {"available": True, "vendor_ref": "r1", "url": url}
    props = properties(a_call(recording=recording), DEFAULT_OPTIONS)
    assert ("hs_call_recording_url" in props) is kept
    assert "hs_call_recording_url" not in properties(a_call(recording=None), DEFAULT_OPTIONS)


def test_properties_timestamp_and_duration_fallbacks() -> None:
    offset = properties(a_call(started_at="2026-05-25T16:30:00+02:00"), DEFAULT_OPTIONS)
    assert offset["hs_timestamp"] == "2026-05-25T14:30:00.000Z"

    unstarted = properties(a_call(started_at=None, answered_at=None), DEFAULT_OPTIONS)
    assert unstarted["hs_timestamp"] == "2026-05-25T14:29:58.000Z"  # the creation

    derived = properties(a_call(duration_seconds=None), DEFAULT_OPTIONS)
    assert derived["hs_call_duration"] == "311750"  # started 14:30:00.250, ended 14:35:12
    assert properties(a_call(duration_seconds=1.5), DEFAULT_OPTIONS)["hs_call_duration"] == "1500"

    bare = a_call(duration_seconds=None, ended_at=None, from_number=None, to_number=None)
    props = properties(bare, DEFAULT_OPTIONS)
    assert "hs_call_duration" not in props
    assert "hs_call_from_number" not in props
    assert "hs_call_to_number" not in props


def test_body_has_summary_outcome_grade_transcript_escaped() -> None:
    call = enriched(2)
    call["transcript"].append({"speaker": "customer", "text": "<script>alert(1)</script>"})
    text = properties(call, DEFAULT_OPTIONS)["hs_call_body"]
    assert "<p><strong>Summary:</strong> Resolved quickly.</p>" in text
    assert "<strong>Outcome:</strong> interested" in text
    assert "<strong>Grade:</strong> 86/100 (completed)" in text
    assert "customer: line 0<br>agent: line 1" in text
    assert "&lt;script&gt;" in text
    assert "<script>" not in text
    assert CALL_ID in text


def test_body_is_cut_to_hubspot_limit_by_whole_turns() -> None:
    call = a_call(transcript=[{"speaker": "agent", "text": "x" * 1_000} for _ in range(100)])
    text = properties(call, DEFAULT_OPTIONS)["hs_call_body"]
    assert BODY_LIMIT - 2_000 < len(text) <= BODY_LIMIT
    assert "transcript cut (" in text
    assert text.endswith("</p>")  # whole turns dropped; the footer with the call id kept
    assert CALL_ID in text


maybe_time = st.one_of(
    st.none(),
    st.text(max_size=30),
    st.datetimes().map(lambda d: d.isoformat() + "Z"),
    st.datetimes().map(lambda d: d.isoformat() + "-12:00"),
)
maybe_number = st.one_of(
    st.none(), st.integers(), st.floats(allow_nan=True), st.text(max_size=5), st.booleans()
)


@settings(max_examples=200, deadline=None)
@given(
    started=maybe_time,
    ended=maybe_time,
    created=maybe_time,
    duration=maybe_number,
    status=st.one_of(
        st.none(), st.sampled_from(["completed", "failed", "busy", "queued"]), st.text(max_size=8)
    ),
    direction=st.sampled_from(["inbound", "outbound", "web", "unknown"]),
    url=st.one_of(st.none(), st.text(max_size=20), st.just("https://x.example/a.mp3")),
    turns=st.lists(st.text(max_size=40), max_size=5),
)
def test_properties_always_pass_the_doubles_validation(
    started: str | None,
    ended: str | None,
    created: str | None,
    duration: object,
    status: str | None,
    direction: str,
    url: str | None,
    turns: list[str],
) -> None:
    call = a_call(
        started_at=started,
        answered_at=None,
        ended_at=ended,
        created_at=created,
        duration_seconds=duration,
        status=status,
        direction=direction,
        recording={"available": True, "vendor_ref": "r", "url": url},
        transcript=[{"speaker": "a", "text": text} for text in turns],
    )
    props = properties(call, DEFAULT_OPTIONS)
    accepted, problem = validated(State(), props, creating=True)
    assert accepted is not None, problem


# --- pure: classify -----------------------------------------------------------------------------------------


def hub_error(category: str, message: str = "boom", **more: Any) -> bytes:
    return json.dumps(error_body(category, message, **more)).encode()


NOW = datetime(2026, 5, 25, 18, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("status", "headers", "body", "verdict", "code"),
    [
        (200, {}, b'{"id": "1"}', CrmVerdict.DONE, None),
        (201, {}, b"", CrmVerdict.DONE, None),
        (204, {}, b"garbage", CrmVerdict.DONE, None),
        (429, {}, json.dumps(rate_limit_body()).encode(), CrmVerdict.PAUSED, "TEN_SECONDLY_ROLLING"),
        (423, {}, b"", CrmVerdict.RETRY, "unavailable"),
        (477, {"Retry-After": "30"}, b"<html>", CrmVerdict.RETRY, "unavailable"),
        (500, {}, b"\xff\xfe", CrmVerdict.RETRY, "unavailable"),
        (502, {}, hub_error("INTERNAL_ERROR"), CrmVerdict.RETRY, "INTERNAL_ERROR"),
        (503, {}, b"[]", CrmVerdict.RETRY, "unavailable"),
        (504, {}, b"null", CrmVerdict.RETRY, "unavailable"),
        (401, {}, hub_error("INVALID_AUTHENTICATION"), CrmVerdict.AUTH_FAILED, "INVALID_AUTHENTICATION"),
        (401, {}, b"", CrmVerdict.AUTH_FAILED, "unauthorized"),
        (403, {}, hub_error("MISSING_SCOPES"), CrmVerdict.AUTH_FAILED, "MISSING_SCOPES"),
        (400, {}, hub_error("VALIDATION_ERROR"), CrmVerdict.PERMANENT, "VALIDATION_ERROR"),
        (404, {}, hub_error("OBJECT_NOT_FOUND"), CrmVerdict.PERMANENT, "OBJECT_NOT_FOUND"),
        (409, {}, hub_error("CONFLICT"), CrmVerdict.PERMANENT, "CONFLICT"),
        (400, {}, b"{not json", CrmVerdict.PERMANENT, "rejected"),
        (302, {}, b"", CrmVerdict.RETRY, "unexpected_status"),
    ],
)
def test_classify_classes(
    status: int, headers: dict[str, str], body: bytes, verdict: CrmVerdict, code: str | None
) -> None:
    outcome = classify(status, headers, body, NOW)
    assert outcome.verdict is verdict
    assert outcome.status_code == status
    assert outcome.code == code


def test_classify_keeps_hubspot_message_and_retry_after() -> None:
    outcome = classify(400, {}, hub_error("VALIDATION_ERROR", 'Property "x" does not exist'))
    assert outcome.message == 'Property "x" does not exist'
    assert classify(400, {}, b"").message == "HubSpot answered HTTP 400"
    assert classify(477, {"Retry-After": "30"}, b"").retry_after == 30.0
    assert classify(503, {"retry-after": "Mon, 25 May 2026 18:00:05 GMT"}, b"", NOW).retry_after == 5.0
    assert classify(503, {}, b"").retry_after is None
    assert classify(423, {}, b"").retry_after == 2.0  # "wait at least 2 s"
    assert classify(423, {"Retry-After": "9"}, b"").retry_after == 9.0


@pytest.mark.parametrize(
    ("headers", "body", "pause"),
    [
        ({}, rate_limit_body("TEN_SECONDLY_ROLLING"), 10.0),
        ({"X-HubSpot-RateLimit-Interval-Milliseconds": "5000"}, rate_limit_body(), 5.0),
        ({}, rate_limit_body("SECONDLY"), 1.0),
        ({}, rate_limit_body("DAILY"), 6 * 3600.0),  # NOW is 18:00 UTC: until midnight
        ({}, {"message": "You have reached your secondly limit."}, 1.0),
        ({"Retry-After": "42"}, rate_limit_body("DAILY"), 42.0),
        ({"Retry-After": "0"}, rate_limit_body(), 1.0),
        ({"Retry-After": "soon"}, rate_limit_body("SECONDLY"), 1.0),
        ({}, "garbage", 10.0),
    ],
)
def test_classify_rate_limit_pause(headers: dict[str, str], body: object, pause: float) -> None:
    raw = body.encode() if isinstance(body, str) else json.dumps(body).encode()
    outcome = classify(429, headers, raw, NOW)
    assert outcome.verdict is CrmVerdict.PAUSED
    assert outcome.pause_seconds == pause
    assert outcome.retry_after is None


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=10,
)


@settings(max_examples=300, deadline=None)
@given(
    status=st.integers(min_value=-1, max_value=1000),
    headers=st.dictionaries(
        st.sampled_from(["retry-after", "Retry-After", "X-HubSpot-RateLimit-Interval-Milliseconds"])
        | st.text(max_size=5),
        st.text(max_size=12),
        max_size=4,
    ),
    body=st.one_of(
        st.binary(max_size=50),
        json_values.map(lambda value: json.dumps(value).encode()),
        st.fixed_dictionaries(
            {"policyName": json_values, "message": json_values, "category": json_values}
        ).map(lambda value: json.dumps(value).encode()),
    ),
)
def test_classify_never_raises(status: int, headers: dict[str, str], body: bytes) -> None:
    outcome = classify(status, headers, body)
    assert isinstance(outcome, CrmOutcome)
    if outcome.verdict is CrmVerdict.PAUSED:
        assert outcome.pause_seconds is not None
        assert 1 <= outcome.pause_seconds <= 86_400


# --- the connector against the double -----------------------------------------------------------------------


class Swappable:
    """One loopback server for the module, serving whichever double the current test built."""

    def __init__(self) -> None:
        self.current: ASGIApp | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.current is None:
            raise RuntimeError("no double for this test")
        await self.current(scope, receive, send)


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[Swappable, str]]:
    swappable = Swappable()
    with serving(swappable) as url:
        yield swappable, url


@pytest.fixture
def state() -> State:
    return State(valid_tokens={TOKEN})


@pytest.fixture
def base_url(state: State, server: tuple[Swappable, str]) -> Iterator[str]:
    swappable, url = server
    swappable.current = app(state)
    yield url
    swappable.current = None


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=5) as http:
        yield http


def connect(
    base_url: str,
    client: httpx.AsyncClient,
    token: str = TOKEN,
    contacts: ContactCache | None = None,
    **options: Any,
) -> HubSpotConnector:
    return build(
        base_url, {"access_token": token}, {**DEFAULT_OPTIONS, **options}, client, contacts or ContactCache()
    )


async def failure_of(
    connector: HubSpotConnector, call: dict[str, Any], existing: SyncedRecord | None = None
) -> CrmFailure:
    with pytest.raises(CrmFailure) as caught:
        await connector.sync(call, existing)
    return caught.value


def test_spec_describes_the_kind() -> None:
    assert SPEC.kind == "hubspot"
    assert SPEC.default_base_url == "https://api.hubapi.com"
    assert SPEC.credential_keys == (frozenset({"access_token"}),)
    assert SPEC.default_options["call_id_property"] == "callgate_call_id"
    assert SPEC.default_options["match_contacts"] is True
    assert SPEC.default_options["owner_id"] is None


async def test_create_associates_the_rechecked_contact(
    state: State, base_url: str, client: httpx.AsyncClient
) -> None:
    contact = state.add_contact(phone="(415) 555-0123", firstname="Ana")  # another notation, national
    state.add_contact(phone="+44 415 555 0123")  # the same national digits in another country

    record = await connect(base_url, client).sync(a_call(), None)

    assert record.record_type == "call"
    assert record.extra == {"contact_id": contact["id"]}
    (call,) = snapshot(state)["calls"]
    assert call["id"] == record.record_id
    assert call["contact_ids"] == [contact["id"]]
    assert call["properties"]["callgate_call_id"] == CALL_ID
    assert call["properties"]["hs_call_duration"] == "312000"
    create = next(r for r in state.requests if r["method"] == "POST" and r["path"] == "/crm/v3/objects/calls")
    assert create["authorization"] == f"Bearer {TOKEN}"
    types = create["body"]["associations"][0]["types"]
    assert types == [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 194}]


async def test_a_contact_with_the_same_digits_elsewhere_is_not_matched(
    state: State, base_url: str, client: httpx.AsyncClient
) -> None:
    state.add_contact(
        phone="+44 415 555 0123"
    )  # found by the national-digits filter, refused by the re-check
    record = await connect(base_url, client).sync(a_call(), None)
    assert record.extra == {"contact_id": None}
    assert state.count("POST", "/crm/v3/objects/contacts/search") == 1
    assert state.contacts_of(record.record_id) == []


async def test_no_match_still_logs_the_call(state: State, base_url: str, client: httpx.AsyncClient) -> None:
    record = await connect(base_url, client).sync(a_call(to_number="+14155550199"), None)
    assert list(state.calls) == [record.record_id]
    assert state.contacts_of(record.record_id) == []
    assert "associations" not in state.requests[-1]["body"]


async def test_matching_can_be_switched_off(state: State, base_url: str, client: httpx.AsyncClient) -> None:
    state.add_contact(phone=CUSTOMER)
    record = await connect(base_url, client, match_contacts=False).sync(a_call(), None)
    assert record.extra == {"contact_id": None}
    assert state.count("POST", "/crm/v3/objects/contacts/search") == 0


async def test_update_keeps_one_record_with_the_latest_values(
    state: State, base_url: str, client: httpx.AsyncClient
) -> None:
    contact = state.add_contact(mobilephone=CUSTOMER)
    connector = connect(base_url, client)
    first = await connector.sync(a_call(status="in_progress", duration_seconds=None, ended_at=None), None)
    second = await connector.sync(enriched(2), first)
    third = await connector.sync(enriched(3, turns=4), second)

    assert first.record_id == second.record_id == third.record_id
    assert third.extra == {"contact_id": contact["id"]}
    (call,) = snapshot(state)["calls"]
    props = call["properties"]
    assert props["hs_call_status"] == "COMPLETED"
    assert props["hs_call_duration"] == "312000"
    assert props["hs_call_recording_url"] == "https://media.example.com/r1.mp3"
    assert "agent: line 3" in props["hs_call_body"]
    assert call["contact_ids"] == [contact["id"]]
    assert state.count("PATCH", "/crm/v3/objects/calls/") == 2
    assert state.count("POST", "/crm/v3/objects/calls/search") == 1  # only before the create
    assert state.count("POST", "/crm/v3/objects/contacts/search") == 1  # known contact: not searched again
    assert state.count("PUT", "/crm/v4/") == 0  # associated at creation


async def test_crash_recovery_finds_the_record_instead_of_a_second(
    state: State, base_url: str, client: httpx.AsyncClient
) -> None:
    contact = state.add_contact(phone=CUSTOMER)
    connector = connect(base_url, client)
    lost = await connector.sync(a_call(), None)  # created, then the worker crashed before saving the id

    found = await connector.sync(enriched(2), None)

    assert found.record_id == lost.record_id
    assert list(state.calls) == [lost.record_id]
    assert "Resolved quickly." in state.calls[lost.record_id]["properties"]["hs_call_body"]
    assert state.contacts_of(lost.record_id) == [contact["id"]]
    assert state.count("POST", "/crm/v3/objects/calls") == 1 + 2  # one create, two searches


async def test_crash_recovery_ignores_other_calls(
    state: State, base_url: str, client: httpx.AsyncClient
) -> None:
    other = state.add_call(hs_timestamp="2026-05-25T10:00:00Z", callgate_call_id="call_other")
    record = await connect(base_url, client).sync(a_call(), None)
    assert record.record_id != other["id"]
    assert len(state.calls) == 2


async def test_a_record_deleted_in_hubspot_is_made_again(
    state: State, base_url: str, client: httpx.AsyncClient
) -> None:
    connector = connect(base_url, client)
    first = await connector.sync(a_call(), None)
    del state.calls[first.record_id]

    again = await connector.sync(enriched(2), first)

    assert again.record_id != first.record_id
    assert list(state.calls) == [again.record_id]
    assert "Resolved quickly." in state.calls[again.record_id]["properties"]["hs_call_body"]


async def test_a_contact_found_later_is_associated_on_update(
    state: State, base_url: str, client: httpx.AsyncClient
) -> None:
    first = await connect(base_url, client).sync(a_call(), None)
    assert first.extra == {"contact_id": None}
    contact = state.add_contact(phone="415.555.0123")

    # a fresh cache: the remembered miss has expired
    second = await connect(base_url, client).sync(enriched(2), first)

    assert second.extra == {"contact_id": contact["id"]}
    assert state.contacts_of(first.record_id) == [contact["id"]]
    assert state.count("PUT", f"/crm/v4/objects/calls/{first.record_id}/associations/default/contacts/") == 1


async def test_contact_cache_saves_the_second_search(
    state: State, base_url: str, client: httpx.AsyncClient
) -> None:
    contact = state.add_contact(phone=CUSTOMER)
    cache = ContactCache()
    connector = connect(base_url, client, contacts=cache)
    one = await connector.sync(a_call(), None)
    two = await connector.sync(a_call(id="call_second"), None)
    assert one.extra == two.extra == {"contact_id": contact["id"]}
    assert state.count("POST", "/crm/v3/objects/contacts/search") == 1
    assert cache.get(CUSTOMER) == (True, contact["id"])


async def test_rate_limit_pauses_the_connection(
    state: State, base_url: str, client: httpx.AsyncClient
) -> None:
    state.rate_limit = 1  # the burst bucket: one request per 10 s
    connector = connect(base_url, client)
    await connector.test()
    with pytest.raises(CrmFailure) as caught:
        await connector.test()
    outcome = caught.value.outcome
    assert outcome.verdict is CrmVerdict.PAUSED
    assert outcome.code == "TEN_SECONDLY_ROLLING"
    assert outcome.pause_seconds == 10.0  # from X-HubSpot-RateLimit-Interval-Milliseconds


async def test_search_rate_limit_pauses_briefly(
    state: State, base_url: str, client: httpx.AsyncClient
) -> None:
    state.search_per_second = 1
    failure = await failure_of(connect(base_url, client), a_call())  # contact search, then call search
    assert failure.outcome.verdict is CrmVerdict.PAUSED
    assert failure.outcome.pause_seconds == 1.0
    assert state.calls == {}


async def test_daily_limit_pauses_for_hours(state: State, base_url: str, client: httpx.AsyncClient) -> None:
    state.inject(429, rate_limit_body("DAILY"), path_contains="/crm/")
    failure = await failure_of(connect(base_url, client), a_call())
    assert failure.outcome.verdict is CrmVerdict.PAUSED
    assert failure.outcome.pause_seconds is not None
    assert 1 <= failure.outcome.pause_seconds <= 86_400


async def test_wrong_token_is_auth_failed_without_the_token(
    state: State, base_url: str, client: httpx.AsyncClient
) -> None:
    wrong = "pat-na1-ffffffff-ffff-ffff-ffff-ffffffffffff"
    failure = await failure_of(connect(base_url, client, token=wrong), a_call())
    assert failure.outcome.verdict is CrmVerdict.AUTH_FAILED
    assert failure.outcome.code == "INVALID_AUTHENTICATION"
    assert wrong not in str(failure)
    assert wrong not in failure.outcome.message


async def test_a_token_echoed_in_an_error_is_scrubbed(
    state: State, base_url: str, client: httpx.AsyncClient
) -> None:
    state.inject(400, error_body("VALIDATION_ERROR", f"bad header Bearer {TOKEN}"), path_contains="/search")
    failure = await failure_of(connect(base_url, client), a_call())
    assert failure.outcome.verdict is CrmVerdict.PERMANENT
    assert TOKEN not in str(failure)
    assert TOKEN not in failure.outcome.message
    assert "***" in failure.outcome.message


async def test_unknown_property_is_permanent_with_hubspot_message(
    state: State, base_url: str, client: httpx.AsyncClient
) -> None:
    connector = connect(base_url, client, match_contacts=False)
    record = await connector.sync(a_call(), None)
    state.custom_properties.clear()  # someone deleted the property in the portal

    failure = await failure_of(connector, enriched(2), record)

    assert failure.outcome.verdict is CrmVerdict.PERMANENT
    assert failure.outcome.status_code == 400
    assert failure.outcome.code == "VALIDATION_ERROR"
    assert "PROPERTY_DOESNT_EXIST" in failure.outcome.message
    assert 'Property \\"callgate_call_id\\" does not exist' in failure.outcome.message


async def test_a_missing_call_id_property_fails_visibly_before_any_create(
    state: State, base_url: str, client: httpx.AsyncClient
) -> None:
    state.custom_properties.clear()
    failure = await failure_of(connect(base_url, client), a_call())
    assert failure.outcome.verdict is CrmVerdict.PERMANENT
    assert "callgate_call_id" in failure.outcome.message
    assert state.calls == {}


async def test_server_errors_and_network_errors_retry(
    state: State, base_url: str, client: httpx.AsyncClient
) -> None:
    state.inject(503, b"<html>upstream down</html>", {"Retry-After": "4"}, path_contains="/crm/")
    failure = await failure_of(connect(base_url, client), a_call())
    assert failure.outcome.verdict is CrmVerdict.RETRY
    assert failure.outcome.retry_after == 4.0

    state.inject(423, error_body("LOCKED", "locked"), path_contains="/crm/v3/objects/calls", method="POST")
    failure = await failure_of(connect(base_url, client), a_call())
    assert failure.outcome.verdict is CrmVerdict.RETRY
    assert failure.outcome.retry_after == 2.0

    closed = "http://127.0.0.1:9"  # discard port: nothing listens
    failure = await failure_of(connect(closed, client), a_call())
    assert failure.outcome.verdict is CrmVerdict.RETRY
    assert failure.outcome.code == "network"
    assert TOKEN not in failure.outcome.message


async def test_garbage_behind_a_2xx_is_retried_never_a_second_record(
    state: State, base_url: str, client: httpx.AsyncClient
) -> None:
    connector = connect(base_url, client, match_contacts=False)
    state.inject(200, b"<html>captive portal</html>", path="/crm/v3/objects/calls/search")
    failure = await failure_of(connector, a_call())  # not "nothing found": that would create
    assert (failure.outcome.verdict, failure.outcome.code) == (CrmVerdict.RETRY, "bad_response")
    assert state.count("POST", "/crm/v3/objects/calls") == 1  # the search only

    state.inject(201, {"properties": {}}, path="/crm/v3/objects/calls", method="POST")
    failure = await failure_of(connector, a_call())
    assert (failure.outcome.verdict, failure.outcome.code) == (CrmVerdict.RETRY, "bad_response")


async def test_test_reads_one_call(state: State, base_url: str, client: httpx.AsyncClient) -> None:
    await connect(base_url, client).test()
    assert state.requests[-1]["method"] == "GET"
    assert state.requests[-1]["path"] == "/crm/v3/objects/calls"
    assert state.requests[-1]["query"] == {"limit": "1"}

    with pytest.raises(CrmFailure) as refused:
        await connect(base_url, client, token="pat-na1-wrong").test()
    assert refused.value.outcome.verdict is CrmVerdict.AUTH_FAILED

    state.inject(403, error_body("MISSING_SCOPES", "This app hasn't been granted all required scopes"))
    with pytest.raises(CrmFailure) as forbidden:
        await connect(base_url, client).test()
    assert forbidden.value.outcome.verdict is CrmVerdict.AUTH_FAILED
    assert forbidden.value.outcome.code == "MISSING_SCOPES"
    assert state.calls == {}


async def test_a_huge_transcript_is_accepted(state: State, base_url: str, client: httpx.AsyncClient) -> None:
    call = a_call(transcript=[{"speaker": "agent", "text": "é" * 3_000} for _ in range(40)])
    record = await connect(base_url, client).sync(call, None)
    assert len(state.calls[record.record_id]["properties"]["hs_call_body"]) <= BODY_LIMIT


# --- the double itself --------------------------------------------------------------------------------------


async def test_double_validates_like_hubspot(state: State, base_url: str, client: httpx.AsyncClient) -> None:
    headers = {"authorization": f"Bearer {TOKEN}"}
    url = f"{base_url}/crm/v3/objects/calls"

    async def create(props: dict[str, Any]) -> httpx.Response:
        return await client.post(url, json={"properties": props}, headers=headers)

    ok = await create({"hs_timestamp": "2026-05-25T14:30:00Z", "hs_call_duration": 1000})
    assert ok.status_code == 201
    assert ok.json()["properties"]["hs_call_duration"] == "1000"  # echoed as a string
    assert isinstance(ok.json()["id"], str)
    assert ok.headers["X-HubSpot-RateLimit-Max"] == "1000"

    missing = await create({"hs_call_title": "x"})
    assert (missing.status_code, missing.json()["category"]) == (400, "VALIDATION_ERROR")
    assert "hs_timestamp" in missing.json()["message"]
    enum = await create({"hs_timestamp": "1748183400000", "hs_call_status": "DONE"})
    assert "INVALID_OPTION" in enum.json()["message"]
    http = await create({"hs_timestamp": "1748183400000", "hs_call_recording_url": "http://x/a.mp3"})
    assert http.status_code == 400
    assert "Only HTTPS" in http.json()["message"]
    unknown = await create({"hs_timestamp": "1748183400000", "gw_ai_grade": "82"})
    assert "PROPERTY_DOESNT_EXIST" in unknown.json()["message"]

    gone = await client.patch(f"{url}/1", json={"properties": {}}, headers=headers)
    assert (gone.status_code, gone.json()["category"]) == (404, "OBJECT_NOT_FOUND")
    cleared = await client.patch(
        f"{url}/{ok.json()['id']}", json={"properties": {"hs_call_duration": ""}}, headers=headers
    )
    assert cleared.status_code == 200
    assert "hs_call_duration" not in cleared.json()["properties"]

    dump = (await client.get(f"{base_url}/__double__/state")).json()
    assert [call["id"] for call in dump["calls"]] == [ok.json()["id"]]
    seeded = await client.post(f"{base_url}/__double__/contacts", json={"phone": "(415) 555-0123"})
    assert seeded.json()["properties"]["hs_searchable_calculated_phone_number"] == "4155550123"


async def test_a_cached_contact_deleted_since_does_not_cost_the_call(
    state: State, base_url: str, client: httpx.AsyncClient
) -> None:
    contact = state.add_contact(phone=CUSTOMER)
    cache = ContactCache()
    connector = connect(base_url, client, contacts=cache)
    first = await connector.sync(a_call(), None)
    del state.contacts[contact["id"]]  # deleted in HubSpot; the cache still names it

    second = await connector.sync(a_call(id="call_second"), None)  # inline association refused

    assert second.extra == {"contact_id": None}
    assert set(state.calls) == {first.record_id, second.record_id}
    assert cache.get(CUSTOMER) == (True, None)
    assert state.count("POST", "/crm/v3/objects/contacts/search") == 1


async def test_an_association_refused_on_update_keeps_the_update(
    state: State, base_url: str, client: httpx.AsyncClient
) -> None:
    first = await connect(base_url, client).sync(a_call(), None)
    contact = state.add_contact(phone=CUSTOMER)
    connector = connect(base_url, client)
    state.inject(404, error_body("OBJECT_NOT_FOUND", "resource not found"), path_contains="/crm/v4/")

    second = await connector.sync(enriched(2), first)

    assert second.record_id == first.record_id
    assert second.extra == {"contact_id": None}
    assert "Resolved quickly." in state.calls[first.record_id]["properties"]["hs_call_body"]
    assert contact["id"] not in state.contacts_of(first.record_id)


def test_body_keeps_quotes_readable() -> None:
    call = a_call(transcript=[{"speaker": "customer", "text": 'I\'m "fine" & <ok>'}])
    assert 'customer: I\'m "fine" &amp; &lt;ok&gt;' in properties(call, DEFAULT_OPTIONS)["hs_call_body"]
