"""Time-based splits: a holdout of the last snapshot dates after a gap of one horizon, and
time-ordered folds inside the training window. No label window of training rows overlaps the
holdout's, because a row at ``t`` is labelled by ``(t, t + H]``."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class TimeSplit:
    """Boolean masks over the rows of a training frame."""

    train: np.ndarray
    holdout: np.ndarray
    holdout_start: pd.Timestamp

    def describe(self, stamps: pd.Series) -> str:
        return (
            f"train {self.train.sum():,} rows to {stamps[self.train].max():%Y-%m-%d}, "
            f"holdout {self.holdout.sum():,} rows from {self.holdout_start:%Y-%m-%d}"
        )


def holdout_split(stamps: pd.Series, holdout_share: float, horizon_days: int) -> TimeSplit:
    """Hold out the last ``holdout_share`` of snapshot dates; drop training rows whose label
    window reaches into the holdout (a gap of one horizon)."""
    dates = np.sort(stamps.unique())
    n_hold = max(1, round(len(dates) * holdout_share))
    if n_hold >= len(dates):
        raise ValueError(f"{len(dates)} snapshot dates cannot hold out {n_hold}")
    start = pd.Timestamp(dates[-n_hold])
    holdout = (stamps >= start).to_numpy()
    train = (stamps + pd.Timedelta(days=horizon_days) < start).to_numpy()
    if not train.any():
        raise ValueError("no training rows remain before the holdout and its gap")
    return TimeSplit(train=train, holdout=holdout, holdout_start=start)


def time_folds(
    stamps: pd.Series, n_folds: int, horizon_days: int
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Expanding-window folds: validate on successive blocks of dates, train on everything
    before each block minus one horizon. Returns (train_mask, valid_mask) pairs."""
    dates = np.sort(stamps.unique())
    blocks = np.array_split(dates, n_folds + 1)[1:]
    folds = []
    for block in blocks:
        lo, hi = pd.Timestamp(block[0]), pd.Timestamp(block[-1])
        valid = ((stamps >= lo) & (stamps <= hi)).to_numpy()
        train = (stamps + pd.Timedelta(days=horizon_days) < lo).to_numpy()
        if train.any() and valid.any():
            folds.append((train, valid))
    if not folds:
        raise ValueError("too few snapshot dates for time-ordered folds")
    return folds
