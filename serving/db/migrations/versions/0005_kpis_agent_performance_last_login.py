"""monitoring: the daily KPIs, the agents' performance credited against the control group,
and each health row's last login day (for the intervention effect's login outcome)

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03 23:00:00
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
        "cs_kpis",
        sa.Column("name", sa.String(length=80), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("value", sa.Float(), nullable=True),
        sa.Column("unit", sa.String(length=20), nullable=False),
        sa.Column("definition", sa.Text(), nullable=False),
        sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", "day", name="pk_cs_kpis"),
    )
    op.create_index("ix_cs_kpis_day", "cs_kpis", ["day"])
    with op.batch_alter_table("cs_performance_metrics") as batch:
        batch.add_column(sa.Column("satisfaction", sa.Float(), nullable=True))
        batch.add_column(sa.Column("upgrades", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("health_improvements", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("churn_prevented", sa.Float(), nullable=True))
        batch.add_column(sa.Column("churn_prevented_ci_low", sa.Float(), nullable=True))
        batch.add_column(sa.Column("churn_prevented_ci_high", sa.Float(), nullable=True))
        batch.add_column(sa.Column("credit_basis", sa.String(length=40), nullable=True))
        batch.add_column(sa.Column("computed_at", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("customer_health") as batch:
        batch.add_column(sa.Column("last_login_day", sa.Date(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("customer_health") as batch:
        batch.drop_column("last_login_day")
    with op.batch_alter_table("cs_performance_metrics") as batch:
        for column in (
            "computed_at",
            "credit_basis",
            "churn_prevented_ci_high",
            "churn_prevented_ci_low",
            "churn_prevented",
            "health_improvements",
            "upgrades",
            "satisfaction",
        ):
            batch.drop_column(column)
    op.drop_index("ix_cs_kpis_day", table_name="cs_kpis")
    op.drop_table("cs_kpis")
