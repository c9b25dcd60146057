"""The product brief's health factors, segments, weighted score and risk bands."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features.health import SEGMENT_WEIGHTS, add_health, health_score
from training.config import Thresholds
from training.risk import health_risk


def _row(**values: float) -> dict[str, float]:
    base = {
        "active_days_30d": 20,
        "features_used_30d": 6,
        "active_client_ratio": 0.8,
        "total_clients": 12,
        "mean_satisfaction_90d": 5,
        "open_tickets": 0,
        "bad_ratings_90d": 0,
        "tickets_30d": 0,
        "failed_payments_90d": 0,
        "card_expiring_30d": 0,
        "downgrades_90d": 0,
        "unresolved_payment_failure": 0,
        "milestones_achieved": 6,
        "tenure_days": 200,
    }
    return base | values


def test_weights_sum_to_one() -> None:
    for weights in SEGMENT_WEIGHTS.values():
        assert sum(weights) == pytest.approx(1)


def test_healthy_power_user_and_each_kind_of_trouble() -> None:
    frame = pd.DataFrame(
        [
            _row(),
            _row(active_days_30d=2, features_used_30d=1),  # stopped using the product
            _row(unresolved_payment_failure=1),  # payment failing
            _row(mean_satisfaction_90d=1, bad_ratings_90d=3, open_tickets=2),  # unhappy
            _row(tenure_days=5, milestones_achieved=1, active_days_30d=3),  # new, stalled
        ]
    )
    out = add_health(frame)
    assert list(out["health_segment"]) == [
        "power_user",
        "established",
        "power_user",
        "power_user",
        "new_user",
    ]
    power = 0.2 + 0.25 + 0.25 * np.sqrt(1) * 0.8 + 0.15 + 0.15
    established = 0.25 + 0.2 + 0.2 * np.sqrt(1) * 0.8 + 0.15 + 0.15 + 0.05 * 1
    # a power user gets the better of the power and the established weights
    assert out.loc[0, "health_score"] == pytest.approx(100 * max(power, established))
    assert out.loc[0, "health_score"] >= 75
    for i in (1, 2, 3, 4):
        assert out.loc[i, "health_score"] < out.loc[0, "health_score"]
    assert out.loc[2, "billing_health"] == 0
    assert (
        (
            (out[["login_frequency", "support_health", "billing_health"]] >= 0)
            & (out[["login_frequency", "support_health", "billing_health"]] <= 1)
        )
        .all()
        .all()
    )


def test_risk_bands_follow_the_contract() -> None:
    assert list(health_risk([100, 75, 74.9, 50, 49.9, 0, np.nan], Thresholds())) == [
        "healthy",
        "healthy",
        "at_risk",
        "at_risk",
        "critical",
        "critical",
        None,  # no score, no band
    ]


def test_unknown_segment_is_an_error() -> None:
    factors = add_health(pd.DataFrame([_row()]))
    with pytest.raises(ValueError, match="unknown health segment"):
        health_score(factors, pd.Series(["vip"]))
