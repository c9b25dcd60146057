"""The product brief's six health factors, its segments and its weighted health score.

Defined once here; the feature build stores them, the health calibration model re-learns the
weights, and the API shows the breakdown. Each factor is in [0, 1], higher is healthier.
"""

from __future__ import annotations

from typing import Final

import numpy as np
import pandas as pd

from features.catalog import HEALTH_FACTORS, SEGMENTS

# Weights per segment (each row sums to 1), in the order of HEALTH_FACTORS:
# login_frequency, feature_adoption, client_engagement, support_health, billing_health,
# onboarding_progress. New users are judged mostly on onboarding; power users on depth.
SEGMENT_WEIGHTS: Final[dict[str, tuple[float, ...]]] = {
    "new_user": (0.25, 0.15, 0.10, 0.10, 0.05, 0.35),
    "established": (0.25, 0.20, 0.20, 0.15, 0.15, 0.05),
    "power_user": (0.20, 0.25, 0.25, 0.15, 0.15, 0.00),
}
NEW_USER_DAYS: Final = 30
# Without these the score would call an account inactive for want of data: no score instead.
REQUIRED_FACTORS: Final = ("login_frequency", "feature_adoption")
# The brief's health bands: healthy from 75, at risk from 50 (the experiments' default
# thresholds; training.risk.health_risk names a score's band).
HEALTHY, AT_RISK = 75.0, 50.0


def _num(frame: pd.DataFrame, column: str) -> np.ndarray:
    return pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype=float, na_value=np.nan)


def health_factors(frame: pd.DataFrame) -> pd.DataFrame:
    """The six factors from feature columns (one row per input row).

    Activity the export's history does not cover is missing, not zero (see
    :mod:`features.history`): the factors read from it are missing too, and so is the score,
    rather than calling an account inactive for want of data.
    """
    active_days = _num(frame, "active_days_30d")
    features_used = _num(frame, "features_used_30d")
    total = _num(frame, "total_clients")
    ratio = np.where(np.isnan(total), np.nan, np.nan_to_num(_num(frame, "active_client_ratio")))
    satisfaction = _num(frame, "mean_satisfaction_90d")
    strain = (
        0.25 * np.nan_to_num(_num(frame, "open_tickets"))
        + 0.2 * np.nan_to_num(_num(frame, "bad_ratings_90d"))
        + 0.1 * np.maximum(np.nan_to_num(_num(frame, "tickets_30d")) - 1, 0)
    )
    support = 1 - np.minimum(strain, 1)
    support = np.where(
        np.isnan(satisfaction), support, 0.5 * support + 0.5 * (satisfaction - 1) / 4
    )
    billing = (
        1
        - 0.3 * np.nan_to_num(_num(frame, "failed_payments_90d"))
        - 0.2 * np.nan_to_num(_num(frame, "card_expiring_30d"))
        - 0.3 * np.nan_to_num(_num(frame, "downgrades_90d"))
    )
    billing = np.where(np.nan_to_num(_num(frame, "unresolved_payment_failure")) > 0, 0.0, billing)
    factors = {
        "login_frequency": np.minimum(active_days / 15, 1),
        "feature_adoption": np.minimum(features_used / 5, 1),
        "client_engagement": np.where(
            np.isnan(total),
            np.nan,
            np.where(total > 0, ratio * np.minimum(total / 5, 1) ** 0.5, 0.0),
        ),
        "support_health": support,
        "billing_health": billing,
        "onboarding_progress": _num(frame, "milestones_achieved") / 6,
    }
    return pd.DataFrame({k: np.clip(v, 0, 1) for k, v in factors.items()}, index=frame.index)


def health_segment(frame: pd.DataFrame) -> pd.Series:
    """new_user in the first 30 days; power_user with deep, frequent use; else established."""
    tenure = np.nan_to_num(_num(frame, "tenure_days"))
    power = (np.nan_to_num(_num(frame, "features_used_30d")) >= 5) & (
        np.nan_to_num(_num(frame, "active_days_30d")) >= 15
    )
    segment = np.where(
        tenure < NEW_USER_DAYS, "new_user", np.where(power, "power_user", "established")
    )
    return pd.Series(segment, index=frame.index, dtype=object)


def health_score(
    factors: pd.DataFrame,
    segment: pd.Series,
    weights: dict[str, tuple[float, ...]] = SEGMENT_WEIGHTS,
) -> pd.Series:
    """Weighted sum of the factors with the segment's weights, 0..100.

    A power user is scored with the power weights or the established ones, whichever is higher:
    the segment rewards depth of use and never penalises it, so a supplier who drops out of
    the power segment (fewer active days, fewer features) can never gain health by doing so.

    A factor the export's history cannot tell (see :mod:`features.history`) is left out and the
    other weights rescaled, except the activity factors (:data:`REQUIRED_FACTORS`): without
    them there is no score at all.
    """
    idx = pd.Categorical(segment, categories=SEGMENTS).codes
    if (idx < 0).any():
        raise ValueError(f"unknown health segment in {sorted(set(segment) - set(SEGMENTS))}")
    values = factors[list(HEALTH_FACTORS)].to_numpy(dtype=float)
    return pd.Series(health_score_values(values, idx, weights), index=factors.index)


def health_score_values(
    values: np.ndarray,
    segment: np.ndarray,
    weights: dict[str, tuple[float, ...]] = SEGMENT_WEIGHTS,
) -> np.ndarray:
    """:func:`health_score` of plain arrays: ``values`` (n, six factors in the order of
    :data:`HEALTH_FACTORS`, NaN where unknown) and ``segment`` (n, positions in
    :data:`SEGMENTS`), for callers scoring a few rows without pandas."""
    w = np.array([weights[s] for s in SEGMENTS])  # (segments, factors)
    known = ~np.isnan(values)
    filled = np.where(known, values, 0.0)

    def weighted(row_weights: np.ndarray) -> np.ndarray:
        total = (row_weights * known).sum(axis=1)
        share = np.divide(1.0, total, out=np.zeros_like(total), where=total > 0)
        return (filled * row_weights).sum(axis=1) * np.where(known.all(axis=1), 1.0, share)

    score = weighted(w[segment])
    established = weighted(np.broadcast_to(w[SEGMENTS.index("established")], values.shape))
    power = segment == SEGMENTS.index("power_user")
    score = np.where(power, np.maximum(score, established), score)
    required = [HEALTH_FACTORS.index(f) for f in REQUIRED_FACTORS]
    return 100 * np.where(known[:, required].all(axis=1), score, np.nan)


def add_health(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with the six factors, the segment and the score added."""
    factors = health_factors(frame)
    segment = health_segment(frame)
    return frame.assign(
        **factors, health_segment=segment, health_score=health_score(factors, segment)
    )
