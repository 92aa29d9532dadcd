"""Webhook signatures on raw bytes: standard-webhooks, hmac, livekit and bearer.

One object per scheme knows everything about it, as standardwebhooks' ``Webhook`` does: ``verify`` (the
hook path, per request, with the exact body bytes and the request headers), ``sign`` (the headers a
vendor would send: the demo, the examples, the tests) and ``generate`` (the configuration and secret a
new source gets). Objects are built once per source configuration by ``scheme_for``.

Whatever goes wrong in ``verify`` - a missing or malformed header, bad base64, an
expired token, any exception a library raises - ends as one ``VerificationError``, which the HTTP layer
answers with 401. Comparisons are constant-time.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Any, ClassVar, Literal, Protocol

import jwt
from livekit.api import AccessToken, TokenVerifier
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, field_validator, model_validator
from standardwebhooks import Webhook

from gateway import storable
from gateway.clock import Clock
from gateway.errors import VerificationError
from gateway.ids import new_token, new_whsec

Headers = Mapping[str, str]

# --- configuration (what an operator stores per source) -------------------------------------------


class _Config(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    @model_validator(mode="before")
    @classmethod
    def _storable(cls, data: Any) -> Any:
        """A secret every store keeps as written: a lone surrogate or NUL is refused, never altered."""
        try:
            _, repaired = storable.document(data)
        except storable.TooDeep:
            raise ValueError("verification is nested too deeply") from None
        if repaired:
            raise ValueError("text must be valid Unicode without NUL characters")
        return data


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


# --- schemes ------------------------------------------------------------------------------------------


class Scheme(Protocol):
    """One verification scheme over one source's configuration."""

    def verify(self, body: bytes, headers: Headers) -> None:
        """Returns when the request is genuine; raises ``VerificationError`` otherwise."""
        ...

    def sign(self, body: bytes, *, now: int | None = None) -> dict[str, str]:
        """The headers a sender holding the (first) secret sends with ``body`` at unix time ``now``."""
        ...


@dataclass(frozen=True, slots=True)
class Generated:
    """A new source's verification: the configuration, its secret (shown once) and, for LiveKit, the key."""

    config: VerificationConfig
    secret: str
    api_key: str | None = None


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


def _any_match(expected: list[bytes], given: list[bytes]) -> bool:
    """Constant-time over every pair: no early exit reveals which secret or signature matched."""
    matched = False
    for want in expected:
        for candidate in given:
            matched |= hmac.compare_digest(want, candidate)
    return matched


def _unix(now: int | None) -> int:
    return int(time.time()) if now is None else now


def sign_standard_webhooks(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """``v1,<base64>`` over the raw bytes (outbound deliveries use it too). For a UTF-8 body it is exactly
    ``standardwebhooks.Webhook.sign``'s signature; ``tests/test_signing.py`` holds the two together."""
    return "v1," + base64.b64encode(_standard_mac(_whsec_key(secret), msg_id, str(timestamp), body)).decode()


def _whsec_key(secret: str) -> bytes:
    """The HMAC key of a ``whsec_`` secret, decoded as ``standardwebhooks.Webhook`` decodes it."""
    return base64.b64decode(secret.removeprefix("whsec_"))


def _standard_mac(key: bytes, msg_id: str, timestamp: str, body: bytes) -> bytes:
    try:
        content = f"{msg_id}.{timestamp}.".encode() + body
    except UnicodeEncodeError:
        raise VerificationError("webhook-id is not valid text") from None
    return hmac.new(key, content, hashlib.sha256).digest()


class StandardWebhooks:
    """Verifies on the raw bytes: the signed content is ``{id}.{timestamp}.`` followed by the body exactly as
    received, whatever its encoding (``Webhook.verify`` needs text, so a body that is not UTF-8 could not
    even be checked; such a body, once genuine, is the adapter's to refuse, and it is quarantined).
    ``tests/test_signing.py`` checks this against the library's own signatures."""

    name: ClassVar[str] = "standard-webhooks"

    def __init__(self, config: StandardWebhooksConfig, clock: Clock) -> None:
        self.config = config
        self.clock = clock
        self._keys = [_whsec_key(secret) for secret in config.secrets]

    @staticmethod
    def generate(defaults: Mapping[str, Any]) -> Generated:
        secret = new_whsec()
        return Generated(StandardWebhooksConfig(**{**defaults, "secrets": [secret]}), secret)

    def verify(self, body: bytes, headers: Headers) -> None:
        msg_id = _header(headers, "webhook-id", "svix-id")
        raw_ts = _header(headers, "webhook-timestamp", "svix-timestamp").strip()
        signature_header = _header(headers, "webhook-signature", "svix-signature")
        if raw_ts.isascii() and raw_ts.isdigit() and len(raw_ts) >= 12:
            raise VerificationError("webhook-timestamp must be Unix seconds (this looks like milliseconds)")
        _check_timestamp(raw_ts, self.clock(), self.config.tolerance_seconds)
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
        expected = [_standard_mac(key, msg_id, raw_ts, body) for key in self._keys]
        if not _any_match(expected, passed):
            raise VerificationError("no matching signature")

    def sign(self, body: bytes, *, now: int | None = None, msg_id: str | None = None) -> dict[str, str]:
        stamp = _unix(now)
        msg_id = msg_id or f"msg_{secrets.token_hex(12)}"
        return {
            "content-type": "application/json",
            "webhook-id": msg_id,
            "webhook-timestamp": str(stamp),
            "webhook-signature": sign_standard_webhooks(self.config.secrets[0], msg_id, stamp, body),
        }


def _signed_content(template: str, body: bytes, timestamp: str | None) -> bytes:
    if timestamp is not None:
        template = template.replace("{timestamp}", timestamp)
    head, _, tail = template.partition("{body}")
    return head.encode() + body + tail.encode()


class Hmac:
    name: ClassVar[str] = "hmac"

    def __init__(self, config: HmacConfig, clock: Clock) -> None:
        self.config = config
        self.clock = clock
        self._digest: Callable[[], Any] = getattr(hashlib, config.algorithm)
        self._keys = [s.encode() for s in config.secrets]
        self._template = config.template or "{body}"

    @staticmethod
    def generate(defaults: Mapping[str, Any]) -> Generated:
        secret = new_token()
        return Generated(HmacConfig(**{**defaults, "secrets": [secret]}), secret)

    def _decode(self, value: str) -> bytes:
        try:
            if self.config.encoding == "hex":
                return bytes.fromhex(value)
            return base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            raise VerificationError("signature is not valid " + self.config.encoding) from None

    def _mac(self, key: bytes, body: bytes, timestamp: str | None) -> bytes:
        return hmac.new(key, _signed_content(self._template, body, timestamp), self._digest).digest()

    def verify(self, body: bytes, headers: Headers) -> None:
        config = self.config
        provided = _header(headers, config.signature_header).strip()
        if config.prefix:
            if not provided.startswith(config.prefix):
                raise VerificationError(f"signature does not start with {config.prefix!r}")
            provided = provided[len(config.prefix) :]
        candidate = self._decode(provided)
        timestamp = None
        if config.timestamp_header:
            timestamp = _header(headers, config.timestamp_header).strip()
            _check_timestamp(timestamp, self.clock(), config.tolerance_seconds)
        if not _any_match([self._mac(key, body, timestamp) for key in self._keys], [candidate]):
            raise VerificationError("no matching signature")

    def signature(self, body: bytes, timestamp: str | None) -> str:
        """The signature header's value for ``body`` with the first secret."""
        digest = self._mac(self._keys[0], body, timestamp)
        encoded = digest.hex() if self.config.encoding == "hex" else base64.b64encode(digest).decode()
        return self.config.prefix + encoded

    def sign(self, body: bytes, *, now: int | None = None) -> dict[str, str]:
        headers = {"content-type": "application/json"}
        timestamp = None
        if self.config.timestamp_header:
            timestamp = str(_unix(now))
            headers[self.config.timestamp_header] = timestamp
        headers[self.config.signature_header] = self.signature(body, timestamp)
        return headers


class LiveKit:
    name: ClassVar[str] = "livekit"

    def __init__(self, config: LiveKitConfig) -> None:
        self.config = config
        self._verifiers = {
            key: TokenVerifier(key, secret, leeway=timedelta(seconds=config.leeway_seconds))
            for key, secret in config.keys.items()
        }

    @staticmethod
    def generate(defaults: Mapping[str, Any]) -> Generated:
        api_key, secret = "API" + secrets.token_hex(6), secrets.token_urlsafe(32)
        return Generated(LiveKitConfig(**{**defaults, "keys": {api_key: secret}}), secret, api_key)

    def verify(self, body: bytes, headers: Headers) -> None:
        token = _header(headers, "authorization").strip()
        if token[:7].lower() == "bearer ":
            token = token[7:].strip()  # LiveKit sends the bare JWT; a proxy may add the prefix
        try:
            issuer = jwt.decode(token, options={"verify_signature": False}).get("iss")
        except jwt.PyJWTError:
            raise VerificationError("authorization is not a JWT") from None
        verifier = self._verifiers.get(issuer) if isinstance(issuer, str) else None
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

    def sign(self, body: bytes, *, now: int | None = None) -> dict[str, str]:
        """What LiveKit's server sends: a bare JWT minted by the SDK, carrying the body's SHA-256.
        (The SDK stamps its own issue time; ``now`` is not used.)"""
        api_key, secret = next(iter(self.config.keys.items()))
        digest = base64.b64encode(hashlib.sha256(body).digest()).decode()
        token = AccessToken(api_key, secret).with_sha256(digest).to_jwt()
        return {"authorization": token, "content-type": "application/webhook+json", "user-agent": "LiveKit"}


class Bearer:
    name: ClassVar[str] = "bearer"

    def __init__(self, config: BearerConfig) -> None:
        self.config = config
        self._tokens = [s.encode() for s in config.secrets]

    @staticmethod
    def generate(defaults: Mapping[str, Any]) -> Generated:
        secret = new_token()
        return Generated(BearerConfig(**{**defaults, "secrets": [secret]}), secret)

    def verify(self, body: bytes, headers: Headers) -> None:
        value = _header(headers, "authorization").strip()
        if value[:7].lower() != "bearer ":
            raise VerificationError("authorization is not a bearer token")
        if not _any_match(self._tokens, [value[7:].strip().encode()]):
            raise VerificationError("bearer token does not match")

    def sign(self, body: bytes, *, now: int | None = None) -> dict[str, str]:
        return {"content-type": "application/json", "authorization": f"Bearer {self.config.secrets[0]}"}


GENERATORS: Mapping[str, Callable[[Mapping[str, Any]], Generated]] = {
    StandardWebhooks.name: StandardWebhooks.generate,
    Hmac.name: Hmac.generate,
    LiveKit.name: LiveKit.generate,
    Bearer.name: Bearer.generate,
}


def scheme_for(config: VerificationConfig, clock: Clock) -> Scheme:
    match config:
        case StandardWebhooksConfig():
            return StandardWebhooks(config, clock)
        case HmacConfig():
            return Hmac(config, clock)
        case LiveKitConfig():
            return LiveKit(config)
        case BearerConfig():
            return Bearer(config)


def generate(defaults: Mapping[str, Any]) -> Generated:
    """A new source's verification from its vendor's defaults (``{"scheme": …, settings…}``)."""
    settings = dict(defaults)
    return GENERATORS[str(settings.pop("scheme"))](settings)


def with_secret(shown: Mapping[str, Any], secret: str, api_key: str | None = None) -> VerificationConfig:
    """A source's configuration as the API shows it (secrets redacted) with its secret put back: what a
    sender holding the secret signs with (``callgate demo``, the examples)."""
    settings = dict(shown)
    if settings.get("scheme") == LiveKit.name:
        settings["keys"] = {api_key or next(iter(settings.get("keys") or {"": ""})): secret}
    else:
        settings["secrets"] = [secret]
    return verification_adapter.validate_python(settings)
