"""``gateway.storable`` and ``gateway.when``: properties over any input a sender can write."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway import storable, when

ANY_TEXT = st.text(st.characters(codec=None, exclude_categories=()), max_size=20)
JSON_LIKE = st.recursive(
    st.one_of(
        ANY_TEXT, st.integers(), st.floats(allow_nan=True, allow_infinity=True), st.booleans(), st.none()
    ),
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(ANY_TEXT, inner, max_size=4)),
    max_leaves=20,
)


@given(JSON_LIKE)
def test_a_document_comes_out_storable_and_stays_so(value: Any) -> None:
    clean, repaired = storable.document(value)
    encoded = json.dumps(clean, ensure_ascii=False, allow_nan=False)  # strict: raises on NaN
    encoded.encode("utf-8")  # raises on a lone surrogate
    assert "\x00" not in encoded.replace("\\u0000", "")
    assert "\\u0000" not in json.dumps(clean)  # no NUL in any string or key
    again, more = storable.document(clean)
    assert again == clean or _has_nan(clean)
    assert more == []  # idempotent: a repaired document needs nothing more
    if not repaired:
        assert clean is value  # nothing built when nothing needed repair


def _has_nan(value: Any) -> bool:
    return isinstance(value, float) and math.isnan(value)


@given(ANY_TEXT)
def test_text_replaces_only_what_cannot_be_stored(value: str) -> None:
    clean = storable.text(value)
    clean.encode("utf-8")
    assert "\x00" not in clean
    assert len(clean) <= len(value)  # a surrogate pair may become one character, never more
    if "\x00" not in value and not any(0xD800 <= ord(c) <= 0xDFFF for c in value):
        assert clean is value


def test_nesting_past_the_limit_is_refused_at_the_limit() -> None:
    ok: Any = 1
    for _ in range(storable.MAX_DEPTH):
        ok = [ok]
    assert storable.document(ok)[0] is ok
    with pytest.raises(storable.TooDeep):
        storable.document([ok])


@given(st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.just(UTC)))
def test_every_time_in_range_round_trips_through_its_text(value: datetime) -> None:
    from gateway.model import format_ts, parse_ts

    text = format_ts(value)
    assert len(text) == len("2026-01-01T00:00:00.000000Z")  # fixed width: strings sort like instants
    assert parse_ts(text) == value
    assert when.parse_time(text) == value


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2026-11-22T10:00:00Z", datetime(2026, 11, 22, 10, tzinfo=UTC)),
        ("2026-11-22 10:00:00", datetime(2026, 11, 22, 10, tzinfo=UTC)),
        ("2026-11-22T11:00:00+01:00", datetime(2026, 11, 22, 10, tzinfo=UTC)),
        ("1763805600", datetime(2025, 11, 22, 10, tzinfo=UTC)),
        ("1763805600000", datetime(2025, 11, 22, 10, tzinfo=UTC)),
        (1763805600.5, datetime(2025, 11, 22, 10, 0, 0, 500000, tzinfo=UTC)),
    ],
)
def test_the_forms_vendors_write_are_read(raw: Any, expected: datetime) -> None:
    assert when.parse_time(raw) == expected


@pytest.mark.parametrize(
    "raw",
    ["x", "", "0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-14:00", "1e400", "nan", "99999999999999999"],
)
def test_times_outside_what_is_kept_are_refused(raw: str) -> None:
    with pytest.raises(ValueError, match=r"must be|out of range"):
        when.parse_when(raw, datetime(2026, 11, 22, tzinfo=UTC))


def test_ages_count_back_from_now() -> None:
    now = datetime(2026, 11, 22, 12, tzinfo=UTC)
    assert when.parse_when("6h", now) == datetime(2026, 11, 22, 6, tzinfo=UTC)
    assert when.parse_when("90m", now) == datetime(2026, 11, 22, 10, 30, tzinfo=UTC)
    assert when.parse_when("2w", now) == datetime(2026, 11, 8, 12, tzinfo=UTC)
