"""Portal links in a browser: the page of one subscription and its deliveries, with a retry button.

``gateway.api.portal`` reads the link's token and the rows, and hands them here when the request prefers
HTML; the JSON answers stay as they were. The token is the credential, so the page is rendered without the
console's session and its navigation, and tells the browser not to pass the URL on as a referrer.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response

from gateway.console.web import html, redirect

STATUSES = ("pending", "succeeded", "dead")
_PRIVATE = {"referrer-policy": "no-referrer"}  # the token is in the URL


def page(
    request: Request,
    subscription: dict[str, Any],
    deliveries: list[dict[str, Any]],
    next_cursor: str | None,
) -> Response:
    token = request.path_params["token"]
    status = request.query_params.get("status", "")
    older = None
    if next_cursor is not None:
        query = {"status": status, "cursor": next_cursor} if status else {"cursor": next_cursor}
        older = f"/portal/{token}?" + urlencode(query)
    context = {
        "title": "Deliveries to your endpoint",
        "base": f"/portal/{token}",
        "subscription": subscription,
        "deliveries": deliveries,
        "statuses": STATUSES,
        "status": status,
        "older": older,
        "retried": request.query_params.get("retried", ""),
    }
    return html(request, "portal.html", context, headers=_PRIVATE)


def problem(request: Request, status_code: int, message: str) -> Response:
    """A link that does not open (bad, altered, expired, its subscription gone), or a bad request."""
    title = "This link does not open" if status_code == 401 else "Cannot do that"
    context = {"title": title, "message": message, "status_code": status_code}
    return html(request, "portal_problem.html", context, status_code, headers=_PRIVATE)


def retried(request: Request, delivery_id: str) -> Response:
    """Back to the page the button was on, saying which delivery is queued again."""
    response = redirect(f"/portal/{request.path_params['token']}?" + urlencode({"retried": delivery_id}))
    response.headers.update(_PRIVATE)
    return response
