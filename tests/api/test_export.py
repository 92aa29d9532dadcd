"""``GET /v1/calls/export``: the list's calls, whole (NDJSON) or flat (CSV), streamed page by page."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import pytest

from gateway.api import calls as calls_api
from tests.api.test_hooks import CASES, VENDORS
from tests.conftest import Gateway
from tests.helpers import FIXTURES, source_headers


def fill(gateway: Gateway) -> None:
    for vendor in VENDORS:
        source = gateway.create_source(vendor)
        body = (FIXTURES / vendor / CASES[vendor][0]).read_bytes()
        assert gateway.post_hook(source, body, source_headers(source, body)).status_code == 202


def export(gateway: Gateway, **params: Any) -> Any:
    return gateway.client.get("/v1/calls/export", params=params, headers=gateway.headers)


def test_ndjson_is_the_list_whole_across_pages(gateway: Gateway, monkeypatch: pytest.MonkeyPatch) -> None:
    fill(gateway)
    monkeypatch.setattr(calls_api, "EXPORT_PAGE", 2)  # six calls: three pages, and the edge of the last
    response = export(gateway, format="ndjson")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/x-ndjson")
    assert 'filename="calls.ndjson"' in response.headers["content-disposition"]
    exported = [json.loads(line) for line in response.text.splitlines()]
    assert exported == gateway.calls(limit=200)
    assert len(exported) == len(VENDORS)


def test_csv_has_a_header_and_a_row_per_call_with_the_filters(gateway: Gateway) -> None:
    fill(gateway)
    response = export(gateway, format="csv", vendor="graph8")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.text)))
    (only,) = gateway.calls(vendor="graph8")
    assert [r["id"] for r in rows] == [only["id"]]
    assert rows[0]["status"] == only["status"]
    assert rows[0]["from_number"] == (only["from_number"] or "")
    assert list(rows[0]) == list(calls_api.CSV_COLUMNS)


def test_csv_cells_never_start_a_formula(gateway: Gateway) -> None:
    source = gateway.create_source("callsv1")
    doc = json.loads((FIXTURES / "callsv1" / "call_ended.json").read_text())
    doc["call"]["agent_id"] = '=HYPERLINK("http://evil","x")'
    body = json.dumps(doc).encode()
    assert gateway.post_hook(source, body, source_headers(source, body)).status_code == 202
    (row,) = csv.DictReader(io.StringIO(export(gateway, format="csv").text))
    assert row["agent_id"].startswith("'=")
    assert row["from_number"].startswith("+")  # a phone number is data


def test_export_is_the_tenants_own_and_checks_its_format(gateway: Gateway) -> None:
    fill(gateway)
    _, other = gateway.new_tenant()
    assert gateway.client.get("/v1/calls/export", headers=other).text == ""
    assert export(gateway, format="xlsx").status_code == 422
    assert export(gateway, vendor="twilio").status_code == 422
    assert gateway.client.get("/v1/calls/export").status_code == 401
