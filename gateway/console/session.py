"""The console's session cookie and its CSRF token.

The cookie is ``itsdangerous``-signed (``Services.console``: the gateway's secret key, its own salt) and holds
a random session id and, once signed in, the tenant and the id of the API key used - never the key. Every
request checks the key again (``gateway.auth.principal_of_key``), so revoking a key ends its sessions at
once. The signature carries a timestamp: a cookie older than ``LIFETIME`` is refused even if a browser kept
it past its ``Max-Age``.

A visitor gets an anonymous session (an id only) on the sign-in page, so that form has a CSRF token too;
signing in replaces it with a new id (no session fixation). The CSRF token is an HMAC of the session id
under another salt: nothing to store, different for every session, checked in constant time.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from typing import Any

from itsdangerous import BadData, SignatureExpired, URLSafeTimedSerializer
from starlette.requests import Request
from starlette.responses import Response

COOKIE = "callgate_console"
LIFETIME = 12 * 3600  # seconds: the cookie's Max-Age, and the oldest signature accepted
PATH = "/console"
_CSRF_SALT = "callgate.console.csrf"


@dataclass(frozen=True, slots=True)
class Session:
    sid: str
    tenant_id: str | None = None
    key_id: str | None = None

    @property
    def signed_in(self) -> bool:
        return self.tenant_id is not None and self.key_id is not None

    @classmethod
    def anonymous(cls) -> Session:
        return cls(secrets.token_urlsafe(18))

    @classmethod
    def of_key(cls, tenant_id: str, key_id: str) -> Session:
        return cls(secrets.token_urlsafe(18), tenant_id, key_id)


class Expired(Exception):
    """The cookie was ours, but is older than ``LIFETIME``."""


def load(request: Request, serializer: URLSafeTimedSerializer) -> Session | None:
    """The session the request's cookie names; None without a cookie or with one that is not ours.
    ``Expired`` when it is ours and too old (the sign-in page says so)."""
    raw = request.cookies.get(COOKIE)
    if not raw:
        return None
    try:
        claims: Any = serializer.loads(raw, max_age=LIFETIME)
    except SignatureExpired:
        raise Expired from None
    except BadData:
        return None
    if not isinstance(claims, dict) or not isinstance(claims.get("s"), str):
        return None
    tenant_id, key_id = claims.get("t"), claims.get("k")
    if isinstance(tenant_id, str) and isinstance(key_id, str):
        return Session(claims["s"], tenant_id, key_id)
    return Session(claims["s"])


def store(response: Response, serializer: URLSafeTimedSerializer, session: Session, *, secure: bool) -> None:
    claims: dict[str, str] = {"s": session.sid}
    if session.tenant_id is not None and session.key_id is not None:
        claims |= {"t": session.tenant_id, "k": session.key_id}
    response.set_cookie(
        COOKIE,
        str(serializer.dumps(claims)),
        max_age=LIFETIME,
        path=PATH,
        secure=secure,
        httponly=True,
        samesite="lax",
    )


def clear(response: Response, *, secure: bool) -> None:
    response.delete_cookie(COOKIE, path=PATH, secure=secure, httponly=True, samesite="lax")


def csrf_token(serializer: URLSafeTimedSerializer, session: Session) -> str:
    return serializer.make_signer(_CSRF_SALT).get_signature(session.sid.encode()).decode()


def csrf_valid(serializer: URLSafeTimedSerializer, session: Session, given: str | None) -> bool:
    if not given:
        return False
    return hmac.compare_digest(given.encode(), csrf_token(serializer, session).encode())
