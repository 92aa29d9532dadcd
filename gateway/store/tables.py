"""The schema: one SQLModel table model per table, the one declaration of each.

``SQLModel.metadata`` is what Alembic compares against (``migrations/env.py``) and
``tests/store/test_schema.py`` checks that the migrations produce exactly these tables. Every query runs
Core statements over each model's table (``calls = table_of(Call)``, ``calls.c.status``): the ingest hot
path builds no ORM objects and runs cached, compiled statements, so the models cost it nothing. Each
column is declared with its exact SQL type (``sa_column``): lengths, aware UTC datetimes on both databases,
JSON that is JSONB on PostgreSQL.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
    and_,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field, SQLModel


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in and out, on SQLite (naive text) and PostgreSQL (timestamptz) alike."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if isinstance(value, str):
            value = datetime.fromisoformat(value)
        if not isinstance(value, datetime):
            raise TypeError(f"not a datetime: {value!r}")
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


JSONDoc = JSON().with_variant(JSONB(), "postgresql")
ID = String(40)

# names for unnamed constraints and indexes, as the migrations created them
SQLModel.metadata.naming_convention = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
metadata = SQLModel.metadata


def table_of(model: type[SQLModel]) -> Table:
    """A table model's Core table: what the queries use."""
    table = model.__table__  # type: ignore[attr-defined]  # set by SQLModel for table=True
    if not isinstance(table, Table):
        raise TypeError(f"{model.__name__} is not a table model")
    return table


class KeyValue(SQLModel, table=True):
    __tablename__ = "kv"
    key: str = Field(sa_column=Column("key", String(100), primary_key=True))
    value: str = Field(sa_column=Column("value", Text, nullable=False))


kv = table_of(KeyValue)


class Tenant(SQLModel, table=True):
    __tablename__ = "tenants"
    id: str = Field(sa_column=Column("id", ID, primary_key=True))
    name: str = Field(sa_column=Column("name", String(200), nullable=False))
    created_at: datetime = Field(sa_column=Column("created_at", UTCDateTime, nullable=False))


tenants = table_of(Tenant)


class ApiKey(SQLModel, table=True):
    __tablename__ = "api_keys"
    id: str = Field(sa_column=Column("id", ID, primary_key=True))
    tenant_id: str | None = Field(
        sa_column=Column("tenant_id", ID, ForeignKey("tenants.id"), nullable=True)
    )  # NULL: an operator key
    name: str = Field(sa_column=Column("name", String(200), nullable=False))
    key_hash: str = Field(sa_column=Column("key_hash", String(64), nullable=False, unique=True))
    key_hint: str = Field(sa_column=Column("key_hint", String(8), nullable=False))
    is_operator: bool = Field(sa_column=Column("is_operator", Boolean, nullable=False))
    created_at: datetime = Field(sa_column=Column("created_at", UTCDateTime, nullable=False))
    revoked_at: datetime | None = Field(sa_column=Column("revoked_at", UTCDateTime, nullable=True))


api_keys = table_of(ApiKey)


class Source(SQLModel, table=True):
    __tablename__ = "sources"
    __table_args__ = (Index(None, "tenant_id", "id"),)
    id: str = Field(sa_column=Column("id", ID, primary_key=True))
    tenant_id: str = Field(sa_column=Column("tenant_id", ID, ForeignKey("tenants.id"), nullable=False))
    name: str = Field(sa_column=Column("name", String(200), nullable=False))
    vendor: str = Field(sa_column=Column("vendor", String(40), nullable=False))
    verification: Any = Field(sa_column=Column("verification", JSONDoc, nullable=False))
    enabled: bool = Field(sa_column=Column("enabled", Boolean, nullable=False))
    created_at: datetime = Field(sa_column=Column("created_at", UTCDateTime, nullable=False))
    updated_at: datetime = Field(sa_column=Column("updated_at", UTCDateTime, nullable=False))
    deleted_at: datetime | None = Field(sa_column=Column("deleted_at", UTCDateTime, nullable=True))
    # the vendor's read API (gateway.pull), optional: {base_url, org_id?}; the token encrypted (gateway.vault)
    pull: Any = Field(sa_column=Column("pull", JSONDoc, nullable=True))
    pull_token: str | None = Field(sa_column=Column("pull_token", Text, nullable=True))


sources = table_of(Source)


class RawEvent(SQLModel, table=True):
    __tablename__ = "raw_events"
    __table_args__ = (
        UniqueConstraint("source_id", "event_key"),
        Index(None, "tenant_id", "vendor", "link_alias"),
    )
    id: str = Field(sa_column=Column("id", ID, primary_key=True))
    tenant_id: str = Field(sa_column=Column("tenant_id", ID, ForeignKey("tenants.id"), nullable=False))
    source_id: str = Field(sa_column=Column("source_id", ID, ForeignKey("sources.id"), nullable=False))
    vendor: str = Field(sa_column=Column("vendor", String(40), nullable=False))
    event_key: str = Field(sa_column=Column("event_key", String(300), nullable=False))
    event_type: str = Field(sa_column=Column("event_type", String(200), nullable=False))
    # applied | pending_link (waits for its room's call) | no_call | unknown_type
    state: str = Field(sa_column=Column("state", String(20), nullable=False))
    link_alias: str | None = Field(sa_column=Column("link_alias", String(300), nullable=True))
    occurred_at: datetime | None = Field(sa_column=Column("occurred_at", UTCDateTime, nullable=True))
    received_at: datetime = Field(sa_column=Column("received_at", UTCDateTime, nullable=False))
    headers: Any = Field(sa_column=Column("headers", JSONDoc, nullable=False))
    body: bytes = Field(sa_column=Column("body", LargeBinary, nullable=False))


raw_events = table_of(RawEvent)


class Call(SQLModel, table=True):
    __tablename__ = "calls"
    __table_args__ = (
        UniqueConstraint("tenant_id", "vendor", "vendor_call_id"),
        # the calls list is newest first: these let it walk in that order and stop at a page (0008), a
        # number's calls too, however many it has (0009)
        Index(None, "tenant_id", "id"),
        Index(None, "tenant_id", "status", "id"),
        Index(None, "tenant_id", "from_number", "id"),
        Index(None, "tenant_id", "to_number", "id"),
        Index(None, "tenant_id", "created_at"),
    )
    id: str = Field(sa_column=Column("id", ID, primary_key=True))
    tenant_id: str = Field(sa_column=Column("tenant_id", ID, ForeignKey("tenants.id"), nullable=False))
    source_id: str = Field(sa_column=Column("source_id", ID, ForeignKey("sources.id"), nullable=False))
    vendor: str = Field(sa_column=Column("vendor", String(40), nullable=False))
    vendor_call_id: str = Field(sa_column=Column("vendor_call_id", String(300), nullable=False))
    status: str | None = Field(sa_column=Column("status", String(20), nullable=True))
    direction: str = Field(sa_column=Column("direction", String(10), nullable=False))
    from_number: str | None = Field(sa_column=Column("from_number", String(40), nullable=True))
    to_number: str | None = Field(sa_column=Column("to_number", String(40), nullable=True))
    data: Any = Field(sa_column=Column("data", JSONDoc, nullable=False))  # the public call fields
    stamps: Any = Field(
        sa_column=Column("stamps", JSONDoc, nullable=False)
    )  # merge bookkeeping (gateway.model.CallState)
    version: int = Field(sa_column=Column("version", Integer, nullable=False))
    created_at: datetime = Field(sa_column=Column("created_at", UTCDateTime, nullable=False))
    updated_at: datetime = Field(sa_column=Column("updated_at", UTCDateTime, nullable=False))


calls = table_of(Call)


class CallAlias(SQLModel, table=True):
    __tablename__ = "call_aliases"
    tenant_id: str = Field(sa_column=Column("tenant_id", ID, primary_key=True))
    vendor: str = Field(sa_column=Column("vendor", String(40), primary_key=True))
    alias: str = Field(sa_column=Column("alias", String(300), primary_key=True))
    call_id: str = Field(sa_column=Column("call_id", ID, ForeignKey("calls.id"), nullable=False))


call_aliases = table_of(CallAlias)


class CallEvent(SQLModel, table=True):
    __tablename__ = "call_events"
    __table_args__ = (Index(None, "call_id", "id"),)
    id: str = Field(sa_column=Column("id", ID, primary_key=True))
    tenant_id: str = Field(sa_column=Column("tenant_id", ID, ForeignKey("tenants.id"), nullable=False))
    call_id: str = Field(sa_column=Column("call_id", ID, ForeignKey("calls.id"), nullable=False))
    raw_event_id: str = Field(
        sa_column=Column("raw_event_id", ID, ForeignKey("raw_events.id"), nullable=False)
    )
    event_type: str = Field(sa_column=Column("event_type", String(200), nullable=False))  # the vendor's
    types: Any = Field(
        sa_column=Column("types", JSONDoc, nullable=False)
    )  # the call.* types this change emits
    changed: Any = Field(sa_column=Column("changed", JSONDoc, nullable=False))
    status: str | None = Field(sa_column=Column("status", String(20), nullable=True))
    previous_status: str | None = Field(sa_column=Column("previous_status", String(20), nullable=True))
    version: int = Field(sa_column=Column("version", Integer, nullable=False))
    occurred_at: datetime | None = Field(sa_column=Column("occurred_at", UTCDateTime, nullable=True))
    created_at: datetime = Field(sa_column=Column("created_at", UTCDateTime, nullable=False))


call_events = table_of(CallEvent)


class Quarantined(SQLModel, table=True):
    __tablename__ = "quarantine"
    __table_args__ = (Index(None, "tenant_id", "received_at"),)
    id: str = Field(sa_column=Column("id", ID, primary_key=True))
    tenant_id: str = Field(sa_column=Column("tenant_id", ID, ForeignKey("tenants.id"), nullable=False))
    source_id: str = Field(sa_column=Column("source_id", ID, ForeignKey("sources.id"), nullable=False))
    vendor: str = Field(sa_column=Column("vendor", String(40), nullable=False))
    received_at: datetime = Field(sa_column=Column("received_at", UTCDateTime, nullable=False))
    headers: Any = Field(sa_column=Column("headers", JSONDoc, nullable=False))
    body: bytes = Field(sa_column=Column("body", LargeBinary, nullable=False))
    error: str = Field(sa_column=Column("error", Text, nullable=False))
    resolved_at: datetime | None = Field(sa_column=Column("resolved_at", UTCDateTime, nullable=True))


quarantine = table_of(Quarantined)


# Parts of a finished call to fetch from its vendor's read API (gateway.pull.hydrate): pending until applied,
# or until the vendor says there is none (done), retried with the vendor's back-off, dead after too many.
class Pull(SQLModel, table=True):
    __tablename__ = "pulls"
    __table_args__ = (UniqueConstraint("call_id", "part"), Index(None, "status", "next_attempt_at"))
    id: str = Field(sa_column=Column("id", ID, primary_key=True))
    tenant_id: str = Field(sa_column=Column("tenant_id", ID, ForeignKey("tenants.id"), nullable=False))
    source_id: str = Field(sa_column=Column("source_id", ID, ForeignKey("sources.id"), nullable=False))
    call_id: str = Field(sa_column=Column("call_id", ID, ForeignKey("calls.id"), nullable=False))
    part: str = Field(sa_column=Column("part", String(20), nullable=False))  # transcript | grade | survey
    status: str = Field(sa_column=Column("status", String(20), nullable=False))  # pending | done | dead
    attempts: int = Field(sa_column=Column("attempts", Integer, nullable=False))
    next_attempt_at: datetime = Field(sa_column=Column("next_attempt_at", UTCDateTime, nullable=False))
    lease_until: datetime | None = Field(sa_column=Column("lease_until", UTCDateTime, nullable=True))
    last_error: str | None = Field(sa_column=Column("last_error", String(500), nullable=True))
    created_at: datetime = Field(sa_column=Column("created_at", UTCDateTime, nullable=False))
    updated_at: datetime = Field(sa_column=Column("updated_at", UTCDateTime, nullable=False))


pulls = table_of(Pull)

# --- CRM connections and where each call lives in each CRM -------------------------------------------


class Connection(SQLModel, table=True):
    __tablename__ = "connections"
    __table_args__ = (Index(None, "tenant_id", "id"),)
    id: str = Field(sa_column=Column("id", ID, primary_key=True))
    tenant_id: str = Field(sa_column=Column("tenant_id", ID, ForeignKey("tenants.id"), nullable=False))
    kind: str = Field(
        sa_column=Column("kind", String(40), nullable=False)
    )  # hubspot | salesforce | pipedrive
    name: str = Field(sa_column=Column("name", String(200), nullable=False))
    base_url: str = Field(sa_column=Column("base_url", String(2000), nullable=False))
    credentials: str = Field(
        sa_column=Column("credentials", Text, nullable=False)
    )  # Fernet token of the JSON credentials; never returned
    options: Any = Field(
        sa_column=Column("options", JSONDoc, nullable=False)
    )  # with the kind's defaults filled in
    enabled: bool = Field(sa_column=Column("enabled", Boolean, nullable=False))
    state: str = Field(sa_column=Column("state", String(20), nullable=False))  # active | paused | auth_failed
    paused_until: datetime | None = Field(sa_column=Column("paused_until", UTCDateTime, nullable=True))
    last_error: Any = Field(sa_column=Column("last_error", JSONDoc, nullable=True))  # {code, message, at}
    created_at: datetime = Field(sa_column=Column("created_at", UTCDateTime, nullable=False))
    updated_at: datetime = Field(sa_column=Column("updated_at", UTCDateTime, nullable=False))
    deleted_at: datetime | None = Field(sa_column=Column("deleted_at", UTCDateTime, nullable=True))


connections = table_of(Connection)


class CrmRecord(SQLModel, table=True):
    __tablename__ = "crm_records"
    connection_id: str = Field(
        sa_column=Column("connection_id", ID, ForeignKey("connections.id"), primary_key=True)
    )
    call_id: str = Field(sa_column=Column("call_id", ID, ForeignKey("calls.id"), primary_key=True))
    tenant_id: str = Field(sa_column=Column("tenant_id", ID, ForeignKey("tenants.id"), nullable=False))
    record_id: str = Field(sa_column=Column("record_id", String(200), nullable=False))
    record_type: str = Field(sa_column=Column("record_type", String(60), nullable=False))
    extra: Any = Field(
        sa_column=Column("extra", JSONDoc, nullable=False)
    )  # what the connector needs next time (a note id…)
    version: int = Field(
        sa_column=Column("version", Integer, nullable=False)
    )  # the call version the CRM holds
    synced_at: datetime = Field(sa_column=Column("synced_at", UTCDateTime, nullable=False))


crm_records = table_of(CrmRecord)

# --- the outbox: customer subscriptions and their deliveries -----------------------------------------


class Subscription(SQLModel, table=True):
    __tablename__ = "subscriptions"
    __table_args__ = (Index(None, "tenant_id", "id"),)
    id: str = Field(sa_column=Column("id", ID, primary_key=True))
    tenant_id: str = Field(sa_column=Column("tenant_id", ID, ForeignKey("tenants.id"), nullable=False))
    url: str = Field(sa_column=Column("url", String(2000), nullable=False))
    description: str = Field(sa_column=Column("description", String(500), nullable=False))
    event_types: Any = Field(
        sa_column=Column("event_types", JSONDoc, nullable=False)
    )  # exact types, "call.*" or "*"
    # [{"secret": "whsec_…", "expires_at": ISO | null}]: the current one first, rotated ones until expiry
    secrets: Any = Field(sa_column=Column("secrets", JSONDoc, nullable=False))
    enabled: bool = Field(sa_column=Column("enabled", Boolean, nullable=False))
    disabled_reason: str | None = Field(sa_column=Column("disabled_reason", String(200), nullable=True))
    rate_limit_per_second: float | None = Field(
        sa_column=Column("rate_limit_per_second", Float, nullable=True)
    )
    max_concurrency: int | None = Field(sa_column=Column("max_concurrency", Integer, nullable=True))
    failing_since: datetime | None = Field(
        sa_column=Column("failing_since", UTCDateTime, nullable=True)
    )  # first failure after the last success
    created_at: datetime = Field(sa_column=Column("created_at", UTCDateTime, nullable=False))
    updated_at: datetime = Field(sa_column=Column("updated_at", UTCDateTime, nullable=False))
    deleted_at: datetime | None = Field(sa_column=Column("deleted_at", UTCDateTime, nullable=True))


subscriptions = table_of(Subscription)


class Delivery(SQLModel, table=True):
    __tablename__ = "deliveries"
    __table_args__ = (
        Index(None, "subscription_id", "call_id", "sequence"),
        Index(None, "connection_id", "call_id", "sequence"),
        Index(None, "tenant_id", "id"),
    )
    id: str = Field(
        sa_column=Column("id", ID, primary_key=True)
    )  # also the webhook-id: stable across retries
    tenant_id: str = Field(sa_column=Column("tenant_id", ID, ForeignKey("tenants.id"), nullable=False))
    # a row is for exactly one endpoint: a subscription (a signed webhook) or a CRM connection (a sync)
    subscription_id: str | None = Field(
        sa_column=Column("subscription_id", ID, ForeignKey("subscriptions.id"), nullable=True)
    )
    connection_id: str | None = Field(
        sa_column=Column("connection_id", ID, ForeignKey("connections.id"), nullable=True)
    )
    call_id: str | None = Field(
        sa_column=Column("call_id", ID, ForeignKey("calls.id"), nullable=True)
    )  # null for a ping
    event_type: str = Field(sa_column=Column("event_type", String(60), nullable=False))
    call_version: int | None = Field(sa_column=Column("call_version", Integer, nullable=True))
    sequence: int = Field(
        sa_column=Column("sequence", Integer, nullable=False)
    )  # order within (subscription, call)
    payload: bytes = Field(
        sa_column=Column("payload", LargeBinary, nullable=False)
    )  # the exact body sent on every attempt
    # pending (due at next_attempt_at) | succeeded | dead
    status: str = Field(sa_column=Column("status", String(20), nullable=False))
    attempts: int = Field(
        sa_column=Column("attempts", Integer, nullable=False)
    )  # attempts in the current retry schedule
    next_attempt_at: datetime | None = Field(sa_column=Column("next_attempt_at", UTCDateTime, nullable=True))
    lease_until: datetime | None = Field(sa_column=Column("lease_until", UTCDateTime, nullable=True))
    lease_owner: str | None = Field(sa_column=Column("lease_owner", String(60), nullable=True))
    last_status_code: int | None = Field(sa_column=Column("last_status_code", Integer, nullable=True))
    last_error: str | None = Field(sa_column=Column("last_error", String(500), nullable=True))
    created_at: datetime = Field(sa_column=Column("created_at", UTCDateTime, nullable=False))
    updated_at: datetime = Field(sa_column=Column("updated_at", UTCDateTime, nullable=False))
    completed_at: datetime | None = Field(sa_column=Column("completed_at", UTCDateTime, nullable=True))


deliveries = table_of(Delivery)

# The worker's indexes cover only pending rows: a claim walks the due rows in order and stops at its limit,
# and "is an earlier row of this call still pending" is one probe, however many rows were delivered. With
# an index on status alone, SQLite answered both by scanning every pending row - per candidate (docs/
# benchmarks.md: 366 ms a claim with 3,000 pending, 0.5 ms with these).
_PENDING = deliveries.c.status == "pending"
for _endpoint in ("subscription", "connection"):  # a claim of one kind never walks the other's backlog
    _due = and_(_PENDING, deliveries.c[f"{_endpoint}_id"].is_not(None))
    Index(
        f"ix_deliveries_pending_{_endpoint}_due",
        deliveries.c.next_attempt_at,
        deliveries.c.id,
        sqlite_where=_due,
        postgresql_where=_due,
    )
    Index(
        f"ix_deliveries_pending_{_endpoint}_line",
        deliveries.c[f"{_endpoint}_id"],
        deliveries.c.call_id,
        deliveries.c.sequence,
        deliveries.c.id,
        sqlite_where=_PENDING,
        postgresql_where=_PENDING,
    )
    # rows a worker holds right now, per endpoint: the claim counts them against max_concurrency across
    # every process (a handful per endpoint however long the backlog)
    _leased = and_(_PENDING, deliveries.c.lease_owner.is_not(None))
    Index(
        f"ix_deliveries_leased_{_endpoint}",
        deliveries.c[f"{_endpoint}_id"],
        sqlite_where=_leased,
        postgresql_where=_leased,
    )


# An endpoint's rate budget, shared by every worker (GCRA): the earliest moment its next request may be
# sent. A claim of a rate-limited endpoint locks this row, hands each row it leases the next slot, and moves
# it on by 1/rate; the workers wait for their rows' slots. Endpoint = a subscription or a CRM connection.
class EndpointBudget(SQLModel, table=True):
    __tablename__ = "endpoint_budgets"
    endpoint_id: str = Field(sa_column=Column("endpoint_id", ID, primary_key=True))
    next_slot_at: datetime | None = Field(sa_column=Column("next_slot_at", UTCDateTime, nullable=True))


endpoint_budgets = table_of(EndpointBudget)


class DeliveryAttempt(SQLModel, table=True):
    __tablename__ = "delivery_attempts"
    __table_args__ = (Index(None, "delivery_id", "id"),)
    id: str = Field(sa_column=Column("id", ID, primary_key=True))
    delivery_id: str = Field(sa_column=Column("delivery_id", ID, ForeignKey("deliveries.id"), nullable=False))
    tenant_id: str = Field(sa_column=Column("tenant_id", ID, ForeignKey("tenants.id"), nullable=False))
    attempted_at: datetime = Field(sa_column=Column("attempted_at", UTCDateTime, nullable=False))
    status_code: int | None = Field(sa_column=Column("status_code", Integer, nullable=True))
    latency_ms: int = Field(sa_column=Column("latency_ms", Integer, nullable=False))
    error: str | None = Field(sa_column=Column("error", String(500), nullable=True))
    response_body: str | None = Field(
        sa_column=Column("response_body", Text, nullable=True)
    )  # the first 8 KiB
    next_attempt_at: datetime | None = Field(
        sa_column=Column("next_attempt_at", UTCDateTime, nullable=True)
    )  # what was decided


delivery_attempts = table_of(DeliveryAttempt)


class OperatorEvent(SQLModel, table=True):
    __tablename__ = "operator_events"
    __table_args__ = (Index(None, "created_at"),)
    id: str = Field(sa_column=Column("id", ID, primary_key=True))
    tenant_id: str | None = Field(sa_column=Column("tenant_id", ID, ForeignKey("tenants.id"), nullable=True))
    kind: str = Field(sa_column=Column("kind", String(60), nullable=False))  # e.g. subscription.disabled
    subject_id: str | None = Field(sa_column=Column("subject_id", ID, nullable=True))
    detail: Any = Field(sa_column=Column("detail", JSONDoc, nullable=False))
    created_at: datetime = Field(sa_column=Column("created_at", UTCDateTime, nullable=False))


operator_events = table_of(OperatorEvent)
