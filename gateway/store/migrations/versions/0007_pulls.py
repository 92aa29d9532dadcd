"""pulls: parts of finished calls to fetch from the vendor's read API (hydration)

One row per (call, part): a transcript or a grade a completed call still lacks, due at ``next_attempt_at``,
retried with the vendor's back-off, ``done`` once applied or once the vendor says there is none.

Additive only: processes on the previous revision keep working while this runs (they ignore it).

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "pulls",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("source_id", sa.String(length=40), nullable=False),
        sa.Column("call_id", sa.String(length=40), nullable=False),
        sa.Column("part", sa.String(length=20), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.String(length=500), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["call_id"], ["calls.id"], name=op.f("fk_pulls_call_id_calls")),
        sa.ForeignKeyConstraint(["source_id"], ["sources.id"], name=op.f("fk_pulls_source_id_sources")),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name=op.f("fk_pulls_tenant_id_tenants")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pulls")),
        sa.UniqueConstraint("call_id", "part", name=op.f("uq_pulls_call_id_part")),
    )
    with op.batch_alter_table("pulls", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_pulls_status_next_attempt_at"), ["status", "next_attempt_at"])


def downgrade() -> None:
    with op.batch_alter_table("pulls", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_pulls_status_next_attempt_at"))
    op.drop_table("pulls")
