"""The evaluation step: the churn model, its unconstrained twin, the health model and the
logistic baseline fitted on one time split, and every score measured on the same holdout rows.

Plain functions over frames; nothing here touches files or MLflow.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np
import pandas as pd
from sklearn.metrics import log_loss
from sklearn.pipeline import Pipeline

from training.baseline import make_logistic_baseline
from training.config import ExperimentConfig
from training.explain import Explanation, explain
from training.health_model import HealthFit, fit_health_model, health_inputs
from training.metrics import EPS
from training.models import feature_matrix
from training.pipeline import ChurnFit, evaluation_table, fit_churn, fit_unconstrained
from training.risk import band_table, bands_ordered
from training.truth import TruthJoin

SHAP_SAMPLE: Final = 5000
CEILING: Final = "ceiling"
# The churn model's configuration fitted without monotone constraints (what they cost or gain).
UNCONSTRAINED: Final = "churn_model_unconstrained"


@dataclass(frozen=True)
class TrainedModels:
    columns: list[str]
    churn: ChurnFit
    health: HealthFit
    logistic: Pipeline
    unconstrained: ChurnFit | None = None


def fit_models(
    frame: pd.DataFrame, columns: list[str], cfg: ExperimentConfig, threads: int = 2
) -> TrainedModels:
    """Tuned, calibrated churn model; health model; logistic baseline: one split for all three.

    The health weights are learned on the tree window and chosen on the calibration slice; the
    logistic baseline sees the tree window only. The holdout stays unseen by every fit.
    """
    X = feature_matrix(frame, columns)
    y = frame["label"].to_numpy(int)
    churn = fit_churn(X, y, frame["event_timestamp"], cfg, threads)
    split = churn.split
    factors, segment = health_inputs(frame)
    health = fit_health_model(factors, segment, y, split.trees, split.calibration)
    logistic = make_logistic_baseline(columns).fit(X[split.trees], y[split.trees])
    return TrainedModels(
        columns=list(columns),
        churn=churn,
        health=health,
        logistic=logistic,
        unconstrained=fit_unconstrained(X, y, churn, cfg, threads),
    )


# -- evaluation ------------------------------------------------------------------------------
def holdout_scores(frame: pd.DataFrame, models: TrainedModels) -> dict[str, np.ndarray]:
    """Every score on ``frame``'s rows: churn probabilities, and the rule's ``1 - score/100``."""
    X = feature_matrix(frame, models.columns)
    factors, segment = health_inputs(frame)
    scores = {
        "churn_model": models.churn.predict(X),
        "health_calibrated": models.health.model.churn_probability(factors, segment),
        "fixed_weight_rule": 1 - frame["health_score"].to_numpy(float) / 100,
        "logistic_baseline": models.logistic.predict_proba(X)[:, 1],
    }
    if models.unconstrained is not None:
        scores[UNCONSTRAINED] = models.unconstrained.predict(X)
    return scores


def health_log_losses(frame: pd.DataFrame, y: np.ndarray, health: HealthFit) -> dict[str, float]:
    """Log loss of the brief's weights and of the re-learned ones, each with its own map."""
    factors, segment = health_inputs(frame)
    return {
        name: float(
            log_loss(
                y, np.clip(m.churn_probability(factors, segment), EPS, 1 - EPS), labels=[0, 1]
            )
        )
        for name, m in (("brief_weights", health.brief), ("relearned_weights", health.relearned))
    }


@dataclass(frozen=True)
class Evaluation:
    """Everything measured on the holdout rows that are evaluated (those with truth, if any)."""

    rows: np.ndarray
    y: np.ndarray
    scores: dict[str, np.ndarray]
    table: pd.DataFrame
    health_log_loss: dict[str, float]
    bands: pd.DataFrame
    bands_ordered: bool
    explanation: Explanation

    @property
    def feature_importance(self) -> pd.Series:
        """Mean |SHAP| per feature (log-odds), largest first."""
        return self.explanation.values.abs().mean().sort_values(ascending=False)

    @property
    def family_importance(self) -> pd.Series:
        """Mean |SHAP| per factor family of the per-row family sums, largest first."""
        return self.explanation.by_family().abs().mean().sort_values(ascending=False)


def evaluate_holdout(
    frame: pd.DataFrame,
    models: TrainedModels,
    cfg: ExperimentConfig,
    truth: TruthJoin | None = None,
    shap_sample: int = SHAP_SAMPLE,
) -> Evaluation:
    """Scores, the evaluation table, the health bands and SHAP on the holdout.

    With usable truth, every score is evaluated on the holdout rows that have a true
    probability, and the truth itself is the ``ceiling`` row.

    Raises:
        ValueError: the evaluated rows hold no churner (or only churners).
    """
    rows = models.churn.split.holdout.copy()
    if truth is not None and truth.usable:
        rows &= truth.matched
    y = frame["label"].to_numpy(int)[rows]
    if y.min() == y.max():
        raise ValueError(
            f"the {rows.sum():,} holdout rows hold only label {y[0]}: no metric can rank them; "
            "use more suppliers or days, or a larger holdout_share"
        )
    hold = frame[rows].reset_index(drop=True)
    scores = holdout_scores(hold, models)
    if truth is not None and truth.usable:
        scores[CEILING] = truth.p_true[rows]
    table = evaluation_table(
        y,
        scores,
        cfg.thresholds.top_k,
        ceiling=CEILING if CEILING in scores else None,
        groups=hold["event_timestamp"].to_numpy(),
    )
    factors, segment = health_inputs(hold)
    bands = band_table(models.health.model.score(factors, segment), y, cfg.thresholds)
    X = feature_matrix(hold, models.columns)
    sample = X.sample(n=shap_sample, random_state=cfg.tuning.seed) if len(X) > shap_sample else X
    return Evaluation(
        rows=rows,
        y=y,
        scores=scores,
        table=table,
        health_log_loss=health_log_losses(hold, y, models.health),
        bands=bands,
        bands_ordered=bands_ordered(bands),
        explanation=explain(models.churn.model.booster, sample),
    )
