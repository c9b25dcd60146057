"""The churn model's monotone constraints: names from the catalogue, directions from the issue."""

from __future__ import annotations

import numpy as np
import pandas as pd

from feature_repo.definitions import CHURN_SERVICE, service_columns
from features.catalog import FEATURES, family_columns
from training.models import feature_matrix, make_churn_model
from training.monotone import CHURN_DIRECTIONS, monotone_constraints


def test_every_constrained_name_is_a_numeric_churn_feature() -> None:
    churn_columns = service_columns(CHURN_SERVICE)
    for name in CHURN_DIRECTIONS:
        assert name in FEATURES, name
        assert name in churn_columns, name
        assert FEATURES[name][1] != "category", name


def test_directions_are_the_agreed_ones_and_cover_the_login_family() -> None:
    login = family_columns("login")
    expected = {
        **{name: -1 for name in login},
        "days_since_last_login": 1,
        "failed_payments_30d": 1,
        "failed_payments_90d": 1,
        "unresolved_payment_failure": 1,
        "bad_ratings_90d": 1,
        "mean_satisfaction_90d": -1,
    }
    assert len(login) == 14
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
