"""The Pipedrive connector: pure mapping and classification, then real HTTP against the local double."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from starlette.types import ASGIApp, Receive, Scope, Send

from adapters.outbound.pipedrive import (
    DEFAULT_OPTIONS,
    NOTE_LIMIT,
    OUTCOMES,
    SPEC,
    PipedriveConnector,
    build,
    call_log,
    classify,
    marker,
    note_content,
)
from gateway.connectors import ContactCache, CrmFailure, CrmOutcome, CrmVerdict, SyncedRecord
from tests.doubles import serving
from tests.doubles.pipedrive import OVER_LIMIT, State, app

pytestmark = pytest.mark.anyio

TOKEN = "pd-token-0123456789abcdef0123456789abcdef"
TIME = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$")
CUSTOMER = "+14155550123"


def a_call(**changes: Any) -> dict[str, Any]:
    """A rendered call document (``gateway.render.call``), an outbound completed call by default."""
    call: dict[str, Any] = {
        "id": "call_01JTESTPIPEDRIVE000000000",
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
        "started_at": "2026-05-25T14:30:00.000000Z",
        "answered_at": "2026-05-25T14:30:05.000000Z",
        "ended_at": "2026-05-25T14:35:12.000000Z",
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
    """The same call after a transcript and a grade arrived."""
    transcript = [{"speaker": "agent" if i % 2 else "customer", "text": f"line {i}"} for i in range(turns)]
    grade = {"score": 0.86, "status": "completed", "summary": "Resolved quickly.", "details": {}}
    return a_call(version=version, transcript=transcript, grade=grade)


# --- pure: call_log and note_content ---------------------------------------------------------------------


def test_call_log_fields_units_and_marker() -> None:
    body = call_log(a_call(), {**DEFAULT_OPTIONS, "user_id": 18487521}, "42")

    assert body["outcome"] == "connected"
    assert body["to_phone_number"] == CUSTOMER
    assert body["from_phone_number"] == "+14155559876"
    assert body["start_time"] == "2026-05-25 14:30:00"
    assert body["end_time"] == "2026-05-25 14:35:12"
    assert body["duration"] == "312"  # seconds, as a string
    assert body["person_id"] == 42
    assert body["user_id"] == 18487521
    assert body["subject"] == f"Outbound call to {CUSTOMER} [callgate call_01JTESTPIPEDRIVE000000000]"
    assert marker(a_call()) in body["note"]


def test_call_log_converts_offsets_to_utc_and_derives_missing_times() -> None:
    offset = call_log(a_call(started_at="2026-05-25T16:30:00+02:00", ended_at=None), DEFAULT_OPTIONS, None)
    assert (offset["start_time"], offset["end_time"]) == ("2026-05-25 14:30:00", "2026-05-25 14:35:12")

    only_end = call_log(a_call(started_at=None, answered_at=None), DEFAULT_OPTIONS, None)
    assert only_end["start_time"] == "2026-05-25 14:30:00"

    nothing = a_call(started_at=None, answered_at=None, ended_at=None, duration_seconds=None)
    body = call_log(nothing, DEFAULT_OPTIONS, None)
    assert body["start_time"] == body["end_time"] == "2026-05-25 14:29:58"
    assert body["duration"] == "0"
    assert "person_id" not in body
    assert "user_id" not in body


@pytest.mark.parametrize(
    ("status", "outcome", "expected"),
    [
        ("completed", None, "connected"),
        ("completed", "voicemail", "left_voicemail"),
        ("completed", "Left Message", "left_message"),
        ("failed", "wrong-number", "wrong_number"),
        ("busy", None, "busy"),
        ("no_answer", None, "no_answer"),
        ("failed", None, "no_answer"),
        ("canceled", None, "no_answer"),
        ("completed", "interested", "connected"),
    ],
)
def test_outcome_mapping(status: str, outcome: str | None, expected: str) -> None:
    assert call_log(a_call(status=status, outcome=outcome), DEFAULT_OPTIONS, None)["outcome"] == expected


def test_subject_by_direction_and_web_calls_without_numbers() -> None:
    inbound = call_log(a_call(direction="inbound", from_number=CUSTOMER), DEFAULT_OPTIONS, None)
    assert inbound["subject"].startswith(f"Inbound call from {CUSTOMER} [callgate")
    web = call_log(a_call(direction="web", from_number=None, to_number=None), DEFAULT_OPTIONS, None)
    assert web["to_phone_number"] == "unknown"
    assert "from_phone_number" not in web
    assert web["subject"].startswith("Web call [callgate")


maybe_time = st.one_of(
    st.none(),
    st.text(max_size=30),
    st.datetimes().map(lambda d: d.isoformat() + "Z"),
    st.datetimes().map(lambda d: d.isoformat() + "+14:00"),
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
    outcome=st.one_of(st.none(), st.text(max_size=20)),
    direction=st.sampled_from(["inbound", "outbound", "web", "unknown"]),
)
def test_call_log_always_has_what_pipedrive_requires(
    started: str | None,
    ended: str | None,
    created: str | None,
    duration: object,
    status: str | None,
    outcome: str | None,
    direction: str,
) -> None:
    call = a_call(
        started_at=started,
        answered_at=None,
        ended_at=ended,
        created_at=created,
        duration_seconds=duration,
        status=status,
        outcome=outcome,
        direction=direction,
    )
    body = call_log(call, DEFAULT_OPTIONS, None)
    assert body["outcome"] in OUTCOMES
    assert body["to_phone_number"]
    assert TIME.match(body["start_time"])
    assert TIME.match(body["end_time"])
    assert body["start_time"] <= body["end_time"]
    assert body["duration"].isdigit()
    assert body["subject"].endswith(marker(call))


def test_note_content_has_summary_grade_transcript_escaped() -> None:
    call = enriched(2)
    call["transcript"].append({"speaker": "customer", "text": "<script>alert(1)</script>"})
    call["recording"] = {"available": True, "vendor_ref": "r", "url": "https://rec.example/1.mp3"}
    content = note_content(call)
    assert content.startswith(f"<p>{marker(call)}</p>")
    assert "Summary: Resolved quickly." in content
    assert "Grade: 86/100 (completed)" in content
    assert "customer: line 0" in content
    assert "&lt;script&gt;" in content
    assert "<script>" not in content
    assert "https://rec.example/1.mp3" in content
    assert "status completed" in content


def test_note_content_is_cut_but_keeps_the_marker() -> None:
    call = a_call(transcript=[{"speaker": "agent", "text": "x" * 500} for _ in range(200)])
    content = note_content(call)
    assert len(content) <= NOTE_LIMIT
    assert content.startswith(f"<p>{marker(call)}</p>")
    assert "transcript cut" in content


# --- pure: classify ---------------------------------------------------------------------------------------


def envelope(error: str, **more: Any) -> bytes:
    return json.dumps({"success": False, "error": error, "error_info": "see docs", **more}).encode()


@pytest.mark.parametrize(
    ("status", "headers", "body", "verdict"),
    [
        (200, {}, b'{"success": true, "data": {"id": "a"}}', CrmVerdict.DONE),
        (201, {}, {"success": True}, CrmVerdict.DONE),
        (200, {}, envelope("nope"), CrmVerdict.PERMANENT),
        (200, {}, b"<html>proxy</html>", CrmVerdict.RETRY),
        (500, {}, b"", CrmVerdict.RETRY),
        (503, {"Retry-After": "3"}, b"\xff\xfe garbage", CrmVerdict.RETRY),
        (401, {}, envelope("unauthorized access", errorCode=401), CrmVerdict.AUTH_FAILED),
        (403, {}, envelope("limit", code="feature_capping_deals_limit"), CrmVerdict.AUTH_FAILED),
        (400, {}, envelope("Invalid outcome value"), CrmVerdict.PERMANENT),
        (404, {}, b"not json", CrmVerdict.PERMANENT),
        (410, {}, None, CrmVerdict.PERMANENT),
        (429, {}, json.dumps(OVER_LIMIT).encode(), CrmVerdict.PAUSED),
    ],
)
def test_classify_classes(status: int, headers: dict[str, str], body: object, verdict: CrmVerdict) -> None:
    outcome = classify(status, headers, body)
    assert outcome.verdict is verdict
    assert outcome.status_code == status


def test_classify_keeps_pipedrive_message_and_code() -> None:
    outcome = classify(400, {}, envelope("Invalid outcome value"))
    assert outcome.message == "Invalid outcome value — see docs"
    assert classify(403, {}, envelope("x", code="feature_capping_deals_limit")).code == (
        "feature_capping_deals_limit"
    )
    assert classify(401, {}, envelope("unauthorized access", errorCode=401)).code == "401"
    assert classify(503, {"retry-after": "3"}, b"").retry_after == 3.0


@pytest.mark.parametrize(
    ("headers", "pause"),
    [
        ({"Retry-After": "7", "x-ratelimit-reset": "2"}, 7.0),
        ({"x-ratelimit-reset": "2"}, 2.0),
        ({"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT", "x-ratelimit-reset": "5"}, 5.0),
        ({}, 2.0),
        ({"x-ratelimit-reset": "0"}, 1.0),
        ({"x-ratelimit-reset": "nan"}, 2.0),
    ],
)
def test_classify_rate_limit_pause(headers: dict[str, str], pause: float) -> None:
    outcome = classify(429, headers, json.dumps(OVER_LIMIT))
    assert outcome.verdict is CrmVerdict.PAUSED
    assert outcome.pause_seconds == pause


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
        st.sampled_from(["retry-after", "Retry-After", "x-ratelimit-reset", "x"]) | st.text(max_size=5),
        st.text(max_size=12),
        max_size=4,
    ),
    body=st.one_of(
        st.binary(max_size=50),
        st.text(max_size=50),
        json_values,
        json_values.map(lambda value: json.dumps(value).encode()),
        st.fixed_dictionaries({"success": json_values, "error": json_values, "code": json_values}),
    ),
)
def test_classify_never_raises(status: int, headers: dict[str, str], body: object) -> None:
    outcome = classify(status, headers, body)
    assert isinstance(outcome, CrmOutcome)
    if outcome.verdict is CrmVerdict.PAUSED:
        assert outcome.pause_seconds is not None
        assert outcome.pause_seconds >= 1


# --- the connector against the double ---------------------------------------------------------------------


class Swappable:
    """One loopback server for the module, serving whichever double the current test built: starting a
    server per test would cost more than all the tests."""

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
    return State(tokens={TOKEN})


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
) -> PipedriveConnector:
    return build(
        base_url, {"api_token": token}, {**DEFAULT_OPTIONS, **options}, client, contacts or ContactCache()
    )


async def failure_of(connector: PipedriveConnector, call: dict[str, Any]) -> CrmFailure:
    with pytest.raises(CrmFailure) as caught:
        await connector.sync(call, None)
    return caught.value


def test_spec_describes_the_kind() -> None:
    assert SPEC.kind == "pipedrive"
    assert SPEC.default_base_url == "https://api.pipedrive.com"
    assert SPEC.credential_keys == (frozenset({"api_token"}),)
    assert SPEC.default_options["match_contacts"] is True


async def test_first_sync_logs_the_call_on_the_rechecked_person(
    state: State, base_url: str, client: httpx.AsyncClient
) -> None:
    decoy = state.add_person("UK decoy", ["+44 4155550123"])  # the national digits match, the number not
    ada = state.add_person("Ada", ["(415) 555-0123"])
    assert decoy["id"] < ada["id"]

    record = await connect(base_url, client).sync(a_call(), None)

    assert record.record_type == "callLog"
    [log] = state.call_logs.values()
    assert record.record_id == log["id"]
    assert isinstance(log["id"], str)
    assert log["person_id"] == ada["id"]
    assert log["duration"] == "312"
    assert log["subject"].endswith(marker(a_call()))
    assert record.extra["person_id"] == str(ada["id"])
    assert record.extra["note_id"] is None
    assert state.notes == {}
    searches = [r["query"] for r in state.requests if r["path"] == "/api/v2/persons/search"]
    assert [(q["term"], q["exact_match"]) for q in searches] == [(CUSTOMER, "true"), ("4155550123", "false")]
    assert all(r.get("query", {}).get("api_token") is None for r in state.requests)


async def test_later_syncs_make_one_note_then_update_it(
    state: State, base_url: str, client: httpx.AsyncClient
) -> None:
    ada = state.add_person("Ada", [CUSTOMER])
    connector = connect(base_url, client)
    first = await connector.sync(a_call(), None)
    before = len(state.requests)
    same = await connector.sync(a_call(version=2), first)
    assert len(state.requests) == before  # nothing new to show: no request at all
    assert same == first

    second = await connector.sync(enriched(3), first)
    third = await connector.sync(enriched(4, turns=5), second)

    [note] = state.notes.values()
    assert note["person_id"] == ada["id"]
    assert "line 4" in note["content"]
    assert "Grade: 86/100" in note["content"]
    assert marker(a_call()) in note["content"]
    assert second.extra["note_id"] == third.extra["note_id"] == str(note["id"])
    assert third.record_id == first.record_id
    assert len(state.call_logs) == 1
    assert state.count("POST", "/v1/callLogs") == 1
    assert state.count("PUT", "/v1/callLogs") == state.count("PATCH", "/v1/callLogs") == 0
    assert state.count("POST", "/v1/notes") == 1
    assert state.count("PUT", "/v1/notes/") == 1


async def test_no_match_still_logs_the_call_and_skips_the_note(
    state: State, base_url: str, client: httpx.AsyncClient
) -> None:
    connector = connect(base_url, client)
    record = await connector.sync(a_call(), None)
    [log] = state.call_logs.values()
    assert "person_id" not in log
    assert record.extra["person_id"] is None

    later = await connector.sync(enriched(2), record)
    assert state.notes == {}  # a note needs a person; the late data is not sent
    assert later.record_id == record.record_id
    assert len(state.call_logs) == 1


async def test_matching_can_be_switched_off(state: State, base_url: str, client: httpx.AsyncClient) -> None:
    state.add_person("Ada", [CUSTOMER])
    await connect(base_url, client, match_contacts=False).sync(a_call(), None)
    assert state.count("GET", "/api/v2/persons/search") == 0
    [log] = state.call_logs.values()
    assert "person_id" not in log


async def test_crash_recovery_finds_the_log_and_the_note(
    state: State, base_url: str, client: httpx.AsyncClient
) -> None:
    state.add_person("Ada", [CUSTOMER])
    for n in range(60):  # other logs first, so ours is on the second page of GET /v1/callLogs
        state.add_call_log(subject=f"someone else {n}", outcome="connected", to_phone_number="+1")
    connector = connect(base_url, client)

    first = await connector.sync(a_call(), None)
    again = await connector.sync(a_call(), None)  # the mapping was lost: existing is None
    assert again.record_id == first.record_id
    assert state.count("POST", "/v1/callLogs") == 1

    with_note = await connector.sync(enriched(2), first)
    recovered = await connector.sync(enriched(2), None)  # lost again, after the note was made
    assert recovered.record_id == first.record_id
    assert recovered.extra["note_id"] == with_note.extra["note_id"]
    updated = await connector.sync(enriched(3, turns=4), None)
    assert updated.extra["note_id"] == with_note.extra["note_id"]

    assert len(state.call_logs) == 61
    assert len(state.notes) == 1
    assert "line 3" in next(iter(state.notes.values()))["content"]


async def test_a_failed_note_is_made_once_on_the_next_attempt(
    state: State, base_url: str, client: httpx.AsyncClient
) -> None:
    state.add_person("Ada", [CUSTOMER])
    connector = connect(base_url, client)
    first = await connector.sync(a_call(), None)
    state.inject(502, {"success": False, "error": "Bad gateway"}, path_contains="/v1/notes")
    failure = await failure_of(connector, enriched(2))
    assert failure.outcome.verdict is CrmVerdict.RETRY

    record = await connector.sync(enriched(2), None)  # the worker saved nothing: existing is None
    assert record.record_id == first.record_id
    assert len(state.call_logs) == 1
    assert len(state.notes) == 1


async def test_a_note_deleted_in_pipedrive_is_made_again(
    state: State, base_url: str, client: httpx.AsyncClient
) -> None:
    state.add_person("Ada", [CUSTOMER])
    connector = connect(base_url, client)
    record = await connector.sync(enriched(2), await connector.sync(a_call(), None))
    state.notes.clear()
    again = await connector.sync(enriched(3, turns=3), record)
    assert len(state.notes) == 1
    assert again.extra["note_id"] != record.extra["note_id"]


async def test_contact_cache_saves_the_second_search(
    state: State, base_url: str, client: httpx.AsyncClient
) -> None:
    state.add_person("Ada", [CUSTOMER])
    contacts = ContactCache()
    connector = connect(base_url, client, contacts=contacts)
    await connector.sync(a_call(id="call_A"), None)
    searches = state.count("GET", "/api/v2/persons/search")
    await connector.sync(a_call(id="call_B"), None)
    assert state.count("GET", "/api/v2/persons/search") == searches == 1
    assert contacts.get(CUSTOMER)[0] is True

    await connector.sync(a_call(id="call_C", to_number="+14155550999"), None)  # a miss: two searches
    await connector.sync(a_call(id="call_D", to_number="+14155550999"), None)  # the miss is remembered
    assert state.count("GET", "/api/v2/persons/search") == 3
    assert [log["person_id"] for log in state.call_logs.values() if "person_id" in log] == [
        next(iter(state.persons))
    ] * 2


async def test_rate_limit_pauses_with_the_reset(
    state: State, base_url: str, client: httpx.AsyncClient
) -> None:
    state.rate_limit = 1  # the first request of the window passes, the next one is over budget
    failure = await failure_of(connect(base_url, client, match_contacts=False), a_call())
    assert failure.outcome.verdict is CrmVerdict.PAUSED
    assert failure.outcome.status_code == 429
    assert failure.outcome.pause_seconds is not None
    assert 1 <= failure.outcome.pause_seconds <= 2


async def test_retry_after_wins(state: State, base_url: str, client: httpx.AsyncClient) -> None:
    state.inject(429, OVER_LIMIT, {"Retry-After": "7"}, path_contains="/v1/callLogs")
    failure = await failure_of(connect(base_url, client, match_contacts=False), a_call())
    assert failure.outcome.verdict is CrmVerdict.PAUSED
    assert failure.outcome.pause_seconds == 7.0


async def test_wrong_token_is_auth_failed_without_the_token(
    state: State, base_url: str, client: httpx.AsyncClient
) -> None:
    wrong = "wrong-token-9876543210fedcba"
    failure = await failure_of(connect(base_url, client, token=wrong), a_call())
    assert failure.outcome.verdict is CrmVerdict.AUTH_FAILED
    assert failure.outcome.message == "unauthorized access — Please check developers.pipedrive.com"
    assert wrong not in str(failure)
    assert wrong not in repr(failure.outcome)


async def test_a_token_echoed_in_an_error_is_scrubbed(
    state: State, base_url: str, client: httpx.AsyncClient
) -> None:
    state.inject(400, {"success": False, "error": f"bad token {TOKEN}"}, path_contains="/v1/callLogs")
    failure = await failure_of(connect(base_url, client, match_contacts=False), a_call())
    assert TOKEN not in failure.outcome.message
    assert "***" in failure.outcome.message


async def test_validation_is_permanent_with_pipedrive_message(
    state: State, base_url: str, client: httpx.AsyncClient
) -> None:
    message = "Only one of deal_id or lead_id can be set"
    state.inject(400, {"success": False, "error": message, "error_info": "x"}, path_contains="/v1/callLogs")
    failure = await failure_of(connect(base_url, client, match_contacts=False), a_call())
    assert failure.outcome.verdict is CrmVerdict.PERMANENT
    assert failure.outcome.status_code == 400
    assert failure.outcome.message.startswith(message)


async def test_server_error_and_network_error_retry(
    state: State, base_url: str, client: httpx.AsyncClient
) -> None:
    state.inject(500, {"success": False, "error": "oops"}, path_contains="/v1/callLogs")
    failure = await failure_of(connect(base_url, client, match_contacts=False), a_call())
    assert failure.outcome.verdict is CrmVerdict.RETRY

    closed = connect("http://127.0.0.1:9", client, match_contacts=False)  # discard port: refused
    failure = await failure_of(closed, a_call())
    assert failure.outcome.verdict is CrmVerdict.RETRY
    assert failure.outcome.code == "network"


async def test_test_reads_users_me(state: State, base_url: str, client: httpx.AsyncClient) -> None:
    await connect(base_url, client).test()
    assert state.requests[-1]["path"] == "/v1/users/me"

    with pytest.raises(CrmFailure) as caught:
        await connect(base_url, client, token="nope-nope").test()
    assert caught.value.outcome.verdict is CrmVerdict.AUTH_FAILED

    state.inject(503, "<html>down</html>", path_contains="/users/me")
    with pytest.raises(CrmFailure) as caught:
        await connect(base_url, client).test()
    assert caught.value.outcome.verdict is CrmVerdict.RETRY


# --- the double itself ------------------------------------------------------------------------------------


async def test_double_validates_call_logs_like_pipedrive(
    state: State, base_url: str, client: httpx.AsyncClient
) -> None:
    good = call_log(a_call(), DEFAULT_OPTIONS, None)
    url = f"{base_url}/v1/callLogs"
    headers = {"x-api-token": TOKEN}
    bad_bodies = [
        {**good, "outcome": "completed"},
        {key: value for key, value in good.items() if key != "end_time"},
        {**good, "start_time": "2026-05-25T14:30:00Z"},
        {**good, "deal_id": 1, "lead_id": "4f0c8f1e-0000-0000-0000-000000000000"},
        {**good, "duration": 312},
    ]
    for body in bad_bodies:
        response = await client.post(url, json=body, headers=headers)
        assert response.status_code == 400
        assert response.json()["success"] is False
        assert response.json()["error"]
        assert response.headers["x-ratelimit-limit"]

    created = await client.post(url, json=good, params={"api_token": TOKEN})
    data = created.json()["data"]
    assert isinstance(data["id"], str)
    assert data["has_recording"] is False
    assert data["company_id"] == state.company_id
    update = await client.put(f"{url}/{data['id']}", json=good, headers={"authorization": f"Bearer {TOKEN}"})
    assert update.status_code == 404

    anonymous = await client.get(url)
    assert anonymous.status_code == 401
    assert anonymous.json() == {
        "success": False,
        "error": "unauthorized access",
        "errorCode": 401,
        "error_info": "Please check developers.pipedrive.com",
    }

    seeded = await client.post(
        f"{base_url}/__double__/persons", json={"name": "Bo", "phones": ["+1 415 555 0100"]}
    )
    assert seeded.status_code == 201
    dumped = (await client.get(f"{base_url}/__double__/state")).json()
    assert [log["id"] for log in dumped["call_logs"]] == [data["id"]]
    assert dumped["persons"][0]["name"] == "Bo"


async def test_existing_record_from_the_mapping_table_is_trusted(
    state: State, base_url: str, client: httpx.AsyncClient
) -> None:
    ada = state.add_person("Ada", [CUSTOMER])
    existing = SyncedRecord("abc", "callLog", {"note_id": None, "person_id": str(ada["id"])})
    record = await connect(base_url, client).sync(enriched(2), existing)
    assert record.record_id == "abc"
    assert state.count("GET", "/v1/callLogs") == 0
    assert state.count("POST", "/v1/callLogs") == 0
    assert len(state.notes) == 1
