"""initial schema

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "kv",
        sa.Column("key", sa.String(length=100), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_kv")),
    )
    op.create_table(
        "tenants",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tenants")),
    )
    op.create_table(
        "api_keys",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("tenant_id", sa.String(length=40), nullable=True),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("key_hint", sa.String(length=8), nullable=False),
        sa.Column("is_operator", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name=op.f("fk_api_keys_tenant_id_tenants")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_keys")),
        sa.UniqueConstraint("key_hash", name=op.f("uq_api_keys_key_hash")),
    )
    op.create_table(
        "sources",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("vendor", sa.String(length=40), nullable=False),
        sa.Column(
            "verification",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name=op.f("fk_sources_tenant_id_tenants")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sources")),
    )
    with op.batch_alter_table("sources", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_sources_tenant_id_id"), ["tenant_id", "id"], unique=False)

    op.create_table(
        "calls",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("source_id", sa.String(length=40), nullable=False),
        sa.Column("vendor", sa.String(length=40), nullable=False),
        sa.Column("vendor_call_id", sa.String(length=300), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=True),
        sa.Column("direction", sa.String(length=10), nullable=False),
        sa.Column("from_number", sa.String(length=40), nullable=True),
        sa.Column("to_number", sa.String(length=40), nullable=True),
        sa.Column(
            "data",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "stamps",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["source_id"], ["sources.id"], name=op.f("fk_calls_source_id_sources")),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name=op.f("fk_calls_tenant_id_tenants")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_calls")),
        sa.UniqueConstraint(
            "tenant_id", "vendor", "vendor_call_id", name=op.f("uq_calls_tenant_id_vendor_vendor_call_id")
        ),
    )
    with op.batch_alter_table("calls", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_calls_tenant_id_created_at"), ["tenant_id", "created_at"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_calls_tenant_id_from_number"), ["tenant_id", "from_number"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_calls_tenant_id_status"), ["tenant_id", "status"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_calls_tenant_id_to_number"), ["tenant_id", "to_number"], unique=False
        )

    op.create_table(
        "quarantine",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("source_id", sa.String(length=40), nullable=False),
        sa.Column("vendor", sa.String(length=40), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "headers",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.Column("error", sa.Text(), nullable=False),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["source_id"], ["sources.id"], name=op.f("fk_quarantine_source_id_sources")),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name=op.f("fk_quarantine_tenant_id_tenants")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_quarantine")),
    )
    with op.batch_alter_table("quarantine", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_quarantine_tenant_id_received_at"), ["tenant_id", "received_at"], unique=False
        )

    op.create_table(
        "raw_events",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("source_id", sa.String(length=40), nullable=False),
        sa.Column("vendor", sa.String(length=40), nullable=False),
        sa.Column("event_key", sa.String(length=300), nullable=False),
        sa.Column("event_type", sa.String(length=200), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("link_alias", sa.String(length=300), nullable=True),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "headers",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(["source_id"], ["sources.id"], name=op.f("fk_raw_events_source_id_sources")),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name=op.f("fk_raw_events_tenant_id_tenants")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_raw_events")),
        sa.UniqueConstraint("source_id", "event_key", name=op.f("uq_raw_events_source_id_event_key")),
    )
    with op.batch_alter_table("raw_events", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_raw_events_tenant_id_vendor_link_alias"),
            ["tenant_id", "vendor", "link_alias"],
            unique=False,
        )

    op.create_table(
        "call_aliases",
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("vendor", sa.String(length=40), nullable=False),
        sa.Column("alias", sa.String(length=300), nullable=False),
        sa.Column("call_id", sa.String(length=40), nullable=False),
        sa.ForeignKeyConstraint(["call_id"], ["calls.id"], name=op.f("fk_call_aliases_call_id_calls")),
        sa.PrimaryKeyConstraint("tenant_id", "vendor", "alias", name=op.f("pk_call_aliases")),
    )
    op.create_table(
        "call_events",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("call_id", sa.String(length=40), nullable=False),
        sa.Column("raw_event_id", sa.String(length=40), nullable=False),
        sa.Column("event_type", sa.String(length=200), nullable=False),
        sa.Column(
            "types",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "changed",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("status", sa.String(length=20), nullable=True),
        sa.Column("previous_status", sa.String(length=20), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["call_id"], ["calls.id"], name=op.f("fk_call_events_call_id_calls")),
        sa.ForeignKeyConstraint(
            ["raw_event_id"], ["raw_events.id"], name=op.f("fk_call_events_raw_event_id_raw_events")
        ),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name=op.f("fk_call_events_tenant_id_tenants")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_call_events")),
    )
    with op.batch_alter_table("call_events", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_call_events_call_id_id"), ["call_id", "id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("call_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_call_events_call_id_id"))

    op.drop_table("call_events")
    op.drop_table("call_aliases")
    with op.batch_alter_table("raw_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_raw_events_tenant_id_vendor_link_alias"))

    op.drop_table("raw_events")
    with op.batch_alter_table("quarantine", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_quarantine_tenant_id_received_at"))

    op.drop_table("quarantine")
    with op.batch_alter_table("calls", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_calls_tenant_id_to_number"))
        batch_op.drop_index(batch_op.f("ix_calls_tenant_id_status"))
        batch_op.drop_index(batch_op.f("ix_calls_tenant_id_from_number"))
        batch_op.drop_index(batch_op.f("ix_calls_tenant_id_created_at"))

    op.drop_table("calls")
    with op.batch_alter_table("sources", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sources_tenant_id_id"))

    op.drop_table("sources")
    op.drop_table("api_keys")
    op.drop_table("tenants")
    op.drop_table("kv")
