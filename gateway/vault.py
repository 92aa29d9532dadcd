"""CRM credentials at rest: Fernet (AES-128-CBC + HMAC-SHA256) from ``cryptography``.

The key is ``CALLGATE_CREDENTIALS_KEY`` (a Fernet key; ``callgate`` prints how to make one) or, when unset,
derived from the gateway's secret key. Only the first keeps a stolen database dump from revealing CRM
tokens: a key derived from a secret stored in the same database protects against accidental exposure
(query logs, a careless export), not against someone holding the whole database. docs/crm.md says so.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Mapping
from typing import Any

from cryptography.fernet import Fernet, InvalidToken

from gateway.errors import CallgateError


class VaultError(CallgateError):
    """Stored credentials cannot be opened with this key (the key changed)."""

    status_code = 500
    code = "credentials_unreadable"


class Vault:
    def __init__(self, key: str | bytes) -> None:
        self._fernet = Fernet(key)

    @classmethod
    def from_secret(cls, secret: str) -> Vault:
        """A key derived from the gateway's secret (domain-separated, so it is not the cursor key)."""
        digest = hashlib.sha256(b"callgate.credentials\0" + secret.encode()).digest()
        return cls(base64.urlsafe_b64encode(digest))

    @staticmethod
    def new_key() -> str:
        return Fernet.generate_key().decode()

    def seal(self, values: Mapping[str, Any]) -> str:
        return self._fernet.encrypt(json.dumps(dict(values), sort_keys=True).encode()).decode()

    def open(self, token: str) -> dict[str, Any]:
        try:
            opened: dict[str, Any] = json.loads(self._fernet.decrypt(token.encode()))
        except (InvalidToken, ValueError):
            raise VaultError("stored credentials cannot be decrypted with the configured key") from None
        return opened
