"""Recordings that still play: a fresh signed link from the vendor when the one held is missing or about
to expire (``callsv1``'s ``/audio``, ``voicecalls``' 15-minute SAS URL).

Vendor links are credentials that die within minutes: they are kept only in this process's memory, until a
minute before they expire, and never stored or relayed. What callgate hands out instead is its own link
(``gateway.api.recordings``), which asks here on every click.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
from itsdangerous import URLSafeTimedSerializer

from gateway.model import format_ts, parse_ts
from gateway.pull import callsv1, voicecalls
from gateway.pull.base import Credentials, Missing, RecordingLink
from gateway.pull.source import credentials
from gateway.vault import Vault

PLAYABLE = ("callsv1", "voicecalls")  # vendors whose read API signs a playable link on request
SALT = "callgate.recording"


@dataclass(frozen=True, slots=True)
class RecordingLinks:
    """The gateway's own recording links (``/recordings/<token>``, ``gateway.api.recordings``): signed,
    expiring, no API key needed. What is relayed to subscribers and CRMs carries one of these as
    ``recording.url`` instead of the vendor's, so a link in a CRM note keeps playing after the vendor's
    15-minute one died. The vendor's reference stays in ``recording.vendor_ref``."""

    serializer: URLSafeTimedSerializer
    base_url: str
    ttl_seconds: int

    def url(self, tenant_id: str, call_id: str, ttl_seconds: int | None = None) -> str:
        ttl = ttl_seconds or self.ttl_seconds
        return (
            f"{self.base_url}/recordings/{self.serializer.dumps({'t': tenant_id, 'c': call_id, 'ttl': ttl})}"
        )

    def relay(self, tenant_id: str, call: dict[str, Any], now: datetime) -> dict[str, Any]:
        """``call`` (a public call document) as relayed: its recording, if any, as the gateway's link."""
        recording = call.get("recording")
        if not isinstance(recording, dict) or not (recording.get("available") or recording.get("url")):
            return call
        link = {
            "url": self.url(tenant_id, call["id"]),
            "expires_at": format_ts(now + timedelta(seconds=self.ttl_seconds)),
        }
        return {**call, "recording": {**recording, **link}}


class PlayableLinks:
    """The last fresh link per call (bounded: a busy console clicks through thousands of calls)."""

    MAX_ENTRIES = 2_000

    def __init__(self) -> None:
        self._links: dict[str, RecordingLink] = {}

    async def for_call(
        self,
        http: httpx.AsyncClient,
        vault: Vault,
        source: Mapping[Any, Any] | None,
        call: Mapping[Any, Any],
        now: datetime,
    ) -> str | None:
        """A URL that plays the call's recording now, or None when callgate cannot get one: no read-API
        settings for this vendor, or the vendor has none (404). Vendor failures raise ``VendorError``."""
        creds = credentials(source, vault) if source is not None and source["vendor"] in PLAYABLE else None
        if not isinstance(creds, Credentials):
            return _stored_link(call, now)
        cached = self._links.get(call["id"])
        vendor_call_id = str(call["vendor_call_id"])
        if call["vendor"] == "callsv1":
            link = await callsv1.playable_link(http, creds, vendor_call_id, cached=cached, now=now)
        else:
            link = await voicecalls.playable_link(http, creds, vendor_call_id, cached=cached, now=now)
        if isinstance(link, Missing):
            self._links.pop(call["id"], None)
            return None
        if len(self._links) >= self.MAX_ENTRIES:
            self._links.clear()
        self._links[call["id"]] = link
        return link.url


def _stored_link(call: Mapping[Any, Any], now: datetime) -> str | None:
    """The URL the webhooks gave, while it has not expired (a link without an expiry is trusted)."""
    recording = (call["data"] or {}).get("recording") or {}
    url = recording.get("url")
    if not isinstance(url, str) or not url.startswith(("https://", "http://")):
        return None
    expires = recording.get("expires_at")
    if isinstance(expires, str):
        try:
            if parse_ts(expires) <= now:
                return None
        except ValueError:
            return None
    return url
