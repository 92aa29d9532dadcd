"""The ingest unit of work on real SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import random
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Table, func, select

from gateway.store.db import Database
from gateway.store.tables import call_events, raw_events
from tests.store.helpers import call_rows, content, ingest_fixture, new_source

pytestmark = pytest.mark.anyio

SEQUENCES = {
    "graph8": [
        "call_initiating.json",
        "call_ringing.json",
        "call_in_progress.json",
        "call_completed.json",
        "call_transcript_ready.json",
        "call_graded.json",
    ],
    "voiceapi": [
        "call_initiating.json",
        "call_ringing.json",
        "call_in_progress.json",
        "call_completed.json",
    ],
    "callsv1": [
        "call_started.json",
        "call_ended.json",
        "call_transcript_ready.json",
        "call_graded.json",
        "issue_report_created.json",
    ],
    "qualifier": [
        "call_started.json",
        "call_ended.json",
        "agent_run_completed_qualified.json",
    ],
    "voicecalls": [
        "created.json",
        "updated_ringing.json",
        "updated_in_progress.json",
        "completed.json",
        "epa_completed.json",
    ],
    "livekit": [
        "participant_joined_sip_inbound.json",
        "participant_joined_agent.json",
        "track_published_sip.json",
        "egress_ended_recording.json",
        "participant_left_sip_inbound.json",
        "room_finished.json",
    ],
}


async def count(db: Database, table: Table, tenant_id: str) -> int:
    async with db.reading() as conn:
        query = select(func.count()).select_from(table).where(table.c.tenant_id == tenant_id)
        return int((await conn.execute(query)).scalar_one())


async def test_event_is_stored_with_call_and_timeline_and_a_duplicate_changes_nothing(db: Database) -> None:
    tenant, source = await new_source(db, "graph8")
    first = await ingest_fixture(db, tenant, source, "graph8", "call_completed.json")
    assert not first.duplicate
    assert first.changes[0].version == 1
    assert first.changes[0].types == ("call.completed",)
    before = await call_rows(db, tenant)
    again = await ingest_fixture(db, tenant, source, "graph8", "call_completed.json")
    assert again.duplicate
    assert again.raw_event_id == first.raw_event_id
    assert await call_rows(db, tenant) == before
    assert await count(db, raw_events, tenant) == 1
    assert await count(db, call_events, tenant) == 1
    (call,) = before
    assert call["status"] == "completed"
    assert call["from_number"] == "+14155551234"
    assert call["data"]["outcome"] == "meeting_booked"


async def test_version_counts_stored_changes(db: Database) -> None:
    tenant, source = await new_source(db, "graph8")
    versions = []
    for name in SEQUENCES["graph8"]:
        result = await ingest_fixture(db, tenant, source, "graph8", name)
        versions.append(result.changes[0].version)
    assert versions == sorted(versions)
    assert versions[0] == 1
    assert versions[-1] == len(SEQUENCES["graph8"])  # every event in this sequence changed something
    (call,) = await call_rows(db, tenant)
    assert call["version"] == versions[-1]
    assert call["data"]["transcript"][0]["speaker"] == "agent"
    assert call["data"]["grade"]["score"] == 0.82


async def test_livekit_room_event_waits_for_its_call_then_applies(db: Database) -> None:
    tenant, source = await new_source(db, "livekit")
    early = await ingest_fixture(db, tenant, source, "livekit", "egress_ended_recording.json")
    assert early.state == "pending_link"
    assert early.changes == ()
    assert await call_rows(db, tenant) == []
    joined = await ingest_fixture(db, tenant, source, "livekit", "participant_joined_sip_inbound.json")
    call_ids = {c.call_id for c in joined.changes}
    assert len(call_ids) == 1  # the pending recording was applied to the new call, in the same transaction
    (call,) = await call_rows(db, tenant)
    assert call["data"]["recording"]["url"] == "s3://recordings/calls/SCL_example.ogg"
    assert call["direction"] == "inbound"
    async with db.reading() as conn:
        states = (
            await conn.execute(select(raw_events.c.state).where(raw_events.c.tenant_id == tenant))
        ).all()
    assert sorted(s for (s,) in states) == ["applied", "applied"]


async def test_room_event_without_a_call_is_stored_and_never_creates_one(db: Database) -> None:
    tenant, source = await new_source(db, "livekit")
    result = await ingest_fixture(db, tenant, source, "livekit", "room_started_python_sdk.json")
    assert result.state == "pending_link"
    unknown = await ingest_fixture(db, tenant, source, "livekit", "unknown_event.json")
    assert unknown.state == "unknown_type"
    assert await call_rows(db, tenant) == []
    assert await count(db, raw_events, tenant) == 2


async def test_tenants_with_the_same_vendor_call_id_stay_apart(db: Database) -> None:
    tenant_a, source_a = await new_source(db, "voicecalls")
    tenant_b, source_b = await new_source(db, "voicecalls")
    await ingest_fixture(db, tenant_a, source_a, "voicecalls", "completed.json")
    await ingest_fixture(db, tenant_b, source_b, "voicecalls", "created.json")
    (a,) = await call_rows(db, tenant_a)
    (b,) = await call_rows(db, tenant_b)
    assert a["id"] != b["id"]
    assert (a["status"], b["status"]) == ("completed", "queued")


@pytest.mark.parametrize("vendor", sorted(SEQUENCES))
@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**32), dupes=st.lists(st.integers(0, 10), max_size=3))
def test_any_order_with_duplicates_stores_the_same_call(
    db_url: str, vendor: str, seed: int, dupes: list[int]
) -> None:
    names = SEQUENCES[vendor]
    shuffled = names + [names[i % len(names)] for i in dupes]
    random.Random(seed).shuffle(shuffled)

    async def run(order: list[str]) -> list[str]:
        db = Database(db_url)
        try:
            tenant, source = await new_source(db, vendor)
            for name in order:
                await ingest_fixture(db, tenant, source, vendor, name)
            return sorted(content(r) for r in await call_rows(db, tenant))
        finally:
            await db.dispose()

    assert asyncio.run(run(shuffled)) == asyncio.run(run(names))


async def final_call(db: Database, vendor: str) -> tuple[dict[str, Any], list[tuple[str, ...]]]:
    """Ingests the vendor's sequence in order; returns the stored call and the event types of each step."""
    tenant, source = await new_source(db, vendor)
    types = []
    for name in SEQUENCES[vendor]:
        result = await ingest_fixture(db, tenant, source, vendor, name)
        types.append(tuple(t for c in result.changes for t in c.types))
    (call,) = await call_rows(db, tenant)
    return call, types


async def test_voiceapi_session_lifecycle(db: Database) -> None:
    call, types = await final_call(db, "voiceapi")
    assert types == [
        ("call.initiating",),
        ("call.ringing",),
        ("call.in_progress",),
        ("call.completed", "call.recording_ready"),
    ]
    data = call["data"]
    assert call["vendor_call_id"] == "vs_7c1e4b"
    assert (data["started_at"], data["answered_at"], data["ended_at"]) == (
        "2026-05-25T14:30:00.000000Z",
        "2026-05-25T14:30:09.000000Z",
        "2026-05-25T14:34:21.000000Z",
    )
    assert data["duration_seconds"] == 252  # the vendor's, not derived
    assert data["talk_time_seconds"] == 252  # derived: answered -> ended
    assert data["recording"] == {"available": True, "vendor_ref": "rec_5d2f81"}
    assert data["end_reason"] == "agent_hangup"


async def test_callsv1_enrichment(db: Database) -> None:
    call, types = await final_call(db, "callsv1")
    assert types == [
        ("call.in_progress",),
        ("call.completed", "call.recording_ready"),  # a pending grade is not "graded"
        ("call.transcript_ready",),
        ("call.graded",),
        ("call.issue_reported",),
    ]
    data = call["data"]
    assert call["vendor_call_id"] == "88123"
    assert [s["speaker"] for s in data["transcript"]] == ["agent", "customer", "tool", "tool", "agent"]
    assert data["transcript"][1]["at"] == "2026-05-25T14:30:03.500000Z"
    assert data["grade"]["score"] == 0.86
    assert data["grade"]["status"] == "completed"
    assert data["grade"]["summary"].startswith("Resolved")
    assert data["billing"] == {
        "billable_minutes": 6,
        "total_cents": 84,
        "billed_at": "2026-05-25T14:35:20.000000Z",
    }
    assert data["issues"] == [
        {
            "id": "ir_551",
            "title": "Agent skipped address check",
            "severity": "warning",
            "description": "Policy requires confirming the shipping address.",
        }
    ]
    assert data["is_test"] is False
    assert data["vendor_extra"]["issue_count"] == 1


async def test_qualifier_verdict(db: Database) -> None:
    call, types = await final_call(db, "qualifier")
    assert types == [
        ("call.in_progress",),
        ("call.completed", "call.recording_ready"),
        ("call.transcript_ready", "call.qualified"),
    ]
    data = call["data"]
    assert data["outcome"] == "qualified"
    qualification = data["qualification"]
    assert qualification["verdict"] == "qualified"
    assert qualification["meeting"]["scheduled"] is True
    assert qualification["follow_up_reasons"] == ["budget_next_quarter"]
    assert data["contact_ref"] == "lead_9b42"
    assert data["transcript"][1] == {
        "speaker": "customer",
        "text": "Sure, a few minutes.",
        "start_ms": 4800,
        "at": "2026-05-25T14:30:04.800000Z",
    }


@pytest.mark.parametrize(
    ("vendor", "name", "status", "direction"),
    [
        ("callsv1", "call_ended_no_answer.json", "no_answer", "outbound"),
        ("callsv1", "call_ended_busy.json", "busy", "outbound"),
        ("callsv1", "mic_session_ended.json", "completed", "web"),
        ("voiceapi", "web_session_completed.json", "completed", "web"),
        ("voiceapi", "call_failed.json", "failed", "outbound"),
        ("qualifier", "agent_run_completed_no_answer.json", "no_answer", "outbound"),
    ],
)
async def test_refined_statuses_and_browser_sessions(
    db: Database, vendor: str, name: str, status: str, direction: str
) -> None:
    tenant, source = await new_source(db, vendor)
    await ingest_fixture(db, tenant, source, vendor, name)
    (call,) = await call_rows(db, tenant)
    assert (call["status"], call["direction"]) == (status, direction)
    if direction == "web":
        assert call["from_number"] is None
        assert call["to_number"] is None
