"""The one call model and its monotonic state machine. Pure code: no I/O, no clock.

A stored call is a ``CallState``: the public fields (``data``) plus the bookkeeping that makes merging
order-independent (``stamps``). Every vendor event is turned by its adapter into ``CallUpdate``s, and
``merge(state, update, stamp)`` folds one update into the state. The fold is a join: any permutation of a
call's events, with duplicates mixed in, gives the same state.

The rules (``docs/call-model.md`` has the long form):

* ``status`` climbs by rank (queued < initiating < ringing < in_progress < terminal) and never comes down.
* Among terminal statuses the *first* one sticks, where "first" is the earliest by the vendor's event time
  (ties: failed > busy = no_answer > canceled > completed). Reading "first" as "first to arrive" would make
  the result depend on arrival order, which the contract also forbids. The runner-up, if it is a different
  terminal status, is kept as ``vendor_extra.conflicting_status``.
* Every other field is last-writer-wins by the vendor's event time, so a late (older) event only fills
  fields that are still empty, and a newer one corrects them. Dict fields (recording, grade, survey,
  qualification, billing, vendor_extra) and ``issues`` merge key by key.
* A duplicate (same event, same stamp) never changes anything.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

JSON = dict[str, Any]


class Status(StrEnum):
    QUEUED = "queued"
    INITIATING = "initiating"
    RINGING = "ringing"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    FAILED = "failed"
    NO_ANSWER = "no_answer"
    BUSY = "busy"
    CANCELED = "canceled"


class Direction(StrEnum):
    INBOUND = "inbound"
    OUTBOUND = "outbound"
    WEB = "web"
    UNKNOWN = "unknown"


TERMINAL: frozenset[Status] = frozenset(
    {Status.COMPLETED, Status.FAILED, Status.NO_ANSWER, Status.BUSY, Status.CANCELED}
)
RANK: Mapping[Status, int] = {
    Status.QUEUED: 0,
    Status.INITIATING: 1,
    Status.RINGING: 2,
    Status.IN_PROGRESS: 3,
    **{s: 4 for s in TERMINAL},
}
# Tie-break between terminal statuses reported at the same instant: the more specific failure wins.
TERMINAL_PRECEDENCE: Mapping[Status, int] = {
    Status.FAILED: 0,
    Status.BUSY: 1,
    Status.NO_ANSWER: 1,
    Status.CANCELED: 2,
    Status.COMPLETED: 3,
}


class EventType(StrEnum):
    """Event types delivered to subscribers (architecture.md, "Event types")."""

    QUEUED = "call.queued"
    INITIATING = "call.initiating"
    RINGING = "call.ringing"
    IN_PROGRESS = "call.in_progress"
    COMPLETED = "call.completed"
    FAILED = "call.failed"
    NO_ANSWER = "call.no_answer"
    BUSY = "call.busy"
    CANCELED = "call.canceled"
    TRANSCRIPT_READY = "call.transcript_ready"
    RECORDING_READY = "call.recording_ready"
    GRADED = "call.graded"
    SURVEY_COMPLETED = "call.survey_completed"
    QUALIFIED = "call.qualified"
    ISSUE_REPORTED = "call.issue_reported"
    UPDATED = "call.updated"


STATUS_EVENT: Mapping[Status, EventType] = {s: EventType(f"call.{s.value}") for s in Status}

# Scalar fields: last writer (by vendor event time) wins.
SCALAR_FIELDS: frozenset[str] = frozenset(
    {
        "vendor_session_id",
        "campaign_id",
        "agent_id",
        "contact_ref",
        "user_email",
        "direction",
        "from_number",
        "to_number",
        "started_at",
        "answered_at",
        "ended_at",
        "duration_seconds",
        "talk_time_seconds",
        "end_reason",
        "outcome",
        "transcript",
        "is_test",
    }
)
# Dict fields: merged key by key, each key last-writer-wins.
DICT_FIELDS: frozenset[str] = frozenset(
    {"recording", "grade", "survey", "qualification", "billing", "vendor_extra"}
)
# List of objects with an ``id``: merged by id.
KEYED_LIST_FIELDS: frozenset[str] = frozenset({"issues"})
UPDATABLE_FIELDS: frozenset[str] = SCALAR_FIELDS | DICT_FIELDS | KEYED_LIST_FIELDS


@dataclass(frozen=True, slots=True)
class Stamp:
    """Orders the writes of one call: the vendor's event time, then the event's dedupe key.

    ``at`` is an ISO-8601 UTC string (``format_ts``) or ``""`` when the vendor gave no time; an event
    without a time is the weakest writer and the latest "first terminal".
    """

    at: str
    key: str

    def lww(self) -> tuple[str, str]:
        return (self.at, self.key)

    def first(self) -> tuple[str, str]:
        return (self.at or "~", self.key)


@dataclass(frozen=True, slots=True)
class CallUpdate:
    """What one vendor event says about one call. Produced by adapters, consumed by ``merge``.

    ``vendor_call_id`` names the call to create or update. When it is ``None`` the update only applies to
    a call already known by ``link_alias`` (LiveKit room events), and is kept for later otherwise.
    ``aliases`` are other keys this call is known by (e.g. ``room:RM_…``).
    """

    vendor_call_id: str | None = None
    link_alias: str | None = None
    aliases: tuple[str, ...] = ()
    status: Status | None = None
    fields: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        unknown = set(self.fields) - UPDATABLE_FIELDS
        if unknown:
            raise ValueError(f"not call fields: {sorted(unknown)}")
        if self.vendor_call_id is None and self.link_alias is None:
            raise ValueError("a call update needs a vendor_call_id or a link_alias")


@dataclass(slots=True)
class CallState:
    """The mergeable content of one call: public ``data`` and per-field ``stamps``."""

    data: JSON = field(default_factory=dict)
    stamps: JSON = field(default_factory=dict)

    def copy(self) -> CallState:
        """Shallow on purpose: merging replaces nested values (new dicts, new lists), never edits them."""
        return CallState(data=dict(self.data), stamps=dict(self.stamps))


@dataclass(frozen=True, slots=True)
class MergeResult:
    state: CallState
    changed: tuple[str, ...]
    types: tuple[EventType, ...]
    previous_status: Status | None


def format_ts(value: datetime) -> str:
    """Canonical UTC text for a datetime: fixed width, so strings sort like instants."""
    if value.tzinfo is None:
        raise ValueError("naive datetime: every time in callgate is UTC-aware")
    # isoformat pads the year to four digits (strftime's %Y does not, below 1000 on glibc)
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def parse_ts(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _canon(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def _wins(new: tuple[str, str], new_value: Any, old: list[str] | None, old_value: Any) -> bool:
    """Last-writer-wins with a total order: stamp, then the value itself (equal stamps, other value)."""
    if old is None:
        return True
    old_t = (old[0], old[1])
    if new != old_t:
        return new > old_t
    return _canon(new_value) > _canon(old_value)


def _set_scalar(state: CallState, name: str, value: Any, stamp: Stamp) -> None:
    if value is None or (name == "direction" and value == Direction.UNKNOWN):
        return
    if _wins(stamp.lww(), value, state.stamps.get(name), state.data.get(name)):
        state.data[name] = value
        state.stamps[name] = list(stamp.lww())


def _set_dict(state: CallState, name: str, value: Mapping[str, Any], stamp: Stamp) -> None:
    current: JSON = dict(state.data.get(name) or {})
    for key, sub in value.items():
        if sub is None:
            continue
        path = f"{name}.{key}"
        if _wins(stamp.lww(), sub, state.stamps.get(path), current.get(key)):
            current[key] = sub
            state.stamps[path] = list(stamp.lww())
    if current:
        state.data[name] = current


def _set_keyed_list(state: CallState, name: str, items: Iterable[Mapping[str, Any]], stamp: Stamp) -> None:
    by_id = {str(item["id"]): dict(item) for item in state.data.get(name) or []}
    for item in items:
        item_id = str(item["id"])
        path = f"{name}.{item_id}"
        if _wins(stamp.lww(), item, state.stamps.get(path), by_id.get(item_id)):
            by_id[item_id] = dict(item)
            state.stamps[path] = list(stamp.lww())
    if by_id:
        state.data[name] = [by_id[k] for k in sorted(by_id)]


def _merge_status(state: CallState, status: Status, stamp: Stamp) -> None:
    """Non-terminal: highest rank. Terminal: the two earliest distinct statuses, the first one applies."""
    if status in TERMINAL:
        candidates: dict[str, list[str]] = {s: list(k) for s, k in state.stamps.get("terminal", [])}
        key = list(stamp.first())
        old = candidates.get(status.value)
        if old is None or key < old:
            candidates[status.value] = key
        ranked = sorted(
            candidates.items(), key=lambda kv: (kv[1], TERMINAL_PRECEDENCE[Status(kv[0])], kv[0])
        )[:2]
        state.stamps["terminal"] = [[s, k] for s, k in ranked]
    else:
        best = state.stamps.get("progress")
        if best is None or RANK[status] > RANK[Status(best)]:
            state.stamps["progress"] = status.value


def _derive(state: CallState) -> None:
    """Fields computed from others: status from the status bookkeeping, durations from timestamps."""
    terminal = state.stamps.get("terminal") or []
    if terminal:
        state.data["status"] = terminal[0][0]
    elif "progress" in state.stamps:
        state.data["status"] = state.stamps["progress"]
    extra: JSON = dict(state.data.get("vendor_extra") or {})
    if len(terminal) > 1:
        extra["conflicting_status"] = terminal[1][0]
    else:
        extra.pop("conflicting_status", None)
    if extra:
        state.data["vendor_extra"] = extra
    else:
        state.data.pop("vendor_extra", None)

    def seconds(start: str | None, end: str | None) -> int | None:
        if not start or not end:
            return None
        delta = (parse_ts(end) - parse_ts(start)).total_seconds()
        return round(delta) if delta >= 0 else None

    data = state.data
    for name, start in (("duration_seconds", "started_at"), ("talk_time_seconds", "answered_at")):
        if name in state.stamps:
            continue  # the vendor said so; never overwrite it with our arithmetic
        derived = seconds(data.get(start), data.get("ended_at"))
        if derived is None:
            data.pop(name, None)
        else:
            data[name] = derived


def merge(state: CallState | None, update: CallUpdate, stamp: Stamp) -> MergeResult:
    """Fold one update into a call. Pure: returns a new state and what changed."""
    before = state if state is not None else CallState()  # read, never mutated
    after = before.copy()
    if update.status is not None:
        _merge_status(after, update.status, stamp)
    for name, value in update.fields.items():
        if name in DICT_FIELDS:
            _set_dict(after, name, value, stamp)
        elif name in KEYED_LIST_FIELDS:
            _set_keyed_list(after, name, value, stamp)
        else:
            _set_scalar(after, name, value, stamp)
    _derive(after)
    changed = tuple(
        sorted(k for k in before.data.keys() | after.data.keys() if before.data.get(k) != after.data.get(k))
    )
    previous = Status(before.data["status"]) if "status" in before.data else None
    return MergeResult(after, changed, event_types(before.data, after.data, changed), previous)


def event_types(before: JSON, after: JSON, changed: Iterable[str]) -> tuple[EventType, ...]:
    """Which subscriber event types one stored change emits (a change may emit several)."""
    changed = set(changed)
    types: list[EventType] = []
    if "status" in changed and "status" in after:
        types.append(STATUS_EVENT[Status(after["status"])])
    if "transcript" in changed and after.get("transcript"):
        types.append(EventType.TRANSCRIPT_READY)
    if "recording" in changed and (after.get("recording") or {}).get("available"):
        types.append(EventType.RECORDING_READY)
    grade = after.get("grade") or {}
    if "grade" in changed and (grade.get("score") is not None or grade.get("status") == "completed"):
        types.append(EventType.GRADED)  # a pending grade is no grade yet
    if "survey" in changed and (after.get("survey") or {}).get("state") == "completed":
        types.append(EventType.SURVEY_COMPLETED)
    if "qualification" in changed and (after.get("qualification") or {}).get("verdict"):
        before_verdict = (before.get("qualification") or {}).get("verdict")
        if before_verdict != after["qualification"]["verdict"]:
            types.append(EventType.QUALIFIED)
    if "issues" in changed:
        old_ids = {i["id"] for i in before.get("issues") or []}
        if any(i["id"] not in old_ids for i in after.get("issues") or []):
            types.append(EventType.ISSUE_REPORTED)
    if not types and changed:
        # A change none of the specific types describes. Fields that change along with a specific type
        # (ended_at with call.completed) travel in that event's ``changed`` list instead.
        types.append(EventType.UPDATED)
    return tuple(types)
