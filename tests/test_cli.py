"""The CLI as scripts use it: real processes, and with --json exactly one JSON document on stdout."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest


def callgate(
    db: Path, *args: str, check: bool = True, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "CALLGATE_DATABASE_URL": f"sqlite+aiosqlite:///{db}",
        "CALLGATE_PUBLIC_URL": "https://cg.example",
        **(env or {}),
    }
    result = subprocess.run(
        [sys.executable, "-m", "gateway.cli", *args], capture_output=True, text=True, env=env, timeout=60
    )
    if check:
        assert result.returncode == 0, result.stderr
    return result


def one_json(result: subprocess.CompletedProcess[str]) -> Any:
    return json.loads(result.stdout)  # json.loads refuses trailing data: one document, nothing else


def test_scripted_setup_with_json(tmp_path: Path) -> None:
    db = tmp_path / "cli.db"
    migrated = one_json(callgate(db, "migrate", "--json"))
    assert migrated["revision"] == "head"
    tenant = one_json(callgate(db, "tenants", "create", "acme", "--json"))
    assert set(tenant) == {"tenant_id", "name", "api_key"}
    assert tenant["api_key"].startswith("cgk_")
    key = one_json(callgate(db, "keys", "create", "--tenant", tenant["tenant_id"], "--json"))
    assert key["tenant_id"] == tenant["tenant_id"]
    assert key["api_key"] != tenant["api_key"]
    operator = one_json(callgate(db, "keys", "create", "--operator", "--json"))
    assert operator["operator"] is True
    source = one_json(
        callgate(db, "sources", "create", "--tenant", tenant["tenant_id"], "--vendor", "voicecalls", "--json")
    )
    assert source["hook_url"] == f"https://cg.example/hooks/{source['id']}"
    assert source["verification"]["scheme"] == "hmac"
    assert len(source["secret"]) == 64
    listed = one_json(callgate(db, "sources", "list", "--tenant", tenant["tenant_id"], "--json"))
    assert [s["id"] for s in listed["data"]] == [source["id"]]
    assert "secret" not in listed["data"][0]
    human = callgate(db, "sources", "list", "--tenant", tenant["tenant_id"]).stdout
    assert source["id"] in human


@pytest.mark.parametrize(
    "args",
    [
        ("keys", "create", "--json"),  # neither --tenant nor --operator
        (
            "sources",
            "create",
            "--tenant",
            "ten_nope",
            "--vendor",
            "graph8",
            "--verification",
            "{bad",
            "--json",
        ),
    ],
)
def test_errors_exit_nonzero_with_a_message(tmp_path: Path, args: tuple[str, ...]) -> None:
    result = callgate(tmp_path / "cli.db", *args, check=False)
    assert result.returncode == 2
    assert "callgate" in result.stderr or "error" in result.stdout


@pytest.mark.parametrize(
    "args",
    [
        ("keys", "create", "--tenant", "ten_nope", "--json"),
        ("sources", "create", "--tenant", "ten_nope", "--vendor", "graph8", "--json"),
    ],
)
def test_unknown_tenant_is_refused(tmp_path: Path, args: tuple[str, ...]) -> None:
    result = callgate(tmp_path / "cli.db", *args, check=False)
    assert result.returncode == 2
    assert one_json(result)["error"] == {
        "code": "not_found",
        "message": "no such tenant ten_nope",
        "field": "tenant_id",
    }


def test_connections_from_the_cli(tmp_path: Path) -> None:
    from tests.crm.kinds import PIPEDRIVE, PIPEDRIVE_TOKEN
    from tests.doubles import serving

    db = tmp_path / "cli.db"
    callgate(db, "migrate")
    tenant = one_json(callgate(db, "tenants", "create", "acme", "--json"))["tenant_id"]
    state = PIPEDRIVE.new_state()
    loopback = {"CALLGATE_ALLOWED_TARGET_CIDRS": '["127.0.0.0/8"]'}
    with serving(PIPEDRIVE.app(state)) as url:
        created = one_json(
            callgate(
                db,
                "connections",
                "create",
                "--tenant",
                tenant,
                "--kind",
                "pipedrive",
                "--base-url",
                url,
                "--credentials",
                json.dumps({"api_token": PIPEDRIVE_TOKEN}),
                "--json",
                env=loopback,
            )
        )
        assert created["kind"] == "pipedrive"
        assert PIPEDRIVE_TOKEN not in json.dumps(created)
        listed = one_json(callgate(db, "connections", "list", "--tenant", tenant, "--json"))
        assert [c["id"] for c in listed["data"]] == [created["id"]]
        tested = one_json(
            callgate(db, "connections", "test", "--tenant", tenant, created["id"], "--json", env=loopback)
        )
        assert tested == {"ok": True}
        resync = one_json(
            callgate(
                db, "connections", "resync", "--tenant", tenant, "--since", "7d", created["id"], "--json"
            )
        )
        assert resync == {"queued": 0}  # no calls yet
        state.tokens = {"rotated"}  # the CRM no longer takes the token
        failed = callgate(
            db, "connections", "test", "--tenant", tenant, created["id"], check=False, env=loopback
        )
        assert failed.returncode == 1
        assert "failed" in failed.stdout
