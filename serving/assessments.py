"""Live answers about suppliers from the champions and the online store: the health score
with its breakdown and advice, scores of many suppliers, and one supplier's explanation.

Plain objects constructed with their dependencies (a :class:`serving.scorer.Scorer` on the
online reader, the operational database); the service only translates HTTP to calls on them.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager

import pandas as pd
from sqlalchemy import Engine, select
from sqlalchemy.exc import DBAPIError

from features.catalog import HEALTH_FACTORS
from serving.advice import next_review, recommendations, trend
from serving.api import schemas
from serving.db.models import Supplier
from serving.db.scores import previous_score, stored_churn
from serving.errors import NotFoundError
from serving.scorer import Assessment, Scorer
from training.registry import CHURN_MODEL, HEALTH_MODEL
from training.timing import TIMING_MODEL

log = logging.getLogger(__name__)


def _int(value: float) -> int:
    return round(float(value))


def _breakdown(factors: Mapping[str, float]) -> schemas.Breakdown | None:
    values = {k: factors[k] for k in HEALTH_FACTORS}
    if any(pd.isna(v) for v in values.values()):
        # a factor the export cannot tell (see features.history): shown as 0 would mislead
        values = {k: (0.0 if pd.isna(v) else v) for k, v in values.items()}
    return schemas.Breakdown(**{k: _int(100 * float(v)) for k, v in values.items()})


# UserScore's fields that are null for a supplier without a score
_SCORED_ONLY = (
    "health_score",
    "health_risk_level",
    "breakdown",
    "churn_probability",
    "health_churn_probability",
    "churn_risk_level",
    "predicted_churn_date",
)


class ScorerBusyError(RuntimeError):
    """The worker's scorer is in use by another request (asked not to wait)."""


class SupplierAssessments:
    """Health scores, scores and explanations of suppliers, read live."""

    def __init__(self, scorer: Scorer, engine: Engine) -> None:
        self.scorer = scorer
        self.engine = engine
        # one scoring at a time per worker: the online store's connection is not shared
        # between threads (the service runs several workers for parallelism)
        self._lock = threading.Lock()

    @contextmanager
    def _scoring(self, wait: bool) -> Iterator[None]:
        if not self._lock.acquire(blocking=wait):
            raise ScorerBusyError("another request of this worker is scoring")
        try:
            yield
        finally:
            self._lock.release()

    def _known(self, supplier_id: str) -> bool:
        with self.engine.connect() as connection:
            return (
                connection.scalar(
                    select(Supplier.supplier_id).where(Supplier.supplier_id == supplier_id)
                )
                is not None
            )

    def _missing(self, supplier_id: str) -> NotFoundError:
        if not self._known(supplier_id):
            return NotFoundError(f"unknown userId {supplier_id!r}")
        return NotFoundError(
            f"userId {supplier_id!r} has no current features (cancelled, or not active in "
            "the last materialised days)"
        )

    def _assess_one(self, supplier_id: str) -> Assessment:
        with self._scoring(wait=True):
            assessment = self.scorer.assess([supplier_id])
        if not assessment.scores["scored"].iat[0]:
            raise self._missing(supplier_id)
        return assessment

    def health_score(self, supplier_id: str, *, wait: bool = True) -> schemas.HealthScore:
        """The supplier's health score of its newest feature day (only the health service is
        read and only the health model run).

        Raises:
            NotFoundError: an unknown supplier, or one without current features.
            ScorerBusyError: ``wait`` is false and another request is scoring.
        """
        with self._scoring(wait):
            live = self.scorer.live([supplier_id], churn=False)
        if live.arrays is None:
            raise self._missing(supplier_id)
        s, day = live.arrays, live.days[0]
        factors = live.factor_map(0)
        current = float(s.health_score[0])
        with self.engine.connect() as connection:
            before = previous_score(connection, supplier_id, day)
        band = s.health_risk[0]
        return schemas.HealthScore(
            current=_int(current),
            previous=None if before is None else _int(before),
            trend=trend(current, before),
            risk_level=band,
            breakdown=_breakdown(factors),
            churn_probability=float(s.health_churn_probability[0]),
            recommendations=[schemas.Recommendation(**r) for r in recommendations(factors)],
            next_review_date=next_review(day, band),
        )

    def scores(self, supplier_ids: Sequence[str], *, wait: bool = True) -> list[schemas.UserScore]:
        """Scores of each id in order; an id without current features has ``found`` false.

        The health part is computed live. The churn part (probability, level, top factors,
        date) is the day's stored prediction when one exists for the day of the supplier's
        newest online row, made by the champions served: ``score-daily`` scored those very
        features with the same Scorer (equal value for value; tested), so TreeSHAP is not
        run again per request. Suppliers without one (a new day not scored yet, other model
        versions) are scored live, as is everyone while the database is unreachable.

        Raises:
            ScorerBusyError: ``wait`` is false and another request is scoring.
        """
        ids = list(supplier_ids)
        models = self.scorer.models
        with self._scoring(wait):
            health = self.scorer.live(ids, churn=False)
        rows = {int(row): k for k, row in enumerate(health.rows)}  # id position -> scored row
        days = {ids[i]: health.days[i] for i in rows}
        try:
            with self.engine.connect() as connection:
                stored = stored_churn(
                    connection, days, models.churn_version, models.timing_version
                )
        except DBAPIError as error:  # scoring needs no database: all of it live, then
            log.warning("stored predictions unreadable (%s): scoring live", type(error).__name__)
            stored = {}
        rest = [i for i in rows if ids[i] not in stored]
        live, at = None, {}
        if rest:
            with self._scoring(wait):
                live = self.scorer.live([ids[i] for i in rest])
            at = {rest[int(row)]: k for k, row in enumerate(live.rows)}
        out = []
        for i, supplier in enumerate(ids):
            k = rows.get(i)
            if k is None:
                out.append(
                    schemas.UserScore(
                        user_id=supplier,
                        found=False,
                        top_factors=[],
                        churn_model_version=models.churn_version,
                        health_model_version=models.health_version,
                        **dict.fromkeys(_SCORED_ONLY),
                    )
                )
                continue
            h = health.arrays
            if supplier in stored:
                p = stored[supplier]
                churn = (p.churn_probability, p.risk_level, p.predicted_churn_date)
                top = self.scorer.top_factors(p.factors)
            else:
                c = live.arrays
                j = at[i]
                churn = (float(c.churn_probability[j]), c.churn_risk[j], c.churn_dates[j])
                top = [f for f in c.top_factors[j] if f is not None]
            out.append(
                schemas.UserScore(
                    user_id=supplier,
                    found=True,
                    health_score=_int(h.health_score[k]),
                    health_risk_level=h.health_risk[k],
                    breakdown=_breakdown(health.factor_map(i)),
                    churn_probability=float(churn[0]),
                    health_churn_probability=float(h.health_churn_probability[k]),
                    churn_risk_level=churn[1],
                    predicted_churn_date=churn[2],
                    top_factors=top,
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
        with self._scoring(wait=True):
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
