"""Signing in to the console through the test client, and the data its pages show."""

from __future__ import annotations

import re
from typing import Any

from tests.conftest import Gateway
from tests.helpers import FIXTURES, source_headers

_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def csrf_of(html: str) -> str:
    match = _CSRF.search(html)
    assert match, "the page has a form with a CSRF token"
    return match.group(1)


def sign_in(gateway: Gateway, api_key: str | None = None) -> str:
    """Signs the test client in (it keeps the cookie); the CSRF token of the new session."""
    client = gateway.client
    form = client.get("/console/login")
    assert form.status_code == 200, form.text
    answer = client.post(
        "/console/login",
        data={"csrf": csrf_of(form.text), "api_key": api_key or gateway.api_key, "next": "/console/calls"},
        follow_redirects=False,
    )
    assert answer.status_code == 303, answer.text
    assert answer.headers["location"] == "/console/calls"
    page = client.get("/console/calls")
    assert page.status_code == 200, page.text
    return csrf_of(page.text)


def post_call(gateway: Gateway, source: dict[str, Any], fixture: str = "call_completed.json") -> str:
    """A graph8 webhook of the fixture's call; the call's id."""
    body = (FIXTURES / "graph8" / fixture).read_bytes()
    response = gateway.post_hook(source, body, source_headers(source, body))
    assert response.status_code in (200, 202), response.text
    call_id: str = response.json()["calls"][0]["id"]
    return call_id


def subscribe(gateway: Gateway, url: str = "http://127.0.0.1:9/hook") -> dict[str, Any]:
    response = gateway.client.post("/v1/subscriptions", json={"url": url}, headers=gateway.headers)
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result
