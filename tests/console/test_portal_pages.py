"""Portal links opened in a browser: an HTML page of one subscription with retry buttons, and clear 401 pages
for a bad or expired link; the JSON answers stay as they were (tests/api/test_portal.py)."""

from __future__ import annotations

import re
import time

import pytest
from itsdangerous import TimestampSigner

from tests.conftest import Gateway
from tests.console.helpers import csrf_of, post_call, sign_in, subscribe

BROWSER = {"accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}


def portal_path(gateway: Gateway, subscription_id: str, ttl: int = 3600) -> str:
    response = gateway.client.post(
        f"/v1/subscriptions/{subscription_id}/portal-link", json={"ttl_seconds": ttl}, headers=gateway.headers
    )
    assert response.status_code == 201, response.text
    url: str = response.json()["url"]
    return url.removeprefix("http://testserver")


def test_a_browser_gets_a_page_of_one_subscription_and_a_client_gets_json(gateway: Gateway) -> None:
    mine, theirs = (
        subscribe(gateway, "http://127.0.0.1:9/mine"),
        subscribe(gateway, "http://127.0.0.1:9/theirs"),
    )
    post_call(gateway, gateway.create_source("graph8"))
    path = portal_path(gateway, mine["id"])
    gateway.client.cookies.clear()  # no console session: the link alone

    page = gateway.client.get(path, headers=BROWSER)
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert page.headers["referrer-policy"] == "no-referrer"
    assert "http://127.0.0.1:9/mine" in page.text
    assert "http://127.0.0.1:9/theirs" not in page.text
    assert theirs["id"] not in page.text
    assert mine["secret"] not in page.text
    assert "/console/" not in page.text.replace("/console/static/", "")  # no console navigation

    as_json = gateway.client.get(path)  # */* (httpx's default): JSON, as before
    assert as_json.headers["content-type"] == "application/json"
    deliveries = as_json.json()["deliveries"]
    assert deliveries
    for delivery in deliveries:
        assert f'id="delivery-{delivery["id"]}"' in page.text
    assert gateway.client.get(path, headers={"accept": "application/json, text/html;q=0.5"}).json()

    retry = re.search(r'<form method="post" action="([^"]+/retry)"', page.text)
    assert retry
    answer = gateway.client.post(retry.group(1), headers=BROWSER, follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"].startswith(f"{path}?retried=msg_")
    after = gateway.client.get(answer.headers["location"], headers=BROWSER)
    assert "is queued to be sent again now" in after.text

    filtered = gateway.client.get(path, params={"status": "dead"}, headers=BROWSER)
    assert 'id="delivery-' not in filtered.text
    bad_filter = gateway.client.get(path, params={"status": "lost"}, headers=BROWSER)
    assert bad_filter.status_code == 422
    assert bad_filter.headers["content-type"].startswith("text/html")


def test_a_bad_or_expired_link_is_a_clear_401_page(gateway: Gateway, monkeypatch: pytest.MonkeyPatch) -> None:
    sub = subscribe(gateway)
    path = portal_path(gateway, sub["id"], ttl=60)
    for bad in ("/portal/not-a-token", path[:-3] + ("AAA" if not path.endswith("AAA") else "BBB")):
        page = gateway.client.get(bad, headers=BROWSER)
        assert page.status_code == 401
        assert page.headers["content-type"].startswith("text/html")
        assert "not a valid portal link" in page.text
        assert gateway.client.get(bad).json()["error"]["code"] == "unauthorized"  # JSON still
    refused = gateway.client.post(f"{path}/deliveries/dlv_nope/retry", headers=BROWSER)
    assert refused.status_code == 404
    assert refused.headers["content-type"].startswith("text/html")

    later = int(time.time()) + 61
    monkeypatch.setattr(TimestampSigner, "get_timestamp", lambda self: later)
    expired = gateway.client.get(path, headers=BROWSER)
    assert expired.status_code == 401
    assert "expired" in expired.text
    assert "Ask whoever sent you this link for a new one" in expired.text


def test_the_console_makes_portal_links(gateway: Gateway) -> None:
    sub = subscribe(gateway)
    token = sign_in(gateway)
    page = gateway.client.get(f"/console/subscriptions/{sub['id']}")
    assert csrf_of(page.text) == token
    made = gateway.client.post(
        f"/console/subscriptions/{sub['id']}/portal-link", data={"csrf": token, "ttl_seconds": "86400"}
    )
    assert made.status_code == 201
    link = re.search(r'id="portal-url" href="([^"]+)"', made.text)
    assert link
    assert link.group(1).startswith("http://testserver/portal/")
    opened = gateway.client.get(link.group(1).removeprefix("http://testserver"), headers=BROWSER)
    assert opened.status_code == 200
    assert sub["url"] in opened.text
    odd = gateway.client.post(
        f"/console/subscriptions/{sub['id']}/portal-link", data={"csrf": token, "ttl_seconds": "31536000"}
    )
    assert odd.status_code == 422
