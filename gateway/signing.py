"""Webhook verification on raw bytes: standard-webhooks, hmac, livekit and bearer.

Each scheme is a verifier built once per source configuration and called per request with the exact
body bytes and the request headers (a case-insensitive mapping). Whatever goes wrong - a missing or
malformed header, bad base64, a non-UTF-8 body, an expired token, any exception a library raises - ends
as one ``VerificationError``, which the HTTP layer answers with 401. Comparisons are constant-time.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal, Protocol

import jwt
from livekit.api import TokenVerifier
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, field_validator, model_validator
from standardwebhooks import Webhook

from gateway.clock import Clock
from gateway.errors import VerificationError

Headers = Mapping[str, str]

# --- configuration (what an operator stores per source) -------------------------------------------


class _Config(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class StandardWebhooksConfig(_Config):
    scheme: Literal["standard-webhooks"] = "standard-webhooks"
    secrets: list[str] = Field(min_length=1, max_length=10)
    tolerance_seconds: int = Field(default=300, ge=1, le=86_400)

    @field_validator("secrets")
    @classmethod
    def _decodable(cls, secrets: list[str]) -> list[str]:
        for secret in secrets:
            try:
                Webhook(secret)
            except Exception as exc:  # the library raises binascii.Error, its own errors, RuntimeError
                raise ValueError("each secret must be whsec_ followed by base64") from exc
        return secrets


HmacAlgorithm = Literal["sha256", "sha1", "sha512"]


class HmacConfig(_Config):
    scheme: Literal["hmac"] = "hmac"
    secrets: list[str] = Field(min_length=1, max_length=10)
    signature_header: str = Field(default="x-signature", min_length=1, max_length=100)
    timestamp_header: str | None = Field(default="x-timestamp", max_length=100)
    template: str | None = Field(default=None, max_length=200)
    algorithm: HmacAlgorithm = "sha256"
    encoding: Literal["hex", "base64"] = "hex"
    prefix: str = Field(default="", max_length=40)
    tolerance_seconds: int = Field(default=300, ge=1, le=86_400)

    @model_validator(mode="after")
    def _template(self) -> HmacConfig:
        template = self.template or ("{timestamp}.{body}" if self.timestamp_header else "{body}")
        if "{body}" not in template:
            raise ValueError("template must contain {body}")
        if "{timestamp}" in template and not self.timestamp_header:
            raise ValueError("template uses {timestamp} but no timestamp_header is set")
        object.__setattr__(self, "template", template)
        return self


class LiveKitConfig(_Config):
    scheme: Literal["livekit"] = "livekit"
    keys: dict[str, str] = Field(min_length=1, max_length=10)
    leeway_seconds: int = Field(default=60, ge=0, le=600)


class BearerConfig(_Config):
    scheme: Literal["bearer"] = "bearer"
    secrets: list[str] = Field(min_length=1, max_length=10)


VerificationConfig = Annotated[
    StandardWebhooksConfig | HmacConfig | LiveKitConfig | BearerConfig, Field(discriminator="scheme")
]
verification_adapter: TypeAdapter[VerificationConfig] = TypeAdapter(VerificationConfig)


def redact(config: VerificationConfig) -> dict[str, Any]:
    """The configuration as the API shows it: settings, with every secret cut to its last 4 characters."""

    def cut(secret: str) -> str:
        return "…" + secret[-4:]

    shown = config.model_dump()
    if isinstance(config, LiveKitConfig):
        shown["keys"] = {key: cut(secret) for key, secret in config.keys.items()}
    else:
        shown["secrets"] = [cut(s) for s in config.secrets]
    return shown


# --- verifiers ---------------------------------------------------------------------------------------


class Verifier(Protocol):
    def __call__(self, body: bytes, headers: Headers) -> None: ...


def _header(headers: Headers, *names: str) -> str:
    for name in names:
        value = headers.get(name)
        if value:
            return value
    raise VerificationError(f"missing {names[0]} header")


def _check_timestamp(raw: str, now: datetime, tolerance: int) -> int:
    if not raw.isascii() or not raw.isdigit() or len(raw) > 16:
        raise VerificationError("timestamp header is not an integer")
    value = int(raw)
    seconds = value // 1000 if value > 100_000_000_000 else value  # milliseconds are accepted too
    if abs(now.timestamp() - seconds) > tolerance:
        raise VerificationError("timestamp outside the tolerance")
    return seconds


def standard_webhooks(config: StandardWebhooksConfig, clock: Clock) -> Verifier:
    signers = [Webhook(secret) for secret in config.secrets]

    def verify(body: bytes, headers: Headers) -> None:
        msg_id = _header(headers, "webhook-id", "svix-id")
        raw_ts = _header(headers, "webhook-timestamp", "svix-timestamp")
        signature_header = _header(headers, "webhook-signature", "svix-signature")
        seconds = _check_timestamp(raw_ts, clock(), config.tolerance_seconds)
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            raise VerificationError("body is not UTF-8") from None
        passed: list[bytes] = []
        for entry in signature_header.split():
            version, sep, value = entry.partition(",")
            if version != "v1" or not sep:
                continue
            try:
                passed.append(base64.b64decode(value, validate=True))
            except (binascii.Error, ValueError):
                continue
        if not passed:
            raise VerificationError("no v1 signature in webhook-signature")
        when = datetime.fromtimestamp(seconds, UTC)
        matched = False
        for signer in signers:
            expected = base64.b64decode(signer.sign(msg_id, when, text).split(",", 1)[1])
            for candidate in passed:
                matched |= hmac.compare_digest(expected, candidate)
        if not matched:
            raise VerificationError("no matching signature")

    return verify


def _signed_content(template: str, body: bytes, timestamp: str | None) -> bytes:
    if timestamp is not None:
        template = template.replace("{timestamp}", timestamp)
    head, _, tail = template.partition("{body}")
    return head.encode() + body + tail.encode()


def hmac_scheme(config: HmacConfig, clock: Clock) -> Verifier:
    digest: Callable[[], Any] = getattr(hashlib, config.algorithm)
    keys = [s.encode() for s in config.secrets]
    template = config.template or "{body}"

    def decode(value: str) -> bytes:
        try:
            if config.encoding == "hex":
                return bytes.fromhex(value)
            return base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            raise VerificationError("signature is not valid " + config.encoding) from None

    def verify(body: bytes, headers: Headers) -> None:
        provided = _header(headers, config.signature_header).strip()
        if config.prefix:
            if not provided.startswith(config.prefix):
                raise VerificationError(f"signature does not start with {config.prefix!r}")
            provided = provided[len(config.prefix) :]
        candidate = decode(provided)
        timestamp = None
        if config.timestamp_header:
            timestamp = _header(headers, config.timestamp_header).strip()
            _check_timestamp(timestamp, clock(), config.tolerance_seconds)
        content = _signed_content(template, body, timestamp)
        matched = False
        for key in keys:
            matched |= hmac.compare_digest(hmac.new(key, content, digest).digest(), candidate)
        if not matched:
            raise VerificationError("no matching signature")

    return verify


def livekit_scheme(config: LiveKitConfig) -> Verifier:
    verifiers = {
        key: TokenVerifier(key, secret, leeway=timedelta(seconds=config.leeway_seconds))
        for key, secret in config.keys.items()
    }

    def verify(body: bytes, headers: Headers) -> None:
        token = _header(headers, "authorization").strip()
        if token[:7].lower() == "bearer ":
            token = token[7:].strip()  # LiveKit sends the bare JWT; a proxy may add the prefix
        try:
            issuer = jwt.decode(token, options={"verify_signature": False}).get("iss")
        except jwt.PyJWTError:
            raise VerificationError("authorization is not a JWT") from None
        verifier = verifiers.get(issuer) if isinstance(issuer, str) else None
        if verifier is None:
            raise VerificationError("token issuer is not a configured API key")
        try:
            claims = verifier.verify(token)
        except Exception:  # PyJWT errors and anything the claim parsing raises
            raise VerificationError("token does not verify") from None
        if not claims.sha256:
            raise VerificationError("token has no sha256 claim")
        try:
            claimed = base64.b64decode(claims.sha256, validate=True)
        except (binascii.Error, ValueError):
            raise VerificationError("sha256 claim is not base64") from None
        if not hmac.compare_digest(hashlib.sha256(body).digest(), claimed):
            raise VerificationError("body does not match the token's sha256")

    return verify


def bearer_scheme(config: BearerConfig) -> Verifier:
    tokens = [s.encode() for s in config.secrets]

    def verify(body: bytes, headers: Headers) -> None:
        value = _header(headers, "authorization").strip()
        if value[:7].lower() != "bearer ":
            raise VerificationError("authorization is not a bearer token")
        given = value[7:].strip().encode()
        matched = False
        for token in tokens:
            matched |= hmac.compare_digest(given, token)
        if not matched:
            raise VerificationError("bearer token does not match")

    return verify


def build_verifier(config: VerificationConfig, clock: Clock) -> Verifier:
    match config:
        case StandardWebhooksConfig():
            return standard_webhooks(config, clock)
        case HmacConfig():
            return hmac_scheme(config, clock)
        case LiveKitConfig():
            return livekit_scheme(config)
        case BearerConfig():
            return bearer_scheme(config)


# --- signing helpers (tests, the demo, and outbound delivery later) ------------------------------------


def sign_standard_webhooks(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    return str(Webhook(secret).sign(msg_id, datetime.fromtimestamp(timestamp, UTC), body.decode("utf-8")))


def sign_hmac(config: HmacConfig, secret: str, body: bytes, timestamp: str | None) -> str:
    digest = hmac.new(
        secret.encode(),
        _signed_content(config.template or "{body}", body, timestamp),
        getattr(hashlib, config.algorithm),
    ).digest()
    encoded = digest.hex() if config.encoding == "hex" else base64.b64encode(digest).decode()
    return config.prefix + encoded
