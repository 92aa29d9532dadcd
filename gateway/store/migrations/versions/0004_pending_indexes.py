"""pending_indexes: the worker's indexes cover pending rows only

A claim and the per-call order check ("is an earlier row of this call still pending") scanned every
pending row through the index on status, once per candidate: quadratic in the backlog. Partial indexes
over pending rows make a claim walk due rows in order and stop at its limit, and the order check one probe.

Additive first: the new indexes are created before the old one is dropped, so processes on the previous
revision keep working while this runs.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

PENDING = sa.text("status = 'pending'")


def upgrade() -> None:
    for endpoint in ("subscription", "connection"):
        due = sa.text(f"status = 'pending' AND {endpoint}_id IS NOT NULL")
        op.create_index(
            f"ix_deliveries_pending_{endpoint}_due",
            "deliveries",
            ["next_attempt_at", "id"],
            sqlite_where=due,
            postgresql_where=due,
        )
        op.create_index(
            f"ix_deliveries_pending_{endpoint}_line",
            "deliveries",
            [f"{endpoint}_id", "call_id", "sequence", "id"],
            sqlite_where=PENDING,
            postgresql_where=PENDING,
        )
    op.drop_index("ix_deliveries_status_next_attempt_at", table_name="deliveries")


def downgrade() -> None:
    op.create_index("ix_deliveries_status_next_attempt_at", "deliveries", ["status", "next_attempt_at"])
    for endpoint in ("subscription", "connection"):
        op.drop_index(f"ix_deliveries_pending_{endpoint}_line", table_name="deliveries")
        op.drop_index(f"ix_deliveries_pending_{endpoint}_due", table_name="deliveries")
