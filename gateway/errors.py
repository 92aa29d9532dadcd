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


class VendorError(CallgateError):
    """A vendor's read API (``gateway.pull``) answered with something other than the data it documents: a
    refusal, an error, or a body that breaks its documented shape. Retrying the same request will not
    help; ``VendorRetryLater`` is the one that may."""

    status_code = 502
    code = "vendor_error"

    def __init__(
        self,
        message: str,
        *,
        field: str | None = None,
        vendor_status: int | None = None,
        request_id: str | None = None,
    ) -> None:
        super().__init__(message, field=field)
        self.vendor_status = vendor_status
        self.request_id = request_id  # the vendor's, for a support ticket


class VendorAuthFailed(VendorError):
    """The vendor refused the source's pull credentials (401/403: wrong, revoked, or missing a scope): no
    retry can succeed until an operator changes them."""

    code = "vendor_auth_failed"


class VendorRetryLater(VendorError):
    """The vendor said "not now" (429, 5xx, a network failure, a result still being computed). Raised
    instead of sleeping, so the caller (the outbox) schedules the retry: ``retry_after`` is the wait the
    vendor asked for (``Retry-After``), ``backoff`` its documented schedule for errors that name none."""

    status_code = 503
    code = "vendor_retry_later"

    def __init__(
        self,
        message: str,
        *,
        retry_after: float | None = None,
        backoff: tuple[float, ...] = (),
        vendor_status: int | None = None,
        request_id: str | None = None,
    ) -> None:
        super().__init__(message, vendor_status=vendor_status, request_id=request_id)
        self.retry_after = retry_after
        self.backoff = backoff
