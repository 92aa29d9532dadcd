"""Send one vendor webhook to callgate, signed the way that source expects.

    python examples/send.py SOURCE.json BODY.json [--times N]

SOURCE.json is the response of ``POST /v1/sources`` (it holds the generated secret, and for LiveKit the
API key). The body is sent byte for byte; the signature follows the source's verification scheme:
Standard Webhooks, HMAC, a LiveKit JWT minted with ``livekit-api``'s ``AccessToken``, or a bearer token.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
from livekit.api import AccessToken

from gateway.signing import HmacConfig, sign_hmac, sign_standard_webhooks


def headers_for(source: dict[str, Any], body: bytes) -> dict[str, str]:
    verification: dict[str, Any] = source["verification"]
    secret = str(source.get("secret") or "")
    scheme = verification["scheme"]
    if not secret:
        raise SystemExit("SOURCE.json has no generated secret: sign with the secret you configured")
    headers = {"content-type": "application/json"}
    if scheme == "standard-webhooks":
        msg_id, now = f"msg_{uuid.uuid4().hex}", int(time.time())
        headers |= {"webhook-id": msg_id, "webhook-timestamp": str(now)}
        headers["webhook-signature"] = sign_standard_webhooks(secret, msg_id, now, body)
    elif scheme == "hmac":
        config = HmacConfig.model_validate({**verification, "secrets": [secret]})
        timestamp = str(int(time.time())) if config.timestamp_header else None
        if config.timestamp_header and timestamp:
            headers[config.timestamp_header] = timestamp
        headers[config.signature_header] = sign_hmac(config, secret, body, timestamp)
    elif scheme == "livekit":
        digest = base64.b64encode(hashlib.sha256(body).digest()).decode()
        token = AccessToken(str(source["api_key"]), secret).with_sha256(digest).to_jwt()
        headers |= {"authorization": token, "content-type": "application/webhook+json"}
    else:
        headers["authorization"] = f"Bearer {secret}"
    return headers


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("source", type=Path)
    parser.add_argument("body", type=Path)
    parser.add_argument("--times", type=int, default=1, help="send the same webhook this many times")
    args = parser.parse_args()
    source = json.loads(args.source.read_text())
    body = args.body.read_bytes()
    headers = headers_for(source, body)
    for _ in range(args.times):
        response = httpx.post(str(source["hook_url"]), content=body, headers=headers, timeout=10)
        print(response.status_code, response.text)


if __name__ == "__main__":
    main()
