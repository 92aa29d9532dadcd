"""Prefixed, time-ordered identifiers (``call_01J…``) and random secrets."""

from __future__ import annotations

import base64
import hashlib
import secrets

from ulid import ULID


def new_id(prefix: str) -> str:
    return f"{prefix}_{ULID()}"


def new_api_key() -> str:
    return "cgk_" + secrets.token_urlsafe(32)


def hash_api_key(key: str) -> str:
    """API keys carry 256 random bits, so one SHA-256 is the right hash (no stretching needed)."""
    return hashlib.sha256(key.encode()).hexdigest()


def new_whsec() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def new_token(nbytes: int = 32) -> str:
    return secrets.token_hex(nbytes)
