"""The shared pull helpers: status to outcome, ``Retry-After``, the size cap, windows, links and keys; and,
with hypothesis, the dedupe key of every vendor's bodies - stable under re-fetch, new when content changes
- and the order-independence of pulled bodies mixed with webhooks."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.errors import VendorAuthFailed, VendorError, VendorRetryLater
from gateway.pull import callsv1, graph8, livekit, voiceapi, voicecalls
from gateway.pull.base import (
    MAX_READABLE_KEY,
    Missing,
    Part,
    PulledEvent,
    RecordingLink,
    Window,
    event_key,
    retry_delay,
    segment,
)
from gateway.pull.http import Policy, get_json, retry_after, vendor_error
from tests.pull.converge import fixture, fixture_json, fold, parse

T0 = datetime(2026, 5, 25, 15, 0, tzinfo=UTC)
POLICY = Policy("test", backoff=(1.0, 2.0), throttle_seconds=7.0, max_bytes=1000)


def reply(status: int, body: bytes = b"{}", **headers: str) -> httpx.AsyncClient:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, content=body, headers=headers)

    return httpx.AsyncClient(transport=httpx.MockTransport(handler))


# --- status to outcome --------------------------------------------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("status", "headers", "expected"),
    [
        (401, {}, VendorAuthFailed),
        (403, {}, VendorAuthFailed),
        (429, {"retry-after": "3"}, VendorRetryLater),
        (502, {}, VendorRetryLater),
        (302, {"location": "http://169.254.169.254/"}, VendorError),
        (400, {}, VendorError),
    ],
)
async def test_status_to_outcome(status: int, headers: dict[str, str], expected: type[Exception]) -> None:
    async with reply(status, b'{"error": {"code": "x", "message": "m", "field": "f"}}', **headers) as http:
        with pytest.raises(expected) as raised:
            await get_json(http, "http://vendor.test/x", POLICY, "thing", headers={})
    error = raised.value
    assert isinstance(error, VendorError)
    assert error.vendor_status == status
    if status == 429:
        assert isinstance(error, VendorRetryLater)
        assert retry_delay(error) == 3.0
    if status == 502:
        assert isinstance(error, VendorRetryLater)
        assert [retry_delay(error, n) for n in range(3)] == [
            1.0,
            2.0,
            2.0,
        ]
    if status == 400:
        assert error.field == "f"
        assert not isinstance(error, VendorRetryLater)


@pytest.mark.anyio
async def test_404_is_missing_and_a_429_without_a_wait_uses_the_policy() -> None:
    async with reply(404, b'{"detail": "gone"}') as http:
        missing = await get_json(http, "http://vendor.test/x", POLICY, "thing", headers={})
    assert isinstance(missing, Missing)
    assert "gone" in missing.reason
    async with reply(429) as http:
        with pytest.raises(VendorRetryLater) as throttled:
            await get_json(http, "http://vendor.test/x", POLICY, "thing", headers={})
    assert throttled.value.retry_after == 7.0


@pytest.mark.anyio
async def test_an_oversized_or_non_json_answer_is_an_error() -> None:
    async with reply(200, b"[" + b"1," * 600 + b"1]") as http:
        with pytest.raises(VendorError, match="more than 1000 bytes"):
            await get_json(http, "http://vendor.test/x", POLICY, "thing", headers={})
    async with reply(200, b"<html>") as http:
        with pytest.raises(VendorError, match="not JSON"):
            await get_json(http, "http://vendor.test/x", POLICY, "thing", headers={})


@pytest.mark.anyio
async def test_an_unreachable_vendor_is_a_retry_on_the_back_off() -> None:
    async with httpx.AsyncClient(timeout=2) as http:
        with pytest.raises(VendorRetryLater) as unreachable:
            await get_json(http, "http://127.0.0.1:9/x", POLICY, "thing", headers={})  # discard port: refused
    assert unreachable.value.retry_after is None
    assert unreachable.value.backoff == (1.0, 2.0)


def test_retry_after_reads_seconds_and_dates_against_the_answers_date() -> None:
    assert retry_after(httpx.Headers({"retry-after": "120"})) == 120.0
    dated = {"retry-after": "Mon, 25 May 2026 15:01:30 GMT", "date": "Mon, 25 May 2026 15:00:00 GMT"}
    assert retry_after(httpx.Headers(dated)) == 90.0
    assert retry_after(httpx.Headers({"retry-after": "Mon, 25 May 2026 15:01:30 GMT"})) is None  # no Date
    assert retry_after(httpx.Headers({"retry-after": "soon"})) is None
    assert retry_after(httpx.Headers()) is None


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            b'{"error": {"code": "rate_limited", "message": "m", "field": "f", "request_id": "req_1"}}',
            ("rate_limited", "m", "f", "req_1"),
        ),
        (b'{"code": "not_found", "msg": "no such room"}', ("not_found", "no such room", None, None)),
        (b'{"title": "Not Found", "status": 404, "traceId": "00-ab"}', (None, "Not Found", None, "00-ab")),
        (b"plain text", (None, "plain text", None, None)),
        (b"[1]", (None, None, None, None)),
    ],
)  # fmt: skip
def test_every_error_envelope_is_read(body: bytes, expected: tuple[str | None, ...]) -> None:
    assert vendor_error(body) == expected


# --- windows, links, keys -----------------------------------------------------------------------------------


def test_windows_are_aware_and_ordered() -> None:
    assert Window.last(timedelta(hours=6), T0).bounds() == ("2026-05-25T09:00:00Z", "2026-05-25T15:00:00Z")
    with pytest.raises(ValueError, match="aware"):
        Window(datetime(2026, 5, 25), T0)
    with pytest.raises(ValueError, match="end before"):
        Window(T0, T0 - timedelta(seconds=1))


def test_a_link_is_fresh_only_before_its_margin() -> None:
    link = RecordingLink("https://blob.test/a.wav?sig=secret", T0 + timedelta(minutes=15))
    assert link.fresh(T0)
    assert not link.fresh(T0 + timedelta(minutes=14, seconds=30))
    assert not RecordingLink("https://blob.test/b", None).fresh(T0)
    assert "secret" not in repr(link)


def test_keys_fit_the_gateways_column_and_segments_stay_segments() -> None:
    long_room = "rm_" + "x" * 290
    key = event_key(Part.TRANSCRIPT, long_room, {"a": 1})
    assert len(key) <= MAX_READABLE_KEY
    assert key.startswith("pull:transcript:")
    assert key != event_key(Part.TRANSCRIPT, long_room + "y", {"a": 1})  # the digest covers the id
    assert segment("a/b?c#d") == "a%2Fb%3Fc%23d"
    assert segment("..") == "%2E%2E"
    assert segment(88123) == "88123"


# --- dedupe keys, by property -------------------------------------------------------------------------------

words = st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), max_size=20)
lines = st.lists(st.tuples(st.sampled_from(["agent", "customer"]), words), min_size=1, max_size=5)
later = st.integers(min_value=1, max_value=10**6)


def reordered(value: Any) -> Any:
    """The same JSON with every object's keys in reverse order: what a re-fetch may well return."""
    if isinstance(value, dict):
        return {k: reordered(value[k]) for k in reversed(list(value))}
    if isinstance(value, list):
        return [reordered(v) for v in value]
    return value


def changed(items: list[dict[str, Any]], field: str) -> list[dict[str, Any]]:
    return [{**items[0], field: f"{items[0][field]}!"}, *items[1:]]


def keys_behave(build: Any, content: Any, edited: Any, seconds: int) -> None:
    """``build(content, observed_at)``: the same content observed later (and reordered) is the same
    event; edited content is another one. Every body parses to the announced key."""
    first: PulledEvent = build(content, T0)
    refetched: PulledEvent = build(reordered(content), T0 + timedelta(seconds=seconds))
    edit: PulledEvent = build(edited, T0)
    for event in (first, refetched, edit):
        parse(event)
    assert first.event_key == refetched.event_key != edit.event_key


@settings(max_examples=40, deadline=None)
@given(lines, later)
def test_graph8_transcript_keys(spoken: list[tuple[str, str]], seconds: int) -> None:
    rows = [
        {"speaker": s, "text": t, "timestamp": f"2026-05-25T14:3{i}:00Z"} for i, (s, t) in enumerate(spoken)
    ]

    def build(block: list[dict[str, Any]], at: datetime) -> PulledEvent:
        transcript = {"status": "ready", "transcript": block}
        return graph8.transcript_event(
            "rm_1", transcript, org_id="org_1", observed_at=at, started_at="2026-05-25T14:30:00Z"
        )

    keys_behave(build, rows, changed(rows, "text"), seconds)


@settings(max_examples=40, deadline=None)
@given(words, st.sampled_from(["info", "warning", "critical"]), later)
def test_callsv1_issue_keys(title: str, severity: str, seconds: int) -> None:
    report = {"id": "ir_1", "title": title or "t", "severity": severity}
    call = {"call_id": 5, "issue_count": 1, "critical_issue_count": 0}

    def build(found: dict[str, Any], at: datetime) -> PulledEvent:
        return callsv1.issue_events(call, [found], observed_at=at)[0]

    keys_behave(build, report, {**report, "description": "more"}, seconds)
    other_counts = callsv1.issue_events({**call, "issue_count": 2}, [report], observed_at=T0)[0]
    assert other_counts.event_key == build(report, T0).event_key  # a report seen before stays a duplicate


@settings(max_examples=40, deadline=None)
@given(st.floats(min_value=0, max_value=100, allow_nan=False), st.integers(0, 5), later)
def test_voicecalls_survey_keys(score: float, answered: int, seconds: int) -> None:
    epa = {"state": "Completed", "totalQuestions": 5, "questionsAnswered": answered, "calculatedScore": score}

    def build(results: dict[str, Any], at: datetime) -> PulledEvent:
        return voicecalls.epa_event("vc_1", results, observed_at=at)

    keys_behave(build, epa, {**epa, "questionsAnswered": answered + 1}, seconds)


@settings(max_examples=40, deadline=None)
@given(st.sampled_from(["completed", "failed", "no_answer", "in_progress", "ringing"]), st.integers(1, 600))
def test_voiceapi_session_keys(status: str, duration: int) -> None:
    session = {
        "session_id": "vs_1",
        "status": status,
        "agent_id": "agt",
        "started_at": "2026-05-25T14:30:00Z",
        "ended_at": "2026-05-25T14:40:00Z",
        "duration": duration,
    }
    first = [e.event_key for e in voiceapi.session_events(session)]
    assert first == [e.event_key for e in voiceapi.session_events(reordered(session))]
    assert len(set(first)) == len(first)  # one key per lifecycle event
    assert [parse(e).event_key for e in voiceapi.session_events(session)] == first
    longer = [e.event_key for e in voiceapi.session_events({**session, "duration": duration + 1})]
    assert (longer == first) == (status not in voiceapi.TERMINAL)  # only a terminal event carries it


@settings(max_examples=40, deadline=None)
@given(st.sampled_from(["dialing", "ringing", "active"]), later)
def test_livekit_snapshot_keys(call_status: str, seconds: int) -> None:
    joined = fixture_json("livekit", "participant_joined_sip_inbound")
    participant = {
        **joined["participant"],
        "attributes": {**joined["participant"]["attributes"], "sip.callStatus": call_status},
    }

    def build(p: dict[str, Any], at: datetime) -> PulledEvent:
        event = livekit.participant_event(joined["room"], {**p, "version": seconds}, observed_at=at)
        assert event is not None
        return event

    moved = {**participant, "attributes": {**participant["attributes"], "sip.callStatus": "hangup"}}
    keys_behave(build, participant, moved, seconds)


# --- order and duplicates -----------------------------------------------------------------------------------

GRAPH8_STREAM = [
    "call_initiating",
    "call_ringing",
    "call_in_progress",
    "call_completed",
    "call_transcript_ready",
    "call_graded",
]


def graph8_pulled() -> list[bytes]:
    done = fixture_json("graph8", "call_completed")["data"]
    transcript = fixture_json("graph8", "call_transcript_ready")["data"]["transcript"]
    grading = fixture_json("graph8", "call_graded")["data"]["grading"]
    room = done["room_name"]
    return [
        graph8.call_event(done, org_id="org_123", observed_at=T0).body,
        graph8.transcript_event(
            room, transcript, org_id="org_123", observed_at=T0, started_at=done["started_at"]
        ).body,
        graph8.grading_event(room, grading, org_id="org_123", observed_at=T0 + timedelta(minutes=5)).body,
    ]


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_pulled_and_webhook_bodies_converge_in_any_order_with_duplicates(data: st.DataObject) -> None:
    bodies = [fixture("graph8", n) for n in GRAPH8_STREAM] + graph8_pulled()
    expected = fold("graph8", bodies)
    shuffled = data.draw(st.permutations(bodies))
    repeats = data.draw(st.lists(st.sampled_from(bodies), max_size=4))
    assert fold("graph8", [*shuffled, *repeats]) == expected
    assert json.loads(graph8_pulled()[0])["id"] == json.loads(graph8_pulled()[0])["id"]  # deterministic
