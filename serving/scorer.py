"""The one way to score suppliers: champion models and a feature reader, the same for batch
``predict``, the daily job and the service.

Importing this module imports neither Optuna nor any training step: it needs the model files
(:mod:`training.model_files`), the risk levels and the TreeSHAP explainer, nothing that fits.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np
import pandas as pd
import xgboost as xgb

from feature_repo.readers import FeatureReader, FeatureRows
from features.catalog import FAMILIES
from training.explain import ChurnExplainer, top_positive_factors
from training.health_model import health_inputs
from training.model_files import Champions
from training.models import booster_matrix
from training.risk import churn_risk, health_risk

TOP_FACTORS: Final = 3
SCORE_COLUMNS: Final = (
    "churn_probability",
    "churn_risk",
    "health_score",
    "health_churn_probability",
    "health_risk",
    *(f"top_factor_{k}" for k in range(1, TOP_FACTORS + 1)),
    "predicted_churn_date",
)


def _keys(keys: Sequence[str] | pd.DataFrame) -> pd.DataFrame:
    if isinstance(keys, pd.DataFrame):
        return keys
    return pd.DataFrame({"supplier_id": [str(k) for k in keys]})


@dataclass(frozen=True)
class Assessment:
    """Everything the scorer says about a batch of keys, one row per key (the keys' index).

    Attributes:
        scores: :data:`SCORE_COLUMNS` and ``scored`` (null where the key has no scorable row).
        factors: the six health factors (0..1) and ``health_segment``.
        families: the churn model's TreeSHAP attributions in log-odds per factor family
            (login, adoption, ...), NaN where not scored.
        rows: the feature rows read.
    """

    scores: pd.DataFrame
    factors: pd.DataFrame
    families: pd.DataFrame
    rows: FeatureRows


class Scorer:
    """Scores and explains suppliers with the champions, reading features through ``reader``.

    The TreeSHAP explainer is built once, here, not per call.
    """

    def __init__(self, models: Champions, reader: FeatureReader) -> None:
        self.models = models
        self.reader = reader
        self.explainer = ChurnExplainer(models.churn.booster)

    def features(self, keys: Sequence[str] | pd.DataFrame) -> FeatureRows:
        """The champions' feature rows for ``keys`` (supplier ids, or key rows the reader
        needs, such as ``supplier_id`` and ``as_of``)."""
        return self.reader.read(_keys(keys), self.models.services)

    @staticmethod
    def scorable(rows: FeatureRows) -> np.ndarray:
        """Rows with features and a health score (a score needs the factors it is made of)."""
        return rows.found & rows.frame["health_score"].notna().to_numpy()

    def score(self, keys: Sequence[str] | pd.DataFrame) -> pd.DataFrame:
        """One row per key (same index): :data:`SCORE_COLUMNS`, null where the key has no
        scorable feature row, and ``scored`` saying which have."""
        return self.assess_rows(self.features(keys)).scores

    def score_rows(self, rows: FeatureRows) -> pd.DataFrame:
        """:meth:`score` of feature rows already read."""
        return self.assess_rows(rows).scores

    def assess(self, keys: Sequence[str] | pd.DataFrame) -> Assessment:
        """Scores, health factors and churn attributions per family of ``keys``."""
        return self.assess_rows(self.features(keys))

    def assess_rows(self, rows: FeatureRows) -> Assessment:
        """:meth:`assess` of feature rows already read."""
        ok = self.scorable(rows)
        frame = rows.frame
        out = pd.DataFrame(index=frame.index, columns=list(SCORE_COLUMNS), dtype=object)
        families = pd.DataFrame(index=frame.index, columns=list(FAMILIES), dtype="float64")
        if ok.any():
            scored, by_family = self._score(frame[ok])
            out.loc[ok, list(SCORE_COLUMNS)] = scored
            families.loc[ok, list(FAMILIES)] = by_family.reindex(columns=list(FAMILIES))
        for column in ("churn_probability", "health_score", "health_churn_probability"):
            out[column] = pd.to_numeric(out[column]).astype("float64")
        out["scored"] = ok
        factors, segment = health_inputs(frame)
        return Assessment(
            scores=out,
            factors=factors.assign(health_segment=segment),
            families=families,
            rows=rows,
        )

    def _score(self, features: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
        churn, health = self.models.churn, self.models.health
        X = churn.matrix(features)
        matrix = booster_matrix(X)  # once, for scores, attributions and dates
        raw = churn.booster.get_booster().predict(matrix)  # = predict_proba(X)[:, 1]
        probability = churn.calibrator.predict(raw)
        factors, segment = health_inputs(features)
        score = health.model.score(factors, segment)
        out = pd.DataFrame(
            {
                "churn_probability": probability,
                "churn_risk": churn_risk(probability, churn.config.thresholds),
                "health_score": score,
                "health_churn_probability": health.model.calibrator.predict(score),
                "health_risk": health_risk(score, health.config.thresholds),
            },
            index=features.index,
        )
        families = self.explainer.explain(X, matrix).by_family()
        out = out.join(top_positive_factors(families, TOP_FACTORS))
        out["predicted_churn_date"] = self._churn_dates(features, X, matrix)
        return out, families

    def _churn_dates(self, features: pd.DataFrame, X: pd.DataFrame, matrix: xgb.DMatrix) -> list:
        """The timing model's predicted churn date from each row's instant (None without a
        timing model, or when the median is more than a year away)."""
        timing = self.models.timing
        if timing is None:
            return [None] * len(features)
        stamps = pd.to_datetime(features["event_timestamp"], utc=True)
        same = tuple(X.columns) == timing.columns  # both read the churn service
        return timing.churn_dates(features, [s.date() for s in stamps], matrix if same else None)

    def explain(self, keys: Sequence[str] | pd.DataFrame) -> pd.DataFrame:
        """Per key with a scorable row: each feature's TreeSHAP contribution to the churn
        model's log-odds (the base value in ``base_log_odds``); same index as the keys, those
        without a row left out."""
        rows = self.features(keys)
        ok = self.scorable(rows)
        X = self.models.churn.matrix(rows.frame[ok])
        explanation = self.explainer.explain(X)
        return explanation.values.assign(base_log_odds=explanation.base)
