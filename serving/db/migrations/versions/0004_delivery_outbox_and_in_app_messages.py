"""delivery: the outbox's attempts, errors, retries and claims on executions; in-app messages;
one support interaction per execution

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03 20:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("intervention_executions") as batch:
        batch.add_column(
            sa.Column("attempts", sa.Integer(), nullable=False, server_default=sa.text("0"))
        )
        batch.add_column(sa.Column("last_error", sa.Text(), nullable=True))
        batch.add_column(sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("message_id", sa.String(length=255), nullable=True))
    # the default only filled the existing rows; new rows get theirs from the code
    with op.batch_alter_table("intervention_executions") as batch:
        batch.alter_column("attempts", server_default=None)
    with op.batch_alter_table("support_interactions") as batch:
        batch.drop_index("ix_support_interactions_execution_id")
        batch.create_index("ix_support_interactions_execution_id", ["execution_id"], unique=True)
        batch.create_index("ix_support_interactions_agent_time", ["agent_id", "occurred_at"])
    op.create_table(
        "in_app_messages",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("execution_id", sa.String(length=36), nullable=False),
        sa.Column("supplier_id", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("title", sa.String(length=300), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("acted_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["execution_id"],
            ["intervention_executions.id"],
            name="fk_in_app_messages_execution_id_intervention_executions",
        ),
        sa.ForeignKeyConstraint(
            ["supplier_id"],
            ["suppliers.supplier_id"],
            name="fk_in_app_messages_supplier_id_suppliers",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_in_app_messages"),
        sa.UniqueConstraint("execution_id", name="uq_in_app_messages_execution_id"),
    )
    op.create_index(
        "ix_in_app_messages_supplier_status", "in_app_messages", ["supplier_id", "status"]
    )


def downgrade() -> None:
    op.drop_index("ix_in_app_messages_supplier_status", table_name="in_app_messages")
    op.drop_table("in_app_messages")
    with op.batch_alter_table("support_interactions") as batch:
        batch.drop_index("ix_support_interactions_agent_time")
        batch.drop_index("ix_support_interactions_execution_id")
        batch.create_index("ix_support_interactions_execution_id", ["execution_id"], unique=False)
    with op.batch_alter_table("intervention_executions") as batch:
        batch.drop_column("message_id")
        batch.drop_column("claimed_at")
        batch.drop_column("next_attempt_at")
        batch.drop_column("last_error")
        batch.drop_column("attempts")
