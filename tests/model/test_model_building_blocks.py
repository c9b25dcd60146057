"""Model building blocks on a small synthetic set with a known signal."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.isotonic import IsotonicRegression
from sklearn.metrics import roc_auc_score

from features.catalog import CATEGORIES, FEATURES
from training.calibration import IsotonicCalibrator
from training.config import Range, Tuning
from training.models import feature_matrix, make_churn_model
from training.split import time_folds

COLUMNS = ["logins_30d", "days_since_last_login", "unresolved_payment_failure", "vendor_type"]


def _data(n: int = 3000, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray, pd.Series]:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "logins_30d": rng.poisson(20, n),
            "days_since_last_login": rng.exponential(5, n),
            "unresolved_payment_failure": (rng.random(n) < 0.05).astype(int),
            "vendor_type": rng.choice(["venue", "florist", "photographer"], n),
        }
    )
    logit = -3 - 0.08 * (frame.logins_30d - 20) + 2.5 * frame.unresolved_payment_failure
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int).to_numpy()
    stamps = (
        pd.Series(pd.date_range("2024-01-07", periods=30, freq="7D", tz="UTC"))
        .sample(n, replace=True, random_state=seed)
        .sort_values()
        .reset_index(drop=True)
    )
    return frame, y, stamps


def test_feature_matrix_uses_fixed_category_levels() -> None:
    frame, _, _ = _data(50)
    X = feature_matrix(frame, COLUMNS)
    assert tuple(X["vendor_type"].cat.categories) == CATEGORIES["vendor_type"]
    assert X["logins_30d"].dtype == "float64"
    with pytest.raises(KeyError, match="tenure_days"):
        feature_matrix(frame, [*COLUMNS, "tenure_days"])
    assert all(c in FEATURES for c in COLUMNS)


def test_model_learns_the_signal_and_order_does_not_matter() -> None:
    frame, y, _ = _data()
    X = feature_matrix(frame, COLUMNS)
    model = make_churn_model(
        {"max_depth": 3, "learning_rate": 0.1}, COLUMNS, n_estimators=100, threads=1
    )
    model.fit(X, y)
    p = model.predict_proba(X)[:, 1]
    assert roc_auc_score(y, p) > 0.75
    shuffled = X.sample(frac=1, random_state=1)
    again = make_churn_model(
        {"max_depth": 3, "learning_rate": 0.1}, COLUMNS, n_estimators=100, threads=1
    )
    again.fit(shuffled, y[shuffled.index])
    np.testing.assert_allclose(again.predict_proba(X)[:, 1], p, atol=1e-6)


def test_isotonic_calibrator_is_monotone_and_round_trips_json(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    score = rng.random(5000)
    y = (rng.random(5000) < score**2).astype(int)
    cal = IsotonicCalibrator().fit(score, y)
    grid = np.linspace(0, 1, 101)
    out = cal.predict(grid)
    assert np.all(np.diff(out) >= 0) and out[-1] > 0.8 and out[0] < 0.05
    cal.save(tmp_path / "cal.json")
    np.testing.assert_array_equal(
        IsotonicCalibrator.load(tmp_path / "cal.json").predict(grid), out
    )
    health = IsotonicCalibrator(increasing=False).fit(100 * (1 - score), y)
    assert np.all(np.diff(health.predict(grid * 100)) <= 0)
    with pytest.raises(Exception, match="not fitted"):
        IsotonicCalibrator().predict(grid)


def test_calibrator_keeps_the_ranking_with_the_isotonic_probabilities() -> None:
    """Plain isotonic steps tie rows the model ranks apart; the centred map must not, while its
    probabilities stay those of the isotonic fit."""
    rng = np.random.default_rng(5)
    score = rng.random(20_000)
    y = (rng.random(20_000) < 0.02 + 0.3 * score**3).astype(int)
    cal = IsotonicCalibrator().fit(score, y)
    steps = IsotonicRegression(out_of_bounds="clip").fit(score, y)
    # the block values are the isotonic fit's, placed at each block's mean score
    np.testing.assert_allclose(cal.predict(cal.x_thresholds_), steps.predict(cal.x_thresholds_))
    assert len(cal.x_thresholds_) < 200 and np.all(np.diff(cal.x_thresholds_) > 0)
    # no ties: distinct scores keep distinct, ordered probabilities (steps would tie most)
    fresh = np.sort(rng.random(5_000))
    p = cal.predict(fresh)
    inside = (p > 0) & (p < 1)
    assert np.all(np.diff(p[inside]) > 0) and inside.mean() > 0.99
    assert len(np.unique(steps.predict(fresh))) < 200
    # still calibrated on fresh data from the same process
    y_fresh = (rng.random(5_000) < 0.02 + 0.3 * fresh**3).astype(int)
    assert abs(p.mean() - y_fresh.mean()) < 0.01
    # a decreasing map (health score) keeps its order the other way round
    health = IsotonicCalibrator(increasing=False).fit(100 * (1 - score), y)
    q = health.predict(100 * fresh)
    inside = (q > 0) & (q < 1)
    assert np.all(np.diff(q[inside]) < 0) and inside.mean() > 0.95


def test_tuning_is_seeded_and_respects_folds() -> None:
    from training.tuning import tune

    frame, y, stamps = _data(2000)
    X = feature_matrix(frame, COLUMNS)
    folds = time_folds(stamps, 2, 30)
    tuning = Tuning(
        trials=4,
        time_budget_seconds=60,
        seed=3,
        max_rounds=60,
        early_stopping_rounds=5,
        search_space={
            "max_depth": Range(low=2, high=5, kind="int"),
            "learning_rate": Range(low=0.05, high=0.3, log=True),
        },
    )
    a = tune(X, y, folds, tuning, threads=1)
    b = tune(X, y, folds, tuning, threads=1)
    assert a.params == b.params and a.rounds == b.rounds
    assert 2 <= a.params["max_depth"] <= 5 and 1 <= a.rounds <= 60
    assert a.trials_run == 4 and 0 < a.fold_log_loss < 0.693
    # the fixed configuration ran on the same folds; the better of it and the best trial is kept
    assert len(a.fixed.fold_losses) == len(a.fixed.fold_rounds) == len(folds)
    assert a.fixed.params == dict(tuning.fixed)
    assert a.tuned is not None and len(a.tuned.fold_losses) == len(folds)
    assert a.fold_log_loss == min(a.fixed.log_loss, a.tuned.log_loss)
    assert a.chosen == ("tuned" if a.tuned.log_loss < a.fixed.log_loss else "fixed")
    assert a.params == a.kept.params and a.rounds == a.kept.rounds
    # a search space that can only hold a poor model (rates too small to learn anything in
    # its rounds) loses to the fixed configuration
    frozen = tuning.model_copy(
        update={
            "search_space": {"learning_rate": Range(low=1e-5, high=2e-5, log=True)},
            "fixed": {"max_depth": 4, "learning_rate": 0.1},
        }
    )
    c = tune(X, y, folds, frozen, threads=1)
    assert c.tuned is not None and c.fixed.log_loss < c.tuned.log_loss
    assert c.chosen == "fixed" and c.params == {"max_depth": 4, "learning_rate": 0.1}
