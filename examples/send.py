"""Send one vendor webhook to callgate, signed the way that source expects.

    python examples/send.py SOURCE.json BODY.json [--times N]

SOURCE.json is the response of ``POST /v1/sources`` (it holds the generated secret, and for LiveKit the
API key). The body is sent byte for byte; the signature follows the source's verification scheme:
Standard Webhooks, HMAC, a LiveKit JWT minted with ``livekit-api``'s ``AccessToken``, or a bearer token.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import httpx

from gateway.demo import signed_headers


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("source", type=Path)
    parser.add_argument("body", type=Path)
    parser.add_argument("--times", type=int, default=1, help="send the same webhook this many times")
    args = parser.parse_args()
    source = json.loads(args.source.read_text())
    body = args.body.read_bytes()
    headers = signed_headers(source, body)
    for _ in range(args.times):
        response = httpx.post(str(source["hook_url"]), content=body, headers=headers, timeout=10)
        print(response.status_code, response.text)


if __name__ == "__main__":
    main()
