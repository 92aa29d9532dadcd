"""A source's read-API credentials: what the API accepts, how they are stored, and the client credentials
built from them.

Optional per source. What is not secret (the API's base URL, graph8's organization id) is stored as is
(``sources.pull``) and shown; the token is sealed with the credentials key (``gateway.vault``, like CRM
credentials), never shown, never logged. The base URL is checked against the SSRF policy when it is saved,
and every request to it again (``GuardedTransport``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import null

from gateway.errors import ValidationFailed
from gateway.outbound.ssrf import TargetPolicy, check_target
from gateway.pull.base import Credentials
from gateway.pull.graph8 import Graph8Credentials
from gateway.pull.livekit import LiveKitCredentials
from gateway.vault import Vault

# the vendors whose read API callgate can list calls from (gateway.pull.<vendor>.reconcile); the
# qualifier publishes none. LiveKit's signs its requests with the source's own API key pair: no token
RECONCILABLE = ("graph8", "voiceapi", "callsv1", "voicecalls", "livekit")


class PullIn(BaseModel):
    """``pull`` on ``POST``/``PATCH /v1/sources``: the vendor's read API for this source."""

    model_config = ConfigDict(extra="forbid")
    base_url: str = Field(
        min_length=1,
        max_length=2000,
        description="the vendor API's base URL, with any path prefix before the documented paths",
    )
    token: str | None = Field(
        default=None,
        min_length=1,
        max_length=4000,
        description="the API token (bearer); write-only. Required the first time; omitted on a change: kept",
    )
    org_id: str | None = Field(
        default=None, min_length=1, max_length=200, description="graph8: the organization the key belongs to"
    )


async def stored_values(
    vendor: str, given: PullIn, policy: TargetPolicy, vault: Vault, current: Mapping[Any, Any] | None
) -> dict[str, Any]:
    """The columns for ``given`` (``current``: the source's row when it is a change)."""
    if vendor not in RECONCILABLE:
        raise ValidationFailed(
            f"callgate cannot read {vendor}'s API; pulls work for {', '.join(RECONCILABLE)}", field="pull"
        )
    await check_target(policy, given.base_url, field="pull.base_url")
    if vendor == "graph8" and given.org_id is None:
        raise ValidationFailed("graph8's API needs the key's organization id", field="pull.org_id")
    if vendor != "graph8" and given.org_id is not None:
        raise ValidationFailed("only graph8 takes an organization id", field="pull.org_id")
    if vendor == "livekit":
        if given.token is not None:
            raise ValidationFailed(
                "LiveKit's API is called with the source's own API key", field="pull.token"
            )
        return {"pull": {"base_url": given.base_url, "org_id": None}, "pull_token": None}
    token = current.get("pull_token") if given.token is None and current is not None else None
    if given.token is None and token is None:
        raise ValidationFailed("an API token is required", field="pull.token")
    return {
        "pull": {"base_url": given.base_url, "org_id": given.org_id},
        "pull_token": vault.seal({"token": given.token}) if given.token is not None else token,
    }


CLEARED: dict[str, Any] = {"pull": null(), "pull_token": None}  # SQL NULL, not JSON's null


def credentials(
    row: Mapping[Any, Any], vault: Vault
) -> Credentials | Graph8Credentials | LiveKitCredentials | None:
    """The client credentials of a source, or None when it has no pull settings."""
    pull = row.get("pull")
    if not pull:
        return None
    if row["vendor"] == "livekit":  # the source's own key pair (its webhooks' verification) signs the calls
        keys = (row["verification"] or {}).get("keys") or {}
        if not keys:
            return None
        api_key = sorted(keys)[0]
        return LiveKitCredentials(pull["base_url"], api_key, keys[api_key])
    if row.get("pull_token") is None:
        return None
    token = str(vault.open(row["pull_token"])["token"])
    if row["vendor"] == "graph8":
        return Graph8Credentials(pull["base_url"], token, pull["org_id"])
    return Credentials(pull["base_url"], token)
