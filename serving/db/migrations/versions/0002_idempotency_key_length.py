"""idempotency keys of up to 255 characters (the API contract's limit)

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-03 10:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("idempotency_keys") as batch:
        batch.alter_column("key", existing_type=sa.String(length=200), type_=sa.String(length=255))


def downgrade() -> None:
    with op.batch_alter_table("idempotency_keys") as batch:
        batch.alter_column("key", existing_type=sa.String(length=255), type_=sa.String(length=200))
