"""One contract, every registered adapter: fixtures parse to their reviewed golden output, parsing is
deterministic, and bad input of any kind is a PayloadError (400) - never another exception."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.registry import INBOUND
from gateway.errors import PayloadError
from tests.helpers import fixture_cases, fixture_headers, parsed_json

CASES = fixture_cases()
IDS = [f"{v}/{p.stem}" for v, p in CASES]


def test_every_registered_adapter_has_fixtures() -> None:
    assert {v for v, _ in CASES} == set(INBOUND)


def test_every_fixture_is_documented() -> None:
    readme = (Path(__file__).parents[1] / "fixtures" / "README.md").read_text()
    for vendor, path in CASES:
        assert f"{vendor}/{path.name}" in readme, (
            f"{vendor}/{path.name} has no provenance in fixtures/README.md"
        )


@pytest.mark.parametrize(("vendor", "path"), CASES, ids=IDS)
def test_fixture_parses_to_its_golden_output(vendor: str, path: Path) -> None:
    parsed = INBOUND[vendor].parse(fixture_headers(path), path.read_bytes())
    expected = json.loads(path.with_name(path.stem + ".expected.json").read_text())
    assert parsed_json(parsed) == expected


@pytest.mark.parametrize(("vendor", "path"), CASES, ids=IDS)
def test_parsing_is_deterministic(vendor: str, path: Path) -> None:
    body, headers = path.read_bytes(), fixture_headers(path)
    assert parsed_json(INBOUND[vendor].parse(headers, body)) == parsed_json(
        INBOUND[vendor].parse(headers, body)
    )


@pytest.mark.parametrize("vendor", sorted(INBOUND))
@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"   ",
        b"null",
        b"[]",
        b'"text"',
        b"42",
        b"{",
        b'{"a":',
        b"\xff\xfe\x00",
        b"{}",
        b'{"data": 5}',
        b"[" * 100_000,
    ],
)
def test_garbage_is_a_payload_error(vendor: str, body: bytes) -> None:
    with pytest.raises(PayloadError):
        INBOUND[vendor].parse({}, body)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix] if prefix else []
    if isinstance(value, dict):
        for k, v in value.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out += _paths(v, (*prefix, i))
    return out


def _set(doc: Any, path: tuple[Any, ...], value: Any) -> Any:
    doc = json.loads(json.dumps(doc))
    target = doc
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return doc


weird = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False),
    st.text(max_size=30),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=3),
    st.sampled_from(["", "1e400", "9" * 30, "2026-13-45T99:99:99Z", "00:99:00", "-5"]),
)


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_wrong_types_and_huge_numbers_never_escape(data: st.DataObject) -> None:
    vendor, path = data.draw(st.sampled_from(CASES))
    doc = json.loads(path.read_bytes())
    for _ in range(data.draw(st.integers(1, 3))):
        paths = _paths(doc)
        if not paths:
            break
        doc = _set(doc, data.draw(st.sampled_from(paths)), data.draw(weird))
    with contextlib.suppress(PayloadError):
        INBOUND[vendor].parse({}, json.dumps(doc).encode())


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_truncated_bodies_never_escape(data: st.DataObject) -> None:
    vendor, path = data.draw(st.sampled_from(CASES))
    body = path.read_bytes()
    cut = data.draw(st.integers(0, len(body) - 1))
    with contextlib.suppress(PayloadError):
        INBOUND[vendor].parse({}, body[:cut])


# Where each vendor's call object lives, and where its unmapped fields must reappear.
CALL_OBJECT = {
    "graph8": ("data",),
    "voiceapi": ("data",),
    "callsv1": ("call",),
    "qualifier": ("data", "call"),
    "voicecalls": ("data",),
    "livekit": ("participant", "attributes"),
}
CALL_FIXTURE = {
    "graph8": "call_completed.json",
    "voiceapi": "call_completed.json",
    "callsv1": "call_ended.json",
    "qualifier": "agent_run_completed_qualified.json",
    "voicecalls": "completed.json",
    "livekit": "participant_joined_sip_inbound.json",
}


@pytest.mark.parametrize("vendor", sorted(INBOUND))
def test_unknown_fields_are_kept_in_vendor_extra(vendor: str) -> None:
    from tests.helpers import FIXTURES

    doc = json.loads((FIXTURES / vendor / CALL_FIXTURE[vendor]).read_bytes())
    target = doc
    for key in CALL_OBJECT[vendor]:
        target = target[key]
    target["sip.x-future" if vendor == "livekit" else "futureField"] = "kept"
    parsed = INBOUND[vendor].parse({}, json.dumps(doc).encode())
    extra = parsed.updates[0].fields["vendor_extra"]
    assert "kept" in extra.values()


@pytest.mark.parametrize("vendor", sorted(INBOUND))
def test_event_key_falls_back_to_a_body_hash(vendor: str) -> None:
    from tests.helpers import FIXTURES

    doc = json.loads((FIXTURES / vendor / CALL_FIXTURE[vendor]).read_bytes())
    for key in ("id", "eventId", "event_id"):
        doc.pop(key, None)
    one = INBOUND[vendor].parse({}, json.dumps(doc).encode())
    two = INBOUND[vendor].parse({}, json.dumps(doc, indent=1).encode())
    assert one.event_key.startswith("sha256:")
    assert one.event_key != two.event_key  # different bytes, different key
