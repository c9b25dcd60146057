"""The stored daily churn predictions, as the app's churn-predictions route shows them."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Engine

from serving.advice import recommended_actions
from serving.api import schemas
from serving.db.scores import newest_predictions

MAX_LIMIT = 1000


class PredictionBook:
    """Reads the newest scored day's predictions (written by ``score-daily``)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def page(
        self,
        risk_levels: Sequence[str] = (),
        limit: int = 50,
        min_ltv_at_risk: float | None = None,
    ) -> schemas.ChurnPredictionsResponse:
        """Highest churn probability first; the totals count every match, not only the page."""
        with self.engine.connect() as connection:
            found = newest_predictions(connection, risk_levels, limit, min_ltv_at_risk)
        items = [
            schemas.ChurnPredictionItem(
                user_id=p.supplier_id,
                churn_probability=p.churn_probability,
                risk_level=p.risk_level,
                predicted_churn_date=p.predicted_churn_date,
                factors={f: round(v, 6) for f, v in p.factors.items()},
                recommended_actions=recommended_actions(p.factors),
                ltv_at_risk=round(p.ltv_at_risk, 2),
                prevention_cost=round(p.prevention_cost, 2),
                model_version=f"churn/{p.churn_model_version}",
            )
            for p, _ in found.rows
        ]
        return schemas.ChurnPredictionsResponse(
            predictions=items,
            total_at_risk=found.total,
            total_ltv_at_risk=round(found.total_ltv_at_risk, 2),
        )
