"""crm: connections, crm_records; deliveries carry a subscription or a connection

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

JSONDoc = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    op.create_table(
        "connections",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("base_url", sa.String(length=2000), nullable=False),
        sa.Column("credentials", sa.Text(), nullable=False),
        sa.Column("options", JSONDoc, nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("paused_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", JSONDoc, nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name=op.f("fk_connections_tenant_id_tenants")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_connections")),
    )
    with op.batch_alter_table("connections", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_connections_tenant_id_id"), ["tenant_id", "id"], unique=False)

    op.create_table(
        "crm_records",
        sa.Column("connection_id", sa.String(length=40), nullable=False),
        sa.Column("call_id", sa.String(length=40), nullable=False),
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("record_id", sa.String(length=200), nullable=False),
        sa.Column("record_type", sa.String(length=60), nullable=False),
        sa.Column("extra", JSONDoc, nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("synced_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["call_id"], ["calls.id"], name=op.f("fk_crm_records_call_id_calls")),
        sa.ForeignKeyConstraint(
            ["connection_id"], ["connections.id"], name=op.f("fk_crm_records_connection_id_connections")
        ),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name=op.f("fk_crm_records_tenant_id_tenants")),
        sa.PrimaryKeyConstraint("connection_id", "call_id", name=op.f("pk_crm_records")),
    )

    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.alter_column("subscription_id", existing_type=sa.String(length=40), nullable=True)
        batch_op.add_column(sa.Column("connection_id", sa.String(length=40), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_deliveries_connection_id_connections"), "connections", ["connection_id"], ["id"]
        )
        batch_op.create_index(
            batch_op.f("ix_deliveries_connection_id_call_id_sequence"),
            ["connection_id", "call_id", "sequence"],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_deliveries_connection_id_call_id_sequence"))
        batch_op.drop_constraint(batch_op.f("fk_deliveries_connection_id_connections"), type_="foreignkey")
        batch_op.drop_column("connection_id")
    op.execute("DELETE FROM deliveries WHERE subscription_id IS NULL")
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.alter_column("subscription_id", existing_type=sa.String(length=40), nullable=False)
    op.drop_table("crm_records")
    with op.batch_alter_table("connections", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_connections_tenant_id_id"))
    op.drop_table("connections")
