"""``POST /hooks/{source_id}``: verify on the raw bytes, parse, commit, and only then answer.

202 stored · 200 duplicate · 401 bad signature · 404 unknown or disabled source · 400 unreadable or
unstorable body (quarantined: kept whole for ``callgate replay --quarantined``) · 413 too large · 503
storage unavailable (nothing kept; the vendor retries).
"""

from __future__ import annotations

import time

import structlog
from sqlalchemy.engine import Connection
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway import storable
from gateway.api import schemas
from gateway.api.common import json_response, read_limited, services
from gateway.api.declare import Answer, Key, Operation, declare
from gateway.errors import CallgateError, NotFound, PayloadError
from gateway.inbound import ParsedEvent
from gateway.ingest import (
    IngestJob,
    IngestResult,
    Quarantined,
    apply_event,
    prefetch,
    prepare,
    quarantine,
)
from gateway.sources import ActiveSource

log = structlog.get_logger("callgate.hooks")


# what a refusal counts as in ``callgate_webhooks{outcome=…}``
OUTCOMES = {
    "not_found": "unknown_source",
    "invalid_signature": "rejected",
    "invalid_payload": "quarantined",
    "payload_too_large": "too_large",
    "storage_unavailable": "unavailable",
}


VERIFICATION = """\
No API key: the source's verification is the authentication, checked on the raw bytes before anything is \
parsed (docs/vendors.md). Each source has one scheme; what the sender must send:

- `standard-webhooks`: `webhook-id`, `webhook-timestamp` (Unix seconds, within `tolerance_seconds`), \
`webhook-signature` (`v1,<base64>`, several space-separated; the `svix-*` names work too): HMAC-SHA256 of \
`{id}.{timestamp}.{body}` keyed with the base64 after `whsec_`.
- `hmac`: the signature in `signature_header` (default `x-signature`) over `template` (`{timestamp}.{body}` \
with a `timestamp_header`, else `{body}`), sha256/sha1/sha512, hex or base64, an optional `prefix`.
- `livekit`: `Authorization: <JWT>` signed HS256 with the API secret, `iss` the API key, claim `sha256` the \
base64 SHA-256 of the body.
- `bearer`: `Authorization: Bearer <token>`, compared in constant time.

It answers only after the raw event, the call, its timeline and its deliveries have committed. A vendor's \
default scheme (a source created without `verification`):"""


@declare(
    Operation(
        summary="Receive a vendor's webhook",
        tag="webhooks",
        description=VERIFICATION,
        lists="vendor_schemes",
        key=Key.NONE,
        body_schema={"description": "the vendor's JSON body, byte for byte as it signed it"},
        answers=[
            Answer(202, "stored (`calls`: the calls it changed)", schemas.HookAccepted),
            Answer(
                200,
                "a duplicate (same source and event id): already stored, nothing changed",
                schemas.HookDuplicate,
            ),
        ],
        errors={
            400: ["bad_request", "invalid_payload"],
            401: ["invalid_signature"],
            404: ["not_found"],
            413: ["payload_too_large"],
        },
    )
)
async def receive(request: Request) -> Response:
    """The hook, counted and timed (``gateway.metrics``) by vendor and outcome."""
    started = time.perf_counter()
    outcome = "error"
    try:
        response = await _receive(request)
        outcome = "duplicate" if response.status_code == 200 else "stored"
        return response
    except CallgateError as exc:
        outcome = OUTCOMES.get(exc.code, exc.code)
        raise
    finally:
        vendor = getattr(request.state, "vendor", "unknown")
        services(request).metrics.webhook(vendor, outcome, time.perf_counter() - started)


async def _receive(request: Request) -> Response:
    svc = services(request)
    source_id = request.path_params["source_id"]
    structlog.contextvars.bind_contextvars(source_id=source_id)
    source = await svc.sources.get(source_id)
    if source is None or not source.enabled:
        log.info("webhook", outcome="unknown_source")
        raise NotFound("unknown or disabled source")
    structlog.contextvars.bind_contextvars(tenant_id=source.tenant_id, vendor=source.vendor)
    request.state.vendor = source.vendor
    body = await read_limited(request, svc.settings.max_body_bytes)
    try:
        source.verify(body, request.headers)
    except CallgateError as exc:
        log.info("webhook", outcome="rejected", reason=exc.message)
        raise
    received_at = svc.clock()
    try:
        parsed = prepare(source.adapter.parse(request.headers, body), svc.settings.default_region)
    except Exception as exc:
        await _quarantine(request, source, body, exc)
        if isinstance(exc, PayloadError):
            raise
        raise PayloadError("the adapter could not read this body; it is kept for replay") from None
    job = IngestJob(
        tenant_id=source.tenant_id,
        source_id=source.id,
        vendor=source.vendor,
        parsed=parsed,
        headers=request.headers,
        body=body,
        received_at=received_at,
        dispatch=svc.worker.offer() if svc.worker is not None else None,
        pull_parts=source.pull_parts,
        links=svc.recording_links,
    )

    def work(conn: Connection) -> IngestResult:
        return apply_event(conn, job, svc.clock(), svc.reparse)

    try:
        result = await svc.writer.submit(
            work, key=_call_key(source, parsed), ingest=True, plan=lambda: prefetch(job)
        )
    except CallgateError:
        raise  # 503 when the store is unavailable: nothing was kept, the vendor retries
    except Exception as exc:  # a value the store refused: the content is at fault, not the store
        await _quarantine(request, source, body, exc, stage="store")
        raise PayloadError("this body could not be stored; it is kept for replay") from None
    if job.dispatch is not None and svc.worker is not None:
        svc.worker.take(job.dispatch)  # the deliveries it leased go out now, no claim needed
    elif any(c.types for c in result.changes):
        svc.wake_worker()
    if any(c.types for c in result.changes):
        svc.changes.notify()
    (log.warning if parsed.unmapped or parsed.invalid or not parsed.known else log.info)(
        "webhook",
        unmapped=dict(parsed.unmapped) or None,
        invalid=dict(parsed.invalid) or None,
        outcome="duplicate" if result.duplicate else "stored",
        event_key=parsed.event_key,
        event_type=parsed.event_type,
        known=parsed.known,
        state=result.state,
        raw_event_id=result.raw_event_id,
        calls=[c.call_id for c in result.changes],
        types=sorted({t for c in result.changes for t in c.types}),
    )
    if result.duplicate:
        return json_response({"status": "duplicate", "event_id": result.raw_event_id}, 200)
    calls = [{"id": c.call_id, "version": c.version, "status": c.status} for c in result.changes]
    return json_response({"status": "accepted", "event_id": result.raw_event_id, "calls": calls}, 202)


def _call_key(source: ActiveSource, parsed: ParsedEvent) -> str | None:
    """The call an event writes, as the writer's lane key: a call's events share a lane."""
    for update in parsed.updates:
        key = update.vendor_call_id or update.link_alias
        if key is not None:
            return f"{source.tenant_id}/{source.vendor}/{key}"
    return None


async def _quarantine(
    request: Request, source: ActiveSource, body: bytes, exc: Exception, stage: str = "adapter"
) -> None:
    svc = services(request)
    message = exc.message if isinstance(exc, PayloadError) else f"{stage} error: {type(exc).__name__}"
    message = storable.text(message)  # it names the sender's fields: logged and stored
    if isinstance(exc, PayloadError):
        log.info("webhook", outcome="quarantined", reason=message)
    else:
        log.error("webhook", outcome="quarantined", reason=message, exc_info=exc)
    item = Quarantined(
        source.tenant_id, source.id, source.vendor, request.headers, body, message, svc.clock()
    )
    await svc.writer.submit(lambda conn: quarantine(conn, item))


routes = [Route("/hooks/{source_id}", receive, methods=["POST"])]
