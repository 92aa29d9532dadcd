"""Limits at the edge, against a real ``callgate serve`` over real sockets (``gateway.edge``).

Small limits are configured so each case is reached quickly; socket timeouts only bound how long a test
waits for the server's answer, nothing here asserts a duration.
"""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.process import free_port, run_cli, start_server

LIMITS = {
    "CALLGATE_MAX_REQUEST_LINE_BYTES": "1024",
    "CALLGATE_MAX_HEADER_BYTES": "4096",
    "CALLGATE_HEADER_TIMEOUT_SECONDS": "1",
    "CALLGATE_BODY_TIMEOUT_SECONDS": "1",
    "CALLGATE_KEEP_ALIVE_SECONDS": "1",
    "CALLGATE_MAX_CONNECTIONS": "8",
    "CALLGATE_WORKER": "false",
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, str]]:
    """The port of a running gateway, and the id of a source on it."""
    url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('edge') / 'callgate.db'}"
    tenant = run_cli(url, "tenants", "create", "edge")["tenant_id"]
    source = run_cli(url, "sources", "create", "--tenant", tenant, "--vendor", "graph8")["id"]
    port = free_port()
    process = start_server(url, port, stdout=subprocess.DEVNULL, **LIMITS)
    try:
        yield port, source
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


def connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=15)
    return sock


def read_all(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection."""
    chunks = []
    while True:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks)


def status_of(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/1.1 ") else 0


def test_an_ordinary_request_is_served_and_kept_alive(server: tuple[int, str]) -> None:
    port, source = server
    with httpx.Client(base_url=f"http://127.0.0.1:{port}") as client:
        for _ in range(3):  # the same connection, one request after another
            assert client.get("/healthz").status_code == 200
        response = client.post(f"/hooks/{source}", content=b"x" * 50_000)
        assert response.status_code == 401  # read whole and refused for its signature, not its size


def test_a_long_request_line_is_414(server: tuple[int, str]) -> None:
    with connect(server[0]) as sock:
        sock.sendall(b"GET /" + b"a" * 2000 + b" HTTP/1.1\r\nhost: x\r\n\r\n")
        answer = read_all(sock)
    assert status_of(answer) == 414, answer[:200]


@pytest.mark.parametrize(
    "headers",
    [b"x-big: " + b"a" * 6000 + b"\r\n", b"".join(b"x-h%d: %s\r\n" % (i, b"b" * 90) for i in range(60))],
    ids=["one_big_header", "many_headers"],
)
def test_too_many_header_bytes_are_431(server: tuple[int, str], headers: bytes) -> None:
    with connect(server[0]) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nhost: x\r\n" + headers + b"\r\n")
        answer = read_all(sock)
    assert status_of(answer) == 431, answer[:200]


def test_a_header_without_end_is_cut_off_at_the_byte_limit(server: tuple[int, str]) -> None:
    with connect(server[0]) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nx-endless: ")
        sent = 0
        try:
            while sent < 4 * 1024 * 1024:  # the server must close long before 4 MB
                sock.sendall(b"a" * 4096)
                sent += 4096
        except (BrokenPipeError, ConnectionResetError):
            pass
        answer = read_all(sock)
    assert sent < 4 * 1024 * 1024
    assert status_of(answer) in (0, 431), answer[:200]


def test_headers_trickled_slowly_are_408(server: tuple[int, str]) -> None:
    with connect(server[0]) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\n")
        try:
            for _ in range(40):  # one byte every 0.1 s would take 4 s; the head deadline is 1 s
                sock.sendall(b"x")
                time.sleep(0.1)
        except (BrokenPipeError, ConnectionResetError):
            pass
        answer = read_all(sock)
    assert status_of(answer) == 408, answer[:200]


def test_a_connection_that_never_sends_a_request_is_closed(server: tuple[int, str]) -> None:
    with connect(server[0]) as sock:
        answer = read_all(sock)  # returns once the server closes; the socket timeout bounds the wait
    assert status_of(answer) == 408


def test_a_body_trickled_slowly_is_408(server: tuple[int, str]) -> None:
    port, source = server
    with connect(port) as sock:
        head = f"POST /hooks/{source} HTTP/1.1\r\nhost: x\r\ncontent-length: 1000\r\n\r\n"
        sock.sendall(head.encode() + b"{")
        answer = read_all(sock)
    assert status_of(answer) == 408, answer[:200]


def test_an_idle_keep_alive_connection_is_closed(server: tuple[int, str]) -> None:
    with connect(server[0]) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n")
        answer = read_all(sock)  # the answer, then the close once the keep-alive expires
    assert status_of(answer) == 200
    assert answer.count(b"HTTP/1.1 ") == 1


def test_connections_beyond_the_limit_get_503(server: tuple[int, str]) -> None:
    held = [connect(server[0]) for _ in range(10)]  # the limit is 8 at once
    try:
        extra = connect(server[0])
        extra.sendall(b"GET /healthz HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
        answer = read_all(extra)
        extra.close()
    finally:
        for sock in held:
            sock.close()
    assert status_of(answer) == 503, answer[:200]
    time.sleep(0.2)  # the held sockets are closed; the server serves again
    assert httpx.get(f"http://127.0.0.1:{server[0]}/healthz").status_code == 200
