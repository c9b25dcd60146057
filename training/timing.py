"""When a supplier will churn: an accelerated-failure-time survival model (XGBoost
``survival:aft``) on the churn model's feature service, and the predicted churn date.

Each snapshot row's time is the days from its instant to the supplier's cancellation, or,
right-censored, to the end of the data. The model learns ``mu(x)``; a supplier's survival curve
is ``S(t | x) = 1 - F((ln t - mu(x)) / sigma)`` with one ``sigma`` for everyone (F the standard
normal), so curves never cross: a supplier whose 30-day churn probability ``1 - S(30 | x)`` is
higher always has an earlier median, and the predicted churn date (the median, the day ``S``
falls below one half) never comes later. That is the precise relation promised and tested; the
separate churn classifier's probability agrees with it in rank (measured), not by construction.

This module reads no registry: serving loads the model through :func:`read_timing_model`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Final

import numpy as np
import pandas as pd
import xgboost as xgb
from scipy.stats import norm

from training.models import feature_matrix

TIMING_MODEL: Final = "churn_timing"
# A median further away than this is no prediction: the date is null.
MAX_DAYS: Final = 365
BOOSTER_FILE: Final = "model.ubj"
META_FILE: Final = "timing.json"
SCALES: Final = (0.5, 1.0, 1.6)
PARAMS: Final = {
    "objective": "survival:aft",
    "eval_metric": "aft-nloglik",
    "aft_loss_distribution": "normal",
    "max_depth": 4,
    "learning_rate": 0.05,
    "min_child_weight": 5.0,
    "subsample": 0.8,
    "colsample_bynode": 0.8,
}


def event_times(
    instants: pd.Series,
    suppliers: pd.Series,
    cancellations: pd.DataFrame,
    data_end: pd.Timestamp,
) -> tuple[np.ndarray, np.ndarray]:
    """Days from each instant to the supplier's cancellation (``event`` true), or to
    ``data_end`` when it had not cancelled by then (censored). At least half a day, so that a
    cancellation on the snapshot's own day has a positive time."""
    at = pd.to_datetime(instants, utc=True).reset_index(drop=True)
    first = (
        cancellations.assign(cancelled_at=pd.to_datetime(cancellations["cancelled_at"], utc=True))
        .groupby("supplier_id")["cancelled_at"]
        .min()
    )
    when = pd.Series(suppliers.astype(str).to_numpy()).map(first)
    end = pd.Timestamp(data_end)
    event = (when.notna() & (when > at) & (when <= end)).to_numpy()
    stop = when.where(event, end)
    days = (stop - at).dt.total_seconds().to_numpy(float) / 86400.0
    return np.maximum(days, 0.5), event


def concordance_index(time: np.ndarray, event: np.ndarray, risk: np.ndarray) -> float:
    """Harrell's C: among comparable pairs (one row's event comes strictly before the other's
    time), the share where the earlier one has the higher risk, ties in risk counting one half.
    O(n log n) with a Fenwick tree over risk ranks."""
    time = np.asarray(time, dtype=float)
    event = np.asarray(event, dtype=bool)
    levels, ranks = np.unique(np.asarray(risk, dtype=float), return_inverse=True)
    k = len(levels)
    tree = np.zeros(k + 1, dtype=np.int64)  # counts of risk ranks of rows with a later time

    def count_below(rank: int) -> int:  # rows added with a risk rank < rank
        total, i = 0, rank
        while i > 0:
            total += int(tree[i])
            i -= i & -i
        return total

    concordant = ties = comparable = 0
    added = 0
    order = np.argsort(-time, kind="stable")
    start = 0
    while start < len(order):
        stop = start
        while stop < len(order) and time[order[stop]] == time[order[start]]:
            stop += 1
        group = order[start:stop]
        for i in group[event[group]]:  # each event against every strictly later row
            lower = count_below(int(ranks[i]))
            concordant += lower
            ties += count_below(int(ranks[i]) + 1) - lower
            comparable += added
        for i in group:
            j = int(ranks[i]) + 1
            while j <= k:
                tree[j] += 1
                j += j & -j
        added += len(group)
        start = stop
    if comparable == 0:
        return float("nan")
    return (concordant + 0.5 * ties) / comparable


@dataclass(frozen=True)
class TimingModel:
    """The AFT booster, its columns and the distribution's scale."""

    booster: xgb.Booster
    columns: tuple[str, ...]
    scale: float
    rounds: int

    def matrix(self, features: pd.DataFrame) -> pd.DataFrame:
        return feature_matrix(features, self.columns)

    def _mu(self, X: pd.DataFrame) -> np.ndarray:
        if len(X) == 0:
            return np.zeros(0)
        margin = self.booster.predict(xgb.DMatrix(X, enable_categorical=True), output_margin=True)
        return np.asarray(margin, dtype=float)

    def median_days(
        self, features: pd.DataFrame | None, matrix: xgb.DMatrix | None = None
    ) -> np.ndarray:
        """Days from the row's instant until its survival curve falls to one half
        (``matrix``: the rows already as XGBoost's input of this model's columns; then
        ``features`` may be None)."""
        if matrix is not None:
            # made from this model's columns: XGBoost's check of the names is skipped
            margin = self.booster.predict(matrix, output_margin=True, validate_features=False)
            return np.exp(np.asarray(margin, float))
        return np.exp(self._mu(self.matrix(features)))

    def churn_probability(self, features: pd.DataFrame, days: float) -> np.ndarray:
        """``1 - S(days | x)``: the probability of cancelling within ``days``."""
        mu = self._mu(self.matrix(features))
        return norm.cdf((np.log(days) - mu) / self.scale)

    def churn_dates(
        self,
        features: pd.DataFrame | None,
        days: Sequence[date],
        matrix: xgb.DMatrix | None = None,
    ) -> list[date | None]:
        """The predicted churn date of each row (its feature day + the median), or None when
        that is more than :data:`MAX_DAYS` away."""
        median = self.median_days(features, matrix)
        return [
            d + timedelta(days=int(np.ceil(m))) if m <= MAX_DAYS else None
            for d, m in zip(days, median, strict=True)
        ]


def _dmatrix(X: pd.DataFrame, time: np.ndarray, event: np.ndarray) -> xgb.DMatrix:
    d = xgb.DMatrix(X, enable_categorical=True)
    d.set_float_info("label_lower_bound", time)
    d.set_float_info("label_upper_bound", np.where(event, time, np.inf))
    return d


def fit_timing(
    X: pd.DataFrame,
    time: np.ndarray,
    event: np.ndarray,
    fit_rows: np.ndarray,
    valid_rows: np.ndarray,
    threads: int = 2,
    max_rounds: int = 600,
    seed: int = 0,
) -> TimingModel:
    """Fit on ``fit_rows`` with early stopping on ``valid_rows``, the scale chosen among
    :data:`SCALES` by the validation negative log-likelihood."""
    train = _dmatrix(X[fit_rows], time[fit_rows], event[fit_rows])
    valid = _dmatrix(X[valid_rows], time[valid_rows], event[valid_rows])
    best: tuple[float, TimingModel] | None = None
    for scale in SCALES:
        params = {**PARAMS, "aft_loss_distribution_scale": scale, "nthread": threads, "seed": seed}
        history: dict = {}
        booster = xgb.train(
            params,
            train,
            num_boost_round=max_rounds,
            evals=[(valid, "valid")],
            early_stopping_rounds=30,
            evals_result=history,
            verbose_eval=False,
        )
        loss = float(min(history["valid"]["aft-nloglik"]))
        rounds = booster.best_iteration + 1
        model = TimingModel(
            booster=booster[:rounds], columns=tuple(X.columns), scale=scale, rounds=rounds
        )
        if best is None or loss < best[0]:
            best = (loss, model)
    assert best is not None
    return best[1]


def refit_timing(
    X: pd.DataFrame, time: np.ndarray, event: np.ndarray, like: TimingModel, threads: int = 2
) -> TimingModel:
    """The chosen model's scale and rounds refitted on every row (the deployed model)."""
    params = {**PARAMS, "aft_loss_distribution_scale": like.scale, "nthread": threads, "seed": 0}
    booster = xgb.train(params, _dmatrix(X, time, event), num_boost_round=like.rounds)
    return TimingModel(booster=booster, columns=like.columns, scale=like.scale, rounds=like.rounds)


def write_timing_model(model: TimingModel, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    model.booster.save_model(folder / BOOSTER_FILE)
    (folder / META_FILE).write_text(
        json.dumps(
            {
                "columns": list(model.columns),
                "scale": model.scale,
                "rounds": model.rounds,
                "distribution": PARAMS["aft_loss_distribution"],
            },
            indent=2,
        )
    )
    return folder


def read_timing_model(folder: Path, threads: int = 2) -> TimingModel:
    meta = json.loads((Path(folder) / META_FILE).read_text())
    booster = xgb.Booster(params={"nthread": threads})
    booster.load_model(Path(folder) / BOOSTER_FILE)
    return TimingModel(
        booster=booster,
        columns=tuple(meta["columns"]),
        scale=float(meta["scale"]),
        rounds=int(meta["rounds"]),
    )
