"""call_list_indexes: the calls list walks an index in its own order

``GET /v1/calls`` is newest first (``ORDER BY id DESC``) with optional filters. With only
``(tenant_id, status)``, a status filter made SQLite read every call of that status and sort them before
taking a page: ~1 s a page at 1,000,000 calls (``make bench``, growth). Indexes that end with ``id`` let the
database walk the tenant's calls - all of them, or those of one status - newest first and stop at the page's
end, filtering the other conditions (a vendor, a direction) on the way.

No (tenant, vendor, id): on a PostgreSQL table not yet analyzed it costs the same as the unique (tenant,
vendor, vendor_call_id), and the merge read of every webhook, a prepared statement, was planned on it once
(scanning every call of the vendor); ``tests/store/test_call_list_plans.py`` holds that plan.

Additive first: the new indexes exist before the old one is dropped.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_calls_tenant_id_id", "calls", ["tenant_id", "id"])
    op.create_index("ix_calls_tenant_id_status_id", "calls", ["tenant_id", "status", "id"])
    op.drop_index("ix_calls_tenant_id_status", table_name="calls")


def downgrade() -> None:
    op.create_index("ix_calls_tenant_id_status", "calls", ["tenant_id", "status"])
    op.drop_index("ix_calls_tenant_id_status_id", table_name="calls")
    op.drop_index("ix_calls_tenant_id_id", table_name="calls")
