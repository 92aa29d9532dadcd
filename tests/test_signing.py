"""Verification schemes: known-answer vectors, rotation, tolerance with an injected clock, and malformed input
that must always end as VerificationError (401), never as another exception (500)."""

from __future__ import annotations

import base64
import contextlib
import hashlib
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from livekit.api import AccessToken
from standardwebhooks import Webhook

from gateway.clock import Clock
from gateway.errors import VerificationError
from gateway.signing import (
    BearerConfig,
    Hmac,
    HmacConfig,
    LiveKitConfig,
    StandardWebhooksConfig,
    scheme_for,
    sign_standard_webhooks,
    verification_adapter,
)
from tests.helpers import FIXTURES, livekit_headers


def verifier(config: Any, clock: Clock) -> Callable[[bytes, Mapping[str, str]], None]:
    return scheme_for(config, clock).verify


def hmac_signature(config: HmacConfig, secret: str, body: bytes, timestamp: str | None) -> str:
    """The signature a sender holding ``secret`` puts in the header."""
    return Hmac(config.model_copy(update={"secrets": [secret]}), lambda: clock_at(0)).signature(
        body, timestamp
    )


def clock_at(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


# research/outbound.md section 2, recomputed there with standardwebhooks 1.1.0
VECTORS = [
    (
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        "msg_p5jXN8AQM9LWM0D4loKWxJek",
        1614265330,
        b'{"test": 2432232314}',
        "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
    ),
    (
        "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD",
        "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk",
        1649367553,
        b'{"email":"test@example.com","username":"test_user"}',
        "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw=",
    ),
    (
        "whsec_plJ3nmyCDGBKInavdOK15jsl",
        "msg_loFOjxBNrRLzqYUf",
        1731705121,
        b'{"event_type":"ping","data":{"success":true}}',
        "v1,rAvfW3dJ/X/qxhsaXPOyyCGmRKsaKWcsNccKXlIktD0=",
    ),
]


def sw_headers(msg_id: str, ts: int, signature: str) -> dict[str, str]:
    return {"webhook-id": msg_id, "webhook-timestamp": str(ts), "webhook-signature": signature}


@pytest.mark.parametrize(("secret", "msg_id", "ts", "body", "signature"), VECTORS)
def test_standard_webhooks_known_answers(
    secret: str, msg_id: str, ts: int, body: bytes, signature: str
) -> None:
    verify = verifier(StandardWebhooksConfig(secrets=[secret]), lambda: clock_at(ts))
    verify(body, sw_headers(msg_id, ts, signature))
    # the same signature among other entries (rotation, other versions) still verifies
    verify(
        body, sw_headers(msg_id, ts, f"v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc= v2,abc {signature}")
    )


@given(body=st.text(max_size=200), msg_id=st.from_regex(r"msg_[A-Za-z0-9]{1,24}", fullmatch=True))
def test_standard_webhooks_bytes_signature_is_the_librarys(body: str, msg_id: str) -> None:
    """We sign and verify on the raw bytes; for any UTF-8 body that is the library's own signature."""
    secret, ts = VECTORS[0][0], 1_700_000_000
    ours = sign_standard_webhooks(secret, msg_id, ts, body.encode("utf-8", "surrogatepass"))
    if not any(0xD800 <= ord(c) <= 0xDFFF for c in body):
        assert ours == Webhook(secret).sign(msg_id, clock_at(ts), body)
    verify = verifier(StandardWebhooksConfig(secrets=[secret]), lambda: clock_at(ts))
    verify(body.encode("utf-8", "surrogatepass"), sw_headers(msg_id, ts, ours))


def test_standard_webhooks_verifies_a_body_that_is_not_utf8() -> None:
    secret, msg_id, ts = VECTORS[0][0], "msg_1", 1_700_000_000
    body = b'{"x": "\xff\xfe"}'
    verify = verifier(StandardWebhooksConfig(secrets=[secret]), lambda: clock_at(ts))
    verify(body, sw_headers(msg_id, ts, sign_standard_webhooks(secret, msg_id, ts, body)))
    with pytest.raises(VerificationError):
        verify(body, sw_headers(msg_id, ts, sign_standard_webhooks(secret, msg_id, ts, body[:-1])))
    with pytest.raises(VerificationError, match="seconds"):
        verify(body, sw_headers(msg_id, ts * 1000, sign_standard_webhooks(secret, msg_id, ts, body)))


def test_standard_webhooks_negative_vector_and_tampering() -> None:
    secret, msg_id, ts, body, _ = VECTORS[0]
    verify = verifier(StandardWebhooksConfig(secrets=[secret]), lambda: clock_at(ts))
    with pytest.raises(VerificationError):
        verify(body, sw_headers(msg_id, ts, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OA="))
    good = VECTORS[0][4]
    with pytest.raises(VerificationError):
        verify(body + b" ", sw_headers(msg_id, ts, good))
    with pytest.raises(VerificationError):
        verify(body, sw_headers("msg_other", ts, good))


def test_standard_webhooks_rotation_accepts_any_configured_secret() -> None:
    secret, msg_id, ts, body, signature = VECTORS[0]
    config = StandardWebhooksConfig(secrets=["whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD", secret])
    verifier(config, lambda: clock_at(ts))(body, sw_headers(msg_id, ts, signature))


@pytest.mark.parametrize("skew", [-301, 301])
def test_standard_webhooks_tolerance_uses_the_injected_clock(skew: int) -> None:
    secret, msg_id, ts, body, signature = VECTORS[0]
    verify = verifier(StandardWebhooksConfig(secrets=[secret]), lambda: clock_at(ts + skew))
    with pytest.raises(VerificationError, match="tolerance"):
        verify(body, sw_headers(msg_id, ts, signature))
    wide = StandardWebhooksConfig(secrets=[secret], tolerance_seconds=600)
    verifier(wide, lambda: clock_at(ts + skew))(body, sw_headers(msg_id, ts, signature))


def test_standard_webhooks_accepts_svix_headers() -> None:
    secret, msg_id, ts, body, signature = VECTORS[0]
    verify = verifier(StandardWebhooksConfig(secrets=[secret]), lambda: clock_at(ts))
    verify(body, {"svix-id": msg_id, "svix-timestamp": str(ts), "svix-signature": signature})


def test_bad_secret_is_refused_at_configuration() -> None:
    with pytest.raises(ValueError, match="whsec_"):
        verification_adapter.validate_python({"scheme": "standard-webhooks", "secrets": ["whsec_%%%"]})


# --- hmac ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "config",
    [
        HmacConfig(secrets=["s3cret"]),  # voiceapi default: x-signature, x-timestamp, {timestamp}.{body}, hex
        HmacConfig(secrets=["s3cret"], timestamp_header=None, encoding="base64"),  # voicecalls default
        HmacConfig(
            secrets=["s3cret"],
            signature_header="x-hub-signature-256",
            timestamp_header=None,
            prefix="sha256=",
        ),  # GitHub's shape
        HmacConfig(secrets=["s3cret"], algorithm="sha512", template="{timestamp}:{body}"),
        HmacConfig(secrets=["s3cret"], algorithm="sha1", timestamp_header=None),
    ],
)
def test_hmac_variants_round_trip_and_reject_tampering(config: HmacConfig) -> None:
    now = 1_700_000_000
    body = b'{"event":"call.completed"}'
    timestamp = str(now) if config.timestamp_header else None
    headers = {config.signature_header: hmac_signature(config, "s3cret", body, timestamp)}
    if config.timestamp_header and timestamp:
        headers[config.timestamp_header] = timestamp
    verify = verifier(config, lambda: clock_at(now))
    verify(body, headers)
    with pytest.raises(VerificationError):
        verify(body + b"x", headers)
    wrong_key = dict(headers, **{config.signature_header: hmac_signature(config, "other", body, timestamp)})
    with pytest.raises(VerificationError):
        verify(body, wrong_key)


def test_hmac_matches_an_independent_computation() -> None:
    import hmac as std_hmac

    body = b'{"a":1}'
    expected = std_hmac.new(b"k", b"1700000000." + body, hashlib.sha256).hexdigest()
    config = HmacConfig(secrets=["k"])
    verifier(config, lambda: clock_at(1_700_000_000))(
        body, {"x-signature": expected, "x-timestamp": "1700000000"}
    )


def test_hmac_replay_outside_tolerance_is_refused() -> None:
    config = HmacConfig(secrets=["k"], tolerance_seconds=60)
    body = b"{}"
    headers = {"x-signature": hmac_signature(config, "k", body, "1700000000"), "x-timestamp": "1700000000"}
    with pytest.raises(VerificationError, match="tolerance"):
        verifier(config, lambda: clock_at(1_700_000_061))(body, headers)


def test_hmac_template_must_contain_the_body() -> None:
    with pytest.raises(ValueError, match="body"):
        HmacConfig(secrets=["k"], template="{timestamp}")
    with pytest.raises(ValueError, match="timestamp_header"):
        HmacConfig(secrets=["k"], timestamp_header=None, template="{timestamp}.{body}")


# --- livekit --------------------------------------------------------------------------------------------


def test_livekit_node_sdk_vector_with_its_precomputed_hash() -> None:
    """The Node SDK test body and its published SHA-256, signed as LiveKit's server signs."""
    body = (FIXTURES / "livekit" / "room_started_node_sdk.json").read_bytes()
    assert (
        base64.b64encode(hashlib.sha256(body).digest()).decode()
        == "CoEQz1chqJ9bnZRcORddjplkvpjmPujmLTR42DbefYI="
    )
    token = AccessToken("abc", "abcdefghijklmnopqrstuvwxyz123456").with_sha256(
        "CoEQz1chqJ9bnZRcORddjplkvpjmPujmLTR42DbefYI="
    )
    verify = verifier(LiveKitConfig(keys={"abc": "abcdefghijklmnopqrstuvwxyz123456"}), lambda: clock_at(0))
    verify(body, {"authorization": token.to_jwt()})


def test_livekit_picks_the_key_by_issuer_and_tolerates_bearer() -> None:
    body = (FIXTURES / "livekit" / "participant_joined_sip_inbound.json").read_bytes()
    config = LiveKitConfig(
        keys={"APIold": "old-secret-0123456789abcdef01234", "APInew": "new-secret-0123456789abcdef01234"}
    )
    verify = verifier(config, lambda: clock_at(0))
    for key, secret in config.keys.items():
        headers = livekit_headers(key, secret, body)
        verify(body, headers)
        verify(body, {"authorization": "Bearer " + headers["authorization"]})


@pytest.mark.parametrize(
    "mutate",
    [
        "tampered_body",
        "unknown_issuer",
        "wrong_secret",
        "expired",
        "no_sha256",
        "not_a_jwt",
        "missing",
    ],
)
def test_livekit_rejections(mutate: str) -> None:
    body = b'{"event":"room_finished","id":"EV_1"}'
    key, secret = "APIkey", "secret-0123456789abcdef0123456789"
    verify = verifier(LiveKitConfig(keys={key: secret}), lambda: clock_at(0))
    digest = base64.b64encode(hashlib.sha256(body).digest()).decode()
    headers = {"authorization": AccessToken(key, secret).with_sha256(digest).to_jwt()}
    if mutate == "tampered_body":
        body = body + b" "
    elif mutate == "unknown_issuer":
        headers["authorization"] = AccessToken("APIother", secret).with_sha256(digest).to_jwt()
    elif mutate == "wrong_secret":
        headers["authorization"] = AccessToken(key, "x" * 32).with_sha256(digest).to_jwt()
    elif mutate == "expired":
        headers["authorization"] = (
            AccessToken(key, secret).with_sha256(digest).with_ttl(timedelta(seconds=-120)).to_jwt()
        )
    elif mutate == "no_sha256":
        headers["authorization"] = AccessToken(key, secret).to_jwt()
    elif mutate == "not_a_jwt":
        headers["authorization"] = "definitely.not.ajwt"
    elif mutate == "missing":
        headers = {}
    with pytest.raises(VerificationError):
        verify(body, headers)


def test_livekit_token_without_exp_is_refused() -> None:
    body = b"{}"
    digest = base64.b64encode(hashlib.sha256(body).digest()).decode()
    token = jwt.encode(
        {"iss": "APIkey", "sha256": digest}, "secret-0123456789abcdef0123456789", algorithm="HS256"
    )
    verify = verifier(
        LiveKitConfig(keys={"APIkey": "secret-0123456789abcdef0123456789"}), lambda: clock_at(0)
    )
    with pytest.raises(VerificationError):
        verify(body, {"authorization": token})


# --- bearer --------------------------------------------------------------------------------------------


def test_bearer() -> None:
    verify = verifier(BearerConfig(secrets=["tok-1", "tok-2"]), lambda: clock_at(0))
    verify(b"{}", {"authorization": "Bearer tok-2"})
    for bad in ("Bearer tok-3", "tok-1", "Basic dG9rLTE=", ""):
        with pytest.raises(VerificationError):
            verify(b"{}", {"authorization": bad})


# --- nothing malformed escapes as anything but VerificationError -----------------------------------------

CONFIGS = [
    StandardWebhooksConfig(secrets=[VECTORS[0][0]]),
    HmacConfig(secrets=["k"]),
    HmacConfig(secrets=["k"], timestamp_header=None, encoding="base64", prefix="sha256="),
    LiveKitConfig(keys={"APIkey": "secret-0123456789abcdef0123456789"}),
    BearerConfig(secrets=["tok"]),
]
header_names = st.sampled_from(
    [
        "webhook-id",
        "webhook-timestamp",
        "webhook-signature",
        "x-signature",
        "x-timestamp",
        "authorization",
        "svix-id",
    ]
)
header_values = st.one_of(
    st.text(max_size=80),
    st.sampled_from(
        [
            "v1,",
            "v1,a,b",
            "garbage",
            "v1,%%%",
            "1614265330",
            "1e9",
            "Bearer ",
            "a.b.c",
            "-1",
            "99999999999999999999",
        ]
    ),
    st.binary(max_size=40).map(lambda b: base64.b64encode(b).decode()),
)


@settings(max_examples=400, deadline=None)
@given(
    st.sampled_from(CONFIGS),
    st.dictionaries(header_names, header_values, max_size=5),
    st.binary(max_size=200),
)
def test_malformed_input_only_ever_raises_verification_error(
    config: object, headers: dict[str, str], body: bytes
) -> None:
    verify = verifier(config, lambda: clock_at(1614265330))
    with contextlib.suppress(VerificationError):
        verify(body, headers)
