"""The console in a real browser (Debian's chromium, driven by playwright) against a real ``callgate serve``
on a fresh SQLite file: sign in, the demo's six calls arriving live, a call's timeline, a subscription whose
endpoint answers 500 and its delivery retried, a portal link in a fresh browser, refused portal links, and
every page at 375 px. A screenshot of each page goes to ``build/screenshots/console/``.

One server, one browser and one signed-in page for the module (they are slow to start); the tests run in
order and build on each other, as a person clicking through would. The fixtures are module-scoped, not
session-scoped, on purpose: playwright's sync API keeps an event loop running in the main thread while it
is open, and every later test that calls ``asyncio.run`` (the SQLite template, ``start_gateway``) would fail.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from itsdangerous import TimestampSigner, URLSafeTimedSerializer

from gateway.app import ADAPTERS
from gateway.demo import run_demo
from tests.helpers import source_headers
from tests.outbound.receiver import Received, Receiver, Reply, receiver
from tests.process import free_port, seed, start_server

CHROMIUM = shutil.which("chromium")
if CHROMIUM is None:
    pytest.skip("no chromium executable on PATH (apt-get install chromium)", allow_module_level=True)

from playwright.sync_api import (  # noqa: E402
    Browser,
    BrowserContext,
    Page,
    ViewportSize,
    expect,
    sync_playwright,
)

SHOTS = Path(__file__).resolve().parents[2] / "build" / "screenshots" / "console"
SECRET = "browser-test-secret-key-0123456789abcdef"
PHONE: ViewportSize = {"width": 375, "height": 812}


@dataclass
class Server:
    base: str
    api_key: str
    tenant_id: str
    source: dict[str, Any]
    endpoint: Receiver
    failing: list[bool]

    def api(self, method: str, path: str, **kwargs: Any) -> Any:
        response = httpx.request(
            method,
            self.base + path,
            headers={"authorization": f"Bearer {self.api_key}"},
            timeout=10,
            **kwargs,
        )
        assert response.status_code < 300, response.text
        return response.json()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A real ``callgate serve`` (uvicorn) on a loopback port and a fresh SQLite file, with a receiver."""
    folder = tmp_path_factory.mktemp("browser")
    url = f"sqlite+aiosqlite:///{folder / 'callgate.db'}"
    seeded = seed(url)
    failing = [True]

    def answer(state: Receiver, request: Received) -> Reply:
        return (500, {}, b"endpoint down") if failing[0] else (200, {}, b"ok")

    port = free_port()
    process = start_server(
        url,
        port,
        CALLGATE_ALLOWED_TARGET_CIDRS='["127.0.0.0/8"]',
        CALLGATE_RETRY_SCHEDULE_SECONDS="[0]",  # one attempt, then dead: a failure shows at once
        CALLGATE_SECRET_KEY=SECRET,
        CALLGATE_WORKER_POLL_SECONDS="0.2",
    )
    try:
        with receiver(answer) as endpoint:
            yield Server(
                f"http://127.0.0.1:{port}",
                seeded["api_key"],
                seeded["tenant_id"],
                seeded["source"],
                endpoint,
                failing,
            )
    finally:
        process.terminate()
        process.wait(timeout=20)


@pytest.fixture(scope="module")
def browser(server: Server) -> Iterator[Browser]:
    """After the server: playwright's sync API runs an event loop in this thread, and ``seed`` needs none."""
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def context(browser: Browser, server: Server) -> Iterator[BrowserContext]:
    made = browser.new_context(base_url=server.base, viewport={"width": 1280, "height": 900})
    made.set_default_timeout(10_000)
    yield made
    made.close()


@pytest.fixture(scope="module")
def page(context: BrowserContext) -> Page:
    return context.new_page()


def shot(page: Page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def reload_until(page: Page, ready: Callable[[], bool], seconds: float = 10) -> None:
    """Server-rendered state that the worker changes: reload until it shows."""
    deadline = time.monotonic() + seconds
    while not ready():
        assert time.monotonic() < deadline, f"{page.url} never showed what the test waits for"
        time.sleep(0.2)
        page.reload()


def test_sign_in_with_the_keyboard(page: Page, server: Server) -> None:
    page.goto("/console/calls")
    expect(page).to_have_url(f"{server.base}/console/login?next=%2Fconsole%2Fcalls")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.className") == "skip"  # the first stop: skip to content
    expect(page.locator(".skip")).to_be_in_viewport()  # shown when focused
    shot(page, "login")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "api_key"
    page.keyboard.type("cgk_wrong")
    page.keyboard.press("Enter")
    expect(page.get_by_role("alert")).to_contain_text("unknown or revoked")
    page.get_by_label("API key").fill(server.api_key)
    page.keyboard.press("Enter")
    expect(page).to_have_url(f"{server.base}/console/calls")
    expect(page.get_by_role("heading", name="Calls")).to_be_visible()


def test_the_demos_six_calls_arrive_live(page: Page, server: Server, tmp_path: Path) -> None:
    expect(page.locator("[data-live][data-connected=true]")).to_be_attached()  # the stream is open
    headers = {"authorization": f"Bearer {server.api_key}"}
    with httpx.Client(base_url=server.base, headers=headers, timeout=10) as client:
        demo = run_demo(client, ADAPTERS, state=tmp_path / "demo-sources.json")
    assert len(demo["calls"]) == 6
    rows = page.locator("#calls-body tr")
    expect(rows).to_have_count(6)  # prepended by the script from the stream, without a reload
    for call in demo["calls"]:
        expect(page.locator(f"#row-{call['id']}")).to_contain_text("completed")
    page.reload()
    expect(rows).to_have_count(6)
    for vendor in ("graph8", "voiceapi", "callsv1", "qualifier", "voicecalls", "livekit"):
        expect(page.locator("#calls-body")).to_contain_text(vendor)
    shot(page, "calls")
    page.get_by_label("Vendor").select_option("livekit")
    page.get_by_role("button", name="Apply").click()
    expect(rows).to_have_count(1)


def test_a_calls_timeline_with_its_raw_events(page: Page, server: Server) -> None:
    page.goto("/console/calls?vendor=graph8")
    page.locator("#calls-body a").first.click()
    expect(page.get_by_role("heading", name="Timeline", exact=True)).to_be_visible()
    events = page.locator("ol.timeline > li")
    assert events.count() >= 2
    first = events.first
    first.locator("summary").click()
    expect(first.locator("pre")).to_be_visible()
    expect(first.locator("pre")).to_contain_text("{")
    expect(page.get_by_role("heading", name="Transcript", exact=True)).to_be_visible()
    shot(page, "call")


def test_a_subscription_whose_endpoint_fails_and_its_delivery_retried(page: Page, server: Server) -> None:
    page.goto("/console/subscriptions")
    page.get_by_label("Endpoint URL").fill(server.endpoint.url)
    page.get_by_label("Description").fill("the test receiver")
    page.get_by_role("button", name="Create subscription").click()
    expect(page.get_by_role("heading", name="Subscription created")).to_be_visible()
    expect(page.locator("#subscription-secret")).to_contain_text("whsec_")
    shot(page, "subscription-created")
    page.get_by_role("link", name="Go to the subscription").click()
    page.get_by_role("button", name="Send a test").click()
    expect(page.get_by_role("status")).to_contain_text("ping")
    server.endpoint.wait_for(1)

    (delivery,) = [d for d in server.api("GET", "/v1/deliveries")["data"] if d["event_type"] == "ping"]
    page.goto(f"/console/deliveries/{delivery['id']}")
    reload_until(page, lambda: "dead" in page.locator("#delivery-status").inner_text())
    expect(page.locator("#attempt-log")).to_contain_text("HTTP 500")
    shot(page, "delivery")

    server.failing[0] = False
    page.get_by_role("button", name="Retry now").click()
    expect(page.get_by_role("status")).to_contain_text("queued to be sent again")
    reload_until(page, lambda: "succeeded" in page.locator("#delivery-status").inner_text())
    expect(page.locator("#attempt-log > li")).to_have_count(2)
    page.goto("/console/deliveries")
    expect(page.locator(f"#delivery-{delivery['id']}")).to_contain_text("succeeded")
    shot(page, "deliveries")
    page.goto(f"/console/subscriptions/{delivery['subscription_id']}")
    shot(page, "subscription")
    page.goto("/console/subscriptions")
    shot(page, "subscriptions")


def test_a_portal_link_opens_in_a_fresh_browser_with_only_its_subscription(
    page: Page, browser: Browser, server: Server
) -> None:
    other = server.api("POST", "/v1/subscriptions", json={"url": "http://127.0.0.1:9/another-endpoint"})
    (mine,) = [s for s in server.api("GET", "/v1/subscriptions")["data"] if s["url"] == server.endpoint.url]
    page.goto(f"/console/subscriptions/{mine['id']}")
    page.get_by_label("Portal link for the endpoint's owner, valid for").select_option(label="1 day")
    page.get_by_role("button", name="Create portal link").click()
    url = page.locator("#portal-url").get_attribute("href")
    assert url
    assert url.startswith(f"{server.base}/portal/")

    stranger = browser.new_context()  # no cookie of the console: the link is the credential
    try:
        portal = stranger.new_page()
        portal.goto(url)
        expect(portal.locator("#portal-endpoint")).to_have_text(server.endpoint.url)
        content = portal.content()
        assert other["id"] not in content
        assert "another-endpoint" not in content
        assert "Sign out" not in content
        rows = portal.locator("tbody tr")
        expect(rows).to_have_count(1)  # the ping (retried, still one delivery); no other endpoint's
        expect(rows.first).to_contain_text("ping")
        shot(portal, "portal")
        portal.locator("tbody tr").first.get_by_role("button", name="Retry").click()
        expect(portal.get_by_role("status")).to_contain_text("queued to be sent again")
        assert "/console/" not in portal.url
    finally:
        stranger.close()


def test_a_bad_or_expired_portal_link_is_refused(
    browser: Browser, server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    (mine,) = [s for s in server.api("GET", "/v1/subscriptions")["data"] if s["url"] == server.endpoint.url]
    signer = URLSafeTimedSerializer(SECRET, salt="callgate.portal")
    two_hours_ago = int(time.time()) - 7200
    with monkeypatch.context() as patched:
        patched.setattr(TimestampSigner, "get_timestamp", lambda self: two_hours_ago)
        expired = signer.dumps({"t": server.tenant_id, "s": mine["id"], "ttl": 3600})
    stranger = browser.new_context(base_url=server.base)
    try:
        portal = stranger.new_page()
        answer = portal.goto("/portal/not-a-real-token")
        assert answer is not None
        assert answer.status == 401
        expect(portal.get_by_role("alert")).to_contain_text("not a valid portal link")
        answer = portal.goto(f"/portal/{expired}")
        assert answer is not None
        assert answer.status == 401
        expect(portal.get_by_role("alert")).to_contain_text("expired")
        shot(portal, "portal-expired")
    finally:
        stranger.close()


def test_sources_quarantine_and_crm_pages(page: Page, server: Server) -> None:
    page.goto("/console/sources")
    page.get_by_label("Name").fill("browser dialer")
    page.get_by_label("Vendor").select_option("graph8")
    page.get_by_role("button", name="Create source").click()
    expect(page.locator("#source-secret")).to_contain_text("whsec_")
    shot(page, "source-created")
    page.goto("/console/sources")
    expect(page.locator("tbody")).to_contain_text("browser dialer")
    shot(page, "sources")

    body = b'{"not": "a graph8 webhook"}'
    answer = httpx.post(
        f"{server.base}/hooks/{server.source['id']}",
        content=body,
        headers=source_headers(server.source, body),
    )
    assert answer.status_code == 400
    page.goto("/console/quarantine")
    shot(page, "quarantine")
    page.locator("tbody a").first.click()
    page.get_by_role("button", name="Replay through the current adapters").click()
    expect(page.locator("#replay-outcome")).to_contain_text("Still unreadable")
    shot(page, "quarantined")

    page.goto("/console/connections")
    page.get_by_label("Kind").select_option("hubspot")
    page.get_by_label("Base URL").fill("http://127.0.0.1:9")
    page.get_by_label("Credentials").fill('{"access_token": "anything"}')
    page.get_by_role("button", name="Create connection").click()
    expect(page.get_by_role("status")).to_contain_text("Connection created")
    shot(page, "connection")
    page.goto("/console/connections")
    shot(page, "connections")


def test_every_page_fits_a_375_px_screen(browser: Browser, context: BrowserContext, server: Server) -> None:
    phone = browser.new_context(base_url=server.base, viewport=PHONE)
    try:
        (session,) = context.cookies()
        phone.add_cookies(
            [{"name": session["name"], "value": session["value"], "url": server.base + "/console"}]
        )
        tab = phone.new_page()
        call = server.api("GET", "/v1/calls", params={"vendor": "callsv1"})["data"][0]
        delivery = server.api("GET", "/v1/deliveries")["data"][0]
        (sub,) = [
            s for s in server.api("GET", "/v1/subscriptions")["data"] if s["url"] == server.endpoint.url
        ]
        pages = {
            "calls": "/console/calls",
            "call": f"/console/calls/{call['id']}",
            "sources": "/console/sources",
            "subscriptions": "/console/subscriptions",
            "subscription": f"/console/subscriptions/{sub['id']}",
            "deliveries": "/console/deliveries",
            "delivery": f"/console/deliveries/{delivery['id']}",
            "quarantine": "/console/quarantine",
            "connections": "/console/connections",
        }
        for name, path in pages.items():
            tab.goto(path)
            expect(tab.locator("main h1")).to_be_visible()
            overflow = tab.evaluate("document.documentElement.scrollWidth - window.innerWidth")
            assert overflow <= 0, f"{name} is {overflow} px wider than the screen"
            shot(tab, f"{name}-375")
        phone.clear_cookies()
        tab.goto("/console/login")
        assert tab.evaluate("document.documentElement.scrollWidth - window.innerWidth") <= 0
        shot(tab, "login-375")
    finally:
        phone.close()
