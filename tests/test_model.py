"""The state machine: rank order, first terminal by event time, last-writer-wins, and convergence."""

from __future__ import annotations

import itertools
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.model import (
    RANK,
    TERMINAL,
    CallState,
    CallUpdate,
    EventType,
    Stamp,
    Status,
    merge,
)


def fold(events: list[tuple[CallUpdate, Stamp]]) -> CallState:
    state: CallState | None = None
    for update, stamp in events:
        state = merge(state, update, stamp).state
    assert state is not None
    return state


def at(second: int) -> str:
    return f"2026-05-25T14:{second // 60:02d}:{second % 60:02d}.000000Z"


def test_status_climbs_and_never_comes_down() -> None:
    ringing = (CallUpdate("c1", status=Status.RINGING), Stamp(at(2), "e2"))
    in_progress = (CallUpdate("c1", status=Status.IN_PROGRESS), Stamp(at(3), "e3"))
    initiating = (CallUpdate("c1", status=Status.INITIATING), Stamp(at(1), "e1"))
    state = fold([ringing, in_progress, initiating])
    assert state.data["status"] == "in_progress"


def test_first_terminal_by_event_time_sticks_and_the_other_is_kept() -> None:
    completed = (CallUpdate("c1", status=Status.COMPLETED), Stamp(at(10), "a"))
    failed = (CallUpdate("c1", status=Status.FAILED), Stamp(at(12), "b"))
    for order in ([completed, failed], [failed, completed]):
        state = fold(order)
        assert state.data["status"] == "completed"
        assert state.data["vendor_extra"]["conflicting_status"] == "failed"


def test_terminal_tie_at_the_same_instant_prefers_the_specific_failure() -> None:
    completed = (CallUpdate("c1", status=Status.COMPLETED), Stamp(at(10), "z"))
    busy = (CallUpdate("c1", status=Status.BUSY), Stamp(at(10), "z"))
    assert fold([completed, busy]).data["status"] == "busy"
    assert fold([busy, completed]).data["status"] == "busy"


def test_late_event_fills_empty_fields_but_never_overwrites_newer_ones() -> None:
    late = CallUpdate("c1", status=Status.RINGING, fields={"from_number": "+1", "started_at": at(1)})
    newer = CallUpdate("c1", status=Status.COMPLETED, fields={"from_number": "+2", "ended_at": at(9)})
    state = fold([(newer, Stamp(at(9), "b")), (late, Stamp(at(1), "a"))])
    assert state.data["from_number"] == "+2"  # the newer event's value stays
    assert state.data["started_at"] == at(1)  # the empty field is filled
    assert state.data["status"] == "completed"
    assert state.data["duration_seconds"] == 8  # derived, since the vendor gave none


def test_vendor_duration_is_never_replaced_by_derived_arithmetic() -> None:
    update = CallUpdate("c1", fields={"started_at": at(0), "ended_at": at(100), "duration_seconds": 97})
    assert fold([(update, Stamp(at(100), "a"))]).data["duration_seconds"] == 97


def test_duplicate_changes_nothing() -> None:
    update = CallUpdate(
        "c1", status=Status.COMPLETED, fields={"outcome": "connected", "grade": {"score": 0.5}}
    )
    first = merge(None, update, Stamp(at(5), "e"))
    again = merge(first.state, update, Stamp(at(5), "e"))
    assert again.changed == ()
    assert again.types == ()
    assert again.state.data == first.state.data


def test_event_types_for_a_change() -> None:
    created = merge(None, CallUpdate("c1", status=Status.IN_PROGRESS), Stamp(at(1), "a"))
    assert created.types == (EventType.IN_PROGRESS,)
    done = merge(
        created.state,
        CallUpdate(
            "c1", status=Status.COMPLETED, fields={"ended_at": at(9), "recording": {"available": True}}
        ),
        Stamp(at(9), "b"),
    )
    assert set(done.types) == {EventType.COMPLETED, EventType.RECORDING_READY}
    assert {"status", "ended_at", "recording"} <= set(done.changed)
    assert done.previous_status == Status.IN_PROGRESS
    touched = merge(done.state, CallUpdate("c1", fields={"agent_id": "ag"}), Stamp(at(10), "c"))
    assert touched.types == (EventType.UPDATED,)


def test_issues_merge_by_id() -> None:
    one = CallUpdate("c1", fields={"issues": [{"id": "i1", "title": "echo", "severity": "warning"}]})
    two = CallUpdate("c1", fields={"issues": [{"id": "i2", "title": "drop", "severity": "critical"}]})
    first = merge(None, one, Stamp(at(1), "a"))
    second = merge(first.state, two, Stamp(at(2), "b"))
    assert [i["id"] for i in second.state.data["issues"]] == ["i1", "i2"]
    assert EventType.ISSUE_REPORTED in second.types


def test_update_refuses_unknown_fields_and_missing_keys() -> None:
    with pytest.raises(ValueError, match="not call fields"):
        CallUpdate("c1", fields={"colour": "blue"})
    with pytest.raises(ValueError, match="vendor_call_id or a link_alias"):
        CallUpdate()


# --- property: any permutation with duplicates converges ---------------------------------------------

statuses = st.sampled_from(list(Status))
values = st.one_of(st.none(), st.sampled_from(["+14155550100", "+14155550199", "x"]))
times = st.one_of(st.just(""), st.integers(0, 30).map(at))


@st.composite
def events(draw: st.DrawFn) -> list[tuple[CallUpdate, Stamp]]:
    count = draw(st.integers(1, 7))
    out = []
    for i in range(count):
        fields: dict[str, Any] = {}
        if draw(st.booleans()):
            fields["from_number"] = draw(values)
        if draw(st.booleans()):
            fields["ended_at"] = draw(st.integers(0, 30).map(at))
        if draw(st.booleans()):
            fields["started_at"] = draw(st.integers(0, 30).map(at))
        if draw(st.booleans()):
            fields["recording"] = {"available": True, "vendor_ref": draw(st.sampled_from(["r1", "r2"]))}
        if draw(st.booleans()):
            fields["issues"] = [
                {"id": draw(st.sampled_from(["i1", "i2"])), "title": draw(st.sampled_from(["a", "b"]))}
            ]
        if draw(st.booleans()):
            fields["vendor_extra"] = {"k": draw(st.integers(0, 3))}
        status = draw(st.one_of(st.none(), statuses))
        out.append((CallUpdate("c1", status=status, fields=fields), Stamp(draw(times), f"evt_{i}")))
    return out


@settings(max_examples=300, deadline=None)
@given(events(), st.randoms(use_true_random=False), st.lists(st.integers(0, 6), max_size=4))
def test_any_permutation_with_duplicates_converges(
    evs: list[tuple[CallUpdate, Stamp]], rnd: Any, dupes: list[int]
) -> None:
    reference = fold(evs)
    shuffled = evs + [evs[i % len(evs)] for i in dupes]
    rnd.shuffle(shuffled)
    state = fold(shuffled)
    assert state.data == reference.data
    assert state.stamps == reference.stamps


@settings(max_examples=200, deadline=None)
@given(events(), events())
def test_merge_never_mutates_its_input(
    first: list[tuple[CallUpdate, Stamp]], more: list[tuple[CallUpdate, Stamp]]
) -> None:
    state = fold(first)
    snapshot = json.dumps({"data": state.data, "stamps": state.stamps}, sort_keys=True)
    for update, stamp in more:
        merge(state, update, stamp)
    assert json.dumps({"data": state.data, "stamps": state.stamps}, sort_keys=True) == snapshot


@settings(max_examples=200, deadline=None)
@given(events())
def test_status_is_monotonic_along_any_order(evs: list[tuple[CallUpdate, Stamp]]) -> None:
    for order in itertools.islice(itertools.permutations(evs), 24):
        state: CallState | None = None
        rank = -1
        terminal_seen = False
        for update, stamp in order:
            state = merge(state, update, stamp).state
            status = state.data.get("status")
            if status is None:
                continue
            now = RANK[Status(status)]
            assert now >= rank, "status moved back down"
            rank = now
            terminal_seen = terminal_seen or Status(status) in TERMINAL
            if terminal_seen:
                assert Status(status) in TERMINAL
