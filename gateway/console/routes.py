"""The console's routes, mounted by ``gateway.app`` in its one route list. Every page is behind
``web.page`` (signed in, CSRF on POST); the sign-in form, the stream and the static files are not."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from gateway.console import calls, connections, deliveries, quarantine, signin, sources, subscriptions
from gateway.console.web import FORM_LIMIT, STATIC, error_page, page, signed_in


def post(path: str, handler: Callable[[Request], Awaitable[Response]]) -> Route:
    """A form's route: POST only, its body capped before it is parsed."""
    return Route(path, handler, methods=["POST"], max_body_size=FORM_LIMIT)


async def not_found(request: Request) -> Response:
    console, _ = await signed_in(request)
    return error_page(request, 404, "There is no such page in the console.", console)


routes: list[BaseRoute] = [
    Mount("/console/static", app=StaticFiles(directory=STATIC), name="console-static"),
    Route("/console", page(signin.home), methods=["GET"]),
    Route("/console/login", signin.login_form, methods=["GET"]),
    post("/console/login", signin.login),
    post("/console/logout", page(signin.logout)),
    Route("/console/stream", calls.stream, methods=["GET"]),
    Route("/console/calls", page(calls.list_page), methods=["GET"]),
    Route("/console/calls/{call_id}", page(calls.detail), methods=["GET"]),
    Route("/console/calls/{call_id}/row", page(calls.row), methods=["GET"]),
    Route("/console/sources", page(sources.list_page), methods=["GET"]),
    post("/console/sources", page(sources.create)),
    Route("/console/subscriptions", page(subscriptions.list_page), methods=["GET"]),
    post("/console/subscriptions", page(subscriptions.create)),
    Route("/console/subscriptions/{subscription_id}", page(subscriptions.detail), methods=["GET"]),
    post("/console/subscriptions/{subscription_id}/test", page(subscriptions.send_test)),
    post("/console/subscriptions/{subscription_id}/enabled", page(subscriptions.set_enabled)),
    post("/console/subscriptions/{subscription_id}/rotate-secret", page(subscriptions.rotate)),
    post("/console/subscriptions/{subscription_id}/portal-link", page(subscriptions.portal_link)),
    Route("/console/deliveries", page(deliveries.list_page), methods=["GET"]),
    Route("/console/deliveries/{delivery_id}", page(deliveries.detail), methods=["GET"]),
    post("/console/deliveries/{delivery_id}/retry", page(deliveries.retry)),
    Route("/console/quarantine", page(quarantine.list_page), methods=["GET"]),
    Route("/console/quarantine/{quarantine_id}", page(quarantine.detail), methods=["GET"]),
    post("/console/quarantine/{quarantine_id}/replay", page(quarantine.replay)),
    Route("/console/connections", page(connections.list_page), methods=["GET"]),
    post("/console/connections", page(connections.create)),
    Route("/console/connections/{connection_id}", page(connections.detail), methods=["GET"]),
    post("/console/connections/{connection_id}/test", page(connections.test)),
    Route("/console/{rest:path}", not_found, methods=["GET", "POST"]),
]
