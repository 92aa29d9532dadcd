"""Shared by the tests: fixtures on disk, ParsedEvent as JSON, and signing webhooks like the vendors do."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from gateway.clock import system_clock
from gateway.demo import signed_headers
from gateway.inbound import ParsedEvent
from gateway.signing import Hmac, HmacConfig, LiveKit, LiveKitConfig, StandardWebhooks, StandardWebhooksConfig

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
    if not out["unmapped"]:
        del out["unmapped"]  # the goldens predate the field; no fixture has an unmapped value
    if not out["invalid"]:
        del out["invalid"]  # nor a field dropped as unusable
    out["occurred_at"] = parsed.occurred_at.isoformat() if parsed.occurred_at else None
    result: dict[str, Any] = json.loads(json.dumps(out, default=str))
    return result


def standard_webhook_headers(secret: str, body: bytes, msg_id: str, at: int | None = None) -> dict[str, str]:
    scheme = StandardWebhooks(StandardWebhooksConfig(secrets=[secret]), system_clock)
    return scheme.sign(body, now=at, msg_id=msg_id)


def hmac_headers(config: HmacConfig, secret: str, body: bytes, at: int | None = None) -> dict[str, str]:
    return Hmac(config.model_copy(update={"secrets": [secret]}), system_clock).sign(body, now=at)


def livekit_headers(api_key: str, api_secret: str, body: bytes) -> dict[str, str]:
    """Exactly what LiveKit's server sends: a bare JWT minted by the SDK with the body's SHA-256."""
    return LiveKit(LiveKitConfig(keys={api_key: api_secret})).sign(body)


def source_headers(source: Mapping[str, Any], body: bytes, at: int | None = None) -> dict[str, str]:
    """What the source's vendor sends with ``body``, signed with the secret callgate generated for it
    (a ``POST /v1/sources`` response): every scheme through its own object, no per-vendor branches."""
    return signed_headers(source, body, now=at)


@dataclass
class FakeClock:
    """An injected clock the test moves by hand (retries, pauses, leases)."""

    now: datetime = field(default_factory=lambda: datetime.now(UTC).replace(microsecond=0))

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)
