"""Stored scores and predictions: the daily job's upserts and the service's reads.

A day's rows are written in batches, each batch its own transaction, as upserts keyed by
(supplier, day): a run killed half-way leaves whole batches, and its rerun replaces them, so a
day ends with exactly the rows of one uninterrupted run.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pandas as pd
from sqlalchemy import Engine, case, func, select
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from serving.db.migrate import insert_for
from serving.db.models import ChurnPrediction, CustomerHealth, ModelVersion, Supplier

# How far back a "previous" score may be: an older one says nothing about today's trend.
PREVIOUS_WITHIN_DAYS = 90
AT_RISK_LEVELS = ("medium", "high", "critical")


def upsert(
    engine: Engine,
    table: Any,
    rows: Sequence[dict[str, Any]],
    batch_rows: int = 5000,
    progress: Callable[[int], None] | None = None,
    keys: tuple[str, ...] = ("supplier_id", "day"),
) -> int:
    """Insert or replace ``rows`` of the mapped ``table`` (keyed by ``keys``: by default the
    supplier and the day), one transaction per batch."""
    insert = insert_for(engine)
    for start in range(0, len(rows), batch_rows):
        part = list(rows[start : start + batch_rows])
        statement = insert(table)
        columns = [c for c in part[0] if c not in keys]
        with engine.begin() as connection:
            connection.execute(
                statement.on_conflict_do_update(
                    index_elements=[getattr(table, k) for k in keys],
                    set_={c: statement.excluded[c] for c in columns},
                ),
                part,
            )
        if progress is not None:
            progress(len(part))
    return len(rows)


def previous_scores(engine: Engine, day: date) -> pd.Series:
    """Each supplier's last stored health score before ``day`` (within
    :data:`PREVIOUS_WITHIN_DAYS`), indexed by supplier id."""
    ranked = (
        select(
            CustomerHealth.supplier_id,
            CustomerHealth.score,
            func.row_number()
            .over(partition_by=CustomerHealth.supplier_id, order_by=CustomerHealth.day.desc())
            .label("rank"),
        )
        .where(CustomerHealth.day < day)
        .where(CustomerHealth.day >= day - timedelta(days=PREVIOUS_WITHIN_DAYS))
        .subquery()
    )
    with engine.connect() as connection:
        got = connection.execute(
            select(ranked.c.supplier_id, ranked.c.score).where(ranked.c.rank == 1)
        ).all()
    return pd.Series([r.score for r in got], index=[r.supplier_id for r in got], dtype="float64")


def previous_score(connection: Connection, supplier_id: str, day: date) -> float | None:
    """One supplier's last stored health score before ``day`` (within
    :data:`PREVIOUS_WITHIN_DAYS`)."""
    return connection.scalar(
        select(CustomerHealth.score)
        .where(CustomerHealth.supplier_id == supplier_id)
        .where(CustomerHealth.day < day)
        .where(CustomerHealth.day >= day - timedelta(days=PREVIOUS_WITHIN_DAYS))
        .order_by(CustomerHealth.day.desc())
        .limit(1)
    )


@dataclass(frozen=True)
class StoredChurn:
    """The churn part of a stored prediction (what /score shows of it)."""

    churn_probability: float
    risk_level: str
    factors: dict[str, float]
    predicted_churn_date: date | None


def stored_churn(
    connection: Connection,
    days: Mapping[str, date],
    churn_version: str,
    timing_version: str | None,
) -> dict[str, StoredChurn]:
    """The stored predictions of the suppliers of ``days`` for exactly that day (each one's) and
    made by these churn and timing model versions, by supplier."""
    if not days:
        return {}
    timing = (
        ChurnPrediction.timing_model_version.is_(None)
        if timing_version is None
        else ChurnPrediction.timing_model_version == timing_version
    )
    rows = connection.execute(
        select(
            ChurnPrediction.supplier_id,
            ChurnPrediction.day,
            ChurnPrediction.churn_probability,
            ChurnPrediction.risk_level,
            ChurnPrediction.factors,
            ChurnPrediction.predicted_churn_date,
        )
        .where(ChurnPrediction.supplier_id.in_(list(days)))
        .where(ChurnPrediction.day.in_(sorted(set(days.values()))))
        .where(ChurnPrediction.churn_model_version == churn_version)
        .where(timing)
    )
    return {
        r.supplier_id: StoredChurn(
            r.churn_probability, r.risk_level, r.factors, r.predicted_churn_date
        )
        for r in rows
        if days[r.supplier_id] == r.day
    }


def record_versions(engine: Engine, versions: Sequence[dict[str, Any]]) -> None:
    """Remember the model versions served (the first time each was used)."""
    now = datetime.now(UTC)
    insert = insert_for(engine)
    with engine.begin() as connection:
        connection.execute(
            insert(ModelVersion).on_conflict_do_nothing(),
            [{**v, "first_used_at": now} for v in versions],
        )


@dataclass(frozen=True)
class PredictionPage:
    """The newest day's predictions that match a filter: one page, and totals over every
    match (those at risk, and the LTV at risk)."""

    day: date | None
    rows: list[tuple[ChurnPrediction, Supplier]]
    total: int
    total_ltv_at_risk: float


def newest_predictions(
    connection: Connection,
    risk_levels: Sequence[str] = (),
    limit: int = 50,
    min_ltv_at_risk: float | None = None,
) -> PredictionPage:
    """The newest scored day's predictions, highest churn probability first; ``total`` counts
    the matches at risk (medium, high or critical), ``total_ltv_at_risk`` sums the LTV at risk
    of every match."""
    day = connection.scalar(select(func.max(ChurnPrediction.day)))
    if day is None:
        return PredictionPage(day=None, rows=[], total=0, total_ltv_at_risk=0.0)
    where = [ChurnPrediction.day == day]
    if risk_levels:
        where.append(ChurnPrediction.risk_level.in_(list(risk_levels)))
    if min_ltv_at_risk is not None:
        where.append(ChurnPrediction.ltv_at_risk >= min_ltv_at_risk)
    at_risk = case((ChurnPrediction.risk_level.in_(AT_RISK_LEVELS), 1), else_=0)
    total, ltv = connection.execute(
        select(
            func.coalesce(func.sum(at_risk), 0),
            func.coalesce(func.sum(ChurnPrediction.ltv_at_risk), 0.0),
        ).where(*where)
    ).one()
    with Session(bind=connection) as session:
        rows = session.execute(
            select(ChurnPrediction, Supplier)
            .join(Supplier, Supplier.supplier_id == ChurnPrediction.supplier_id)
            .where(*where)
            .order_by(ChurnPrediction.churn_probability.desc(), ChurnPrediction.supplier_id)
            .limit(limit)
        ).all()
        result = [(p, s) for p, s in rows]
        session.expunge_all()
    return PredictionPage(day=day, rows=result, total=int(total), total_ltv_at_risk=float(ltv))


def newest_prediction(connection: Connection, supplier_id: str) -> ChurnPrediction | None:
    """A supplier's newest stored prediction."""
    with Session(bind=connection) as session:
        row = session.scalar(
            select(ChurnPrediction)
            .where(ChurnPrediction.supplier_id == supplier_id)
            .order_by(ChurnPrediction.day.desc())
            .limit(1)
        )
        if row is not None:
            session.expunge(row)
    return row


def day_table(engine: Engine, table: type[CustomerHealth] | type[ChurnPrediction], day: date):
    """One day's stored rows as a frame sorted by supplier (for checks and reports)."""
    with engine.connect() as connection:
        frame = pd.read_sql(select(table).where(table.day == day), connection)
    return frame.sort_values("supplier_id").reset_index(drop=True)
