"""``callgate demo``: sample calls from all six vendors, signed and sent to a running gateway.

It is a client of the public API, nothing more: it needs one source per vendor under the API key's tenant,
signs each vendor's own samples (``InboundAdapter.samples``, in the vendor's file) the way that source's
verification expects, posts them to ``/hooks/{source_id}`` and reads the resulting calls back from
``/v1/calls``.

The sources are made once and then reused. A source's generated secret is shown only when it is created,
so the demo keeps what it needs to sign (per vendor: the source id, the secret and, for LiveKit, the API
key) in a state file, ``./var/demo-sources.json`` by default (``--state``): git-ignored, mode 0600, since
it holds secrets. Entries are keyed by the gateway's URL and a fingerprint of the API key (a key belongs to
one tenant of one database; the API has no route that names the caller's tenant), so another gateway,
database or tenant never sees them. A stored source is reused when ``GET /v1/sources/{id}`` still shows it,
enabled, for the same vendor and with the stored secret among its own; otherwise (deleted, disabled, its
secret changed, another database at the same URL) a new one is created and the file updated.

Every run uses fresh vendor call ids and the current time, so each run adds six new calls, and no sources
after the first.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import secrets
import tempfile
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from gateway.clock import system_clock
from gateway.errors import CallgateError
from gateway.inbound import InboundAdapter
from gateway.signing import scheme_for, with_secret

JSON = dict[str, Any]

DEFAULT_STATE = Path("var") / "demo-sources.json"
STATE_VERSION = 1
_SOURCE_ID = re.compile(r"src_[A-Za-z0-9]{1,64}")


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


# --- the state file: the demo's sources, per gateway and tenant ---------------------------------------


def gateway_key(base_url: str, authorization: str) -> str:
    """Where a gateway's entry lives in the state file: its URL and a fingerprint of the API key (never
    the key itself)."""
    fingerprint = hashlib.sha256(authorization.encode()).hexdigest()[:16]
    return f"{base_url.rstrip('/')} key:{fingerprint}"


def load_state(path: Path) -> JSON:
    """The state file's content; an empty state when there is none. A file that is not the demo's JSON
    is an error, not silently replaced: it holds the secrets of sources that would otherwise pile up."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {"version": STATE_VERSION, "gateways": {}}
    except OSError as exc:
        raise CallgateError(f"cannot read the demo's state file {path}: {exc.strerror}") from None
    try:
        state = json.loads(text)
    except ValueError:
        state = None
    if not isinstance(state, dict) or not isinstance(state.get("gateways"), dict):
        raise CallgateError(f"{path} is not the demo's state file: move it away or give --state")
    return state


def save_state(path: Path, state: Mapping[str, Any]) -> None:
    """Written whole to a new file that only its owner can read, then renamed over the old one."""
    if not path.parent.exists():
        path.parent.mkdir(parents=True, mode=0o700)
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")  # mode 0600
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(state, out, indent=2, sort_keys=True)
            out.write("\n")
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def _holds_secret(verification: Mapping[str, Any], stored: Mapping[str, Any]) -> bool:
    """Whether the source (as the API shows it: each secret cut to ``…`` and its last 4 characters) still
    has the stored secret, so what the demo signs is what it verifies."""
    shown = "…" + str(stored["secret"])[-4:]
    if verification.get("scheme") == "livekit":
        keys = verification.get("keys")
        return isinstance(keys, dict) and keys.get(stored.get("api_key")) == shown
    listed = verification.get("secrets")
    return isinstance(listed, list) and shown in listed


def _stored_source(client: httpx.Client, vendor: str, stored: Any) -> JSON | None:
    """The stored source, ready to sign with, when the gateway still has it as the demo left it."""
    if not (
        isinstance(stored, dict)
        and isinstance(stored.get("id"), str)
        and _SOURCE_ID.fullmatch(stored["id"])
        and isinstance(stored.get("secret"), str)
        and stored["secret"]
    ):
        return None
    response = client.get(f"/v1/sources/{stored['id']}")
    if response.status_code == 404:  # deleted, or another database answers at this URL
        return None
    shown = _check(response, f"reading the demo's {vendor} source")
    if shown.get("vendor") != vendor or not shown.get("enabled"):
        return None
    if not _holds_secret(shown.get("verification") or {}, stored):
        return None
    return {**shown, "secret": stored["secret"], "api_key": stored.get("api_key")}


def _new_source(client: httpx.Client, vendor: str) -> JSON:
    return _check(
        client.post("/v1/sources", json={"name": f"demo {vendor}", "vendor": vendor}),
        f"creating a {vendor} source",
    )


def demo_sources(client: httpx.Client, vendors: Iterable[str], state_path: Path) -> list[tuple[JSON, bool]]:
    """One source per vendor, each ``(source with its secret, reused)``: the stored one when it still
    works, else a new one (recorded in the state file before anything is sent)."""
    state = load_state(state_path)
    key = gateway_key(str(client.base_url), client.headers.get("authorization", ""))
    entry = state["gateways"].get(key)
    if not isinstance(entry, dict) or not isinstance(entry.get("sources"), dict):
        entry = {"url": str(client.base_url).rstrip("/"), "sources": {}}
    kept: JSON = entry["sources"]
    chosen: list[tuple[JSON, bool]] = []
    changed = False
    try:
        for vendor in vendors:
            source = _stored_source(client, vendor, kept.get(vendor))
            reused = source is not None
            if source is None:
                source = _new_source(client, vendor)
                kept[vendor] = {
                    "id": source["id"],
                    "secret": source.get("secret"),
                    **({"api_key": source["api_key"]} if source.get("api_key") else {}),
                }
                changed = True
            chosen.append((source, reused))
    finally:
        if changed:  # even when a later vendor failed: the sources made so far are reused next time
            state["version"] = STATE_VERSION
            state["gateways"][key] = entry
            save_state(state_path, state)
    return chosen


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
    client: httpx.Client,
    adapters: Mapping[str, InboundAdapter],
    *,
    vendors: list[str] | None = None,
    state: str | os.PathLike[str] | None = None,
) -> JSON:
    """Finds or creates a source per vendor (``state``: the state file, ``DEFAULT_STATE`` when None),
    sends its samples, returns ``{"run", "state", "sources", "webhooks", "calls"}``; each source is
    ``{"id", "vendor", "hook_url", "reused"}``."""
    state_path = Path(state) if state is not None else DEFAULT_STATE
    run = secrets.token_hex(6)
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=10)
    wanted = vendors or [name for name, adapter in adapters.items() if adapter.samples]
    sources: list[JSON] = []
    webhooks: list[JSON] = []
    calls: list[JSON] = []
    touched: list[str] = []
    for source, reused in demo_sources(client, wanted, state_path):
        vendor = source["vendor"]
        sources.append(
            {"id": source["id"], "vendor": vendor, "hook_url": source["hook_url"], "reused": reused}
        )
        for body in samples(adapters[vendor], run, start):
            response = client.post(
                f"/hooks/{source['id']}", content=body, headers=signed_headers(source, body)
            )
            answer = _check(response, f"sending a {vendor} webhook")
            webhooks.append({"vendor": vendor, "status": response.status_code})
            touched.extend(c["id"] for c in answer.get("calls") or [] if c["id"] not in touched)
    for call_id in touched:  # this run's calls only: a reused source also holds the earlier runs' calls
        calls.append(_check(client.get(f"/v1/calls/{call_id}"), "reading a call"))
    return {"run": run, "state": str(state_path), "sources": sources, "webhooks": webhooks, "calls": calls}


def summary_lines(result: JSON) -> list[str]:
    sources = result["sources"]
    created = [s["vendor"] for s in sources if not s["reused"]]
    if not created:
        made = f"{len(sources)} sources reused from {result['state']}"
    elif len(created) == len(sources):
        made = f"{len(sources)} new sources (kept in {result['state']}: the next run reuses them)"
    else:
        made = (
            f"{len(sources)} sources: {len(sources) - len(created)} reused, "
            f"{len(created)} new ({', '.join(created)}; kept in {result['state']})"
        )
    lines = [f"sent {len(result['webhooks'])} signed webhooks to {made}", ""]
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
