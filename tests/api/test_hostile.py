"""What a hostile or sloppy sender writes never breaks a tenant: each case of the hostile-input report,
kept as a regression test. Every accepted webhook must leave every route that shows it readable (strict
JSON, valid UTF-8); what cannot be stored is quarantined with a 400, never a 500.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from gateway.app import ADAPTERS
from tests.api.test_hooks import CASES
from tests.conftest import Gateway, make_settings, start_gateway
from tests.helpers import FIXTURES, source_headers

VENDORS = sorted(ADAPTERS)


@pytest.fixture
def gateway(db_url: str) -> Iterator[Gateway]:
    # loopback targets allowed so a subscription can match (nothing listens: deliveries just retry)
    settings = make_settings(db_url, allowed_target_cidrs=["127.0.0.0/8"])
    yield from start_gateway(settings)


def strict(text: str) -> Any:
    """JSON as a strict parser reads it: no NaN or Infinity, no lone surrogates."""

    def refuse(constant: str) -> Any:
        raise AssertionError(f"{constant} in a response")

    value = json.loads(text, parse_constant=refuse)
    text.encode("utf-8")  # a lone surrogate would make this raise
    return value


def read_everything(gateway: Gateway, headers: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """Every route that shows stored content, each 200 and strict: the tenant is not poisoned."""
    h = headers or gateway.headers
    client = gateway.client
    calls: list[dict[str, Any]] = []
    for path in ("/v1/calls", "/v1/sources", "/v1/subscriptions", "/v1/deliveries", "/v1/connections"):
        response = client.get(path, headers=h, params={"limit": 200})
        assert response.status_code == 200, (path, response.text)
        data = strict(response.text)["data"]
        if path == "/v1/calls":
            calls = data
        if path == "/v1/deliveries":
            for delivery in data:
                one = client.get(f"/v1/deliveries/{delivery['id']}", headers=h)
                assert one.status_code == 200, one.text
                strict(one.text)
                strict(json.dumps(one.json()["payload"], allow_nan=False))
    for call in calls:
        for path in (f"/v1/calls/{call['id']}", f"/v1/calls/{call['id']}/events"):
            response = client.get(path, headers=h)
            assert response.status_code == 200, (path, response.text)
            strict(response.text)
    return calls


def subscribe(gateway: Gateway) -> None:
    response = gateway.client.post(
        "/v1/subscriptions", json={"url": "http://127.0.0.1:9/hook"}, headers=gateway.headers
    )
    assert response.status_code == 201, response.text


def first_fixture(vendor: str) -> bytes:
    """The vendor's first fixture that makes a call."""
    return (FIXTURES / vendor / CASES[vendor][0]).read_bytes()


def every_dict(value: Any, change: Callable[[dict[str, Any]], None]) -> Any:
    if isinstance(value, dict):
        for item in value.values():
            every_dict(item, change)
        change(value)
    elif isinstance(value, list):
        for item in value:
            every_dict(item, change)
    return value


def every_string(value: Any, change: Callable[[str], str]) -> Any:
    if isinstance(value, dict):
        return {k: every_string(v, change) for k, v in value.items()}
    if isinstance(value, list):
        return [every_string(v, change) for v in value]
    return change(value) if isinstance(value, str) else value


def post(gateway: Gateway, source: dict[str, Any], body: bytes) -> Any:
    response = gateway.post_hook(source, body, source_headers(source, body))
    assert response.status_code < 500, response.text
    return response


# --- 1. lone surrogates, escaped and as raw bytes; 7. NaN and Infinity; NUL -------------------------------


def _surrogates_escaped(doc: Any) -> bytes:
    return json.dumps(every_string(doc, lambda s: s + "\ud800")).encode()


def _surrogates_raw(doc: Any) -> bytes:
    text = json.dumps(every_string(doc, lambda s: s + "\ud800"), ensure_ascii=False)
    return text.encode("utf-8", "surrogatepass")  # the bytes ED A0 80 inside each string


def _nul(doc: Any) -> bytes:
    return json.dumps(every_string(doc, lambda s: s + "\x00")).encode()


def _non_finite(doc: Any) -> bytes:
    def add(d: dict[str, Any]) -> None:
        d["x_nan"], d["x_inf"] = float("nan"), float("-inf")

    return json.dumps(every_dict(doc, add)).encode()  # Python writes the bare NaN / -Infinity


MUTATIONS: dict[str, Callable[[Any], bytes]] = {
    "surrogates_escaped": _surrogates_escaped,
    "surrogates_raw_bytes": _surrogates_raw,
    "nul": _nul,
    "non_finite": _non_finite,
}


@pytest.mark.parametrize("mutation", sorted(MUTATIONS))
@pytest.mark.parametrize("vendor", VENDORS)
def test_hostile_text_and_numbers_never_poison_reads(gateway: Gateway, vendor: str, mutation: str) -> None:
    subscribe(gateway)
    source = gateway.create_source(vendor)
    doc = json.loads(first_fixture(vendor))
    response = post(gateway, source, MUTATIONS[mutation](doc))
    assert response.status_code in (200, 202, 400), response.text
    # a clean event of the same vendor still goes through and everything stays readable
    clean = post(gateway, source, first_fixture(vendor))
    assert clean.status_code in (200, 202), clean.text
    calls = read_everything(gateway)
    assert calls, "the clean event made a call"
    shown = json.dumps(calls, ensure_ascii=False)
    for bad in ("\x00", "NaN", "Infinity"):
        assert bad not in shown


def test_lone_surrogates_are_replaced_and_recorded(gateway: Gateway) -> None:
    source = gateway.create_source("callsv1")
    doc = json.loads((FIXTURES / "callsv1" / "call_ended.json").read_text())
    doc["id"] += "\ud800"  # the event identity too
    doc["call"]["product"] = "support\udfff"
    response = post(gateway, source, json.dumps(doc).encode())
    assert response.status_code == 202, response.text
    (call,) = read_everything(gateway)
    assert call["vendor_extra"]["product"] == "support\ufffd"
    assert "product" in " ".join(call["vendor_extra"]["repaired"])
    again = post(gateway, source, json.dumps(doc).encode())
    assert again.status_code == 200  # the same event is still a duplicate: its key survived repair
    other = dict(doc, id=doc["id"][:-1] + "\udbff")
    assert post(gateway, source, json.dumps(other).encode()).status_code == 202  # a distinct key


def test_a_subscription_matching_a_repaired_event_gets_a_strict_body(gateway: Gateway) -> None:
    subscribe(gateway)
    source = gateway.create_source("callsv1")
    doc = json.loads((FIXTURES / "callsv1" / "call_ended.json").read_text())
    doc["call"]["voice"] = "\ud800"
    assert post(gateway, source, json.dumps(doc).encode()).status_code == 202
    deliveries = gateway.client.get("/v1/deliveries", headers=gateway.headers).json()["data"]
    assert deliveries
    read_everything(gateway)


# --- 2. years before 1000, and times out of every range --------------------------------------------------


@pytest.mark.parametrize("vendor", VENDORS)
def test_old_years_are_stored_padded_and_read_back(gateway: Gateway, vendor: str) -> None:
    source = gateway.create_source(vendor)
    body = re.sub(rb'"20\d\d-', b'"0999-', first_fixture(vendor))
    assert post(gateway, source, body).status_code in (200, 202, 400)
    for call in read_everything(gateway):
        for name in ("started_at", "answered_at", "ended_at"):
            if call.get(name):
                assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", call[name]), call[name]


def test_old_start_time_is_kept_as_a_four_digit_year(gateway: Gateway) -> None:
    source = gateway.create_source("callsv1")
    doc = json.loads((FIXTURES / "callsv1" / "call_ended.json").read_text())
    doc["call"]["start_time"] = "0999-12-31T23:59:59Z"
    assert post(gateway, source, json.dumps(doc).encode()).status_code == 202
    (call,) = read_everything(gateway)
    assert call["started_at"].startswith("0999-12-31T23:59:59")


# --- 3. nesting ---------------------------------------------------------------------------------------


def nested(levels: int) -> Any:
    value: Any = "bottom"
    for _ in range(levels):
        value = {"n": value}
    return value


@pytest.mark.parametrize("levels", [20, 967, 5000])
def test_nesting_is_bounded_before_storing(gateway: Gateway, levels: int) -> None:
    source = gateway.create_source("callsv1")
    doc = json.loads((FIXTURES / "callsv1" / "call_ended.json").read_text())
    doc["call"]["deep"] = nested(levels)
    response = post(gateway, source, json.dumps(doc).encode() if levels < 900 else _deep(doc, levels))
    if levels <= 20:
        assert response.status_code == 202, response.text
        (call,) = read_everything(gateway)
        assert call["vendor_extra"]["deep"] == nested(levels)
    else:
        assert response.status_code == 400, response.text
        assert response.json()["error"]["code"] == "invalid_payload"
        assert read_everything(gateway) == []


def _deep(doc: Any, levels: int) -> bytes:
    """``json.dumps`` itself recurses: write the deep value by hand."""
    marker = '"__DEEP__"'
    doc["call"]["deep"] = "__DEEP__"
    return json.dumps(doc).replace(marker, '{"n":' * levels + '"bottom"' + "}" * levels).encode()


# --- 4. signed bodies that are not UTF-8 ------------------------------------------------------------------


def test_signed_non_utf8_body_is_verified_on_its_bytes_and_quarantined(gateway: Gateway) -> None:
    source = gateway.create_source("graph8")  # Standard Webhooks
    assert source["verification"]["scheme"] == "standard-webhooks"
    body = first_fixture("graph8").replace(b"}", b', "x": "\xff\xfe"}', 1)
    response = post(gateway, source, body)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "invalid_payload"
    forged = gateway.post_hook(source, body, {**source_headers(source, body), "webhook-signature": "v1,AAAA"})
    assert forged.status_code == 401
    assert read_everything(gateway) == []


def test_standard_webhooks_timestamp_in_milliseconds_says_seconds(gateway: Gateway) -> None:
    source = gateway.create_source("graph8")
    body = first_fixture("graph8")
    headers = source_headers(source, body)
    headers["webhook-timestamp"] += "000"
    response = gateway.post_hook(source, body, headers)
    assert response.status_code == 401
    assert "seconds" in response.json()["error"]["message"]


# --- 5. API inputs ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "params",
    [
        {"limit": "²"},
        {"limit": "9" * 5000},
        {"limit": "0"},
        {"since": "0001-01-01T00:00:00+01:00"},
        {"until": "9999-12-31T23:59:59-14:00"},
        {"since": "yesterday"},
        {"vendor": "twilio"},
        {"status": "weird"},
    ],
)
@pytest.mark.parametrize("path", ["/v1/calls", "/v1/deliveries"])
def test_bad_query_values_are_422(gateway: Gateway, path: str, params: dict[str, str]) -> None:
    if path == "/v1/deliveries" and "vendor" in params:
        params = {"status": "twilio"}
    response = gateway.client.get(path, params=params, headers=gateway.headers)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["code"] == "validation_error"


@pytest.mark.parametrize("since", ["6h", "2026-11-22 10:00:00", "1763800000", "1763800000000"])
def test_every_time_form_is_read_in_filters(gateway: Gateway, since: str) -> None:
    response = gateway.client.get("/v1/calls", params={"since": since}, headers=gateway.headers)
    assert response.status_code == 200, response.text


def test_recover_and_resync_with_times_out_of_range_are_422(gateway: Gateway) -> None:
    subscribe(gateway)
    sub = gateway.client.get("/v1/subscriptions", headers=gateway.headers).json()["data"][0]
    for since in ("0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-14:00", "soon"):
        response = gateway.client.post(
            f"/v1/subscriptions/{sub['id']}/recover", json={"since": since}, headers=gateway.headers
        )
        assert response.status_code == 422, response.text
    ok = gateway.client.post(
        f"/v1/subscriptions/{sub['id']}/recover", json={"since": "6h"}, headers=gateway.headers
    )
    assert ok.status_code == 202, ok.text


ROUTES_WITH_BODIES = [
    ("POST", "/v1/sources"),
    ("POST", "/v1/subscriptions"),
    ("POST", "/v1/connections"),
    ("PATCH", "/v1/sources/src_x"),
    ("PATCH", "/v1/subscriptions/sub_x"),
    ("PATCH", "/v1/connections/con_x"),
    ("POST", "/v1/subscriptions/sub_x/recover"),
    ("POST", "/v1/connections/con_x/resync"),
]


@pytest.mark.parametrize(("method", "path"), ROUTES_WITH_BODIES)
@pytest.mark.parametrize(
    "body",
    [
        b'{"a":' * 10_000 + b"1" + b"}" * 10_000,
        b"[" * 10_000 + b"]" * 10_000,
        b'{"name": NaN, "vendor": "graph8"}',
        b'{"name": "x\\u0000", "vendor": "graph8", "url": "http://127.0.0.1:9/"}',
        b'{"name": "x\\ud800", "vendor": "graph8", "url": "http://127.0.0.1:9/"}',
    ],
    ids=["deep_object", "deep_array", "nan", "nul", "surrogate"],
)
def test_hostile_api_bodies_are_4xx(gateway: Gateway, method: str, path: str, body: bytes) -> None:
    response = gateway.client.request(
        method, path, content=body, headers={**gateway.headers, "content-type": "application/json"}
    )
    assert 400 <= response.status_code < 500, response.text
    assert response.json()["error"]["code"] in ("bad_request", "validation_error", "not_found")


# --- 6. a secret with a lone surrogate -------------------------------------------------------------------


@pytest.mark.parametrize("secret", ["abc\ud800def", "abc\x00def"])
def test_a_secret_with_unstorable_text_is_refused(gateway: Gateway, secret: str) -> None:
    verification = {"scheme": "bearer", "secrets": [secret]}
    body = json.dumps({"name": "s", "vendor": "voicecalls", "verification": verification})
    response = gateway.client.post(
        "/v1/sources", content=body, headers={**gateway.headers, "content-type": "application/json"}
    )
    assert response.status_code == 422, response.text
    read_everything(gateway)


# --- 9. lenient where it should be ------------------------------------------------------------------------


def test_an_unusable_optional_time_is_dropped_and_flagged_not_refused(gateway: Gateway) -> None:
    source = gateway.create_source("callsv1")
    doc = json.loads((FIXTURES / "callsv1" / "call_ended.json").read_text())
    doc["created_at"] = "x"
    doc["call"]["duration_seconds"] = "about five minutes"
    response = post(gateway, source, json.dumps(doc).encode())
    assert response.status_code == 202, response.text
    (call,) = read_everything(gateway)
    assert call["status"] == "completed"
    assert call["vendor_extra"]["invalid_created_at"] == "x"
    assert call["vendor_extra"]["invalid_call.duration_seconds"] == "about five minutes"
    assert call["started_at"].startswith("2026-05-25T14:30:00")


@pytest.mark.parametrize(
    "written", ["2026-05-25 14:30:00", "2026-05-25T14:30:00", 1779719400, 1779719400000, "1779719400"]
)
def test_common_alternative_time_forms_are_read(gateway: Gateway, written: Any) -> None:
    source = gateway.create_source("callsv1")
    doc = json.loads((FIXTURES / "callsv1" / "call_ended.json").read_text())
    doc["call"]["start_time"] = written
    assert post(gateway, source, json.dumps(doc).encode()).status_code == 202
    (call,) = read_everything(gateway)
    assert call["started_at"].startswith("2026-05-25T14:30:00"), call["started_at"]


def test_a_body_without_a_call_key_is_still_quarantined(gateway: Gateway) -> None:
    source = gateway.create_source("callsv1")
    doc = json.loads((FIXTURES / "callsv1" / "call_ended.json").read_text())
    doc["call"]["call_id"] = {"not": "an id"}
    response = post(gateway, source, json.dumps(doc).encode())
    assert response.status_code == 400, response.text
    assert read_everything(gateway) == []


# --- content the store refuses: quarantined, never a 500 with nothing kept ---------------------------------


def test_a_webhook_the_store_cannot_take_is_quarantined(db_url: str) -> None:
    """An adapter bug that hands the store something it cannot write (here a set, which no JSON holds):
    the sender gets a 400, the body is kept in quarantine for replay, and nothing else is stored."""
    import asyncio

    from sqlalchemy import func, select

    from gateway.inbound import InboundAdapter, ParsedEvent
    from gateway.model import CallUpdate
    from gateway.store.db import Database
    from gateway.store.tables import quarantine, raw_events

    def parse(headers: Any, body: bytes) -> ParsedEvent:
        update = CallUpdate(vendor_call_id="c1", fields={"vendor_extra": {"bad": {1, 2}}})
        return ParsedEvent("evt_1", "call.ended", None, (update,))

    broken = {**ADAPTERS, "graph8": InboundAdapter("graph8", parse, ADAPTERS["graph8"].default_verification)}
    running = start_gateway(make_settings(db_url), adapters=broken)
    gateway = next(running)
    try:
        source = gateway.create_source("graph8")
        body = first_fixture("graph8")
        response = gateway.post_hook(source, body, source_headers(source, body))
        assert response.status_code == 400, response.text
        assert "kept for replay" in response.json()["error"]["message"]
    finally:
        running.close()

    async def counts() -> tuple[int, int]:
        db = Database(db_url)
        try:
            async with db.reading() as conn:
                of_source = quarantine.c.source_id == source["id"]
                kept = (await conn.execute(select(func.count()).where(of_source))).scalar_one()
                of_source = raw_events.c.source_id == source["id"]
                raw = (await conn.execute(select(func.count()).where(of_source))).scalar_one()
                return int(kept), int(raw)
        finally:
            await db.dispose()

    assert asyncio.run(counts()) == (1, 0)
