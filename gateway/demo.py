"""``callgate demo``: sample calls from all six vendors, signed and sent to a running gateway.

It is a client of the public API, nothing more: it creates one source per vendor under the API key's
tenant (``POST /v1/sources``), signs each vendor's own samples (``InboundAdapter.samples``, in the vendor's
file) the way that source's verification expects, posts them to
``/hooks/{source_id}`` and reads the resulting calls back from ``/v1/calls``. Every run uses fresh ids and
the current time, so each run adds six new calls.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from gateway.clock import system_clock
from gateway.errors import CallgateError
from gateway.inbound import InboundAdapter
from gateway.signing import scheme_for, with_secret

JSON = dict[str, Any]


def signed_headers(source: Mapping[str, Any], body: bytes, now: int | None = None) -> dict[str, str]:
    """Headers a vendor would send for ``body`` to ``source`` (a ``POST /v1/sources`` response, which
    holds the generated secret and, for LiveKit, the API key)."""
    secret = str(source.get("secret") or "")
    if not secret:
        raise CallgateError("the source has no generated secret: sign with the secret you configured")
    config = with_secret(source["verification"], secret, source.get("api_key"))
    return scheme_for(config, system_clock).sign(body, now=now)


def samples(adapter: InboundAdapter, run: str, start: datetime) -> list[bytes]:
    if adapter.samples is None:
        return []
    return [json.dumps(doc).encode() for doc in adapter.samples(run, start)]


# --- the run ------------------------------------------------------------------------------------------


def _check(response: httpx.Response, what: str) -> JSON:
    if response.status_code >= 400:
        try:
            message = response.json()["error"]["message"]
        except (ValueError, KeyError, TypeError):
            message = response.text[:200]
        raise CallgateError(f"{what}: HTTP {response.status_code}: {message}")
    body: JSON = response.json()
    return body


def run_demo(
    client: httpx.Client, adapters: Mapping[str, InboundAdapter], *, vendors: list[str] | None = None
) -> JSON:
    """Creates a source per vendor, sends its samples, returns ``{"sources", "webhooks", "calls"}``."""
    run = secrets.token_hex(6)
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=10)
    sources: list[JSON] = []
    webhooks: list[JSON] = []
    calls: list[JSON] = []
    for vendor in vendors or [name for name, adapter in adapters.items() if adapter.samples]:
        source = _check(
            client.post("/v1/sources", json={"name": f"demo {vendor}", "vendor": vendor}),
            f"creating a {vendor} source",
        )
        sources.append({"id": source["id"], "vendor": vendor, "hook_url": source["hook_url"]})
        for body in samples(adapters[vendor], run, start):
            response = client.post(
                f"/hooks/{source['id']}", content=body, headers=signed_headers(source, body)
            )
            _check(response, f"sending a {vendor} webhook")
            webhooks.append({"vendor": vendor, "status": response.status_code})
        listed = _check(client.get("/v1/calls", params={"vendor": vendor, "limit": 100}), "listing calls")
        calls.extend(c for c in listed["data"] if c["source_id"] == source["id"])
    return {"run": run, "sources": sources, "webhooks": webhooks, "calls": calls}


def summary_lines(result: JSON) -> list[str]:
    lines = [f"sent {len(result['webhooks'])} signed webhooks to {len(result['sources'])} new sources", ""]
    lines.append(f"{'vendor':<11} {'call':<32} {'status':<10} {'direction':<9} {'outcome':<15} carries")
    for call in result["calls"]:
        carries = [
            name
            for name in ("transcript", "grade", "survey", "qualification", "recording", "billing", "issues")
            if call.get(name)
        ]
        lines.append(
            f"{call['vendor']:<11} {call['id']:<32} {call.get('status') or '-':<10} "
            f"{call.get('direction') or '-':<9} {call.get('outcome') or '-':<15} {', '.join(carries)}"
        )
    return lines
