"""PNG figures of a training run: SHAP importances and summary, reliability and precision-recall
curves.

Figures are built with matplotlib's object API on the Agg canvas: no display, no pyplot state
and no global backend switch, so nothing accumulates over a long run or leaks into a caller.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from sklearn.metrics import average_precision_score, precision_recall_curve


def _figure(width: float, height: float) -> tuple[Figure, object]:
    fig = Figure(figsize=(width, height))
    FigureCanvasAgg(fig)
    return fig, fig.subplots()


def _save(fig: Figure, path: Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=110, format="png")
    return path


def importance_bar(importance: pd.Series, path: Path, title: str, top: int = 20) -> Path:
    """Horizontal bars of mean |SHAP| (log-odds), the largest on top."""
    shown = importance.sort_values(ascending=False).head(top)[::-1]
    fig, ax = _figure(7, 0.3 * len(shown) + 1.2)
    ax.barh(shown.index.astype(str), shown.to_numpy(), color="#3b6ea8")
    ax.set_xlabel("mean |SHAP value| (log-odds)")
    ax.set_title(title)
    return _save(fig, path)


def shap_summary(
    values: pd.DataFrame, features: pd.DataFrame, path: Path, top: int = 20, seed: int = 0
) -> Path:
    """SHAP's summary (beeswarm) plot: per feature, one dot a row at its attribution, coloured
    by the feature's value (its rank among the rows: low blue, high red; missing grey), the
    features with the largest mean |SHAP| on top. Shows direction as well as size."""
    order = values.abs().mean().sort_values(ascending=False).head(top).index[::-1]
    rng = np.random.default_rng(seed)
    fig, ax = _figure(8, 0.38 * len(order) + 1.4)
    for row, name in enumerate(order):
        x = values[name].to_numpy(float)
        raw = features[name]
        if isinstance(raw.dtype, pd.CategoricalDtype):
            raw = pd.Series(raw.cat.codes.where(raw.notna()), index=raw.index)
        level = pd.to_numeric(raw, errors="coerce").rank(pct=True).to_numpy(float)
        jitter = rng.uniform(-0.35, 0.35, len(x))
        known = ~np.isnan(level)
        ax.scatter(x[~known], row + jitter[~known], s=4, color="#b0b0b0", linewidths=0)
        ax.scatter(
            x[known],
            row + jitter[known],
            s=4,
            c=level[known],
            cmap="coolwarm",
            vmin=0,
            vmax=1,
            linewidths=0,
        )
    ax.axvline(0, color="grey", linewidth=0.8)
    ax.set_yticks(range(len(order)), [str(n) for n in order])
    ax.set_xlabel("SHAP value (log-odds of churn)")
    ax.set_title("Churn model: SHAP summary (colour: feature value, low blue to high red)")
    return _save(fig, path)


def reliability(
    y: np.ndarray, scores: Mapping[str, np.ndarray], path: Path, bins: int = 10
) -> Path:
    """Observed churn rate against the mean prediction in equal-count bins, per score."""
    y = np.asarray(y, float)
    fig, ax = _figure(6, 5.5)
    top = 0.0
    for name, p in scores.items():
        p = np.asarray(p, float)
        order = np.argsort(p, kind="stable")
        chunks = [c for c in np.array_split(order, bins) if len(c)]
        mean_p = [p[c].mean() for c in chunks]
        rate = [y[c].mean() for c in chunks]
        top = max(top, *mean_p, *rate)
        ax.plot(mean_p, rate, marker="o", label=name)
    top = min(1.0, top * 1.05 + 1e-3)
    ax.plot([0, top], [0, top], color="grey", linestyle="--", linewidth=1, label="perfect")
    ax.set_xlim(0, top)
    ax.set_ylim(0, top)
    ax.set_xlabel("mean predicted churn probability")
    ax.set_ylabel("observed churn rate")
    ax.set_title(f"Reliability on the holdout ({bins} equal-count bins)")
    ax.legend(loc="upper left", fontsize=8)
    return _save(fig, path)


def precision_recall(y: np.ndarray, scores: Mapping[str, np.ndarray], path: Path) -> Path:
    """Precision-recall curve of every score, with its average precision in the legend."""
    y = np.asarray(y, int)
    fig, ax = _figure(6, 5.5)
    for name, s in scores.items():
        precision, recall, _ = precision_recall_curve(y, s)
        ap = average_precision_score(y, s)
        ax.plot(recall, precision, label=f"{name} (AP {ap:.3f})")
    ax.axhline(y.mean(), color="grey", linestyle="--", linewidth=1, label="base rate")
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.set_title("Precision-recall on the holdout")
    ax.legend(loc="upper right", fontsize=8)
    return _save(fig, path)
