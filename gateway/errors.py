"""The one exception hierarchy. Every error a client can cause maps to one HTTP status and code.

Driver and library exceptions are caught at the edge of the module that calls them and re-raised as one of
these, so the HTTP layer needs a single handler and nothing a client sends becomes a 500.
"""

from __future__ import annotations

from typing import TypeVar


class CallgateError(Exception):
    status_code = 500
    code = "internal_error"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class VerificationError(CallgateError):
    """The webhook's signature, token or timestamp does not check out."""

    status_code = 401
    code = "invalid_signature"


class Unauthorized(CallgateError):
    status_code = 401
    code = "unauthorized"


class Forbidden(CallgateError):
    status_code = 403
    code = "forbidden"


class PayloadError(CallgateError):
    """A verified body that the adapter cannot read."""

    status_code = 400
    code = "invalid_payload"


class BadRequest(CallgateError):
    status_code = 400
    code = "bad_request"


class ValidationFailed(CallgateError):
    status_code = 422
    code = "validation_error"


class NotFound(CallgateError):
    status_code = 404
    code = "not_found"


T = TypeVar("T")


def found(row: T | None, what: str) -> T:
    """The row, or ``NotFound("no such <what>")``: the one fetch-or-404 rule (another tenant's row is
    simply not found)."""
    if row is None:
        raise NotFound(f"no such {what}")
    return row


class PayloadTooLarge(CallgateError):
    status_code = 413
    code = "payload_too_large"


class StorageUnavailable(CallgateError):
    """The database could not be reached or refused the write: the sender should retry."""

    status_code = 503
    code = "storage_unavailable"
