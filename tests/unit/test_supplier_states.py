"""Supplier states for the intervention rules, from a scored day's rows, and the randomised
control group."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features.catalog import FEATURES, MILESTONE_TARGET_DAYS
from features.contract import CORE_FEATURES
from serving.scorer import SCORE_COLUMNS
from serving.states import STATE_FEATURES, STATE_SCORES, in_control_group, supplier_states


def test_the_state_columns_are_the_feature_tables_and_the_scorers() -> None:
    assert set(STATE_FEATURES) - {"supplier_id"} <= set(FEATURES)
    assert set(STATE_SCORES) <= set(SCORE_COLUMNS)


def _rows() -> tuple[pd.DataFrame, pd.DataFrame]:
    features = pd.DataFrame(
        {
            "supplier_id": ["a", "b"],
            "tenure_days": pd.array([12, 400], dtype="Int64"),
            "days_since_last_login": [np.nan, 3.0],
            "unresolved_payment_failure": pd.array([0, 1], dtype="Int64"),
            "failed_payments_30d": pd.array([pd.NA, 2], dtype="Int64"),
            "health_segment": pd.Categorical(["new_user", "established"]),
            "subscription_tier": pd.Categorical(["starter", "scale"]),
            "vendor_type": pd.Categorical(["florist", "venue"]),
            **{
                f"{m}_days_behind": pd.array([0, pd.NA], dtype="Int64")
                for m in MILESTONE_TARGET_DAYS
            },
            **{f"{f}_stage": pd.Categorical(["never_used", "adopting"]) for f in CORE_FEATURES},
        }
    )
    features["first_client_days_behind"] = pd.array([5, pd.NA], dtype="Int64")
    features["calendar_stage"] = pd.Categorical(["never_used", "churned"])
    scores = pd.DataFrame(
        {
            "health_score": [41.0, 77.5],
            "health_risk": ["at_risk", "healthy"],
            "churn_probability": [0.31, 0.02],
            "churn_risk": ["critical", "low"],
        }
    )
    return features, scores


def test_states_read_the_rows_as_the_rules_mean_them() -> None:
    features, scores = _rows()
    a, b = supplier_states(features, scores, ["declining", "stable"])
    assert (a.supplier_id, a.tenure_days, a.days_since_last_login) == ("a", 12, None)
    assert a.overdue_milestones == {"first_client"} and a.abandoned_features == frozenset()
    assert (a.churn_risk, a.churn_probability, a.trend) == ("critical", 0.31, "declining")
    assert (a.segment, a.tier, a.vendor_type) == ("new_user", "starter", "florist")
    assert not a.unresolved_payment_failure and a.failed_payments_30d == 0
    assert b.days_since_last_login == 3 and b.unresolved_payment_failure
    assert b.failed_payments_30d == 2 and b.overdue_milestones == frozenset()  # unknown: not late
    assert b.abandoned_features == {"calendar"}


def test_states_refuse_rows_they_cannot_read() -> None:
    features, scores = _rows()
    with pytest.raises(KeyError, match="tenure_days"):
        supplier_states(features.drop(columns="tenure_days"), scores, ["stable"] * 2)
    with pytest.raises(ValueError, match="2 feature rows, 2 score rows and 1 trends"):
        supplier_states(features, scores, ["stable"])


def test_the_control_group_is_a_stable_share_drawn_anew_per_salt() -> None:
    ids = [f"sup_{i:06d}" for i in range(20_000)]
    first = np.array([in_control_group(s, "2026-12", 0.1) for s in ids])
    assert abs(first.mean() - 0.1) < 4 * np.sqrt(0.1 * 0.9 / len(ids))  # within 4 SE
    assert (first == np.array([in_control_group(s, "2026-12", 0.1) for s in ids])).all()
    other = np.array([in_control_group(s, "2027-01", 0.1) for s in ids])
    both = (first & other).mean()
    assert abs(both - 0.01) < 4 * np.sqrt(0.01 * 0.99 / len(ids))  # independent draws
    assert not any(in_control_group(s, "x", 0.0) for s in ids[:100])
    assert all(in_control_group(s, "x", 1.0) for s in ids[:100])
    with pytest.raises(ValueError, match="outside"):
        in_control_group("sup_1", "x", 1.5)
