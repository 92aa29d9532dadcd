"""endpoint_budgets: endpoint limits that hold across every worker process

``max_concurrency`` and ``rate_limit_per_second`` held per worker process. A claim now counts the rows
every worker holds for the endpoint (through an index over leased rows only) and takes request slots
from a rate budget row per endpoint, locked for the claim.

Additive only: processes on the previous revision keep working while this runs (they ignore both).

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "endpoint_budgets",
        sa.Column("endpoint_id", sa.String(40), nullable=False),
        sa.Column("next_slot_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("endpoint_id", name="pk_endpoint_budgets"),
    )
    for endpoint in ("subscription", "connection"):
        leased = sa.text("status = 'pending' AND lease_owner IS NOT NULL")
        op.create_index(
            f"ix_deliveries_leased_{endpoint}",
            "deliveries",
            [f"{endpoint}_id"],
            sqlite_where=leased,
            postgresql_where=leased,
        )


def downgrade() -> None:
    for endpoint in ("subscription", "connection"):
        op.drop_index(f"ix_deliveries_leased_{endpoint}", table_name="deliveries")
    op.drop_table("endpoint_budgets")
