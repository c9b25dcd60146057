"""Risk levels from the experiment's thresholds, and the check that health bands mean something.

Names follow ``shared/API_CONTRACT.md``: a health score is ``healthy``, ``at_risk`` or
``critical``; a churn probability is ``critical``, ``high``, ``medium`` or ``low``. Missing
scores get no level (``None``).
"""

from __future__ import annotations

from typing import Final

import numpy as np
import pandas as pd

from training.config import Thresholds

HEALTH_BANDS: Final = ("healthy", "at_risk", "critical")
CHURN_LEVELS: Final = ("critical", "high", "medium", "low")


def health_risk(score: np.ndarray | pd.Series, thresholds: Thresholds) -> np.ndarray:
    """healthy (>= ``thresholds.healthy``), at_risk (>= ``thresholds.at_risk``), critical."""
    s = np.asarray(score, dtype=float)
    level = np.select(
        [s >= thresholds.healthy, s >= thresholds.at_risk], ["healthy", "at_risk"], "critical"
    ).astype(object)
    level[np.isnan(s)] = None
    return level


def churn_risk(probability: np.ndarray | pd.Series, thresholds: Thresholds) -> np.ndarray:
    """critical / high / medium / low by the experiment's churn thresholds."""
    p = np.asarray(probability, dtype=float)
    level = np.select(
        [p >= thresholds.churn_critical, p >= thresholds.churn_high, p >= thresholds.churn_medium],
        ["critical", "high", "medium"],
        "low",
    ).astype(object)
    level[np.isnan(p)] = None
    return level


def band_table(score: np.ndarray, y: np.ndarray, thresholds: Thresholds) -> pd.DataFrame:
    """Rows and observed churn rate per health band (every band listed, empty ones with NaN)."""
    bands = pd.Series(health_risk(score, thresholds))
    y = pd.Series(np.asarray(y, dtype=float))
    rows = bands.value_counts().reindex(HEALTH_BANDS, fill_value=0)
    rate = y.groupby(bands).mean().reindex(HEALTH_BANDS)
    return pd.DataFrame(
        {"band": HEALTH_BANDS, "rows": rows.to_numpy(int), "churn_rate": rate.to_numpy(float)}
    )


def bands_ordered(table: pd.DataFrame) -> bool:
    """Whether observed churn rises from healthy to critical (empty bands are skipped)."""
    rates = table.loc[table["rows"] > 0, "churn_rate"].to_numpy(float)
    return bool(np.all(np.diff(rates) > 0))
