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
    stamps: pd.Series, n_folds: int, horizon_days: int, validate_from: float = 0.5
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Expanding-window folds: validate on successive blocks of the dates after the first
    ``validate_from`` share of them, train on everything before each block minus one horizon.
    Returns (train_mask, valid_mask) pairs.

    Every fold's model learns from at least that share of the window, so that it resembles the
    model finally fitted on all of it. Blocks that start early (the classic ``n_folds + 1``
    split) give the first fold a sliver of the oldest rows, unlike every later population: on an
    export whose history starts after many accounts, the earliest covered rows are new accounts
    alone, and that one fold's extrapolation decided the mean loss (and the tuning) alone.
    """
    if not 0 <= validate_from < 1:
        raise ValueError(f"validate_from must be in [0, 1), not {validate_from}")
    dates = np.sort(stamps.unique())
    first = max(1, int(len(dates) * validate_from))
    blocks = [b for b in np.array_split(dates[first:], n_folds) if len(b)]
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
