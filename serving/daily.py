"""The rows one day's scoring stores: a ``customer_health`` and a ``churn_predictions`` row per
scored supplier (pure: the job reads and writes them, :mod:`serving.db.scores`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import pandas as pd

from features.catalog import FAMILIES, HEALTH_FACTORS
from serving.advice import ltv_at_risk, prevention_cost, priority, trends
from serving.scorer import Assessment


@dataclass(frozen=True)
class ServedVersions:
    """The registered model versions a day was scored with."""

    churn: str
    health: str
    timing: str | None = None


def _float(value: Any) -> float | None:
    return None if value is None or pd.isna(value) else float(value)


def day_rows(
    assessment: Assessment,
    directory: pd.DataFrame,
    previous: pd.Series,
    day: date,
    versions: ServedVersions,
    computed_at: datetime,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The health and prediction rows of the scored suppliers of ``assessment``.

    Args:
        assessment: the scorer's answer for the day's feature rows (``supplier_id`` in its
            rows); rows without a score are left out.
        directory: ``supplier_id`` and ``monthly_revenue`` of the suppliers scored.
        previous: each supplier's last stored health score before ``day`` (index supplier_id).

    Returns:
        ``customer_health`` rows and ``churn_predictions`` rows, one per scored supplier.
    """
    ok = assessment.scores["scored"].to_numpy(bool)
    scores = assessment.scores[ok]
    ids = assessment.rows.frame.loc[ok, "supplier_id"].astype(str).to_numpy()
    revenue = (
        directory.drop_duplicates("supplier_id")
        .set_index("supplier_id")["monthly_revenue"]
        .reindex(ids)
    )
    if revenue.isna().any():
        missing = list(revenue.index[revenue.isna()][:5])
        raise ValueError(f"suppliers scored but not in the directory: {missing}")
    current = scores["health_score"].to_numpy(float)
    before = previous.reindex(ids).to_numpy(float)
    trend = trends(current, before)
    probability = scores["churn_probability"].to_numpy(float)
    at_risk = ltv_at_risk(probability, revenue.to_numpy(float))
    cost = prevention_cost(at_risk)
    factors = assessment.factors[ok]
    families = assessment.families[ok][list(FAMILIES)].to_numpy(float)
    dates = scores["predicted_churn_date"].to_numpy(object)
    health_rows, prediction_rows = [], []
    factor_values = factors[list(HEALTH_FACTORS)].to_numpy(float)
    segments = factors["health_segment"].astype(object).to_numpy()
    for i, supplier in enumerate(ids):
        level = scores["churn_risk"].iat[i]
        health_rows.append(
            {
                "supplier_id": supplier,
                "day": day,
                "score": float(current[i]),
                "previous_score": _float(before[i]),
                "trend": trend[i],
                "risk_level": scores["health_risk"].iat[i],
                "segment": str(segments[i]),
                **{
                    name: _float(100 * factor_values[i, k])
                    for k, name in enumerate(HEALTH_FACTORS)
                },
                "churn_probability": float(scores["health_churn_probability"].iat[i]),
                "health_model_version": versions.health,
                "computed_at": computed_at,
            }
        )
        prediction_rows.append(
            {
                "supplier_id": supplier,
                "day": day,
                "churn_probability": float(probability[i]),
                "risk_level": level,
                # full precision: the service answers /score from these rows (the same
                # top factors as a live scoring); the API rounds what it shows
                "factors": {
                    f: float(families[i, k])
                    for k, f in enumerate(FAMILIES)
                    if families[i, k] == families[i, k]  # a family the model does not read
                },
                "predicted_churn_date": dates[i],
                "ltv_at_risk": float(at_risk[i]),
                "prevention_cost": float(cost[i]),
                "intervention_recommended": priority(level) is not None,
                "priority": priority(level),
                "churn_model_version": versions.churn,
                "health_model_version": versions.health,
                "timing_model_version": versions.timing,
                "computed_at": computed_at,
            }
        )
    return health_rows, prediction_rows
