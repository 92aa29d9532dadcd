"""sources.pull, sources.pull_token: a source's read-API credentials (optional)

``pull`` holds what is not secret (the API's base URL, graph8's organization id); ``pull_token`` the bearer
token, encrypted like CRM credentials (``gateway.vault``). Both null: the source only receives webhooks.

Additive only: processes on the previous revision keep working while this runs (they ignore both).

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("sources") as batch:
        batch.add_column(sa.Column("pull", sa.JSON().with_variant(JSONB(), "postgresql"), nullable=True))
        batch.add_column(sa.Column("pull_token", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("sources") as batch:
        batch.drop_column("pull_token")
        batch.drop_column("pull")
