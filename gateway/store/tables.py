"""The schema, as SQLAlchemy Core tables. Alembic migrations create it; these describe it for queries.

Core, not ORM objects: the ingest hot path builds no per-row objects and runs cached, compiled
statements. ``tests/store/test_schema.py`` checks that the migrations produce exactly these tables.
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
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
    and_,
)
from sqlalchemy.dialects.postgresql import JSONB


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

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

kv = Table(
    "kv",
    metadata,
    Column("key", String(100), primary_key=True),
    Column("value", Text, nullable=False),
)

tenants = Table(
    "tenants",
    metadata,
    Column("id", ID, primary_key=True),
    Column("name", String(200), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", ID, primary_key=True),
    Column("tenant_id", ID, ForeignKey("tenants.id"), nullable=True),  # NULL: an operator key
    Column("name", String(200), nullable=False),
    Column("key_hash", String(64), nullable=False, unique=True),
    Column("key_hint", String(8), nullable=False),
    Column("is_operator", Boolean, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("revoked_at", UTCDateTime, nullable=True),
)

sources = Table(
    "sources",
    metadata,
    Column("id", ID, primary_key=True),
    Column("tenant_id", ID, ForeignKey("tenants.id"), nullable=False),
    Column("name", String(200), nullable=False),
    Column("vendor", String(40), nullable=False),
    Column("verification", JSONDoc, nullable=False),
    Column("enabled", Boolean, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("deleted_at", UTCDateTime, nullable=True),
    Index(None, "tenant_id", "id"),
)

raw_events = Table(
    "raw_events",
    metadata,
    Column("id", ID, primary_key=True),
    Column("tenant_id", ID, ForeignKey("tenants.id"), nullable=False),
    Column("source_id", ID, ForeignKey("sources.id"), nullable=False),
    Column("vendor", String(40), nullable=False),
    Column("event_key", String(300), nullable=False),
    Column("event_type", String(200), nullable=False),
    # applied | pending_link (waits for its room's call) | no_call | unknown_type
    Column("state", String(20), nullable=False),
    Column("link_alias", String(300), nullable=True),
    Column("occurred_at", UTCDateTime, nullable=True),
    Column("received_at", UTCDateTime, nullable=False),
    Column("headers", JSONDoc, nullable=False),
    Column("body", LargeBinary, nullable=False),
    UniqueConstraint("source_id", "event_key"),
    Index(None, "tenant_id", "vendor", "link_alias"),
)

calls = Table(
    "calls",
    metadata,
    Column("id", ID, primary_key=True),
    Column("tenant_id", ID, ForeignKey("tenants.id"), nullable=False),
    Column("source_id", ID, ForeignKey("sources.id"), nullable=False),
    Column("vendor", String(40), nullable=False),
    Column("vendor_call_id", String(300), nullable=False),
    Column("status", String(20), nullable=True),
    Column("direction", String(10), nullable=False),
    Column("from_number", String(40), nullable=True),
    Column("to_number", String(40), nullable=True),
    Column("data", JSONDoc, nullable=False),  # the public call fields
    Column("stamps", JSONDoc, nullable=False),  # merge bookkeeping (gateway.model.CallState)
    Column("version", Integer, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    UniqueConstraint("tenant_id", "vendor", "vendor_call_id"),
    Index(None, "tenant_id", "status"),
    Index(None, "tenant_id", "from_number"),
    Index(None, "tenant_id", "to_number"),
    Index(None, "tenant_id", "created_at"),
)

call_aliases = Table(
    "call_aliases",
    metadata,
    Column("tenant_id", ID, primary_key=True),
    Column("vendor", String(40), primary_key=True),
    Column("alias", String(300), primary_key=True),
    Column("call_id", ID, ForeignKey("calls.id"), nullable=False),
)

call_events = Table(
    "call_events",
    metadata,
    Column("id", ID, primary_key=True),
    Column("tenant_id", ID, ForeignKey("tenants.id"), nullable=False),
    Column("call_id", ID, ForeignKey("calls.id"), nullable=False),
    Column("raw_event_id", ID, ForeignKey("raw_events.id"), nullable=False),
    Column("event_type", String(200), nullable=False),  # the vendor's
    Column("types", JSONDoc, nullable=False),  # the call.* types this change emits
    Column("changed", JSONDoc, nullable=False),
    Column("status", String(20), nullable=True),
    Column("previous_status", String(20), nullable=True),
    Column("version", Integer, nullable=False),
    Column("occurred_at", UTCDateTime, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Index(None, "call_id", "id"),
)

quarantine = Table(
    "quarantine",
    metadata,
    Column("id", ID, primary_key=True),
    Column("tenant_id", ID, ForeignKey("tenants.id"), nullable=False),
    Column("source_id", ID, ForeignKey("sources.id"), nullable=False),
    Column("vendor", String(40), nullable=False),
    Column("received_at", UTCDateTime, nullable=False),
    Column("headers", JSONDoc, nullable=False),
    Column("body", LargeBinary, nullable=False),
    Column("error", Text, nullable=False),
    Column("resolved_at", UTCDateTime, nullable=True),
    Index(None, "tenant_id", "received_at"),
)

# --- CRM connections and where each call lives in each CRM -------------------------------------------

connections = Table(
    "connections",
    metadata,
    Column("id", ID, primary_key=True),
    Column("tenant_id", ID, ForeignKey("tenants.id"), nullable=False),
    Column("kind", String(40), nullable=False),  # hubspot | salesforce | pipedrive
    Column("name", String(200), nullable=False),
    Column("base_url", String(2000), nullable=False),
    Column("credentials", Text, nullable=False),  # Fernet token of the JSON credentials; never returned
    Column("options", JSONDoc, nullable=False),  # with the kind's defaults filled in
    Column("enabled", Boolean, nullable=False),
    Column("state", String(20), nullable=False),  # active | paused | auth_failed
    Column("paused_until", UTCDateTime, nullable=True),
    Column("last_error", JSONDoc, nullable=True),  # {code, message, at}
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("deleted_at", UTCDateTime, nullable=True),
    Index(None, "tenant_id", "id"),
)

crm_records = Table(
    "crm_records",
    metadata,
    Column("connection_id", ID, ForeignKey("connections.id"), primary_key=True),
    Column("call_id", ID, ForeignKey("calls.id"), primary_key=True),
    Column("tenant_id", ID, ForeignKey("tenants.id"), nullable=False),
    Column("record_id", String(200), nullable=False),
    Column("record_type", String(60), nullable=False),
    Column("extra", JSONDoc, nullable=False),  # what the connector needs next time (a note id…)
    Column("version", Integer, nullable=False),  # the call version the CRM holds
    Column("synced_at", UTCDateTime, nullable=False),
)

# --- the outbox: customer subscriptions and their deliveries -----------------------------------------

subscriptions = Table(
    "subscriptions",
    metadata,
    Column("id", ID, primary_key=True),
    Column("tenant_id", ID, ForeignKey("tenants.id"), nullable=False),
    Column("url", String(2000), nullable=False),
    Column("description", String(500), nullable=False),
    Column("event_types", JSONDoc, nullable=False),  # exact types, "call.*" or "*"
    # [{"secret": "whsec_…", "expires_at": ISO | null}]: the current one first, rotated ones until expiry
    Column("secrets", JSONDoc, nullable=False),
    Column("enabled", Boolean, nullable=False),
    Column("disabled_reason", String(200), nullable=True),
    Column("rate_limit_per_second", Float, nullable=True),
    Column("max_concurrency", Integer, nullable=True),
    Column("failing_since", UTCDateTime, nullable=True),  # first failure after the last success
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("deleted_at", UTCDateTime, nullable=True),
    Index(None, "tenant_id", "id"),
)

deliveries = Table(
    "deliveries",
    metadata,
    Column("id", ID, primary_key=True),  # also the webhook-id: stable across retries
    Column("tenant_id", ID, ForeignKey("tenants.id"), nullable=False),
    # a row is for exactly one endpoint: a subscription (a signed webhook) or a CRM connection (a sync)
    Column("subscription_id", ID, ForeignKey("subscriptions.id"), nullable=True),
    Column("connection_id", ID, ForeignKey("connections.id"), nullable=True),
    Column("call_id", ID, ForeignKey("calls.id"), nullable=True),  # null for a ping
    Column("event_type", String(60), nullable=False),
    Column("call_version", Integer, nullable=True),
    Column("sequence", Integer, nullable=False),  # order within (subscription, call)
    Column("payload", LargeBinary, nullable=False),  # the exact body sent on every attempt
    # pending (due at next_attempt_at) | succeeded | dead
    Column("status", String(20), nullable=False),
    Column("attempts", Integer, nullable=False),  # attempts in the current retry schedule
    Column("next_attempt_at", UTCDateTime, nullable=True),
    Column("lease_until", UTCDateTime, nullable=True),
    Column("lease_owner", String(60), nullable=True),
    Column("last_status_code", Integer, nullable=True),
    Column("last_error", String(500), nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("completed_at", UTCDateTime, nullable=True),
    Index(None, "subscription_id", "call_id", "sequence"),
    Index(None, "connection_id", "call_id", "sequence"),
    Index(None, "tenant_id", "id"),
)

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
endpoint_budgets = Table(
    "endpoint_budgets",
    metadata,
    Column("endpoint_id", ID, primary_key=True),
    Column("next_slot_at", UTCDateTime, nullable=True),
)

delivery_attempts = Table(
    "delivery_attempts",
    metadata,
    Column("id", ID, primary_key=True),
    Column("delivery_id", ID, ForeignKey("deliveries.id"), nullable=False),
    Column("tenant_id", ID, ForeignKey("tenants.id"), nullable=False),
    Column("attempted_at", UTCDateTime, nullable=False),
    Column("status_code", Integer, nullable=True),
    Column("latency_ms", Integer, nullable=False),
    Column("error", String(500), nullable=True),
    Column("response_body", Text, nullable=True),  # the first 8 KiB
    Column("next_attempt_at", UTCDateTime, nullable=True),  # what was decided
    Index(None, "delivery_id", "id"),
)

operator_events = Table(
    "operator_events",
    metadata,
    Column("id", ID, primary_key=True),
    Column("tenant_id", ID, ForeignKey("tenants.id"), nullable=True),
    Column("kind", String(60), nullable=False),  # e.g. subscription.disabled
    Column("subject_id", ID, nullable=True),
    Column("detail", JSONDoc, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Index(None, "created_at"),
)
