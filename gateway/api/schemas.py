"""The API's response shapes as pydantic models, for the OpenAPI document and for the tests that hold
``gateway.render`` to them.

Responses are still built as dicts by ``gateway.render`` on the hot path; nothing here runs on a request.
The models are strict on purpose (every field required, no others allowed, as ``render`` writes every field
on every object), so a renamed or dropped field fails ``tests/api/test_schemas.py`` and Schemathesis
rather than a customer's SDK. The parts of a call that vendors fill in piece by piece (recording, grade,
survey, …) list their known keys and require only the ones every vendor sends.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from gateway.api import examples as ex
from gateway.model import Direction, EventType, Status


def shown(*examples: dict[str, Any]) -> ConfigDict:
    """A shape's examples, in the document (``gateway.api.examples``)."""
    return ConfigDict(extra="forbid", json_schema_extra={"examples": list(examples)})


class Shape(BaseModel):
    """A response object exactly as ``gateway.render`` writes it: every field, nothing else."""

    model_config = ConfigDict(extra="forbid")


class Part(BaseModel):
    """A part of a call that vendors fill in key by key: the known keys, each optional."""

    model_config = ConfigDict(extra="forbid")


# --- errors -------------------------------------------------------------------------------------------


class ErrorBody(Shape):
    code: str = Field(description="stable, machine-readable: `not_found`, `validation_error`, …")
    message: str = Field(description="for people; may change between versions")
    field: str | None = Field(
        default=None, description="present when one field is at fault (`vendor`, `limit`, `verification.…`)"
    )
    request_id: str = Field(description="also the `x-request-id` header; logged with the error")


class ErrorEnvelope(Shape):
    """Every error of every route, 4xx and 5xx."""

    model_config = shown(ex.ERROR_ENVELOPE_EXAMPLE)
    error: ErrorBody


# --- calls --------------------------------------------------------------------------------------------


class Recording(Part):
    available: bool | None = None
    vendor_ref: str | None = Field(default=None, description="the vendor's id or internal path (`gs://…`)")
    url: str | None = Field(default=None, description="a URL the recording can be fetched from, if any")
    filename: str | None = None
    kind: str | None = None


class TranscriptSegment(Part):
    speaker: Literal["agent", "customer", "system", "tool"]
    text: str
    start_ms: int | None = None
    end_ms: int | None = None
    at: AwareDatetime | None = None
    content_type: str | None = Field(default=None, description="absent for speech; what a tool turn carries")
    vendor_speaker: str | None = Field(default=None, description="the vendor's speaker, when it maps to none")


class Grade(Part):
    score: float | None = Field(default=None, description="0..1 (a vendor's 0-100 score is rescaled)")
    status: str | None = None
    summary: str | None = None
    graded_at: AwareDatetime | None = None
    details: dict[str, Any] | None = None


class Survey(Part):
    state: str | None = None
    completion_reason: str | None = None
    total_questions: int | None = None
    answered: int | None = None
    score: float | None = None
    responses: list[dict[str, Any]] | None = Field(default=None, description="the vendor's answers, as sent")


class Meeting(Part):
    scheduled: bool | None = None
    starts_at: AwareDatetime | None = None
    calendar_event_id: str | None = None


class Qualification(Part):
    verdict: Literal["qualified", "unqualified", "no_answer"] | None = None
    meeting: Meeting | None = None
    follow_up_reasons: list[str] | None = None
    objective: str | None = None
    run_id: str | None = None
    summary: str | None = None


class Billing(Part):
    billable_minutes: int | None = None
    total_cents: int | None = None
    billed_at: AwareDatetime | None = None
    credits: float | None = None


class Issue(Part):
    id: str
    title: str | None = None
    severity: Literal["info", "warning", "critical"] | None = None
    description: str | None = None
    created_at: AwareDatetime | None = None


class Call(Shape):
    """One call in the one call model (docs/call-model.md): the same shape for every vendor."""

    model_config = shown(ex.CALL_EXAMPLE)
    id: str = Field(description="`call_<ULID>`, stable forever")
    tenant_id: str
    source_id: str = Field(description="the source the call first arrived through")
    vendor: str
    vendor_call_id: str = Field(description="the vendor's call key, unique per tenant and vendor")
    vendor_session_id: str | None
    campaign_id: str | None
    agent_id: str | None
    contact_ref: str | None
    user_email: str | None
    direction: Direction
    status: Status | None = Field(
        description="climbs by rank and never comes down; the first terminal sticks"
    )
    from_number: str | None = Field(description="E.164")
    to_number: str | None = Field(description="E.164")
    started_at: AwareDatetime | None
    answered_at: AwareDatetime | None
    ended_at: AwareDatetime | None
    duration_seconds: int | None
    talk_time_seconds: int | None
    end_reason: str | None
    outcome: str | None
    recording: Recording | None
    transcript: list[TranscriptSegment]
    grade: Grade | None
    survey: Survey | None
    qualification: Qualification | None
    billing: Billing | None
    issues: list[Issue]
    is_test: bool
    vendor_extra: dict[str, Any] = Field(description="every vendor field not mapped above")
    version: int = Field(description="+1 on every stored change")
    created_at: AwareDatetime
    updated_at: AwareDatetime


class CallPage(Shape):
    data: list[Call]
    next_cursor: str | None = Field(description="pass as `cursor` for the next page; null on the last")


class TimelineEntry(Shape):
    """One vendor event applied to a call, whether or not it changed anything."""

    model_config = shown(ex.TIMELINE_ENTRY_EXAMPLE)
    id: str = Field(description="`cev_…`; also the live stream's event id")
    raw_event_id: str = Field(description="the stored raw webhook (`evt_…`) this entry came from")
    event_type: str = Field(description="the vendor's event type")
    types: list[EventType] = Field(description="what the change emitted to subscribers; empty: no change")
    changed: list[str]
    status: Status | None
    previous_status: Status | None
    version: int
    occurred_at: AwareDatetime | None = Field(description="the vendor's event time")
    received_at: AwareDatetime


class Timeline(Shape):
    data: list[TimelineEntry] = Field(description="oldest first, every entry at once (no cursor)")


class ChangedCall(Shape):
    id: str
    version: int
    status: Status | None


class HookAccepted(Shape):
    """What a vendor's webhook was answered: stored, with the calls it changed."""

    model_config = shown(ex.HOOK_ACCEPTED_EXAMPLE)
    status: Literal["accepted"]
    event_id: str = Field(description="the stored raw event (`evt_…`)")
    calls: list[ChangedCall] = Field(description="empty for an event that touches no call")


class HookDuplicate(Shape):
    status: Literal["duplicate"]
    event_id: str = Field(description="the raw event stored the first time")


# --- sources ------------------------------------------------------------------------------------------


class StandardWebhooksShown(Shape):
    scheme: Literal["standard-webhooks"]
    secrets: list[str] = Field(description="each cut to `…` and its last 4 characters")
    tolerance_seconds: int


class HmacShown(Shape):
    scheme: Literal["hmac"]
    secrets: list[str] = Field(description="each cut to `…` and its last 4 characters")
    signature_header: str
    timestamp_header: str | None
    template: str
    algorithm: Literal["sha256", "sha1", "sha512"]
    encoding: Literal["hex", "base64"]
    prefix: str
    tolerance_seconds: int


class LiveKitShown(Shape):
    scheme: Literal["livekit"]
    keys: dict[str, str] = Field(description="API key -> its secret cut to `…` and its last 4 characters")
    leeway_seconds: int


class BearerShown(Shape):
    scheme: Literal["bearer"]
    secrets: list[str] = Field(description="each cut to `…` and its last 4 characters")


class PullShown(Shape):
    """A source's read-API settings; the token is write-only."""

    base_url: str
    org_id: str | None = Field(description="graph8: the key's organization")
    token_set: bool


class Source(Shape):
    """One webhook URL for one vendor, with its verification (secrets redacted)."""

    model_config = shown(ex.SOURCE_EXAMPLE)
    id: str = Field(description="`src_<ULID>`")
    name: str
    vendor: str
    enabled: bool
    hook_url: str = Field(description="where the vendor posts: `POST /hooks/{id}`")
    verification: StandardWebhooksShown | HmacShown | LiveKitShown | BearerShown = Field(
        discriminator="scheme"
    )
    pull: PullShown | None = Field(description="the vendor's read API, when configured (reconciliation)")
    created_at: AwareDatetime
    updated_at: AwareDatetime


class SourceCreated(Source):
    """A new source; ``secret`` (and ``api_key`` for LiveKit) only when callgate generated them."""

    model_config = shown(ex.SOURCE_CREATED_EXAMPLE)
    secret: str | None = Field(default=None, description="the generated secret: shown only here")
    api_key: str | None = Field(default=None, description="LiveKit: the generated API key")


class SourceList(Shape):
    data: list[Source] = Field(description="every source of the tenant at once (no cursor)")


# --- subscriptions, deliveries ------------------------------------------------------------------------


class Subscription(Shape):
    """A customer endpoint; its secrets never (only how many sign now)."""

    model_config = shown(ex.SUBSCRIPTION_EXAMPLE)
    id: str = Field(description="`sub_<ULID>`")
    url: str
    description: str
    event_types: list[str] = Field(description="event types, `call.*` or `*`")
    enabled: bool
    disabled_reason: str | None = Field(description="why callgate disabled it (a 410, days of failure)")
    rate_limit_per_second: float | None
    max_concurrency: int | None
    failing_since: AwareDatetime | None
    secrets_active: int = Field(description="1, or more while a rotated-out secret still signs")
    created_at: AwareDatetime
    updated_at: AwareDatetime


class SubscriptionWithSecret(Subscription):
    """A subscription just created or rotated, with its new ``whsec_`` secret: shown only here."""

    model_config = shown(ex.SUBSCRIPTION_WITH_SECRET_EXAMPLE)
    secret: str = Field(description="`whsec_…`, for verifying deliveries")


class SubscriptionList(Shape):
    data: list[Subscription] = Field(description="every subscription of the tenant, oldest first")


class Requeued(Shape):
    requeued: int = Field(description="dead deliveries made pending again")


class Delivery(Shape):
    """One delivery of one event to one subscription, or one CRM sync."""

    model_config = shown(ex.DELIVERY_EXAMPLE)
    id: str = Field(description="`msg_<ULID>`; also its `webhook-id` header, the same on every attempt")
    subscription_id: str | None
    connection_id: str | None
    call_id: str | None = Field(description="null for a ping")
    event_type: str = Field(description="a `call.*` type, `ping`, `crm.sync` or `crm.resync`")
    call_version: int | None
    status: Literal["pending", "succeeded", "dead"]
    attempts: int = Field(description="attempts since it was last queued")
    next_attempt_at: AwareDatetime | None = Field(description="when it is due; null unless pending")
    last_status_code: int | None
    last_error: str | None
    created_at: AwareDatetime
    completed_at: AwareDatetime | None


class Attempt(Shape):
    model_config = shown(ex.ATTEMPT_EXAMPLE)
    id: str = Field(description="`att_<ULID>`")
    attempted_at: AwareDatetime
    status_code: int | None = Field(description="null when there was no answer")
    latency_ms: int
    error: str | None = Field(description="the transport error (`ConnectError: …`, `blocked: …`)")
    response_body: str | None = Field(description="the first 8 KiB of the answer, as text")
    next_attempt_at: AwareDatetime | None = Field(description="what was decided: null when done")


class DeliveryDetail(Delivery):
    """A delivery with the body it sends and every attempt, oldest first."""

    model_config = shown(ex.DELIVERY_DETAIL_EXAMPLE)
    payload: dict[str, Any] = Field(description="the JSON body, as sent on every attempt")
    attempts_log: list[Attempt]


class DeliveryPage(Shape):
    data: list[Delivery]
    next_cursor: str | None


class Retried(Shape):
    id: str
    status: Literal["pending"]


# --- connections --------------------------------------------------------------------------------------


class ConnectionFailure(Shape):
    """The last error a CRM answered (``auth_failed``, a rate limit), kept until the next success."""

    code: str
    message: str
    at: AwareDatetime


class Connection(Shape):
    """A CRM connection; its credentials never."""

    model_config = shown(ex.CONNECTION_EXAMPLE)
    id: str = Field(description="`con_<ULID>`")
    kind: str
    name: str
    base_url: str
    options: dict[str, Any] = Field(description="the kind's options, defaults filled in (docs/crm.md)")
    enabled: bool
    state: Literal["active", "paused", "auth_failed", "disabled"]
    paused_until: AwareDatetime | None = Field(description="set while rate-limited (`paused`)")
    last_error: ConnectionFailure | None
    created_at: AwareDatetime
    updated_at: AwareDatetime


class ConnectionDetail(Connection):
    model_config = shown(ex.CONNECTION_DETAIL_EXAMPLE)
    synced_calls: int = Field(description="how many calls it holds a record of")


class ConnectionPage(Shape):
    data: list[Connection]
    next_cursor: str | None


class CheckFailure(Shape):
    code: str
    message: str
    status_code: int | None = Field(description="the CRM's answer, when there was one")


class ConnectionCheck(Shape):
    model_config = shown(ex.CONNECTION_CHECK_EXAMPLE_1, ex.CONNECTION_CHECK_EXAMPLE_2)
    ok: bool
    error: CheckFailure | None = Field(default=None, description="present when `ok` is false")


class Queued(Shape):
    queued: int = Field(description="calls queued for another sync")


class CrmRecord(Shape):
    call_id: str
    record_id: str = Field(description="the CRM's record id")
    record_type: str
    version: int = Field(description="the call version the CRM holds")
    synced_at: AwareDatetime


class CrmRecordPage(Shape):
    data: list[CrmRecord]
    next_cursor: str | None


# --- quarantine ---------------------------------------------------------------------------------------


class Quarantined(Shape):
    """A verified webhook no adapter could read (or the store refused), kept whole."""

    model_config = shown(ex.QUARANTINED_EXAMPLE)
    id: str = Field(description="`qua_<ULID>`")
    source_id: str
    vendor: str
    error: str
    received_at: AwareDatetime
    resolved_at: AwareDatetime | None
    status: Literal["open", "resolved"]
    size: int = Field(description="the body's length in bytes")


class QuarantinedWhole(Quarantined):
    model_config = shown(ex.QUARANTINED_WHOLE_EXAMPLE)
    body: str = Field(description="as text when it is UTF-8, else base64 (`body_encoding`)")
    body_encoding: Literal["utf-8", "base64"]
    headers: dict[str, str] = Field(description="the request's headers, as received")


class QuarantinePage(Shape):
    data: list[Quarantined]
    next_cursor: str | None


class Replayed(Shape):
    """``recovered`` with the calls it changed, ``unreadable`` with why (it stays open), or ``resolved``
    when it was resolved before."""

    model_config = shown(ex.REPLAYED_EXAMPLE_1, ex.REPLAYED_EXAMPLE_2)
    id: str
    status: Literal["recovered", "unreadable", "resolved"]
    calls: list[ChangedCall] | None = Field(default=None, description="absent when `unreadable`")
    error: str | None = Field(default=None, description="only when `unreadable`")


# --- portal links -------------------------------------------------------------------------------------


class RecordingLink(Shape):
    url: str = Field(description="`…/recordings/<token>`: the link is the credential")
    expires_at: AwareDatetime


class PortalLink(Shape):
    url: str = Field(description="`…/portal/<token>`: the link is the credential")
    expires_at: AwareDatetime


class PortalView(Shape):
    subscription: Subscription
    deliveries: list[Delivery] = Field(description="newest first")
    next_cursor: str | None


# --- administration, operations -----------------------------------------------------------------------


class TenantCreated(Shape):
    model_config = shown(ex.TENANT_CREATED_EXAMPLE)
    tenant_id: str
    name: str
    api_key: str = Field(description="the tenant's first key (`cgk_…`): shown only here")


class ApiKeyCreated(Shape):
    model_config = shown(ex.API_KEY_CREATED_EXAMPLE)
    id: str = Field(description="`key_<ULID>`")
    tenant_id: str | None = Field(description="null for an operator key")
    operator: bool
    api_key: str = Field(description="`cgk_…`: shown only here")


class Index(Shape):
    name: Literal["callgate"]
    version: str
    links: dict[str, str]
    auth: str


class Health(Shape):
    status: Literal["ok"]
    version: str


class Ready(Shape):
    status: Literal["ready"]
    database: Literal["ok"]


class OpenApiDocument(Shape):
    """``GET /openapi.json`` itself (OpenAPI 3.1)."""

    openapi: Literal["3.1.0"]
    info: dict[str, Any]
    tags: list[dict[str, Any]]
    paths: dict[str, Any]
    components: dict[str, Any]
