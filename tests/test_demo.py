"""The README's first steps as a new user takes them: a real ``callgate serve`` on a fresh SQLite file,
``callgate demo`` against it, then ``GET /v1/calls``; and ``callgate replay`` over what the demo stored.
Then the demo's state file, in process: reruns reuse the demo's sources, and make new ones only for
sources that no longer work."""

from __future__ import annotations

import base64
import json
import os
import re
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.app import ADAPTERS
from gateway.demo import gateway_key, load_state, run_demo, summary_lines
from gateway.errors import CallgateError
from tests.conftest import Gateway
from tests.process import free_port, start_server

VENDORS = {"graph8", "voiceapi", "callsv1", "qualifier", "voicecalls", "livekit"}


def cli(db_url: str, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "CALLGATE_DATABASE_URL": db_url, **env}
    return subprocess.run(
        [sys.executable, "-m", "gateway.cli", *args],
        capture_output=True,
        text=True,
        env=environment,
        timeout=120,
    )


def test_demo_fills_a_fresh_gateway_with_every_vendor_then_replay_changes_nothing(tmp_path: Path) -> None:
    db_url = f"sqlite+aiosqlite:///{tmp_path / 'callgate.db'}"
    port = free_port()
    log = tmp_path / "serve.out"
    with log.open("wb") as out:
        server = start_server(db_url, port, stdout=out.fileno(), CALLGATE_BOOTSTRAP_TENANT="true")
    try:
        key_match = re.search(r"cgk_[A-Za-z0-9_\-]+", log.read_text())
        assert key_match, "the first start prints the new tenant's API key"
        api_key = key_match.group(0)
        url = f"http://127.0.0.1:{port}"

        refused = cli(db_url, "demo", "--url", url, CALLGATE_API_KEY="")
        assert refused.returncode == 2
        assert "CALLGATE_API_KEY" in refused.stderr

        state = tmp_path / "var" / "demo-sources.json"
        result = cli(db_url, "demo", "--url", url, "--state", str(state), "--json", CALLGATE_API_KEY=api_key)
        assert result.returncode == 0, result.stderr
        demo = json.loads(result.stdout)
        assert all(w["status"] == 202 for w in demo["webhooks"])
        assert {s["vendor"] for s in demo["sources"]} == VENDORS
        assert not any(s["reused"] for s in demo["sources"])

        listed = httpx.get(
            f"{url}/v1/calls", params={"limit": 100}, headers={"authorization": f"Bearer {api_key}"}
        )
        calls: dict[str, dict[str, Any]] = {c["vendor"]: c for c in listed.json()["data"]}
        assert set(calls) == {"graph8", "voiceapi", "callsv1", "qualifier", "voicecalls", "livekit"}
        assert all(c["status"] == "completed" for c in calls.values())
        assert {c["id"] for c in demo["calls"]} == {c["id"] for c in calls.values()}
        assert calls["graph8"]["grade"]["score"] == 0.82
        assert calls["graph8"]["transcript"][0]["speaker"] == "agent"
        assert calls["graph8"]["to_number"] == "+14155550123"  # sent as (415) 555-0123
        assert calls["callsv1"]["issues"][0]["severity"] == "info"
        assert calls["callsv1"]["billing"]["total_cents"] == 56
        assert calls["qualifier"]["qualification"]["verdict"] == "qualified"
        assert calls["voicecalls"]["survey"]["score"] == 92.5
        assert calls["livekit"]["recording"]["available"] is True
        assert calls["voiceapi"]["recording"]["vendor_ref"].startswith("rec_")
        assert {c["direction"] for c in calls.values()} == {"inbound", "outbound"}

        again = cli(db_url, "demo", "--url", url, "--state", str(state), CALLGATE_API_KEY=api_key)
        assert again.returncode == 0, again.stderr
        assert f"to 6 sources reused from {state}" in again.stdout
        listed = httpx.get(
            f"{url}/v1/calls", params={"limit": 100}, headers={"authorization": f"Bearer {api_key}"}
        )
        assert len(listed.json()["data"]) == 12  # every run adds new calls, and no sources
        sources = httpx.get(f"{url}/v1/sources", headers={"authorization": f"Bearer {api_key}"})
        assert {s["id"] for s in sources.json()["data"]} == {s["id"] for s in demo["sources"]}

        replayed = cli(db_url, "replay", "--quarantined", "--json")
        assert replayed.returncode == 0, replayed.stderr
        summary = json.loads(replayed.stdout)
        assert summary["events"] == 2 * len(demo["webhooks"])
        assert (summary["calls_changed"], summary["calls_created"], summary["unreadable"]) == (0, 0, 0)
        assert summary["calls_unchanged"] == 12
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_replay_refuses_a_bad_since(tmp_path: Path) -> None:
    result = cli(f"sqlite+aiosqlite:///{tmp_path / 'x.db'}", "replay", "--since", "last tuesday")
    assert result.returncode == 2
    assert "--since" in result.stderr


# --- the state file, in process ---------------------------------------------------------------------


class InProcess(httpx.BaseTransport):
    """An ``httpx.Client``'s requests answered by the in-process app (through its test client), so the
    demo runs exactly as the CLI runs it, without a server process."""

    def __init__(self, gateway: Gateway) -> None:
        self.app = gateway.client

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        answer = self.app.request(
            request.method, str(request.url), content=request.read(), headers=dict(request.headers)
        )
        return httpx.Response(
            answer.status_code, headers=answer.headers.multi_items(), content=answer.content
        )


def _demo(gateway: Gateway, state: Path, api_key: str | None = None) -> dict[str, Any]:
    headers = {"authorization": f"Bearer {api_key or gateway.api_key}"}
    with httpx.Client(base_url="http://testserver", headers=headers, transport=InProcess(gateway)) as client:
        return run_demo(client, ADAPTERS, state=state)


def _by_vendor(result: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {s["vendor"]: s for s in result["sources"]}


def _source_ids(gateway: Gateway) -> set[str]:
    response = gateway.client.get("/v1/sources", headers=gateway.headers)
    assert response.status_code == 200, response.text
    return {s["id"] for s in response.json()["data"]}


def test_a_second_run_reuses_every_source_and_a_deleted_one_is_made_again(
    gateway: Gateway, tmp_path: Path
) -> None:
    state = tmp_path / "var" / "demo-sources.json"
    first = _demo(gateway, state)
    assert set(_by_vendor(first)) == VENDORS
    assert not any(s["reused"] for s in first["sources"])
    assert stat.S_IMODE(state.stat().st_mode) == 0o600  # it holds the sources' secrets
    assert stat.S_IMODE(state.parent.stat().st_mode) == 0o700  # made by the demo

    second = _demo(gateway, state)
    assert all(s["reused"] for s in second["sources"])
    assert {s["id"] for s in second["sources"]} == {s["id"] for s in first["sources"]}
    assert _source_ids(gateway) == {s["id"] for s in first["sources"]}  # no new source
    assert all(w["status"] == 202 for w in second["webhooks"])  # signed with the stored secrets
    assert len(second["calls"]) == 6
    assert not {c["id"] for c in second["calls"]} & {c["id"] for c in first["calls"]}
    assert len(gateway.calls(limit=100)) == 12
    assert summary_lines(second)[0] == f"sent 22 signed webhooks to 6 sources reused from {state}"

    deleted = _by_vendor(first)["graph8"]["id"]
    response = gateway.client.delete(f"/v1/sources/{deleted}", headers=gateway.headers)
    assert response.status_code == 204
    third = _demo(gateway, state)
    made = _by_vendor(third)["graph8"]
    assert not made["reused"]
    assert made["id"] != deleted
    assert [s["vendor"] for s in third["sources"] if s["reused"]] == sorted(
        VENDORS - {"graph8"}, key=[s["vendor"] for s in first["sources"]].index
    )
    assert _source_ids(gateway) == {s["id"] for s in third["sources"]}
    assert all(w["status"] == 202 for w in third["webhooks"])
    assert "5 reused, 1 new (graph8;" in summary_lines(third)[0]
    entry = load_state(state)["gateways"][gateway_key("http://testserver", f"Bearer {gateway.api_key}")]
    assert entry["sources"]["graph8"]["id"] == made["id"]
    assert stat.S_IMODE(state.stat().st_mode) == 0o600  # still, after the rewrite

    fourth = _demo(gateway, state)
    assert all(s["reused"] for s in fourth["sources"])


def test_sources_that_no_longer_verify_or_belong_to_another_tenant_are_not_reused(
    gateway: Gateway, tmp_path: Path
) -> None:
    state = tmp_path / "demo-sources.json"
    first = _by_vendor(_demo(gateway, state))

    # another tenant at the same URL gets its own sources, and leaves this tenant's entry alone
    _, other = gateway.new_tenant()
    other_key = other["authorization"].removeprefix("Bearer ")
    theirs = _demo(gateway, state, api_key=other_key)
    assert not any(s["reused"] for s in theirs["sources"])
    assert not {s["id"] for s in theirs["sources"]} & {s["id"] for s in first.values()}
    assert len(load_state(state)["gateways"]) == 2

    # this tenant's sources: one given a new secret, one disabled
    new_secret = "whsec_" + base64.b64encode(os.urandom(32)).decode()
    changed = gateway.client.patch(
        f"/v1/sources/{first['graph8']['id']}",
        json={"verification": {"scheme": "standard-webhooks", "secrets": [new_secret]}},
        headers=gateway.headers,
    )
    assert changed.status_code == 200, changed.text
    disabled = gateway.client.patch(
        f"/v1/sources/{first['livekit']['id']}", json={"enabled": False}, headers=gateway.headers
    )
    assert disabled.status_code == 200, disabled.text

    again = _by_vendor(_demo(gateway, state))
    assert {v for v, s in again.items() if not s["reused"]} == {"graph8", "livekit"}
    assert again["graph8"]["id"] != first["graph8"]["id"]
    assert again["livekit"]["id"] != first["livekit"]["id"]
    assert all(again[v]["id"] == first[v]["id"] for v in VENDORS - {"graph8", "livekit"})


def test_a_state_file_that_is_not_the_demos_is_refused_and_left_alone(tmp_path: Path) -> None:
    state = tmp_path / "demo-sources.json"
    state.write_text("my notes, not JSON")
    with pytest.raises(CallgateError, match="not the demo's state file"):
        load_state(state)
    assert state.read_text() == "my notes, not JSON"
    assert load_state(tmp_path / "absent.json") == {"version": 1, "gateways": {}}
