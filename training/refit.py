"""The deployed fit: the evaluated configuration refitted on every labelled row, and the check
that refitting helps.

The evaluation fit's trees end before a calibration slice, a holdout and two horizon gaps: more
than a year before the rows it will score on a two-year export. The evaluation stays as it is
(it decides the promotion, on the same holdout as the champion's); the model registered is the
same configuration refitted on all labelled rows and calibrated on the newest slice.

Whether that refit is at least as good is measured, not assumed: on the later half of the
holdout, the evaluation fit is set against the same refit procedure applied to every row whose
label is observed before that half begins (so it has not seen it).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from training.config import ExperimentConfig
from training.health_model import HealthFit, fit_health_model
from training.metrics import evaluate
from training.pipeline import ChurnFit, refit_churn

CHECK_METRICS = ("auc", "pr_auc", "brier", "log_loss", "ece")


@dataclass(frozen=True)
class RefitCheck:
    """The evaluation fit and the refit procedure on rows neither has seen."""

    table: pd.DataFrame  # index evaluation_fit, refit; columns CHECK_METRICS
    rows: int
    positives: int
    first: pd.Timestamp
    refit_labels_to: pd.Timestamp

    @property
    def refit_not_worse(self) -> bool:
        """The refit's log loss is no worse than the evaluation fit's (within 0.5 %)."""
        t = self.table
        return bool(t.loc["refit", "log_loss"] <= 1.005 * t.loc["evaluation_fit", "log_loss"])


def refit_check(
    X: pd.DataFrame,
    y: np.ndarray,
    stamps: pd.Series,
    evaluated: np.ndarray,
    fit: ChurnFit,
    cfg: ExperimentConfig,
    threads: int = 2,
) -> RefitCheck | None:
    """Score the evaluation fit and a refit on the later half of the holdout's dates.

    Args:
        evaluated: the holdout rows that are evaluated (those with truth, if any).

    Returns:
        None when the later half holds a single class (nothing to rank).
    """
    dates = np.sort(stamps[fit.split.holdout].unique())
    later_start = pd.Timestamp(dates[len(dates) // 2])
    later = evaluated & (stamps >= later_start).to_numpy()
    seen = (stamps + pd.Timedelta(days=cfg.horizon_days) < later_start).to_numpy()
    y_later = y[later]
    if not later.any() or y_later.min() == y_later.max():
        return None
    keep = np.flatnonzero(seen)
    refit = refit_churn(
        X.iloc[keep], y[keep], stamps.iloc[keep].reset_index(drop=True), fit.tuning, cfg, threads
    )
    scores = {"evaluation_fit": fit.predict(X[later]), "refit": refit.predict(X[later])}
    table = pd.DataFrame(
        {name: evaluate(y_later, p, cfg.thresholds.top_k) for name, p in scores.items()}
    ).T[list(CHECK_METRICS)]
    return RefitCheck(
        table=table,
        rows=int(later.sum()),
        positives=int(y_later.sum()),
        first=later_start,
        refit_labels_to=stamps[seen].max() + pd.Timedelta(days=cfg.horizon_days),
    )


@dataclass(frozen=True)
class DeployedFit:
    """The models registered: both refitted on every labelled row."""

    churn: ChurnFit
    health: HealthFit


def deployed_fit(
    X: pd.DataFrame,
    y: np.ndarray,
    stamps: pd.Series,
    factors: pd.DataFrame,
    segment: pd.Series,
    fit: ChurnFit,
    cfg: ExperimentConfig,
    threads: int = 2,
) -> DeployedFit:
    """The evaluated churn configuration and the health model, refitted on all rows: trees and
    health weights before the newest slice, calibrated on it."""
    churn = refit_churn(X, y, stamps, fit.tuning, cfg, threads)
    health = fit_health_model(factors, segment, y, churn.split.trees, churn.split.calibration)
    return DeployedFit(churn=churn, health=health)
