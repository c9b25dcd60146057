"""Rows of the operational tables as the daily job stores them, for the tests that write them
directly: a supplier, a churn prediction, a health score."""

from __future__ import annotations

from datetime import UTC, date, datetime

NOW = datetime(2025, 7, 1, tzinfo=UTC)


def supplier_row(supplier_id: str, cancelled_at: datetime | None = None) -> dict:
    return {
        "supplier_id": supplier_id,
        "vendor_type": "venue",
        "subscription_tier": "starter",
        "monthly_revenue": 49.0,
        "country": "AU",
        "signup_at": datetime(2024, 1, 1, tzinfo=UTC),
        "cancelled_at": cancelled_at,
        "status": "active" if cancelled_at is None else "cancelled",
        "synced_at": NOW,
    }


def prediction_row(supplier_id: str, day: date, p: float) -> dict:
    return {
        "supplier_id": supplier_id,
        "day": day,
        "churn_probability": p,
        "risk_level": "low",
        "factors": {"login": -0.1},
        "ltv_at_risk": 10.0,
        "prevention_cost": 25.0,
        "intervention_recommended": False,
        "churn_model_version": "1",
        "health_model_version": "1",
        "computed_at": NOW,
    }


def health_row(supplier_id: str, day: date, p: float | None) -> dict:
    return {
        "supplier_id": supplier_id,
        "day": day,
        "score": 80.0,
        "segment": "established",
        "churn_probability": p,
        "health_model_version": "1",
        "computed_at": NOW,
    }
