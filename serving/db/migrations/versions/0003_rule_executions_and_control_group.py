"""rule executions by day and rules version, one per supplier, rule and day; the control group

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-03 18:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("intervention_executions") as batch:
        batch.add_column(sa.Column("day", sa.Date(), nullable=True))
        batch.add_column(sa.Column("rules_version", sa.String(length=64), nullable=True))
        batch.create_index(
            "ux_intervention_executions_supplier_rule_day",
            ["supplier_id", "triggered_by", "day"],
            unique=True,
        )
    op.create_table(
        "control_group",
        sa.Column("supplier_id", sa.String(length=64), nullable=False),
        sa.Column("in_control", sa.Boolean(), nullable=False),
        sa.Column("salt", sa.String(length=64), nullable=False),
        sa.Column("share", sa.Float(), nullable=False),
        sa.Column("assigned_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["supplier_id"], ["suppliers.supplier_id"]),
        sa.PrimaryKeyConstraint("supplier_id"),
    )


def downgrade() -> None:
    op.drop_table("control_group")
    with op.batch_alter_table("intervention_executions") as batch:
        batch.drop_index("ux_intervention_executions_supplier_rule_day")
        batch.drop_column("rules_version")
        batch.drop_column("day")
