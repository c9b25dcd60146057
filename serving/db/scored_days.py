"""The ledger of days the daily job finished scoring (``scored_days``): a day's row is removed
before a run writes the day's ``customer_health`` and ``churn_predictions`` rows and added again,
with a new token, once it has written them all. A copy of a day's rows made while its token
stood is the day's rows as long as the token stands."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime

from sqlalchemy import Engine, delete, insert, select

from serving.db.models import ScoredDay


def begin_day(engine: Engine, day: date) -> None:
    """The day's rows are about to change: its copies are no longer current."""
    with engine.begin() as connection:
        connection.execute(delete(ScoredDay).where(ScoredDay.day == day))


def finish_day(engine: Engine, day: date, health_rows: int, prediction_rows: int) -> str:
    """Every row of the day is written; returns the day's new token."""
    token = uuid.uuid4().hex
    with engine.begin() as connection:
        connection.execute(delete(ScoredDay).where(ScoredDay.day == day))
        connection.execute(
            insert(ScoredDay).values(
                day=day,
                token=token,
                health_rows=health_rows,
                prediction_rows=prediction_rows,
                finished_at=datetime.now(UTC),
            )
        )
    return token


def day_tokens(engine: Engine, first: date, last: date) -> dict[date, str]:
    """The token of each finished day from ``first`` to ``last`` (inclusive)."""
    with engine.connect() as connection:
        rows = connection.execute(
            select(ScoredDay.day, ScoredDay.token).where(
                ScoredDay.day >= first, ScoredDay.day <= last
            )
        ).all()
    return {day: token for day, token in rows}
