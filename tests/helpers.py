"""Shared by the tests: fixtures on disk, ParsedEvent as JSON, and signing webhooks like the vendors do."""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from livekit.api import AccessToken

from adapters.base import ParsedEvent
from gateway.signing import HmacConfig, sign_hmac, sign_standard_webhooks

FIXTURES = Path(__file__).parent / "fixtures" / "inbound"


def fixture_cases(vendor: str | None = None) -> list[tuple[str, Path]]:
    vendors = [vendor] if vendor else sorted(p.name for p in FIXTURES.iterdir() if p.is_dir())
    return [
        (v, p)
        for v in vendors
        for p in sorted((FIXTURES / v).glob("*.json"))
        if not p.name.endswith((".expected.json", ".headers.json"))
    ]


def fixture_headers(path: Path) -> dict[str, str]:
    header_file = path.with_name(path.stem + ".headers.json")
    return json.loads(header_file.read_text()) if header_file.exists() else {}


def parsed_json(parsed: ParsedEvent) -> dict[str, Any]:
    """A ParsedEvent as plain JSON, for golden files and comparisons."""
    out = asdict(parsed)
    out["occurred_at"] = parsed.occurred_at.isoformat() if parsed.occurred_at else None
    result: dict[str, Any] = json.loads(json.dumps(out, default=str))
    return result


def standard_webhook_headers(secret: str, body: bytes, msg_id: str, at: int | None = None) -> dict[str, str]:
    at = int(time.time()) if at is None else at
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(at),
        "webhook-signature": sign_standard_webhooks(secret, msg_id, at, body),
        "content-type": "application/json",
    }


def hmac_headers(config: HmacConfig, secret: str, body: bytes, at: int | None = None) -> dict[str, str]:
    headers = {"content-type": "application/json"}
    timestamp = None
    if config.timestamp_header:
        timestamp = str(int(time.time()) if at is None else at)
        headers[config.timestamp_header] = timestamp
    headers[config.signature_header] = sign_hmac(config, secret, body, timestamp)
    return headers


def livekit_headers(api_key: str, api_secret: str, body: bytes) -> dict[str, str]:
    """Exactly what LiveKit's server sends: a bare JWT minted by the SDK with the body's SHA-256."""
    import base64
    import hashlib

    token = (
        AccessToken(api_key, api_secret)
        .with_sha256(base64.b64encode(hashlib.sha256(body).digest()).decode())
        .to_jwt()
    )
    return {"authorization": token, "content-type": "application/webhook+json", "user-agent": "LiveKit"}
