"""monitoring: covering indexes for the outcome monitor's bulk read of a year of predictions

``churn_predictions``' index on (day, churn_probability) gains ``supplier_id``, and
``customer_health`` gets the same index: reading a day's (supplier, probability) pairs is then a
range of one index (tens of bytes a row) instead of a scan of the whole table (hundreds of bytes
a row, with the SHAP factors). The worklist's "riskiest of the day" keeps its index order.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04 10:40:00
"""

from __future__ import annotations

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_churn_predictions_day_probability", table_name="churn_predictions")
    op.create_index(
        "ix_churn_predictions_day_probability",
        "churn_predictions",
        ["day", "churn_probability", "supplier_id"],
    )
    op.create_index(
        "ix_customer_health_day_probability",
        "customer_health",
        ["day", "churn_probability", "supplier_id"],
    )


def downgrade() -> None:
    op.drop_index("ix_customer_health_day_probability", table_name="customer_health")
    op.drop_index("ix_churn_predictions_day_probability", table_name="churn_predictions")
    op.create_index(
        "ix_churn_predictions_day_probability", "churn_predictions", ["day", "churn_probability"]
    )
