"""monitoring: the ledger of days the daily job finished scoring (``scored_days``)

A day's row is removed when a run starts writing the day's predictions and added again, with a
new token, when it has written them all. The outcome monitor keeps a columnar copy of each
finished day's predictions and reads a day from the database again only when its token changed.

Every day already stored is recorded as finished (a migration runs while no job writes), found
by a loose index scan of ``churn_predictions``' (day, ...) index: one index look-up a day, not a
scan of the table.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04 13:10:00
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

STORED_DAYS = sa.text(
    """
    WITH RECURSIVE stored(day) AS (
        SELECT MIN(day) FROM churn_predictions
        UNION ALL
        SELECT (SELECT MIN(p.day) FROM churn_predictions p WHERE p.day > stored.day)
        FROM stored WHERE stored.day IS NOT NULL
    )
    SELECT day FROM stored WHERE day IS NOT NULL
    """
)


def upgrade() -> None:
    table = op.create_table(
        "scored_days",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("token", sa.String(length=32), nullable=False),
        sa.Column("health_rows", sa.Integer(), nullable=True),
        sa.Column("prediction_rows", sa.Integer(), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("day", name="pk_scored_days"),
    )
    connection = op.get_bind()
    days = [date.fromisoformat(str(day)[:10]) for day in connection.execute(STORED_DAYS).scalars()]
    now = datetime.now(UTC)
    if days:
        op.bulk_insert(
            table,
            [{"day": day, "token": uuid.uuid4().hex, "finished_at": now} for day in days],
        )


def downgrade() -> None:
    op.drop_table("scored_days")
