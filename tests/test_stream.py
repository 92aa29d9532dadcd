"""``GET /v1/stream``: live server-sent events of a tenant's changes, against a real ``callgate serve``."""

from __future__ import annotations

import contextlib
import json
import signal
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.demo import signed_headers
from tests.helpers import FIXTURES
from tests.process import free_port, seed, start_server


class Server:
    def __init__(self, url: str) -> None:
        seeded = seed(url)
        self.key, self.other_key, self.source = seeded["api_key"], seeded["other_key"], seeded["source"]
        self.port = free_port()
        self.process = start_server(url, self.port, CALLGATE_WORKER="false")
        self.base = f"http://127.0.0.1:{self.port}"

    def post(self, name: str, call: str = "") -> None:
        """A graph8 event of the fixture's call, or (``call``) of a call of that name: tests sharing the
        server keep to calls of their own."""
        text = (FIXTURES / "graph8" / name).read_text()
        if call:
            text = text.replace("rm_5028106_1716647400", f"rm_{call}").replace(
                '"id": "evt_', f'"id": "evt_{call}_'
            )
        body = text.encode()
        response = httpx.post(
            f"{self.base}/hooks/{self.source['id']}", content=body, headers=signed_headers(self.source, body)
        )
        assert response.status_code == 202, response.text


def running(path: Path) -> Iterator[Server]:
    server = Server(f"sqlite+aiosqlite:///{path}")
    try:
        yield server
    finally:
        if server.process.poll() is None:
            server.process.kill()
            server.process.wait(timeout=10)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One gateway for the tests that leave it running: each works with calls of its own."""
    yield from running(tmp_path_factory.mktemp("stream") / "callgate.db")


@pytest.fixture
def own_server(tmp_path: Path) -> Iterator[Server]:
    yield from running(tmp_path / "callgate.db")


def read_events(
    base: str, key: str, count: int, last_event_id: str | None = None, after: Any = None
) -> list[dict[str, Any]]:
    """The first ``count`` messages of a stream (``after`` runs once the stream is open)."""
    headers = {"authorization": f"Bearer {key}"}
    if last_event_id:
        headers["last-event-id"] = last_event_id
    events: list[dict[str, Any]] = []
    with httpx.stream("GET", f"{base}/v1/stream", headers=headers, timeout=15) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        if after is not None:
            threading.Timer(0.3, after).start()
        current: dict[str, Any] = {}
        for line in response.iter_lines():
            if line.startswith("id: "):
                current["id"] = line[4:]
            elif line.startswith("event: "):
                current["event"] = line[7:]
            elif line.startswith("data: "):
                current["data"] = json.loads(line[6:])
            elif line == "" and current:
                events.append(current)
                current = {}
                if len(events) == count:
                    break
    return events


def test_changes_arrive_live_and_a_reconnect_resumes_without_gaps(server: Server) -> None:
    live = read_events(server.base, server.key, 1, after=lambda: server.post("call_ringing.json", "live"))
    assert [e["event"] for e in live] == ["call.ringing"]
    first = live[0]
    assert first["data"]["type"] == first["event"]
    assert first["data"]["data"]["call"]["vendor"] == "graph8"
    assert first["data"]["data"]["version"] >= 1
    # while no one listens, the call goes on; a client that comes back with its last id misses nothing
    server.post("call_completed.json", "live")
    resumed = read_events(server.base, server.key, 1, last_event_id=live[-1]["id"])
    assert resumed[0]["event"] == "call.completed"
    assert resumed[0]["id"] > live[-1]["id"]


def test_a_stream_shows_only_its_tenants_changes(server: Server) -> None:
    server.post("call_ringing.json", "isolated")
    headers = {"authorization": f"Bearer {server.other_key}"}
    seen: list[str] = []

    def listen() -> None:
        with httpx.stream("GET", f"{server.base}/v1/stream", headers=headers, timeout=3) as response:
            lines = response.iter_lines()
            seen.append(next(lines))
            server.post("call_completed.json", "isolated")  # another tenant's change, while it listens
            seen.extend(lines)

    with pytest.raises(httpx.ReadTimeout):  # nothing for it to read: the stream stays quiet
        listen()
    assert seen[0].startswith("retry:")
    assert not any(line.startswith("id: ") for line in seen)


def test_a_bad_last_event_id_is_400(server: Server) -> None:
    headers = {"authorization": f"Bearer {server.key}", "last-event-id": "not-ours"}
    assert httpx.get(f"{server.base}/v1/stream", headers=headers).status_code == 400
    assert httpx.get(f"{server.base}/v1/stream").status_code == 401


def test_an_open_stream_ends_when_the_server_stops(own_server: Server) -> None:
    server = own_server
    headers = {"authorization": f"Bearer {server.key}"}
    with httpx.stream("GET", f"{server.base}/v1/stream", headers=headers, timeout=30) as response:
        lines = response.iter_lines()
        assert next(lines).startswith("retry:")
        server.process.send_signal(signal.SIGTERM)
        with contextlib.suppress(httpx.RemoteProtocolError, httpx.ReadError):
            list(lines)  # ends (or breaks off) when the server stops; a ReadTimeout here fails the test
    assert server.process.wait(timeout=20) in (0, -signal.SIGTERM)  # uvicorn re-raises the signal
