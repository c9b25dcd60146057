"""The health calibration model on synthetic factors with a known relation to churn."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features.catalog import HEALTH_FACTORS
from features.health import health_score
from training.health_model import HealthModel, fit_health_model, relearn_weights


def _data(n: int = 6000, seed: int = 0) -> tuple[pd.DataFrame, pd.Series, np.ndarray]:
    rng = np.random.default_rng(seed)
    factors = pd.DataFrame(rng.random((n, 6)), columns=list(HEALTH_FACTORS))
    segment = pd.Series(rng.choice(["new_user", "established", "power_user"], n))
    # Only login frequency and billing health matter, strongly.
    logit = -1.0 - 3.0 * factors["login_frequency"] - 2.0 * factors["billing_health"]
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int).to_numpy()
    return factors, segment, y


def test_relearned_weights_find_the_factors_that_matter() -> None:
    factors, segment, y = _data()
    weights = relearn_weights(factors, segment, y)
    for w in weights.values():
        assert sum(w) == pytest.approx(1) and min(w) >= 0
        login, billing = w[0], w[4]
        assert login > billing > max(w[1], w[2], w[3], w[5])


def test_fit_chooses_on_the_calibration_slice_and_maps_decreasingly() -> None:
    factors, segment, y = _data()
    learn = np.arange(len(y)) < 4000
    fit = fit_health_model(factors, segment, y, learn, ~learn)
    assert fit.model.relearned  # the brief's weights spread weight over factors without signal
    assert (
        fit.calibration_log_loss["relearned_weights"] < fit.calibration_log_loss["brief_weights"]
    )
    grid = np.linspace(0, 100, 51)
    probs = fit.model.calibrator.predict(grid)
    assert np.all(np.diff(probs) <= 0)  # a higher health score never means more churn
    again = HealthModel.from_json(fit.model.to_json())
    np.testing.assert_allclose(
        again.churn_probability(factors, segment), fit.model.churn_probability(factors, segment)
    )


def test_a_factor_that_goes_with_churn_gets_no_weight_never_a_negative_one() -> None:
    # feature adoption *raises* churn here (and login frequency lowers it): an unconstrained
    # fit would give adoption a negative weight, so more adoption would lower the health score
    factors, segment, _ = _data(seed=1)
    rng = np.random.default_rng(1)
    logit = -1.0 - 3.0 * factors["login_frequency"] + 3.0 * factors["feature_adoption"]
    y = (rng.random(len(factors)) < 1 / (1 + np.exp(-logit))).astype(int).to_numpy()
    weights = relearn_weights(factors, segment, y)
    for w in weights.values():
        assert sum(w) == pytest.approx(1) and min(w) >= 0
        assert w[1] == pytest.approx(0, abs=1e-9) and w[0] > 0.5
    more = factors.assign(feature_adoption=np.minimum(factors["feature_adoption"] + 0.3, 1))
    assert np.all(health_score(more, segment, weights) >= health_score(factors, segment, weights))
