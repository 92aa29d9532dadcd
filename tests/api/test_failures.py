"""What happens when things go wrong: storage down, bad configuration, secrets near the logs."""

from __future__ import annotations

import io
import json
import sqlite3
from pathlib import Path

from starlette.testclient import TestClient

from gateway import logs
from gateway.app import create_app
from tests.api.test_hooks import signed
from tests.conftest import make_settings, start_gateway
from tests.helpers import FIXTURES


def test_storage_locked_is_503_and_the_retry_is_accepted(sqlite_url: str) -> None:
    settings = make_settings(sqlite_url, sqlite_busy_timeout_ms=200)
    for gateway in start_gateway(settings):
        source = gateway.create_source("graph8")
        body = (FIXTURES / "graph8" / "call_completed.json").read_bytes()
        headers = signed("graph8", source, body)
        holder = sqlite3.connect(sqlite_url.split("///", 1)[1], isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")  # another process holding the write lock
        try:
            response = gateway.post_hook(source, body, headers)
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        assert response.status_code == 503
        assert response.json()["error"]["code"] == "storage_unavailable"
        assert gateway.calls() == []  # nothing half-stored
        retried = gateway.post_hook(source, body, headers)
        assert retried.status_code == 202  # the vendor's retry is stored: it was never counted as seen
        assert len(gateway.calls()) == 1


def test_unreachable_postgres_is_503_not_500() -> None:
    settings = make_settings(
        "postgresql+asyncpg://postgres@127.0.0.1:1/none", auto_migrate=False, secret_key="k" * 32
    )
    app = create_app(settings, configure_logging=False)
    with TestClient(app, raise_server_exceptions=False) as client:
        ready = client.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["error"]["code"] == "storage_unavailable"
        hook = client.post("/hooks/src_anything", content=b"{}")
        assert hook.status_code == 503
        api = client.get("/v1/calls", headers={"authorization": "Bearer cgk_x"})
        assert api.status_code == 503


def test_logs_are_json_lines_and_never_carry_secrets(sqlite_url: str) -> None:
    stream = io.StringIO()
    logs.configure("debug", "json", stream)
    try:
        for gateway in start_gateway(make_settings(sqlite_url)):
            source = gateway.create_source("graph8")
            body = (FIXTURES / "graph8" / "call_completed.json").read_bytes()
            headers = signed("graph8", source, body)
            gateway.post_hook(source, body, headers)
            gateway.post_hook(source, body, dict(headers, **{"webhook-signature": "v1,bad"}))
            gateway.post_hook(source, b"not json", signed("graph8", source, b"not json", "m2"))
            secrets = [source["secret"], gateway.api_key, gateway.operator_key, headers["webhook-signature"]]
    finally:
        logs.configure("info", "json")
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    outcomes = [line.get("outcome") for line in lines if line.get("event") == "webhook"]
    assert outcomes == ["stored", "rejected", "quarantined"]
    stored = next(line for line in lines if line.get("outcome") == "stored")
    assert {"request_id", "tenant_id", "source_id", "vendor", "event_key"} <= set(stored)
    text = stream.getvalue()
    for secret in secrets:
        assert secret[6:] not in text


def test_redaction_processor_blanks_credential_keys() -> None:
    stream = io.StringIO()
    logs.configure("info", "json", stream)
    try:
        import structlog

        structlog.get_logger("t").info("x", api_key="cgk_live", webhook_secret="whsec_1", note="fine")
    finally:
        logs.configure("info", "json")
    line = json.loads(stream.getvalue())
    assert line["api_key"] == "[redacted]"
    assert line["webhook_secret"] == "[redacted]"
    assert line["note"] == "fine"


def test_first_start_creates_a_tenant_and_shows_its_key_once(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'fresh.db'}"
    shown: list[tuple[str, str]] = []
    settings = make_settings(url, bootstrap_tenant=True)
    for _ in range(2):
        app = create_app(settings, configure_logging=False, on_bootstrap=lambda t, k: shown.append((t, k)))
        with TestClient(app) as client:
            assert client.get("/readyz").status_code == 200
    assert len(shown) == 1
    tenant_id, key = shown[0]
    app = create_app(settings, configure_logging=False, on_bootstrap=None)
    with TestClient(app) as client:
        response = client.get("/v1/sources", headers={"authorization": f"Bearer {key}"})
        assert response.status_code == 200
    assert tenant_id.startswith("ten_")


def test_an_adapter_crash_quarantines_the_verified_body(sqlite_url: str) -> None:
    """An adapter bug must not lose an accepted webhook: the body is kept for replay, the vendor gets 400."""
    from adapters.base import InboundAdapter, ParsedEvent
    from adapters.registry import INBOUND

    def crashing(headers: object, body: bytes) -> ParsedEvent:
        raise KeyError("a bug")

    adapters = {
        **INBOUND,
        "graph8": InboundAdapter("graph8", crashing, INBOUND["graph8"].default_verification),
    }
    for gateway in start_gateway(make_settings(sqlite_url), adapters=adapters):
        source = gateway.create_source("graph8")
        body = (FIXTURES / "graph8" / "call_completed.json").read_bytes()
        response = gateway.post_hook(source, body, signed("graph8", source, body))
        assert response.status_code == 400
        assert "kept for replay" in response.json()["error"]["message"]
    rows = (
        sqlite3.connect(sqlite_url.split("///", 1)[1])
        .execute("SELECT body, error FROM quarantine")
        .fetchall()
    )
    assert rows == [(body, "adapter error: KeyError")]
