"""The Salesforce connector: pure mapping and classification, then real HTTP against the local double."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from starlette.types import ASGIApp, Receive, Scope, Send

from adapters.outbound.salesforce import (
    DAILY_LIMIT_PAUSE,
    DEFAULT_OPTIONS,
    DESCRIPTION_LIMIT,
    SPEC,
    SalesforceConnector,
    build,
    classify,
    sosl_escape,
    task_fields,
)
from gateway.connectors import ContactCache, CrmFailure, CrmVerdict, SyncedRecord
from tests.doubles import serving
from tests.doubles.salesforce import EXPIRED, State, app, error, validate

pytestmark = pytest.mark.anyio

TOKEN = "00D5e000000AbCd!AQ0AQExampleSessionToken.0123456789"
CLIENT_ID = "3MVG9example.client.id"
SECRET = "client-secret-0f0e0d0c0b0a09080706"
CUSTOMER = "+14155550123"
CALL_ID = "call_01JTESTSALESFORCE0000000"
EXT = "Callgate_Call_Id__c"


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
        "started_at": "2026-05-25T23:59:30Z",
        "answered_at": "2026-05-25T23:59:35Z",
        "ended_at": "2026-05-26T00:04:42Z",
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
        "created_at": "2026-05-25T23:59:28Z",
        "updated_at": "2026-05-26T00:04:43Z",
    }
    call.update(changes)
    return call


def enriched(version: int = 2, turns: int = 2) -> dict[str, Any]:
    """The same call after a transcript, a grade and a recording arrived."""
    transcript = [{"speaker": "agent" if i % 2 else "customer", "text": f"line {i}"} for i in range(turns)]
    grade = {"score": 0.86, "status": "completed", "summary": "Resolved quickly.", "details": {}}
    recording = {"available": True, "vendor_ref": "r1", "url": "https://media.example.com/r1.mp3"}
    return a_call(
        version=version, transcript=transcript, grade=grade, recording=recording, outcome="interested"
    )


# --- pure: task_fields --------------------------------------------------------------------------------------


def test_create_shape_fields_and_units() -> None:
    fields = task_fields(
        a_call(), {**DEFAULT_OPTIONS, "owner_id": "005xx0000012345"}, create=True, contact_id="003A"
    )

    assert fields["Subject"] == f"Outbound call to {CUSTOMER}"
    assert fields["ActivityDate"] == "2026-05-25"  # the UTC date the call started, not ended
    assert fields["Status"] == "Completed"
    assert fields["CallType"] == "Outbound"
    assert fields["CallDurationInSeconds"] == 312  # seconds, an int
    assert fields["CallDisposition"] == "Connected"
    assert fields["TaskSubtype"] == "Call"
    assert fields["WhoId"] == "003A"
    assert fields["OwnerId"] == "005xx0000012345"
    assert EXT not in fields  # the upsert key travels in the URL only
    assert "From: +14155559876 · To: +14155550123" in fields["Description"]


def test_update_shape_has_no_create_only_field_and_clears_nothing() -> None:
    fields = task_fields(
        a_call(duration_seconds=None, ended_at=None), DEFAULT_OPTIONS, create=False, contact_id=None
    )
    assert "TaskSubtype" not in fields
    assert "WhoId" not in fields  # no match now: the Task keeps the Contact it has
    assert "OwnerId" not in fields
    assert "CallDurationInSeconds" not in fields


@pytest.mark.parametrize(
    ("direction", "call_type", "subject"),
    [
        ("inbound", "Inbound", "Inbound call from +14155559876"),
        ("outbound", "Outbound", f"Outbound call to {CUSTOMER}"),
        ("web", None, "Web call"),
        ("unknown", None, "Call"),
    ],
)
def test_call_type_and_subject(direction: str, call_type: str | None, subject: str) -> None:
    fields = task_fields(a_call(direction=direction), DEFAULT_OPTIONS, create=True, contact_id=None)
    assert fields.get("CallType") == call_type
    assert fields["Subject"] == subject


@pytest.mark.parametrize(
    ("status", "outcome", "expected"),
    [
        ("completed", None, "Connected"),
        ("no_answer", None, "No answer"),
        ("busy", None, "Busy"),
        ("failed", None, "Failed"),
        ("canceled", None, "Canceled"),
        ("completed", "voicemail_left", "Voicemail left"),
        (None, None, None),
    ],
)
def test_disposition_is_the_outcome_else_the_status(
    status: str | None, outcome: str | None, expected: str | None
) -> None:
    fields = task_fields(
        a_call(status=status, outcome=outcome), DEFAULT_OPTIONS, create=True, contact_id=None
    )
    assert fields.get("CallDisposition") == expected
    assert fields["Status"] == "Completed"  # the Task is done whatever the call's result


def test_date_and_duration_fallbacks() -> None:
    call = a_call(started_at=None, answered_at=None, duration_seconds=None, created_at="2026-01-02T03:04:05Z")
    fields = task_fields(call, DEFAULT_OPTIONS, create=True, contact_id=None)
    assert fields["ActivityDate"] == "2026-01-02"
    assert "CallDurationInSeconds" not in fields
    derived = task_fields(a_call(duration_seconds=None), DEFAULT_OPTIONS, create=True, contact_id=None)
    assert derived["CallDurationInSeconds"] == 312  # ended_at - started_at


def test_description_has_summary_outcome_grade_transcript() -> None:
    text = task_fields(enriched(), DEFAULT_OPTIONS, create=False, contact_id=None)["Description"]
    assert text.startswith("Summary: Resolved quickly.\nStatus: completed · Outcome: interested")
    assert "Grade: 86/100 (completed)" in text
    assert "Recording: https://media.example.com/r1.mp3" in text
    assert "Transcript:\ncustomer: line 0\nagent: line 1" in text
    assert text.endswith(f"callgate call {CALL_ID} · callsv1")


def test_description_leaves_out_a_plain_http_recording() -> None:
    call = a_call(recording={"available": True, "vendor_ref": "r", "url": "http://media.example.com/r.mp3"})
    assert "Recording" not in task_fields(call, DEFAULT_OPTIONS, create=True, contact_id=None)["Description"]


def test_description_is_cut_to_the_task_limit_by_whole_turns() -> None:
    call = enriched(turns=2)
    call["transcript"] = [{"speaker": "customer", "text": f"{i:05d} " + "x" * 994} for i in range(100)]
    text = task_fields(call, DEFAULT_OPTIONS, create=True, contact_id=None)["Description"]
    assert len(text) <= DESCRIPTION_LIMIT == 32_000
    assert "00030 " in text
    assert "00031 " not in text
    assert "(69 more turns)" in text
    assert text.endswith(f"callgate call {CALL_ID} · callsv1")  # the footer survives the cut


texts = st.text(st.characters(codec="utf-8"), max_size=300)


@settings(max_examples=60, deadline=None)
@given(
    direction=st.sampled_from(["inbound", "outbound", "web", "unknown"]),
    status=st.sampled_from(["completed", "failed", "no_answer", "busy", "canceled", None]),
    outcome=st.none() | texts,
    duration=st.none() | st.integers(0, 10**9) | st.floats(allow_nan=True, allow_infinity=True),
    turns=st.lists(st.fixed_dictionaries({"speaker": texts, "text": st.text(max_size=5_000)}), max_size=12),
    started=st.none() | st.sampled_from(["2026-05-25T14:30:00Z", "garbage", "0001-01-01T00:00:00Z"]),
    create=st.booleans(),
)
def test_task_fields_always_pass_the_doubles_validation(
    direction: str,
    status: str | None,
    outcome: str | None,
    duration: float | None,
    turns: list[dict[str, str]],
    started: str | None,
    create: bool,
) -> None:
    call = a_call(
        direction=direction,
        status=status,
        outcome=outcome,
        duration_seconds=duration,
        transcript=turns,
        started_at=started,
    )
    fields = task_fields(call, DEFAULT_OPTIONS, create=create, contact_id=None)
    assert validate(State(), fields, create=create, external=EXT) is None


# --- pure: classify ---------------------------------------------------------------------------------------


def sf_error(code: str, message: str = "boom", *fields: str) -> bytes:
    return json.dumps(error(code, message, *fields)).encode()


LIMIT = sf_error("REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.")


@pytest.mark.parametrize(
    ("status", "headers", "body", "verdict", "code"),
    [
        (200, {}, b'{"id": "00T1", "created": false}', CrmVerdict.DONE, None),
        (201, {}, b"", CrmVerdict.DONE, None),
        (204, {}, b"", CrmVerdict.DONE, None),
        (
            403,
            {"Sforce-Limit-Info": "api-usage=100012/100000"},
            LIMIT,
            CrmVerdict.PAUSED,
            "REQUEST_LIMIT_EXCEEDED",
        ),
        (429, {}, b"", CrmVerdict.PAUSED, "rate_limited"),
        (503, {"Retry-After": "30"}, b"", CrmVerdict.PAUSED, "rate_limited"),
        (503, {}, b"", CrmVerdict.RETRY, "unavailable"),
        (500, {}, sf_error("UNKNOWN_EXCEPTION"), CrmVerdict.RETRY, "UNKNOWN_EXCEPTION"),
        (
            400,
            {},
            sf_error("UNABLE_TO_LOCK_ROW", "unable to obtain exclusive access"),
            CrmVerdict.RETRY,
            "UNABLE_TO_LOCK_ROW",
        ),
        (401, {}, json.dumps(EXPIRED).encode(), CrmVerdict.AUTH_FAILED, "INVALID_SESSION_ID"),
        (
            403,
            {},
            sf_error("INSUFFICIENT_ACCESS_OR_READONLY"),
            CrmVerdict.AUTH_FAILED,
            "INSUFFICIENT_ACCESS_OR_READONLY",
        ),
        (403, {}, sf_error("API_DISABLED_FOR_ORG"), CrmVerdict.AUTH_FAILED, "API_DISABLED_FOR_ORG"),
        (
            400,
            {},
            b'{"error": "invalid_client", "error_description": "x"}',
            CrmVerdict.AUTH_FAILED,
            "invalid_client",
        ),
        (
            400,
            {},
            sf_error("REQUIRED_FIELD_MISSING", "Required fields are missing: [Subject]"),
            CrmVerdict.PERMANENT,
            "REQUIRED_FIELD_MISSING",
        ),
        (
            300,
            {},
            b'["/services/data/v62.0/sobjects/Task/00T1", "/x/00T2"]',
            CrmVerdict.PERMANENT,
            "MULTIPLE_RECORDS",
        ),
        (
            404,
            {},
            b'{"message": "The requested resource does not exist", "errorCode": "NOT_FOUND"}',
            CrmVerdict.PERMANENT,
            "NOT_FOUND",
        ),
        (400, {}, b"<html>bad gateway</html>", CrmVerdict.PERMANENT, "rejected"),
        (502, {}, b"<html>bad gateway</html>", CrmVerdict.RETRY, "unavailable"),
        (302, {"Location": "https://login.salesforce.com"}, b"", CrmVerdict.RETRY, "unexpected_status"),
    ],
)
def test_classify_classes(
    status: int, headers: dict[str, str], body: bytes, verdict: CrmVerdict, code: str | None
) -> None:
    outcome = classify(status, headers, body)
    assert (outcome.verdict, outcome.code, outcome.status_code) == (verdict, code, status)


def test_classify_keeps_salesforce_message_and_fields() -> None:
    body = sf_error(
        "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
        "Call Type: bad value for restricted picklist field: x",
        "CallType",
    )
    outcome = classify(400, {}, body)
    assert outcome.verdict is CrmVerdict.PERMANENT
    assert outcome.message == "Call Type: bad value for restricted picklist field: x"
    assert classify(400, {}, b"").message == "Salesforce answered HTTP 400"


@pytest.mark.parametrize(
    ("status", "headers", "body", "pause"),
    [
        (403, {}, LIMIT, DAILY_LIMIT_PAUSE),  # the rolling daily allocation: an hour, then one probe
        (403, {}, sf_error("REQUEST_LIMIT_EXCEEDED", "ConcurrentPerOrgLongTxn Limit exceeded."), 30.0),
        (403, {"retry-after": "120"}, LIMIT, 120.0),
        (429, {"Retry-After": "7"}, b"", 7.0),
        (429, {"Retry-After": "soon"}, b"", 60.0),
        (429, {}, LIMIT, DAILY_LIMIT_PAUSE),
    ],
)
def test_classify_pauses(status: int, headers: dict[str, str], body: bytes, pause: float) -> None:
    outcome = classify(status, headers, body)
    assert outcome.verdict is CrmVerdict.PAUSED
    assert outcome.pause_seconds == pause


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(
    status=st.integers(-10, 1_000),
    headers=st.dictionaries(
        st.sampled_from(["retry-after", "Retry-After", "x", "Sforce-Limit-Info"]), st.text()
    ),
    body=st.binary(max_size=200) | json_values.map(lambda value: json.dumps(value).encode()) | json_values,
)
def test_classify_never_raises(status: int, headers: dict[str, str], body: object) -> None:
    outcome = classify(status, headers, body)
    assert outcome.verdict in CrmVerdict
    assert outcome.pause_seconds is None or 0 <= outcome.pause_seconds <= 86_400


def test_sosl_escape() -> None:
    assert sosl_escape("4155550123") == "4155550123"
    assert sosl_escape('+1 (415) 555-0123 {x} "q" \\') == '\\+1 \\(415\\) 555\\-0123 \\{x\\} \\"q\\" \\\\'


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
    return State(valid_tokens={TOKEN}, clients={CLIENT_ID: SECRET})


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
    credentials: dict[str, str] | None = None,
    contacts: ContactCache | None = None,
    **options: Any,
) -> SalesforceConnector:
    return build(
        base_url,
        credentials or {"access_token": TOKEN},
        {**DEFAULT_OPTIONS, **options},
        client,
        contacts or ContactCache(),
    )


def by_client_credentials(base_url: str, client: httpx.AsyncClient, **options: Any) -> SalesforceConnector:
    return connect(base_url, client, {"client_id": CLIENT_ID, "client_secret": SECRET}, **options)


async def failure_of(
    connector: SalesforceConnector, call: dict[str, Any], existing: SyncedRecord | None = None
) -> CrmFailure:
    with pytest.raises(CrmFailure) as caught:
        await connector.sync(call, existing)
    return caught.value


def patches(state: State) -> list[dict[str, Any]]:
    return [r for r in state.requests if r["method"] == "PATCH"]


def test_spec_describes_the_kind() -> None:
    assert SPEC.kind == "salesforce"
    assert SPEC.default_base_url is None  # the org's instance URL is required
    assert frozenset({"access_token"}) in SPEC.credential_keys
    assert frozenset({"client_id", "client_secret"}) in SPEC.credential_keys
    assert SPEC.default_options["api_version"] == "v62.0"
    assert SPEC.default_options["external_id_field"] == EXT


async def test_create_links_the_contact_written_another_way(
    state: State, base_url: str, client: httpx.AsyncClient
) -> None:
    contact = state.add_contact(phone="(415) 555-0123")

    record = await connect(base_url, client).sync(a_call(), None)

    (task,) = state.tasks.values()
    assert record == SyncedRecord(task["Id"], "Task", {"contact_id": contact["Id"]})
    assert task[EXT] == CALL_ID
    assert task["WhoId"] == contact["Id"]
    assert task["TaskSubtype"] == "Call"
    assert task["CallType"] == "Outbound"
    assert task["CallDurationInSeconds"] == 312
    (search,) = [r for r in state.requests if "/search" in r["path"]]
    assert search["query"]["q"].startswith("FIND {4155550123} IN PHONE FIELDS RETURNING Contact(Id, Phone")
    assert patches(state)[0]["path"] == f"/services/data/v62.0/sobjects/Task/{EXT}/{CALL_ID}"


async def test_a_contact_with_the_same_digits_elsewhere_is_not_linked(
    state: State, base_url: str, client: httpx.AsyncClient
) -> None:
    state.add_contact(phone="+44 4155 550123", mobile="+1 415 555 0124")  # found by SOSL, rejected after

    record = await connect(base_url, client).sync(a_call(), None)

    assert record.extra == {"contact_id": None}
    assert "WhoId" not in state.tasks[record.record_id]


async def test_mobile_phone_matches_too(state: State, base_url: str, client: httpx.AsyncClient) -> None:
    contact = state.add_contact(phone=None, mobile="+1.415.555.0123")
    record = await connect(base_url, client).sync(a_call(), None)
    assert state.tasks[record.record_id]["WhoId"] == contact["Id"]


async def test_no_match_still_logs_the_call(state: State, base_url: str, client: httpx.AsyncClient) -> None:
    record = await connect(base_url, client).sync(
        a_call(direction="inbound", from_number="+4930123456"), None
    )
    (task,) = state.tasks.values()
    assert record.record_id == task["Id"]
    assert "WhoId" not in task
    assert task["CallType"] == "Inbound"


async def test_matching_can_be_switched_off(state: State, base_url: str, client: httpx.AsyncClient) -> None:
    state.add_contact(phone=CUSTOMER)
    await connect(base_url, client, match_contacts=False).sync(a_call(), None)
    assert state.count("GET", "/search") == 0
    assert "WhoId" not in next(iter(state.tasks.values()))


async def test_second_sync_updates_the_same_task_with_the_latest_values(
    state: State, base_url: str, client: httpx.AsyncClient
) -> None:
    contact = state.add_contact(phone=CUSTOMER)
    connector = connect(base_url, client)
    first = await connector.sync(a_call(), None)

    second = await connector.sync(enriched(), first)

    assert second == first
    (task,) = state.tasks.values()
    assert task["CallDisposition"] == "Interested"
    assert "agent: line 1" in task["Description"]
    assert task["WhoId"] == contact["Id"]
    update = patches(state)[-1]
    assert "TaskSubtype" not in update["body"]  # create-only: never on the update path
    assert state.count("GET", "/search") == 1  # the stored Contact is reused, not searched again


async def test_crash_recovery_lands_on_the_same_task(
    state: State, base_url: str, client: httpx.AsyncClient
) -> None:
    connector = connect(base_url, client)
    first = await connector.sync(a_call(), None)  # the CRM wrote it; callgate crashed before saving this

    again = await connect(base_url, client).sync(enriched(), None)

    assert again.record_id == first.record_id
    assert len(state.tasks) == 1
    assert "agent: line 1" in state.tasks[first.record_id]["Description"]
    assert [("TaskSubtype" in p["body"]) for p in patches(state)] == [
        True,
        True,
        False,
    ]  # refused, then fixed


async def test_old_api_versions_answer_updates_with_204(
    state: State, base_url: str, client: httpx.AsyncClient
) -> None:
    connector = connect(base_url, client, api_version="45.0")  # without the "v": read as v45.0
    first = await connector.sync(a_call(), None)
    assert (await connector.sync(enriched(), first)).record_id == first.record_id
    recovered = await connector.sync(enriched(3), None)  # 204 and no record known: read it by external id
    assert recovered.record_id == first.record_id
    assert state.count("GET", f"/sobjects/Task/{EXT}/") == 1


async def test_client_credentials_token_is_fetched_once_and_refreshed_once(
    state: State, base_url: str, client: httpx.AsyncClient
) -> None:
    connector = by_client_credentials(base_url, client)
    await connector.sync(a_call(), None)
    await connector.sync(a_call(id="call_two"), None)
    assert state.issued == 1  # cached on the instance

    state.expire_tokens()
    await connector.sync(a_call(id="call_three"), None)

    assert state.issued == 2
    assert len(state.tasks) == 3
    assert state.count("POST", "/services/oauth2/token") == 2


async def test_still_refused_after_one_refresh_is_auth_failed(
    state: State, base_url: str, client: httpx.AsyncClient
) -> None:
    connector = by_client_credentials(base_url, client)
    state.inject(401, EXPIRED, times=5, path_contains="/services/data/")

    failure = await failure_of(connector, a_call())

    assert failure.outcome.verdict is CrmVerdict.AUTH_FAILED
    assert failure.outcome.code == "INVALID_SESSION_ID"
    assert state.issued == 2  # the first token and exactly one refresh
    assert state.count("GET", "/search") == 2  # the request, then its one repeat


async def test_an_expired_given_token_is_auth_failed_without_refresh(
    state: State, base_url: str, client: httpx.AsyncClient
) -> None:
    state.expire_tokens()
    failure = await failure_of(connect(base_url, client), a_call())
    assert failure.outcome.verdict is CrmVerdict.AUTH_FAILED
    assert state.count("POST", "/oauth2/") == 0
    assert TOKEN not in str(failure)


async def test_wrong_client_secret_is_auth_failed_without_the_secret(
    state: State, base_url: str, client: httpx.AsyncClient
) -> None:
    state.clients = {CLIENT_ID: "another"}
    failure = await failure_of(by_client_credentials(base_url, client), a_call())
    assert (failure.outcome.verdict, failure.outcome.code) == (CrmVerdict.AUTH_FAILED, "invalid_client")
    assert SECRET not in str(failure)


async def test_secrets_echoed_in_answers_are_scrubbed(
    state: State, base_url: str, client: httpx.AsyncClient
) -> None:
    echo = {"error": "invalid_client", "error_description": f"client {CLIENT_ID} secret {SECRET} refused"}
    state.inject(400, echo, path_contains="/oauth2/")
    failure = await failure_of(by_client_credentials(base_url, client), a_call())
    assert SECRET not in str(failure)
    assert "***" in failure.outcome.message

    state.inject(400, error("INVALID_FIELD", f"bad header Bearer {TOKEN}"), path_contains="/sobjects/")
    failure = await failure_of(connect(base_url, client, match_contacts=False), a_call())
    assert TOKEN not in str(failure)
    assert "***" in failure.outcome.message


async def test_request_limit_pauses_the_connection(
    state: State, base_url: str, client: httpx.AsyncClient
) -> None:
    state.api_limit = 1
    connector = connect(base_url, client)
    failure = await failure_of(connector, a_call())  # the search spends the last request of the day
    assert failure.outcome.verdict is CrmVerdict.PAUSED
    assert failure.outcome.code == "REQUEST_LIMIT_EXCEEDED"
    assert failure.outcome.pause_seconds == DAILY_LIMIT_PAUSE
    assert state.tasks == {}
    response = await client.get(
        f"{base_url}/services/data/v62.0/limits", headers={"authorization": f"Bearer {TOKEN}"}
    )
    assert response.headers["sforce-limit-info"] == "api-usage=3/1"


async def test_restricted_picklist_is_permanent_with_salesforce_message(
    state: State, base_url: str, client: httpx.AsyncClient
) -> None:
    state.picklists["Status"] = ("Status", frozenset({"Not Started", "Done"}))  # an org's own Task statuses
    failure = await failure_of(connect(base_url, client), a_call())
    assert failure.outcome.verdict is CrmVerdict.PERMANENT
    assert failure.outcome.code == "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"
    assert failure.outcome.message == "Status: bad value for restricted picklist field: Completed"
    assert state.tasks == {}


async def test_missing_external_id_field_is_permanent(
    state: State, base_url: str, client: httpx.AsyncClient
) -> None:
    failure = await failure_of(connect(base_url, client, external_id_field="Gateway_Call_Id__c"), a_call())
    assert (failure.outcome.verdict, failure.outcome.code) == (CrmVerdict.PERMANENT, "NOT_FOUND")


async def test_two_tasks_with_the_call_id_are_permanent(
    state: State, base_url: str, client: httpx.AsyncClient
) -> None:
    state.add_task(**{EXT: CALL_ID})
    state.add_task(**{EXT: CALL_ID})
    failure = await failure_of(connect(base_url, client), a_call())
    assert (failure.outcome.verdict, failure.outcome.status_code) == (CrmVerdict.PERMANENT, 300)
    assert all(task_id in failure.outcome.message for task_id in state.tasks)  # where to look
    assert len(state.tasks) == 2


async def test_contact_cache_saves_the_second_search(
    state: State, base_url: str, client: httpx.AsyncClient
) -> None:
    contact = state.add_contact(phone="415-555-0123")
    cache = ContactCache()
    await connect(base_url, client, contacts=cache).sync(a_call(), None)
    record = await connect(base_url, client, contacts=cache).sync(a_call(id="call_other"), None)
    assert record.extra == {"contact_id": contact["Id"]}
    assert state.count("GET", "/search") == 1
    assert cache.get(CUSTOMER) == (True, contact["Id"])


async def test_a_miss_is_cached_too(state: State, base_url: str, client: httpx.AsyncClient) -> None:
    cache = ContactCache()
    await connect(base_url, client, contacts=cache).sync(a_call(), None)
    await connect(base_url, client, contacts=cache).sync(a_call(id="call_other"), None)
    assert state.count("GET", "/search") == 1
    assert cache.get(CUSTOMER) == (True, None)


async def test_a_cached_contact_deleted_since_does_not_cost_the_call(
    state: State, base_url: str, client: httpx.AsyncClient
) -> None:
    contact = state.add_contact(phone=CUSTOMER)
    cache = ContactCache()
    await connect(base_url, client, contacts=cache).sync(a_call(), None)
    del state.contacts[contact["Id"]]

    record = await connect(base_url, client, contacts=cache).sync(a_call(id="call_other"), None)

    assert record.extra == {"contact_id": None}
    assert "WhoId" not in state.tasks[record.record_id]
    assert cache.get(CUSTOMER) == (True, None)


async def test_server_errors_and_network_errors_retry(
    state: State, base_url: str, client: httpx.AsyncClient
) -> None:
    state.inject(503, error("SERVER_UNAVAILABLE", "down"), path_contains="/sobjects/")
    failure = await failure_of(connect(base_url, client), a_call())
    assert failure.outcome.verdict is CrmVerdict.RETRY

    async with httpx.AsyncClient(timeout=2) as http:
        closed = connect("http://127.0.0.1:9", http)  # the discard port: nothing listens there
        failure = await failure_of(closed, a_call())
    assert (failure.outcome.verdict, failure.outcome.code) == (CrmVerdict.RETRY, "network")
    assert TOKEN not in failure.outcome.message


async def test_garbage_behind_a_2xx_is_retried(
    state: State, base_url: str, client: httpx.AsyncClient
) -> None:
    state.inject(200, b"<html>proxy</html>", path_contains=f"/{EXT}/")
    failure = await failure_of(connect(base_url, client, match_contacts=False), a_call())
    assert (failure.outcome.verdict, failure.outcome.code) == (CrmVerdict.RETRY, "bad_response")
    state.inject(200, b"<html>proxy</html>", path_contains="/search")
    failure = await failure_of(connect(base_url, client), a_call())
    assert (failure.outcome.verdict, failure.outcome.code) == (CrmVerdict.RETRY, "bad_response")


async def test_test_describes_task(state: State, base_url: str, client: httpx.AsyncClient) -> None:
    await connect(base_url, client).test()
    assert state.count("GET", "/sobjects/Task/describe") == 1

    await by_client_credentials(base_url, client).test()
    assert state.issued == 1


async def test_test_fails_visibly(state: State, base_url: str, client: httpx.AsyncClient) -> None:
    with pytest.raises(CrmFailure) as caught:
        await connect(base_url, client, external_id_field="Gateway_Call_Id__c").test()
    assert caught.value.outcome.verdict is CrmVerdict.PERMANENT
    assert "Gateway_Call_Id__c" in caught.value.outcome.message

    state.expire_tokens()
    with pytest.raises(CrmFailure) as caught:
        await connect(base_url, client).test()
    assert caught.value.outcome.verdict is CrmVerdict.AUTH_FAILED
    assert TOKEN not in str(caught.value)


async def test_double_checks_what_salesforce_checks(
    state: State, base_url: str, client: httpx.AsyncClient
) -> None:
    """The double's own answers, so a connector bug cannot hide behind a lenient fake."""
    auth = {"authorization": f"Bearer {TOKEN}"}
    api = f"{base_url}/services/data/v62.0"
    created = await client.post(
        f"{api}/sobjects/Task/", json={"Subject": "x", "CallType": "inbound"}, headers=auth
    )
    assert created.status_code == 400
    assert created.json()[0]["errorCode"] == "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"
    created = await client.post(
        f"{api}/sobjects/Task/", json={"Subject": "x", "TaskSubtype": "Call"}, headers=auth
    )
    assert (created.status_code, set(created.json())) == (201, {"id", "success", "errors"})
    upsert = f"{api}/sobjects/Task/{EXT}/c1"
    first = await client.patch(upsert, json={"Subject": "x", "TaskSubtype": "Call"}, headers=auth)
    assert (first.status_code, first.json()["created"]) == (201, True)
    again = await client.patch(upsert, json={"Subject": "x", "TaskSubtype": "Call"}, headers=auth)
    assert again.json()[0]["errorCode"] == "INVALID_FIELD_FOR_INSERT_UPDATE"
    updated = await client.patch(upsert, json={"Subject": "y"}, headers=auth)
    assert (updated.status_code, updated.json()["created"]) == (200, False)
    unknown = await client.patch(f"{api}/sobjects/Task/Nope__c/c1", json={"Subject": "y"}, headers=auth)
    assert (unknown.status_code, unknown.json()[0]["errorCode"]) == (404, "NOT_FOUND")
    bare = await client.get(
        f"{api}/search/",
        params={"q": "FIND {+14155550123} IN PHONE FIELDS RETURNING Contact(Id)"},
        headers=auth,
    )
    assert bare.json()[0]["errorCode"] == "MALFORMED_SEARCH"  # an unescaped reserved character
    soql = await client.get(
        f"{api}/query/",
        params={"q": "SELECT Id, Subject FROM Task WHERE Callgate_Call_Id__c = 'c1'"},
        headers=auth,
    )
    assert soql.json()["totalSize"] == 1
    assert soql.json()["records"][0]["Subject"] == "y"
    assert all(
        "sforce-limit-info" in r.headers for r in (created, first, again, updated, unknown, bare, soql)
    )


async def test_double_demo_routes(state: State, base_url: str, client: httpx.AsyncClient) -> None:
    seeded = await client.post(
        f"{base_url}/__double__/contacts", json={"Phone": CUSTOMER, "LastName": "Lovelace"}
    )
    assert seeded.status_code == 201
    await connect(base_url, client).sync(a_call(), None)
    dump = (await client.get(f"{base_url}/__double__/state")).json()
    assert dump["tasks"][0]["WhoId"] == seeded.json()["Id"]
    assert dump["contacts"][0]["Phone"] == CUSTOMER
