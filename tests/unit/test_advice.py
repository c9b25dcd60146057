"""The API contract's money rules, trends, reviews and the words a CS manager reads."""

from __future__ import annotations

from datetime import date

import numpy as np
import pytest

from serving.advice import (
    FACTOR_ADVICE,
    ltv_at_risk,
    next_review,
    prevention_cost,
    priority,
    recommendations,
    recommended_actions,
    trend,
    trends,
)


def test_ltv_at_risk_and_prevention_cost_follow_the_contract() -> None:
    at_risk = ltv_at_risk(np.array([0.5, 0.9]), np.array([49.0, 499.0]))
    np.testing.assert_allclose(at_risk, [0.5 * 49 * 18, 0.9 * 499 * 18])
    np.testing.assert_allclose(prevention_cost(at_risk), [0.1 * 0.5 * 49 * 18, 500.0])


@pytest.mark.parametrize(
    ("current", "previous", "expected"),
    [(80, 70, "improving"), (70, 80, "declining"), (75, 70, "stable"), (70, 75, "stable"),
     (70, None, "stable"), (75.1, 70.0, "improving")],
)  # fmt: skip
def test_trend_moves_only_beyond_five_points(current, previous, expected) -> None:
    assert trend(current, previous) == expected
    prev = np.nan if previous is None else previous
    assert trends(np.array([current]), np.array([prev]))[0] == expected


def test_riskier_suppliers_are_reviewed_sooner() -> None:
    day = date(2025, 6, 1)
    days = [(next_review(day, b) - day).days for b in ("critical", "at_risk", "healthy")]
    assert days == sorted(days) and days[0] < days[-1]
    assert next_review(day, None) == next_review(day, "critical")


def test_recommendations_name_the_weakest_factors_first_and_skip_unknown_ones() -> None:
    factors = {
        "login_frequency": 0.9,
        "feature_adoption": 0.1,
        "client_engagement": 0.5,
        "support_health": float("nan"),
        "billing_health": 0.3,
        "onboarding_progress": 1.0,
    }
    got = recommendations(factors)
    assert [r["type"] for r in got] == [
        FACTOR_ADVICE[k].type for k in ("feature_adoption", "billing_health", "client_engagement")
    ]
    assert [r["priority"] for r in got] == ["critical", "high", "medium"]
    assert all(r["title"] and len(r["description"]) > 40 for r in got)
    assert recommendations(dict.fromkeys(factors, 0.95)) == []


def test_actions_follow_the_largest_positive_attributions() -> None:
    families = {"login": 0.4, "billing": 1.2, "support": -0.3, "season": 0.01, "adoption": 0.2}
    actions = recommended_actions(families, k=3)
    assert actions[0].startswith("Billing") and actions[1].startswith("Re-engagement")
    assert len(actions) == 3 and not any("support call" in a for a in actions)
    assert recommended_actions({"login": -1.0}) == []


def test_priority_follows_the_churn_level() -> None:
    assert [priority(x) for x in ("critical", "high", "medium", "low", None)] == [
        "critical", "high", "medium", None, None
    ]  # fmt: skip
