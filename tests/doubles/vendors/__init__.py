"""Local imitations of the voice vendors' read APIs (seeds 000-004, and LiveKit's RoomService), so the
pull clients (``gateway.pull``) are tested over real loopback HTTP.

Each module is one vendor: a ``State`` a test seeds through a small typed API (``add_call``,
``set_transcript``, ``clock.advance`` ...) and reads back, and ``app(state)`` - a Starlette app built over
it, served with ``tests.doubles.serving`` or, as a process, ``python -m tests.doubles.vendors.<vendor>``.
What they share lives here: an injectable clock (``FakeClock``), sliding-window rate limits on that clock,
scripted faults, signed expiring links, and a request log.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import math
import secrets
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from gateway.when import parse_time
from tests.helpers import FakeClock

JSON = dict[str, Any]

__all__ = ["JSON", "FakeClock", "Faults", "Limiter", "Log", "SignedLinks", "Swappable", "WallClock"]


@dataclass
class WallClock(FakeClock):
    """The real time, for a double run as a process (``main``); ``advance`` still moves it forward."""

    skew: timedelta = field(default_factory=timedelta)

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.skew

    def advance(self, seconds: float) -> None:
        self.skew += timedelta(seconds=seconds)


@dataclass(slots=True)
class Limiter:
    """``limit`` requests per ``window`` seconds per key, sliding, on the double's clock: a test moves
    the clock to free the budget, so a 429 is deterministic rather than a race with the wall clock."""

    limit: int
    window: float
    _hits: dict[str, deque[datetime]] = field(default_factory=dict)

    def wait(self, key: str, now: datetime) -> int | None:
        """``None``: allowed (and counted). Otherwise the whole seconds until a slot frees (>= 1)."""
        hits = self._hits.setdefault(key, deque())
        horizon = now - timedelta(seconds=self.window)
        while hits and hits[0] <= horizon:
            hits.popleft()
        if len(hits) >= self.limit:
            return max(1, math.ceil((hits[0] - horizon).total_seconds()))
        hits.append(now)
        return None


@dataclass(slots=True)
class Fault:
    status: int
    body: Any  # JSON-able, or bytes sent as they are
    headers: dict[str, str]
    times: int
    path_contains: str | None


@dataclass(slots=True)
class Faults:
    """Replies a test wants instead of the normal ones (a 503, a 429 with an HTTP-date ``Retry-After``),
    checked after authentication, ``times`` times, on paths containing a string."""

    scripted: list[Fault] = field(default_factory=list)

    def inject(
        self,
        status: int,
        body: Any = None,
        headers: Mapping[str, str] | None = None,
        *,
        times: int = 1,
        path_contains: str | None = None,
    ) -> None:
        self.scripted.append(Fault(status, body, dict(headers or {}), times, path_contains))

    def take(self, path: str) -> Response | None:
        for fault in self.scripted:
            if fault.times > 0 and (fault.path_contains is None or fault.path_contains in path):
                fault.times -= 1
                if isinstance(fault.body, bytes):
                    return Response(fault.body, fault.status, fault.headers)
                return JSONResponse(fault.body, fault.status, fault.headers)
        return None


@dataclass(slots=True)
class Log:
    """Every request the double saw: method, path, query and headers (lower-case names)."""

    requests: list[JSON] = field(default_factory=list)

    def record(self, request: Request) -> None:
        self.requests.append(
            {
                "method": request.method,
                "path": request.url.path,
                "query": dict(request.query_params),
                "headers": {k.lower(): v for k, v in request.headers.items()},
            }
        )

    def count(self, path_contains: str) -> int:
        return sum(1 for r in self.requests if path_contains in r["path"])


@dataclass(slots=True)
class SignedLinks:
    """Expiring pre-signed URLs the way blob stores sign them: the path and its expiry under an HMAC.
    ``sign`` hands out a new link (a new ``nonce`` each time, so no two links are equal); ``check`` says
    whether a request for one may be served now."""

    secret: bytes = field(default_factory=lambda: secrets.token_bytes(32))

    def _mac(self, path: str, expires: str, nonce: str) -> str:
        message = f"{path}\n{expires}\n{nonce}".encode()
        return base64.urlsafe_b64encode(hmac.new(self.secret, message, hashlib.sha256).digest()).decode()

    def sign(self, path: str, expires_at: datetime, names: Mapping[str, str]) -> str:
        """The query string. ``names`` renames the three parameters (``se``/``sig``/``nonce``) per vendor."""
        expires = expires_at.strftime("%Y-%m-%dT%H:%M:%SZ")
        nonce = secrets.token_hex(6)
        query = {
            names["expires"]: expires,
            names["nonce"]: nonce,
            names["sig"]: self._mac(path, expires, nonce),
        }
        return urlencode(query)

    def check(self, path: str, query: Mapping[str, str], now: datetime, names: Mapping[str, str]) -> str:
        """``ok``, ``expired`` or ``forged``."""
        expires, nonce, sig = (query.get(names[k], "") for k in ("expires", "nonce", "sig"))
        if not expires or not hmac.compare_digest(sig, self._mac(path, expires, nonce)):
            return "forged"
        try:
            deadline = parse_time(expires)
        except ValueError:
            return "forged"
        return "ok" if now < deadline else "expired"


class Swappable:
    """One loopback server for a test module, serving whichever double the current test built."""

    def __init__(self) -> None:
        self.current: ASGIApp | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.current is None:
            raise RuntimeError("no double for this test")
        await self.current(scope, receive, send)


def bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def started_in(value: Any, since: datetime | None, until: datetime | None) -> bool:
    """Whether a vendor time string falls in [since, until); a call without a start is in no window."""
    if not isinstance(value, str) or not value:
        return since is None and until is None
    at = parse_time(value)
    return (since is None or at >= since) and (until is None or at < until)


def optional_time(raw: str | None) -> datetime | None:
    """A query parameter time; ``ValueError`` when present but unreadable (the double answers 422)."""
    return parse_time(raw) if raw else None
