"""Signing in to the console: the cookie (what it holds, its flags, its lifetime), a revoked key, CSRF."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import pytest
from itsdangerous import TimestampSigner, URLSafeTimedSerializer

from gateway import auth
from gateway.clock import system_clock
from gateway.console.session import COOKIE, LIFETIME
from gateway.store.db import Database
from tests.conftest import Gateway, make_settings, start_gateway
from tests.console.helpers import csrf_of, sign_in


def cookie_claims(gateway: Gateway) -> dict[str, Any]:
    """What the session cookie holds (read without the key: only the signature needs it)."""
    raw = gateway.client.cookies.get(COOKIE)
    assert raw
    _, claims = URLSafeTimedSerializer("not the key", salt="callgate.console").loads_unsafe(raw)
    assert isinstance(claims, dict)
    return claims


def revoke_all_keys(db_url: str, tenant_id: str) -> None:
    async def work() -> None:
        db = Database(db_url)
        try:
            for key in await auth.list_api_keys(db, tenant_id=tenant_id):
                await auth.revoke_api_key(db, key["id"], system_clock)
        finally:
            await db.dispose()

    asyncio.run(work())


def test_pages_send_a_visitor_to_the_sign_in_page(gateway: Gateway) -> None:
    client = gateway.client
    for path in ("/console", "/console/calls?vendor=graph8", "/console/subscriptions", "/console/deliveries"):
        answer = client.get(path, follow_redirects=False)
        assert answer.status_code == 303, path
        assert answer.headers["location"].startswith("/console/login?next=")
    answer = client.get("/console/calls?vendor=graph8", follow_redirects=False)
    assert answer.headers["location"] == "/console/login?next=%2Fconsole%2Fcalls%3Fvendor%3Dgraph8"
    posted = client.post("/console/sources", data={"name": "x", "vendor": "graph8"}, follow_redirects=False)
    assert posted.status_code == 303
    assert client.get("/v1/sources", headers=gateway.headers).json()["data"] == []
    assert client.get("/console/stream").status_code == 401  # an EventSource must not follow a redirect


def test_signing_in_keeps_the_key_id_in_a_signed_http_only_cookie_never_the_key(gateway: Gateway) -> None:
    client = gateway.client
    form = client.get("/console/login")
    assert form.status_code == 200
    anonymous = cookie_claims(gateway)
    assert set(anonymous) == {"s"}
    answer = client.post(
        "/console/login",
        data={"csrf": csrf_of(form.text), "api_key": gateway.api_key, "next": "/console/deliveries"},
        follow_redirects=False,
    )
    assert answer.status_code == 303
    assert answer.headers["location"] == "/console/deliveries"
    set_cookie = answer.headers["set-cookie"]
    assert f"Max-Age={LIFETIME}" in set_cookie
    assert "HttpOnly" in set_cookie
    assert "samesite=lax" in set_cookie.lower()
    assert "Path=/console" in set_cookie
    assert "Secure" not in set_cookie  # http://testserver
    claims = cookie_claims(gateway)
    assert claims["t"] == gateway.tenant_id
    assert claims["k"].startswith("key_")
    assert claims["s"] != anonymous["s"]  # a new session id on sign-in: no fixation
    assert gateway.api_key not in set_cookie
    assert gateway.api_key not in str(claims)
    page = client.get("/console/calls")
    assert page.status_code == 200
    assert gateway.tenant_id in page.text
    assert page.headers["cache-control"] == "no-store"
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]


def test_a_next_that_leaves_the_console_goes_to_the_calls(gateway: Gateway) -> None:
    for target in (
        "https://evil.example/",
        "//evil.example/console",
        "/v1/calls",
        "/console/login",
        "/consolex",
    ):
        form = gateway.client.get("/console/login")
        answer = gateway.client.post(
            "/console/login",
            data={"csrf": csrf_of(form.text), "api_key": gateway.api_key, "next": target},
            follow_redirects=False,
        )
        assert answer.headers["location"] == "/console/calls", target
        gateway.client.cookies.clear()


def test_a_bad_key_or_an_operator_key_does_not_sign_in(gateway: Gateway) -> None:
    client = gateway.client
    huge = client.post("/console/login", data={"api_key": "k" * 100_000})
    assert huge.status_code == 413  # refused before the form is read
    for key, status, says in (
        ("cgk_not-a-key", 401, "unknown or revoked"),
        ("", 422, "Enter an API key"),
        (gateway.operator_key, 403, "operator key"),
    ):
        form = client.get("/console/login")
        answer = client.post(
            "/console/login", data={"csrf": csrf_of(form.text), "api_key": key}, follow_redirects=False
        )
        assert answer.status_code == status
        assert says in answer.text
        assert "t" not in cookie_claims(gateway)
        assert client.get("/console/calls", follow_redirects=False).status_code == 303


def test_a_revoked_key_loses_its_session_at_once(gateway: Gateway, db_url: str) -> None:
    sign_in(gateway)
    assert gateway.client.get("/console/calls").status_code == 200
    revoke_all_keys(db_url, gateway.tenant_id)
    answer = gateway.client.get("/console/calls", follow_redirects=False)
    assert answer.status_code == 303
    assert "notice=revoked" in answer.headers["location"]
    assert f'{COOKIE}=""' in answer.headers["set-cookie"]  # the stale cookie is dropped
    assert "no longer valid" in gateway.client.get(answer.headers["location"]).text


def test_an_expired_cookie_is_refused(gateway: Gateway, monkeypatch: pytest.MonkeyPatch) -> None:
    sign_in(gateway)
    later = int(time.time()) + LIFETIME + 5
    monkeypatch.setattr(TimestampSigner, "get_timestamp", lambda self: later)
    answer = gateway.client.get("/console/calls", follow_redirects=False)
    assert answer.status_code == 303
    assert "notice=expired" in answer.headers["location"]
    assert "session expired" in gateway.client.get(answer.headers["location"]).text


def test_signing_out_ends_the_session(gateway: Gateway) -> None:
    token = sign_in(gateway)
    answer = gateway.client.post("/console/logout", data={"csrf": token}, follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"] == "/console/login?notice=signed_out"
    assert gateway.client.get("/console/calls", follow_redirects=False).status_code == 303


def test_a_post_without_the_right_csrf_token_is_a_403_page_and_changes_nothing(gateway: Gateway) -> None:
    token = sign_in(gateway)
    client = gateway.client
    altered = ("y" if token[0] == "x" else "x") + token[1:]  # (never the token itself)
    for data in ({}, {"csrf": ""}, {"csrf": altered}, {"csrf": token + "x"}):
        answer = client.post("/console/sources", data={**data, "name": "n", "vendor": "graph8"})
        assert answer.status_code == 403
        assert answer.headers["content-type"].startswith("text/html")
        assert "security token" in answer.text
    assert client.get("/v1/sources", headers=gateway.headers).json()["data"] == []
    assert client.post("/console/logout", data={}, follow_redirects=False).status_code == 403
    assert client.get("/console/calls", follow_redirects=False).status_code == 200  # still signed in

    old = token
    sign_in(gateway)  # a new session: the old one's token no longer works
    assert (
        client.post("/console/sources", data={"csrf": old, "name": "n", "vendor": "graph8"}).status_code
        == 403
    )
    gateway.client.cookies.clear()
    form = client.get("/console/login")
    assert csrf_of(form.text)
    stolen = client.post("/console/login", data={"csrf": old, "api_key": gateway.api_key})
    assert stolen.status_code == 403  # the sign-in form has its own token


@pytest.fixture
def https_gateway(db_url: str) -> Iterator[Gateway]:
    yield from start_gateway(make_settings(db_url, public_url="https://gateway.example", worker=False))


def test_the_cookie_is_secure_when_the_gateway_is_https(https_gateway: Gateway) -> None:
    answer = https_gateway.client.get("/console/login")
    assert "Secure" in answer.headers["set-cookie"]
