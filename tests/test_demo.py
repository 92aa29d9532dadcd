"""The README's first steps as a new user takes them: a real ``callgate serve`` on a fresh SQLite file,
``callgate demo`` against it, then ``GET /v1/calls``; and ``callgate replay`` over what the demo stored."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx

from tests.process import free_port, start_server


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

        result = cli(db_url, "demo", "--url", url, "--json", CALLGATE_API_KEY=api_key)
        assert result.returncode == 0, result.stderr
        demo = json.loads(result.stdout)
        assert all(w["status"] == 202 for w in demo["webhooks"])

        listed = httpx.get(
            f"{url}/v1/calls", params={"limit": 100}, headers={"authorization": f"Bearer {api_key}"}
        )
        calls: dict[str, dict[str, Any]] = {c["vendor"]: c for c in listed.json()["data"]}
        assert set(calls) == {"graph8", "voiceapi", "callsv1", "qualifier", "voicecalls", "livekit"}
        assert all(c["status"] == "completed" for c in calls.values())
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

        again = cli(db_url, "demo", "--url", url, "--json", CALLGATE_API_KEY=api_key)
        assert again.returncode == 0, again.stderr
        assert json.loads(again.stdout)["run"] != demo["run"]  # every run adds new calls

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
