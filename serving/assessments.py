"""Live answers about suppliers from the champions and the online store: the health score
with its breakdown and advice, scores of many suppliers, and one supplier's explanation.

Plain objects constructed with their dependencies (a :class:`serving.scorer.Scorer` on the
online reader, the operational database); the service only translates HTTP to calls on them.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from datetime import date, timedelta

import pandas as pd
from sqlalchemy import Engine, select

from features.catalog import HEALTH_FACTORS
from serving.advice import next_review, recommendations, trend
from serving.api import schemas
from serving.db.models import Supplier
from serving.db.scores import previous_score
from serving.errors import NotFoundError
from serving.scorer import TOP_FACTORS, Assessment, Scorer
from training.registry import CHURN_MODEL, HEALTH_MODEL
from training.timing import TIMING_MODEL


def _int(value: float) -> int:
    return round(float(value))


def _breakdown(factors: Mapping[str, float]) -> schemas.Breakdown | None:
    values = {k: factors[k] for k in HEALTH_FACTORS}
    if any(pd.isna(v) for v in values.values()):
        # a factor the export cannot tell (see features.history): shown as 0 would mislead
        values = {k: (0.0 if pd.isna(v) else v) for k, v in values.items()}
    return schemas.Breakdown(**{k: _int(100 * float(v)) for k, v in values.items()})


def feature_day(stamp: pd.Timestamp) -> date:
    """The day a feature row describes: its data ends at its stamp (the next midnight)."""
    return (stamp - timedelta(days=1)).date()


class SupplierAssessments:
    """Health scores, scores and explanations of suppliers, read live."""

    def __init__(self, scorer: Scorer, engine: Engine) -> None:
        self.scorer = scorer
        self.engine = engine
        # one scoring at a time per worker: the online store's connection is not shared
        # between threads (the service runs several workers for parallelism)
        self._lock = threading.Lock()

    def _known(self, supplier_id: str) -> bool:
        with self.engine.connect() as connection:
            return (
                connection.scalar(
                    select(Supplier.supplier_id).where(Supplier.supplier_id == supplier_id)
                )
                is not None
            )

    def _assess_one(self, supplier_id: str) -> Assessment:
        with self._lock:
            assessment = self.scorer.assess([supplier_id])
        if not assessment.scores["scored"].iat[0]:
            if not self._known(supplier_id):
                raise NotFoundError(f"unknown userId {supplier_id!r}")
            raise NotFoundError(
                f"userId {supplier_id!r} has no current features (cancelled, or not active in "
                "the last materialised days)"
            )
        return assessment

    def health_score(self, supplier_id: str) -> schemas.HealthScore:
        """The supplier's health score of its newest feature day.

        Raises:
            NotFoundError: an unknown supplier, or one without current features.
        """
        a = self._assess_one(supplier_id)
        scores, factors = a.scores.iloc[0], a.factors.iloc[0]
        day = feature_day(a.rows.frame["event_timestamp"].iat[0])
        current = float(scores["health_score"])
        with self.engine.connect() as connection:
            before = previous_score(connection, supplier_id, day)
        band = scores["health_risk"]
        return schemas.HealthScore(
            current=_int(current),
            previous=None if before is None else _int(before),
            trend=trend(current, before),
            risk_level=band,
            breakdown=_breakdown(factors),
            churn_probability=float(scores["health_churn_probability"]),
            recommendations=[
                schemas.Recommendation(**r)
                for r in recommendations({k: factors[k] for k in HEALTH_FACTORS})
            ],
            next_review_date=next_review(day, band),
        )

    def scores(self, supplier_ids: Sequence[str]) -> list[schemas.UserScore]:
        """Scores of each id in order; an id without current features has ``found`` false."""
        with self._lock:
            a = self.scorer.assess(list(supplier_ids))
        models = self.scorer.models
        out = []
        rows = zip(
            supplier_ids,
            a.scores.to_dict("records"),  # once, not a Series per row (the hot path)
            a.factors.to_dict("records"),
            strict=True,
        )
        for supplier, s, f in rows:
            found = bool(s["scored"])
            out.append(
                schemas.UserScore(
                    user_id=supplier,
                    found=found,
                    health_score=_int(s["health_score"]) if found else None,
                    health_risk_level=s["health_risk"] if found else None,
                    breakdown=_breakdown(f) if found else None,
                    churn_probability=float(s["churn_probability"]) if found else None,
                    health_churn_probability=(
                        float(s["health_churn_probability"]) if found else None
                    ),
                    churn_risk_level=s["churn_risk"] if found else None,
                    predicted_churn_date=s["predicted_churn_date"] if found else None,
                    top_factors=[
                        s[f"top_factor_{k}"]
                        for k in range(1, TOP_FACTORS + 1)
                        if found and s[f"top_factor_{k}"] is not None
                    ],
                    churn_model_version=models.churn_version,
                    health_model_version=models.health_version,
                )
            )
        return out

    def explain(self, supplier_id: str) -> schemas.Explanation:
        """TreeSHAP attributions of the churn model's margin, per feature and per family.

        Raises:
            NotFoundError: an unknown supplier, or one without current features.
        """
        a = self._assess_one(supplier_id)
        with self._lock:
            explanation = self.scorer.explainer.explain(
                self.scorer.models.churn.matrix(a.rows.frame)
            )
        values = explanation.values.iloc[0].astype(float)
        families = explanation.by_family().iloc[0].astype(float)
        return schemas.Explanation(
            user_id=supplier_id,
            base_value=explanation.base,
            margin=explanation.base + float(values.sum()),
            churn_probability=float(a.scores["churn_probability"].iat[0]),
            features={k: float(v) for k, v in values.items()},
            families={k: float(v) for k, v in families.items()},
            model_version=self.scorer.models.churn_version,
        )

    def models(self) -> list[schemas.ServedModel]:
        m = self.scorer.models
        served = [
            (CHURN_MODEL, m.churn_version, m.churn_run_id, m.services[0],
             "churn probability, risk level and its SHAP factors"),
            (HEALTH_MODEL, m.health_version, m.health_run_id, m.services[1],
             "health score and its calibrated churn probability"),
        ]  # fmt: skip
        if m.timing is not None and m.timing_version is not None:
            served.append(
                (TIMING_MODEL, m.timing_version, m.timing_run_id, m.services[0],
                 "predicted churn date (survival:aft median)")
            )  # fmt: skip
        return [
            schemas.ServedModel(
                name=name, version=version, run_id=run, feature_service=service, role=role
            )
            for name, version, run, service, role in served
        ]
