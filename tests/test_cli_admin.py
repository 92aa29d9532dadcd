"""The operator's CLI for tenants, keys and calls: a lost key is recoverable, every --tenant is checked, calls
read like the API, and times read like the API (``gateway.when``)."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.cli import main
from gateway.demo import signed_headers
from tests.helpers import FIXTURES
from tests.process import free_port, start_server


@dataclass
class Ran:
    returncode: int
    stdout: str
    stderr: str


Runner = Callable[..., Ran]


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Runner:
    """The CLI's ``main`` run in this process (tests/test_cli.py runs it as real processes): the same
    parsing, database work and output, well under a second a command instead of two."""
    monkeypatch.setenv("CALLGATE_PUBLIC_URL", "https://cg.example")
    monkeypatch.setenv("CALLGATE_LOG_LEVEL", "error")

    def run(db: Path, *args: str, check: bool = True) -> Ran:
        monkeypatch.setenv("CALLGATE_DATABASE_URL", f"sqlite+aiosqlite:///{db}")
        capsys.readouterr()
        code = main(list(args))
        out, err = capsys.readouterr()
        if check:
            assert code == 0, err
        return Ran(code, out, err)

    return run


def one_json(result: Ran) -> Any:
    return json.loads(result.stdout)  # one document, nothing else


def setup(tmp_path: Path, cli: Runner) -> tuple[Path, dict[str, Any]]:
    db = tmp_path / "cli.db"
    return db, one_json(cli(db, "tenants", "create", "acme", "--json"))


def test_tenants_and_keys_can_be_listed_and_a_lost_key_replaced_and_revoked(
    tmp_path: Path, cli: Runner
) -> None:
    db, tenant = setup(tmp_path, cli)
    one_json(cli(db, "tenants", "create", "globex", "--json"))
    tenants = one_json(cli(db, "tenants", "list", "--json"))["data"]
    assert [t["name"] for t in tenants] == ["acme", "globex"]
    assert tenants[0]["active_keys"] == 1

    fresh = one_json(cli(db, "keys", "create", "--tenant", tenant["tenant_id"], "--json"))
    keys = one_json(cli(db, "keys", "list", "--tenant", tenant["tenant_id"], "--json"))["data"]
    assert {k["id"] for k in keys} == {fresh["id"], keys[0]["id"]}
    listed = json.dumps(keys)
    assert tenant["api_key"] not in listed
    assert fresh["api_key"] not in listed
    assert "hash" not in listed
    assert {k["key_hint"] for k in keys} == {tenant["api_key"][-4:], fresh["api_key"][-4:]}

    revoked = one_json(cli(db, "keys", "revoke", fresh["id"], "--json"))
    assert revoked["revoked_now"] is True
    assert revoked["revoked_at"]
    again = one_json(cli(db, "keys", "revoke", fresh["id"], "--json"))
    assert again["revoked_now"] is False
    assert one_json(cli(db, "tenants", "list", "--json"))["data"][0]["active_keys"] == 1
    unknown = cli(db, "keys", "revoke", "key_nope", check=False)
    assert unknown.returncode == 2
    assert "no such API key" in unknown.stderr
    human = cli(db, "keys", "list").stdout
    assert "revoked" in human
    assert "active" in human


def test_a_revoked_key_is_refused_by_the_api(tmp_path: Path, cli: Runner) -> None:
    db, tenant = setup(tmp_path, cli)
    key = one_json(cli(db, "keys", "create", "--tenant", tenant["tenant_id"], "--json"))
    port = free_port()
    server = start_server(f"sqlite+aiosqlite:///{db}", port)
    try:
        url = f"http://127.0.0.1:{port}/v1/calls"
        headers = {"authorization": f"Bearer {key['api_key']}"}
        assert httpx.get(url, headers=headers).status_code == 200
        cli(db, "keys", "revoke", key["id"])
        assert httpx.get(url, headers=headers).status_code == 401
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_an_unknown_tenant_is_an_error_in_every_command(tmp_path: Path, cli: Runner) -> None:
    db, _ = setup(tmp_path, cli)
    for args in (
        ("sources", "list"),
        ("sources", "create", "--vendor", "graph8"),
        ("subscriptions", "list"),
        ("deliveries", "list"),
        ("connections", "list"),
        ("calls", "list"),
        ("quarantine", "list"),
        ("keys", "list"),
    ):
        result = cli(db, *args, "--tenant", "ten_bogus", check=False)
        assert result.returncode == 2, args
        assert "no such tenant ten_bogus" in result.stderr, args
        as_json = cli(db, *args, "--tenant", "ten_bogus", "--json", check=False)
        assert one_json(as_json)["error"]["code"] == "not_found"


def test_times_and_ages_read_as_the_api_reads_them(tmp_path: Path, cli: Runner) -> None:
    db, tenant = setup(tmp_path, cli)
    for since in ("6h", "2w", "2026-11-22 10:00:00", "1763800000", "1763800000000"):
        result = cli(db, "calls", "list", "--tenant", tenant["tenant_id"], "--since", since, "--json")
        assert one_json(result)["data"] == []
    bad = cli(db, "replay", "--since", "yesterday", check=False)
    assert bad.returncode == 2
    assert "age such as" in bad.stderr
    out_of_range = cli(
        db,
        "calls",
        "list",
        "--tenant",
        tenant["tenant_id"],
        "--until",
        "0001-01-01T00:00:00+01:00",
        check=False,
    )
    assert out_of_range.returncode == 2


def test_calls_list_show_and_events_read_what_the_api_shows(tmp_path: Path, cli: Runner) -> None:
    db, tenant = setup(tmp_path, cli)
    source = one_json(
        cli(db, "sources", "create", "--tenant", tenant["tenant_id"], "--vendor", "graph8", "--json")
    )
    port = free_port()
    server = start_server(f"sqlite+aiosqlite:///{db}", port, CALLGATE_WORKER="false")
    try:
        for name in ("call_ringing.json", "call_completed.json"):
            body = (FIXTURES / "graph8" / name).read_bytes()
            response = httpx.post(
                f"http://127.0.0.1:{port}/hooks/{source['id']}",
                content=body,
                headers=signed_headers(source, body),
            )
            assert response.status_code == 202
        junk = b'{"not": "graph8"}'
        kept = httpx.post(
            f"http://127.0.0.1:{port}/hooks/{source['id']}",
            content=junk,
            headers=signed_headers(source, junk),
        )
        assert kept.status_code == 400
        api = httpx.get(
            f"http://127.0.0.1:{port}/v1/calls", headers={"authorization": f"Bearer {tenant['api_key']}"}
        ).json()["data"]
    finally:
        server.terminate()
        server.wait(timeout=10)

    listed = one_json(cli(db, "calls", "list", "--tenant", tenant["tenant_id"], "--json"))["data"]
    assert listed == api
    (call,) = listed
    assert (
        one_json(cli(db, "calls", "list", "--tenant", tenant["tenant_id"], "--status", "busy", "--json"))[
            "data"
        ]
        == []
    )
    by_number = cli(
        db, "calls", "list", "--tenant", tenant["tenant_id"], "--number", call["to_number"], "--json"
    )
    assert [c["id"] for c in one_json(by_number)["data"]] == [call["id"]]
    bad_number = cli(
        db, "calls", "list", "--tenant", tenant["tenant_id"], "--number", "not a number", check=False
    )
    assert bad_number.returncode == 2

    shown = one_json(cli(db, "calls", "show", "--tenant", tenant["tenant_id"], call["id"], "--json"))
    assert shown == call
    human = cli(db, "calls", "show", "--tenant", tenant["tenant_id"], call["id"]).stdout
    assert call["status"] in human
    assert call["id"] in human
    events = one_json(cli(db, "calls", "events", "--tenant", tenant["tenant_id"], call["id"], "--json"))[
        "data"
    ]
    assert [e["version"] for e in events] == [1, 2]
    table = cli(db, "calls", "list", "--tenant", tenant["tenant_id"]).stdout
    assert call["id"] in table
    (quarantined,) = one_json(cli(db, "quarantine", "list", "--tenant", tenant["tenant_id"], "--json"))[
        "data"
    ]
    assert quarantined["status"] == "open"
    replayed = cli(
        db, "quarantine", "replay", "--tenant", tenant["tenant_id"], quarantined["id"], "--json", check=False
    )
    assert replayed.returncode == 1  # still unreadable: it stays, and the exit status says so
    assert one_json(replayed)["status"] == "unreadable"
    missing = cli(db, "calls", "show", "--tenant", tenant["tenant_id"], "call_nope", check=False)
    assert missing.returncode == 2
    assert "no such call" in missing.stderr


def test_serve_says_which_tenants_exist_and_how_to_mint_a_key(tmp_path: Path, cli: Runner) -> None:
    import subprocess

    db, tenant = setup(tmp_path, cli)
    port = free_port()
    server = start_server(
        f"sqlite+aiosqlite:///{db}", port, stdout=subprocess.PIPE, CALLGATE_BOOTSTRAP_TENANT="true"
    )
    server.terminate()
    out, _ = server.communicate(timeout=10)
    text = out.decode()
    assert tenant["tenant_id"] in text
    assert "callgate keys create --tenant" in text
    assert tenant["api_key"] not in text
