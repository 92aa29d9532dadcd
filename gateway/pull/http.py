"""The one request helper of the pull clients: a request over the caller's ``httpx.AsyncClient``, its
answer read with a size cap, and its status turned into an outcome (``gateway.pull.base``).

Status to outcome, the same for every vendor (each vendor's own numbers live in its ``Policy``):

=========  ===============================================================================
2xx        the body
404        ``Missing`` - no such call or part: stop
401, 403   ``VendorAuthFailed`` - the source's credentials are wrong, revoked or lack a scope
429        ``VendorRetryLater`` after ``Retry-After`` (else the vendor's documented wait)
5xx        ``VendorRetryLater`` on the vendor's documented back-off (``Retry-After`` if given)
network    ``VendorRetryLater`` on the back-off: a timeout or a refused connection may pass
other      ``VendorError`` with the vendor's own code, message, field and request id
=========  ===============================================================================

Redirects are not followed (the injected client's default): a 3xx is a ``VendorError``, never a hop to a
host the SSRF check did not see.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from gateway.errors import VendorAuthFailed, VendorError, VendorRetryLater
from gateway.outbound.retry import parse_retry_after
from gateway.pull.base import DEFAULT_BACKOFF, DEFAULT_THROTTLE_SECONDS, Missing

MAX_ANSWER_BYTES = 16 * 1024 * 1024  # a page of calls with transcripts; beyond it the vendor is broken


@dataclass(frozen=True, slots=True)
class Policy:
    """How one vendor (or one class of its endpoints) asks to slow down."""

    vendor: str
    backoff: tuple[float, ...] = DEFAULT_BACKOFF  # 5xx and network errors, per attempt
    throttle_seconds: float = DEFAULT_THROTTLE_SECONDS  # a 429 without Retry-After
    max_bytes: int = MAX_ANSWER_BYTES


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    headers: httpx.Headers
    body: bytes

    def json(self, what: str) -> Any:
        try:
            return json.loads(self.body)
        except (ValueError, RecursionError):
            raise VendorError(f"{what}: the answer is not JSON", vendor_status=self.status) from None


async def send(
    http: httpx.AsyncClient,
    method: str,
    url: str,
    policy: Policy,
    *,
    headers: Mapping[str, str],
    params: Mapping[str, str] | None = None,
    content: bytes | None = None,
) -> Answer:
    """One request; the answer whatever its status. Network trouble raises ``VendorRetryLater``."""
    try:
        async with http.stream(
            method, url, headers=dict(headers), params=params, content=content
        ) as response:
            chunks: list[bytes] = []
            size = 0
            async for chunk in response.aiter_bytes():
                size += len(chunk)
                if size > policy.max_bytes:
                    raise VendorError(
                        f"{policy.vendor} answered more than {policy.max_bytes} bytes",
                        vendor_status=response.status_code,
                    )
                chunks.append(chunk)
            return Answer(response.status_code, response.headers, b"".join(chunks))
    except httpx.TransportError as exc:  # timeouts, refused or reset connections, a blocked target
        raise VendorRetryLater(
            f"{policy.vendor} could not be reached: {type(exc).__name__}: {exc}", backoff=policy.backoff
        ) from None


def retry_after(headers: httpx.Headers) -> float | None:
    """``Retry-After`` as seconds. An HTTP date is read against the answer's own ``Date`` header, so the
    wait is the one the vendor meant whatever our clock says; without ``Date`` a date is unusable."""
    raw = (headers.get("retry-after") or "").strip()
    if raw.isdigit():
        return float(raw)
    try:
        now = parsedate_to_datetime(headers.get("date") or "")
    except (TypeError, ValueError, IndexError):
        return None
    return parse_retry_after(raw or None, now if now.tzinfo else now.replace(tzinfo=UTC))


def vendor_error(body: bytes) -> tuple[str | None, str | None, str | None, str | None]:
    """(code, message, field, request_id) from whichever error envelope the vendor uses: graph8's
    ``{"error": {code, message, field, request_id}}``, Twirp's ``{code, msg}``, RFC 7807's
    ``{title, detail, traceId}``, or a bare ``message``/``detail``."""
    try:
        value = json.loads(body)
    except (ValueError, RecursionError):
        return None, body[:200].decode("utf-8", "replace") or None, None, None
    if not isinstance(value, dict):
        return None, None, None, None
    inner = value.get("error")
    source: Mapping[str, Any] = inner if isinstance(inner, dict) else value

    def pick(*keys: str) -> str | None:
        for key in keys:
            found = source.get(key)
            if isinstance(found, str | int) and not isinstance(found, bool) and found != "":
                return str(found)[:500]
        return None

    message = pick("message", "msg", "detail", "title") or (inner if isinstance(inner, str) else None)
    return (
        pick("code", "errorCode", "type"),
        message,
        pick("field"),
        pick("request_id", "requestId", "traceId"),
    )


def outcome(answer: Answer, policy: Policy, what: str) -> Missing | None:
    """``None`` for a 2xx (read the body), ``Missing`` for a 404; raises for everything else."""
    if 200 <= answer.status < 300:
        return None
    code, message, field, request_id = vendor_error(answer.body)
    detail = f"{policy.vendor} {what}: HTTP {answer.status}" + (f" {code}" if code else "")
    detail += f": {message}" if message else ""
    if answer.status == 404:
        return Missing(detail)
    if answer.status in (401, 403):
        raise VendorAuthFailed(detail, vendor_status=answer.status, request_id=request_id)
    if answer.status == 429:
        wait = retry_after(answer.headers)
        raise VendorRetryLater(
            detail,
            retry_after=policy.throttle_seconds if wait is None else wait,
            vendor_status=429,
            request_id=request_id,
        )
    if answer.status >= 500:
        raise VendorRetryLater(
            detail,
            retry_after=retry_after(answer.headers),
            backoff=policy.backoff,
            vendor_status=answer.status,
            request_id=request_id,
        )
    raise VendorError(detail, field=field, vendor_status=answer.status, request_id=request_id)


async def get_json(
    http: httpx.AsyncClient,
    url: str,
    policy: Policy,
    what: str,
    *,
    headers: Mapping[str, str],
    params: Mapping[str, str] | None = None,
) -> Any:
    """``GET`` a JSON document: the parsed body, or ``Missing`` on a 404 (see the table above)."""
    answer = await send(
        http, "GET", url, policy, headers={"accept": "application/json", **headers}, params=params
    )
    missing = outcome(answer, policy, what)
    return missing if missing is not None else answer.json(f"{policy.vendor} {what}")
