"""Evaluation metrics of churn scores on a holdout: ranking, calibration and the CS view."""

from __future__ import annotations

import numpy as np
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


def top_share(y: np.ndarray, score: np.ndarray, share: float) -> tuple[float, float]:
    """Lift and recall among the ``share`` highest scores (ties broken by position)."""
    y = np.asarray(y, float)
    k = max(1, round(len(y) * share))
    top = np.argsort(-np.asarray(score, float), kind="stable")[:k]
    rate = y.mean()
    return float(y[top].mean() / rate) if rate > 0 else float("nan"), float(
        y[top].sum() / max(y.sum(), 1)
    )


def precision_at_k(y: np.ndarray, score: np.ndarray, k: int) -> float:
    top = np.argsort(-np.asarray(score, float), kind="stable")[:k]
    return float(np.asarray(y, float)[top].mean())


def evaluate(y: np.ndarray, p: np.ndarray, top_k: int = 500) -> dict[str, float]:
    """All metrics of one score. ``p`` must be a probability for Brier, log loss and ECE."""
    y = np.asarray(y, int)
    p = np.clip(np.asarray(p, float), EPS, 1 - EPS)
    lift, recall = top_share(y, p, 0.1)
    return {
        "auc": float(roc_auc_score(y, p)),
        "pr_auc": float(average_precision_score(y, p)),
        "brier": float(brier_score_loss(y, p)),
        "log_loss": float(log_loss(y, p, labels=[0, 1])),
        "ece": expected_calibration_error(y, p),
        "lift_top_decile": lift,
        "recall_top_decile": recall,
        f"precision_top_{top_k}": precision_at_k(y, p, top_k),
    }


def gap_closed(
    model: float, baseline: float, ceiling: float, higher_is_better: bool = True
) -> float:
    """Share of the baseline-to-ceiling gap a model closes (1: reaches the ceiling)."""
    gap = (ceiling - baseline) if higher_is_better else (baseline - ceiling)
    gain = (model - baseline) if higher_is_better else (baseline - model)
    return float(gain / gap) if gap > 0 else float("nan")
