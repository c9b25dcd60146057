"""Evaluation metrics of churn scores on a holdout: ranking, calibration and the CS view."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score, brier_score_loss, log_loss, roc_auc_score

EPS = 1e-6


def expected_calibration_error(y: np.ndarray, p: np.ndarray, bins: int = 20) -> float:
    """Mean |observed rate - mean prediction| over equal-count bins, weighted by bin size."""
    y, p = np.asarray(y, float), np.asarray(p, float)
    order = np.argsort(p, kind="stable")
    err = 0.0
    for chunk in np.array_split(order, bins):
        if len(chunk):
            err += len(chunk) * abs(y[chunk].mean() - p[chunk].mean())
    return err / len(y)


def _rank_in_group(score: np.ndarray, groups: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """Each row's 0-based rank by descending score within its group (ties by position), and
    the size of its group. Without groups, all rows form one group."""
    n = len(score)
    codes = np.zeros(n, int) if groups is None else pd.factorize(np.asarray(groups))[0]
    order = np.lexsort((np.arange(n), -score, codes))
    sorted_codes = codes[order]
    starts = np.r_[0, np.flatnonzero(sorted_codes[1:] != sorted_codes[:-1]) + 1]
    sizes = np.diff(np.r_[starts, n])
    rank, size = np.empty(n, int), np.empty(n, int)
    rank[order] = np.arange(n) - np.repeat(starts, sizes)
    size[order] = np.repeat(sizes, sizes)
    return rank, size


def top_share(
    y: np.ndarray, score: np.ndarray, share: float, groups: np.ndarray | None = None
) -> tuple[float, float]:
    """Lift and recall among the ``share`` highest scores of each group (each snapshot date's
    list, as CS works it; one list without groups; ties broken by position)."""
    y = np.asarray(y, float)
    rank, size = _rank_in_group(np.asarray(score, float), groups)
    top = rank < np.maximum(1, np.round(size * share))
    rate = y.mean()
    lift = float(y[top].mean() / rate) if rate > 0 else float("nan")
    return lift, float(y[top].sum() / max(y.sum(), 1))


def precision_at_k(
    y: np.ndarray, score: np.ndarray, k: int, groups: np.ndarray | None = None
) -> float:
    """Precision among the ``k`` highest scores of each group (one CS manager's book on each
    snapshot date; a date with fewer rows contributes all of them), pooled over the groups."""
    rank, _ = _rank_in_group(np.asarray(score, float), groups)
    return float(np.asarray(y, float)[rank < k].mean())


def evaluate(
    y: np.ndarray, p: np.ndarray, top_k: int = 500, groups: np.ndarray | None = None
) -> dict[str, float]:
    """All metrics of one score. ``p`` must be a probability for Brier, log loss and ECE.

    ``groups`` (the snapshot date of each row) makes the top-of-list metrics per date: a
    worklist ranks the suppliers of one day, not a pool of several weeks' rows.
    """
    y = np.asarray(y, int)
    p = np.clip(np.asarray(p, float), EPS, 1 - EPS)
    lift, recall = top_share(y, p, 0.1, groups)
    return {
        "auc": float(roc_auc_score(y, p)),
        "pr_auc": float(average_precision_score(y, p)),
        "brier": float(brier_score_loss(y, p)),
        "log_loss": float(log_loss(y, p, labels=[0, 1])),
        "ece": expected_calibration_error(y, p),
        "lift_top_decile": lift,
        "recall_top_decile": recall,
        f"precision_top_{top_k}": precision_at_k(y, p, top_k, groups),
    }


def gap_closed(
    model: float, baseline: float, ceiling: float, higher_is_better: bool = True
) -> float:
    """Share of the baseline-to-ceiling gap a model closes (1: reaches the ceiling)."""
    gap = (ceiling - baseline) if higher_is_better else (baseline - ceiling)
    gain = (model - baseline) if higher_is_better else (baseline - model)
    return float(gain / gap) if gap > 0 else float("nan")
