"""The churn model's monotone constraints: names from the catalogue, directions from the issue."""

from __future__ import annotations

import numpy as np
import pandas as pd

from feature_repo.definitions import CHURN_SERVICE, SERVICES, service_columns
from features.catalog import FEATURES, RENEWAL_FEATURES, USAGE_FEATURES, family_columns
from training.models import feature_matrix, make_churn_model
from training.monotone import CHURN_DIRECTIONS, monotone_constraints


def test_every_constrained_name_is_a_numeric_churn_feature() -> None:
    churn_columns = {c for s in SERVICES if s.startswith("churn_") for c in service_columns(s)}
    for name in CHURN_DIRECTIONS:
        assert name in FEATURES, name
        assert name in churn_columns, name
        assert FEATURES[name][1] != "category", name
    assert set(service_columns(CHURN_SERVICE)) & set(CHURN_DIRECTIONS)


# churn_v1 as it was released (2026-11): a released version keeps its columns
CHURN_V1 = [
    "days_since_last_login",
    "logins_7d",
    "logins_30d",
    "logins_90d",
    "active_days_7d",
    "active_days_30d",
    "active_days_90d",
    "session_minutes_30d",
    "logins_30d_change",
    "logins_30d_ratio_prev_30d",
    "login_ewm_rate_7d",
    "login_ewm_rate_30d",
    "login_ewm_rate_90d",
    "logins_30d_vs_cohort",
    "client_management_stage",
    "form_builder_stage",
    "journey_automation_stage",
    "analytics_stage",
    "document_library_stage",
    "payments_stage",
    "calendar_stage",
    "reviews_stage",
    "client_management_days_30d",
    "form_builder_days_30d",
    "journey_automation_days_30d",
    "analytics_days_30d",
    "document_library_days_30d",
    "payments_days_30d",
    "calendar_days_30d",
    "reviews_days_30d",
    "features_used_30d",
    "features_used_ever",
    "features_used_prev_30d",
    "feature_breadth_trend",
    "features_used_30d_vs_cohort",
    "total_clients",
    "active_clients_30d",
    "active_client_ratio",
    "new_clients_30d",
    "active_client_ratio_vs_cohort",
    "tickets_30d",
    "tickets_90d",
    "mean_satisfaction_90d",
    "bad_ratings_90d",
    "open_tickets",
    "mean_resolution_hours_90d",
    "failed_payments_30d",
    "failed_payments_90d",
    "unresolved_payment_failure",
    "card_expiring_30d",
    "downgrades_90d",
    "upgrades_90d",
    "refunds_90d",
    "milestones_achieved",
    "critical_path_completion",
    "account_setup_days_behind",
    "first_client_days_behind",
    "first_form_days_behind",
    "first_journey_days_behind",
    "ten_clients_days_behind",
    "first_automation_days_behind",
    "season_sin",
    "season_cos",
    "cohort_logins_30d",
    "tenure_days",
    "subscription_tier",
    "monthly_revenue",
    "vendor_type",
    "hemisphere",
]


def test_released_services_keep_their_columns() -> None:
    assert service_columns("churn_v1") == CHURN_V1
    v2 = service_columns("churn_v2")
    assert set(v2) == (set(CHURN_V1) - {"logins_30d_change", "logins_30d_ratio_prev_30d"}) | {
        "login_ewm_ratio_7d_90d",
        "login_ewm_ratio_30d_90d",
        "logins_7d_share_of_30d",
        "logins_30d_share_of_60d",
        "logins_30d_share_of_90d",
    }
    v3 = service_columns("churn_v3")
    assert set(v3) == set(v2) | set(USAGE_FEATURES) | set(RENEWAL_FEATURES)
    assert len(USAGE_FEATURES) == 32 and len(RENEWAL_FEATURES) == 4
    assert CHURN_SERVICE == "churn_v3"


def test_directions_are_the_agreed_ones_and_cover_the_login_family() -> None:
    login = family_columns("login")
    expected = {
        **{name: -1 for name in login},
        "days_since_last_login": 1,
        "logins_this_period": -1,
        "failed_payments_30d": 1,
        "failed_payments_90d": 1,
        "unresolved_payment_failure": 1,
        "bad_ratings_90d": 1,
        "mean_satisfaction_90d": -1,
    }
    assert len(login) == 19
    assert expected == CHURN_DIRECTIONS


def test_the_factory_constrains_only_the_columns_it_is_given() -> None:
    columns = ["vendor_type", "failed_payments_30d", "tenure_days", "logins_30d"]
    assert monotone_constraints(columns) == {"failed_payments_30d": 1, "logins_30d": -1}
    assert list(monotone_constraints(columns)) == ["failed_payments_30d", "logins_30d"]
    model = make_churn_model({}, columns, n_estimators=2, threads=1)
    assert model.get_params()["monotone_constraints"] == monotone_constraints(columns)
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {
            "vendor_type": rng.choice(["venue", "florist"], 200),
            "failed_payments_30d": rng.integers(0, 3, 200),
            "tenure_days": rng.integers(0, 500, 200),
            "logins_30d": rng.poisson(10, 200),
        }
    )
    # XGBoost refuses constraints naming a column the frame lacks; these all fit
    model.fit(feature_matrix(frame, columns), rng.integers(0, 2, 200))
