"""A fast local subscriber for the delivery benchmarks: answers 200 at once and remembers when each call's
delivery arrived (``GET /stats``). Run as its own process: ``python -m bench.receiver --port N``."""

from __future__ import annotations

import argparse
import json
import time

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

arrivals: dict[str, float] = {}  # vendor call id -> first arrival (unix time)
count = 0


async def hook(request: Request) -> Response:
    global count
    body = await request.body()
    count += 1
    try:
        key = json.loads(body)["data"]["call"]["vendor_call_id"]
    except (ValueError, KeyError, TypeError):
        key = None
    if key is not None and key not in arrivals:
        arrivals[key] = time.time()
    return Response(b"ok")


async def stats(request: Request) -> Response:
    return JSONResponse({"count": count, "arrivals": arrivals})


async def reset(request: Request) -> Response:
    global count
    arrivals.clear()
    count = 0
    return Response(b"ok")


app = Starlette(
    routes=[
        Route("/hook", hook, methods=["POST"]),
        Route("/stats", stats, methods=["GET"]),
        Route("/reset", reset, methods=["POST"]),
    ]
)

if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning", access_log=False)
