"""SHAP attributions: they add up to the model's margin, and group into factor families."""

from __future__ import annotations

import numpy as np
import pandas as pd

from tests.model.conftest import FittedModels, SimulatedSet, trained_constraints
from training.explain import ChurnExplainer, explain, top_positive_factors
from training.models import feature_matrix, make_churn_model

COLUMNS = [
    "logins_30d",
    "login_ewm_rate_7d",
    "unresolved_payment_failure",
    "vendor_type",
    "tenure_days",
]


def _fit():
    rng = np.random.default_rng(4)
    n = 2000
    frame = pd.DataFrame(
        {
            "logins_30d": rng.poisson(15, n),
            "login_ewm_rate_7d": rng.exponential(1, n),
            "unresolved_payment_failure": (rng.random(n) < 0.1).astype(int),
            "vendor_type": rng.choice(["venue", "florist"], n),
            "tenure_days": rng.integers(0, 700, n),
        }
    )
    logit = -2 - 0.1 * (frame.logins_30d - 15) + 3 * frame.unresolved_payment_failure
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    X = feature_matrix(frame, COLUMNS)
    return make_churn_model({"max_depth": 3}, COLUMNS, n_estimators=60, threads=1).fit(X, y), X


def test_shap_values_sum_to_the_margin() -> None:
    model, X = _fit()
    assert trained_constraints(model) == {
        "logins_30d": -1,
        "login_ewm_rate_7d": -1,
        "unresolved_payment_failure": 1,
    }
    e = explain(model, X.head(200))
    margin = model.predict(X.head(200), output_margin=True)
    np.testing.assert_allclose(e.values.sum(axis=1) + e.base, margin, atol=1e-4)


def test_shap_values_sum_to_the_margin_of_the_constrained_model_on_simulated_rows(
    simulated: SimulatedSet, fitted: FittedModels
) -> None:
    rows = simulated.frame[fitted.split.holdout].sample(500, random_state=3)
    X = feature_matrix(rows, fitted.churn.columns)
    e = explain(fitted.churn.booster, X)
    margin = fitted.churn.booster.predict(X, output_margin=True)
    np.testing.assert_allclose(e.values.sum(axis=1) + e.base, margin, atol=1e-4)


def test_families_add_up_and_name_the_driver() -> None:
    model, X = _fit()
    e = explain(model, X)
    grouped = e.by_family()
    assert set(grouped.columns) == {"login", "billing", "account"}
    np.testing.assert_allclose(grouped.sum(axis=1), e.values.sum(axis=1), atol=1e-6)
    failing = X.index[X.unresolved_payment_failure == 1][:20]
    tops = top_positive_factors(grouped, 1)["top_factor_1"]
    assert (tops[failing] == "billing").all()


def test_an_explainer_built_once_explains_any_batch_even_an_empty_one() -> None:
    model, X = _fit()
    explainer = ChurnExplainer(model)
    whole = explainer.explain(X.head(50))
    np.testing.assert_allclose(explainer.explain(X.head(50)).values, whole.values)
    empty = explainer.explain(X.head(0))
    assert empty.values.shape == (0, X.shape[1]) and empty.base == whole.base


def test_attributions_equal_shaps_tree_explainer_and_add_up_after_a_file_round_trip(
    simulated: SimulatedSet, fitted: FittedModels, tmp_path
) -> None:
    """XGBoost's TreeSHAP gives shap.TreeExplainer's attributions; its base value keeps them
    adding up to the margin also for the champion as read back from its file."""
    import shap

    from training.model_files import read_churn_model, write_churn_model

    rows = simulated.frame[fitted.split.holdout].sample(300, random_state=4)
    X = feature_matrix(rows, fitted.churn.columns)
    ours = ChurnExplainer(fitted.churn.booster).explain(X)
    reference = shap.TreeExplainer(fitted.churn.booster).shap_values(X)
    np.testing.assert_allclose(ours.values.to_numpy(), reference, atol=1e-5)

    back = read_churn_model(write_churn_model(fitted.churn, tmp_path / "churn"), threads=1)
    e = ChurnExplainer(back.booster).explain(X)
    margin = back.booster.predict(X, output_margin=True)
    np.testing.assert_allclose(e.values.sum(axis=1) + e.base, margin, atol=1e-5)


def test_the_numpy_input_gives_the_pandas_inputs_predictions_and_attributions(
    simulated: SimulatedSet, fitted: FittedModels
) -> None:
    import xgboost as xgb

    from training.models import booster_matrix

    rows = simulated.frame[fitted.split.holdout].sample(300, random_state=5)
    X = feature_matrix(rows, fitted.churn.columns)
    booster = fitted.churn.booster.get_booster()
    fast, reference = booster_matrix(X), xgb.DMatrix(X, enable_categorical=True)
    np.testing.assert_array_equal(booster.predict(fast), booster.predict(reference))
    np.testing.assert_array_equal(
        booster.predict(fast, pred_contribs=True), booster.predict(reference, pred_contribs=True)
    )
    np.testing.assert_allclose(
        booster.predict(fast), fitted.churn.booster.predict_proba(X)[:, 1], rtol=0
    )
