"""The churn training pipeline as plain steps: split, tune, fit, calibrate, evaluate.

The holdout (the last snapshot dates, after a gap of one horizon) is never used for fitting,
tuning or calibrating: trees learn on the early part of the training window, the calibrator on
its latest slice (again after a horizon gap), and every number in the evaluation comes from the
holdout only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from training.calibration import IsotonicCalibrator
from training.config import ExperimentConfig
from training.metrics import evaluate, gap_closed
from training.model_files import ChurnModel, calibrated_churn
from training.models import make_churn_model
from training.split import TimeSplit, holdout_split, time_folds
from training.tuning import TuningResult, tune


@dataclass(frozen=True)
class WindowSplit:
    """Row masks: trees, calibration slice, holdout."""

    trees: np.ndarray
    calibration: np.ndarray
    holdout: np.ndarray
    outer: TimeSplit


def window_split(stamps: pd.Series, cfg: ExperimentConfig) -> WindowSplit:
    outer = holdout_split(stamps, cfg.holdout_share, cfg.horizon_days)
    train_stamps = stamps[outer.train]
    inner = holdout_split(train_stamps, cfg.calibration_share, cfg.horizon_days)
    trees = np.zeros(len(stamps), bool)
    calibration = np.zeros(len(stamps), bool)
    trees[np.flatnonzero(outer.train)[inner.train]] = True
    calibration[np.flatnonzero(outer.train)[inner.holdout]] = True
    return WindowSplit(trees=trees, calibration=calibration, holdout=outer.holdout, outer=outer)


@dataclass(frozen=True)
class ChurnFit:
    """A fitted churn model, as it would be deployed, with the tuning that chose its
    configuration and the split it was fitted on."""

    model: ChurnModel
    tuning: TuningResult
    split: WindowSplit

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        """Calibrated churn probabilities of a feature matrix, shape (n,)."""
        return calibrated_churn(self.model.booster, self.model.calibrator, X)


def _fit_calibrated(
    X: pd.DataFrame,
    y: np.ndarray,
    trees: np.ndarray,
    calibration: np.ndarray,
    tuning: TuningResult,
    cfg: ExperimentConfig,
    threads: int,
    constrained: bool = True,
) -> ChurnModel:
    """The tuned configuration's trees on the ``trees`` rows, calibrated on ``calibration``."""
    model = make_churn_model(
        tuning.params,
        list(X.columns),
        n_estimators=tuning.rounds,
        threads=threads,
        seed=cfg.tuning.seed,
        constrained=constrained,
    ).fit(X[trees], y[trees])
    raw = model.predict_proba(X[calibration])[:, 1]
    calibrator = IsotonicCalibrator().fit(raw, y[calibration])
    return ChurnModel(booster=model, calibrator=calibrator, columns=list(X.columns), config=cfg)


def fit_churn(
    X: pd.DataFrame, y: np.ndarray, stamps: pd.Series, cfg: ExperimentConfig, threads: int = 2
) -> ChurnFit:
    """Tune on time-ordered folds of the tree window, refit on the whole tree window, calibrate
    on the later slice.

    The tree window is the training window less its latest slice and the horizon gap before
    it: a calibrator fitted on rows the trees learned from would learn their overconfidence, so
    the trees cannot take the whole training window and still be calibrated honestly.
    """
    split = window_split(stamps, cfg)
    Xt, yt = X[split.trees], y[split.trees]
    folds = time_folds(
        stamps[split.trees].reset_index(drop=True), cfg.folds, cfg.horizon_days, cfg.validate_from
    )
    tuning = tune(Xt.reset_index(drop=True), yt, folds, cfg.tuning, threads)
    model = _fit_calibrated(X, y, split.trees, split.calibration, tuning, cfg, threads)
    return ChurnFit(model=model, tuning=tuning, split=split)


def fit_unconstrained(
    X: pd.DataFrame, y: np.ndarray, fit: ChurnFit, cfg: ExperimentConfig, threads: int = 2
) -> ChurnFit:
    """The same configuration on the same rows without any monotone constraint: set beside the
    constrained fit on the holdout, it says what the constraints cost or gain."""
    model = _fit_calibrated(
        X, y, fit.split.trees, fit.split.calibration, fit.tuning, cfg, threads, constrained=False
    )
    return ChurnFit(model=model, tuning=fit.tuning, split=fit.split)


def refit_split(stamps: pd.Series, cfg: ExperimentConfig) -> WindowSplit:
    """A split of every labelled row for the deployed fit: the newest ``calibration_share`` of
    the snapshot dates calibrates, the trees take every row before it and its horizon gap, and
    nothing is held out."""
    outer = holdout_split(stamps, cfg.calibration_share, cfg.horizon_days)
    return WindowSplit(
        trees=outer.train,
        calibration=outer.holdout,
        holdout=np.zeros(len(stamps), bool),
        outer=outer,
    )


def refit_churn(
    X: pd.DataFrame,
    y: np.ndarray,
    stamps: pd.Series,
    tuning: TuningResult,
    cfg: ExperimentConfig,
    threads: int = 2,
) -> ChurnFit:
    """The chosen configuration refitted on all of ``X``'s rows, calibrated on the newest slice:
    the model that is deployed, whose trees end close to the data it will score (the evaluation
    fit's end more than a holdout and a calibration slice earlier)."""
    split = refit_split(stamps, cfg)
    model = _fit_calibrated(X, y, split.trees, split.calibration, tuning, cfg, threads)
    return ChurnFit(model=model, tuning=tuning, split=split)


def evaluation_table(
    y: np.ndarray,
    scores: dict[str, np.ndarray],
    top_k: int,
    ceiling: str | None = None,
    groups: np.ndarray | None = None,
) -> pd.DataFrame:
    """Metrics of every score on the same rows and, with a ceiling, the share of two gaps each
    closes in AUC and PR-AUC: ``*_rule_gap_closed`` from the fixed-weight rule to the ceiling,
    ``*_gap_closed`` from the better of the rule and the logistic baseline to the ceiling (the
    quality target's measure). ``groups`` (snapshot dates) makes the top-of-list metrics per
    date (see :func:`training.metrics.evaluate`)."""
    table = pd.DataFrame({name: evaluate(y, s, top_k, groups) for name, s in scores.items()}).T
    if ceiling is not None and ceiling in table.index:
        baselines = [b for b in ("fixed_weight_rule", "logistic_baseline") if b in table.index]
        for metric in ("auc", "pr_auc"):
            top = table.loc[ceiling, metric]
            if "fixed_weight_rule" in table.index:
                rule = table.loc["fixed_weight_rule", metric]
                table[f"{metric}_rule_gap_closed"] = [
                    gap_closed(v, rule, top) for v in table[metric]
                ]
            best = table.loc[baselines, metric].max()
            table[f"{metric}_gap_closed"] = [gap_closed(v, best, top) for v in table[metric]]
    return table
