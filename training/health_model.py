"""The health calibration model: the brief's interpretable health score stays what CS managers
see; a decreasing monotone map turns it into a calibrated churn probability, and the six factor
weights per segment are re-learned when that helps.

Weights are re-learned per segment by a logistic fit whose coefficients are constrained to be
non-positive (a healthier factor never raises churn), normalised to sum to one. Whether they
replace the brief's weights is decided on the calibration slice, never on the holdout; the
holdout log loss of both is reported.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.optimize import minimize
from sklearn.metrics import log_loss

from features.catalog import HEALTH_FACTORS, SEGMENTS
from features.health import SEGMENT_WEIGHTS, health_score, health_score_values
from training.calibration import IsotonicCalibrator

Weights = dict[str, tuple[float, ...]]


def _constrained_logistic(F: np.ndarray, y: np.ndarray) -> np.ndarray | None:
    """Coefficients (<= 0) of a logistic fit of y on factors F; None when there is no signal."""
    if len(y) < 50 or y.min() == y.max():
        return None
    k = F.shape[1]

    def loss(theta: np.ndarray) -> tuple[float, np.ndarray]:
        z = theta[0] + F @ theta[1:]
        p = 1 / (1 + np.exp(-z))
        eps = 1e-12
        value = -np.mean(y * np.log(p + eps) + (1 - y) * np.log(1 - p + eps))
        g = p - y
        return value, np.r_[g.mean(), F.T @ g / len(y)]

    start = np.r_[np.log(y.mean() / (1 - y.mean())), np.full(k, -0.1)]
    res = minimize(
        loss, start, jac=True, method="L-BFGS-B", bounds=[(None, None)] + [(None, 0.0)] * k
    )
    coef = res.x[1:]
    return coef if coef.sum() < -1e-9 else None


def relearn_weights(factors: pd.DataFrame, segment: pd.Series, y: np.ndarray) -> Weights:
    """Per-segment weights from data; a segment without signal keeps the brief's weights."""
    weights: Weights = {}
    F = factors[list(HEALTH_FACTORS)].to_numpy(float)
    complete = ~np.isnan(F).any(axis=1)  # rows whose every factor the export tells
    for name in SEGMENTS:
        rows = (segment == name).to_numpy() & complete
        coef = _constrained_logistic(F[rows], np.asarray(y)[rows])
        weights[name] = (
            tuple(float(c) for c in coef / coef.sum())
            if coef is not None
            else SEGMENT_WEIGHTS[name]
        )
    return weights


@dataclass(frozen=True)
class HealthModel:
    """Weights of the score and the map from score to churn probability."""

    weights: Weights
    calibrator: IsotonicCalibrator
    relearned: bool

    def score(self, factors: pd.DataFrame, segment: pd.Series) -> np.ndarray:
        return health_score(factors, segment, self.weights).to_numpy()

    def score_values(self, values: np.ndarray, segment: np.ndarray) -> np.ndarray:
        """:meth:`score` of plain arrays (see :func:`features.health.health_score_values`)."""
        return health_score_values(values, segment, self.weights)

    def churn_probability(self, factors: pd.DataFrame, segment: pd.Series) -> np.ndarray:
        return self.calibrator.predict(self.score(factors, segment))

    def to_json(self) -> str:
        return json.dumps(
            {
                "weights": {k: list(v) for k, v in self.weights.items()},
                "relearned": self.relearned,
                "calibrator": json.loads(self.calibrator.to_json()),
            }
        )

    @classmethod
    def from_json(cls, text: str) -> HealthModel:
        data = json.loads(text)
        return cls(
            weights={k: tuple(v) for k, v in data["weights"].items()},
            calibrator=IsotonicCalibrator.from_json(json.dumps(data["calibrator"])),
            relearned=data["relearned"],
        )


@dataclass(frozen=True)
class HealthFit:
    """The chosen model and both candidates (the brief's weights and the re-learned ones)."""

    model: HealthModel
    brief: HealthModel
    relearned: HealthModel
    calibration_log_loss: dict[str, float]


def fit_health_model(
    factors: pd.DataFrame,
    segment: pd.Series,
    y: np.ndarray,
    learn: np.ndarray,
    calibrate: np.ndarray,
) -> HealthFit:
    """Learn weights on ``learn`` rows, calibrate on ``calibrate`` rows, and keep the re-learned
    weights only when they lower the calibration slice's log loss."""
    y = np.asarray(y)

    def build(weights: Weights, relearned: bool) -> HealthModel:
        s = health_score(factors[calibrate], segment[calibrate], weights).to_numpy()
        cal = IsotonicCalibrator(increasing=False).fit(s, y[calibrate])
        return HealthModel(weights=weights, calibrator=cal, relearned=relearned)

    brief = build(SEGMENT_WEIGHTS, relearned=False)
    learned = build(relearn_weights(factors[learn], segment[learn], y[learn]), relearned=True)
    losses = {
        name: float(
            log_loss(
                y[calibrate],
                np.clip(
                    m.churn_probability(factors[calibrate], segment[calibrate]), 1e-6, 1 - 1e-6
                ),
                labels=[0, 1],
            )
        )
        for name, m in (("brief_weights", brief), ("relearned_weights", learned))
    }
    chosen = learned if losses["relearned_weights"] < losses["brief_weights"] else brief
    return HealthFit(model=chosen, brief=brief, relearned=learned, calibration_log_loss=losses)


def health_inputs(frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.Series]:
    """The six factors and the segment of the health service's columns."""
    return frame[list(HEALTH_FACTORS)].astype(float), frame["health_segment"].astype(object)
