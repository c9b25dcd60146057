"""Monotone probability calibration with a scikit-learn estimator that saves as JSON."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.isotonic import IsotonicRegression
from sklearn.utils.validation import check_is_fitted


class IsotonicCalibrator(BaseEstimator):
    """Maps a score to a calibrated churn probability with a monotone step function.

    Args:
        increasing: True when a higher score means more churn (model probabilities); False for
            a health score, where a higher score means less churn.
    """

    def __init__(self, increasing: bool = True) -> None:
        self.increasing = increasing

    def fit(self, scores: np.ndarray, y: np.ndarray) -> IsotonicCalibrator:
        """Fit on scores of shape (n,) and 0/1 outcomes of shape (n,)."""
        scores, y = np.asarray(scores, float), np.asarray(y, float)
        if scores.shape != y.shape or scores.ndim != 1:
            raise ValueError("scores and y must be 1-d arrays of the same length")
        iso = IsotonicRegression(
            increasing=self.increasing, out_of_bounds="clip", y_min=0.0, y_max=1.0
        ).fit(scores, y)
        self.x_thresholds_ = iso.X_thresholds_
        self.y_thresholds_ = iso.y_thresholds_
        return self

    def predict(self, scores: np.ndarray) -> np.ndarray:
        """Calibrated probabilities, shape (n,)."""
        check_is_fitted(self, "x_thresholds_")
        return np.interp(np.asarray(scores, float), self.x_thresholds_, self.y_thresholds_)

    def to_json(self) -> str:
        check_is_fitted(self, "x_thresholds_")
        return json.dumps(
            {
                "increasing": self.increasing,
                "x": self.x_thresholds_.tolist(),
                "y": self.y_thresholds_.tolist(),
            }
        )

    @classmethod
    def from_json(cls, text: str) -> IsotonicCalibrator:
        data = json.loads(text)
        model = cls(increasing=data["increasing"])
        model.x_thresholds_ = np.asarray(data["x"], float)
        model.y_thresholds_ = np.asarray(data["y"], float)
        return model

    def save(self, path: Path) -> None:
        Path(path).write_text(self.to_json())

    @classmethod
    def load(cls, path: Path) -> IsotonicCalibrator:
        return cls.from_json(Path(path).read_text())
