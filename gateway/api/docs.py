"""``GET /openapi.json`` (the generated OpenAPI 3.1 document) and ``GET /docs`` (Swagger UI over it).

Both take no key: the document describes the API, it holds no data. It is built on the first request, from
the app's own route table and the adapters and CRM kinds it was given, and kept on ``app.state``: a process
builds it once. ``/docs`` loads Swagger UI from ``/docs/assets`` (vendored from the ``swagger-ui-dist`` npm
package, its LICENSE and NOTICE beside it), never from a CDN, and turns off its online validator badge,
which would fetch from swagger.io: the page works on a machine with no way out.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from gateway.api import openapi, schemas
from gateway.api.common import services
from gateway.api.declare import Answer, Key, Operation, declare, undocumented
from gateway.inbound import InboundAdapter

ASSETS = Path(__file__).parent / "static" / "docs"

PAGE = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>callgate API</title>
  <link rel="icon" type="image/png" href="docs/assets/favicon-32x32.png">
  <link rel="stylesheet" href="docs/assets/swagger-ui.css">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="docs/assets/swagger-ui-bundle.js"></script>
  <script src="docs/assets/callgate-docs.js"></script>
</body>
</html>
"""


def vocabulary(adapters: Mapping[str, InboundAdapter], kinds: Iterable[str]) -> Mapping[str, Sequence[str]]:
    """The value sets the document names (``declare.VOCABULARY``): this app's vendors and CRM kinds."""
    vendors = sorted(adapters)
    return {
        "vendors": vendors,
        "kinds": sorted(kinds),
        "vendor_schemes": [_default_scheme(v, adapters[v].default_verification) for v in vendors],
    }


def _default_scheme(vendor: str, default: Mapping[str, Any]) -> str:
    """``voicecalls``: ``hmac`` (and the settings that differ from the scheme's defaults)."""
    settings = ", ".join(
        f"{k} `{v if isinstance(v, str) else json.dumps(v)}`" for k, v in default.items() if k != "scheme"
    )
    return f"`{vendor}`: `{default.get('scheme')}` ({settings or 'its defaults'})"


def document(request: Request) -> bytes:
    """The document as bytes: built on the first request and kept on ``app.state`` (two first requests at
    once may both build it; they build the same)."""
    state = request.app.state
    cached: bytes | None = getattr(state, "openapi_document", None)
    if cached is None:
        svc = services(request)
        built = openapi.build(request.app.routes, vocabulary(svc.adapters, svc.crm.specs))
        cached = json.dumps(built, ensure_ascii=False, separators=(",", ":")).encode()
        state.openapi_document = cached
    return cached


@declare(
    Operation(
        summary="This document",
        tag="operations",
        description="The OpenAPI 3.1 document of this gateway, generated from its route table.",
        key=Key.NONE,
        storage=False,
        answers=[Answer(200, "the document", schemas.OpenApiDocument)],
    )
)
async def openapi_json(request: Request) -> Response:
    return Response(document(request), media_type="application/json")


@undocumented("an HTML page over /openapi.json")
async def docs(request: Request) -> Response:
    return HTMLResponse(PAGE)


routes = [
    Route("/openapi.json", openapi_json, methods=["GET"]),
    Route("/docs", docs, methods=["GET"]),
    Mount("/docs/assets", app=StaticFiles(directory=ASSETS), name="docs-assets"),
]
