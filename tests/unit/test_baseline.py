"""The logistic baseline's heavy-tail transform: scikit-learn's contract and what it logs."""

from __future__ import annotations

import numpy as np
from sklearn.utils.estimator_checks import check_estimator

from training.baseline import LogHeavyTails


def test_follows_the_scikit_learn_contract() -> None:
    results = check_estimator(LogHeavyTails(), on_fail=None)
    failed = [r["check_name"] for r in results if r["status"] == "failed"]
    passed = [r["check_name"] for r in results if r["status"] == "passed"]
    assert not failed
    # only the array-API check may be skipped (it needs SCIPY_ARRAY_API set at import)
    assert len(passed) >= len(results) - 1 and "check_fit2d_1sample" in passed


def test_logs_only_heavy_tailed_non_negative_columns_chosen_when_fitted() -> None:
    rng = np.random.default_rng(3)
    counts = rng.lognormal(2.0, 1.5, 5000)  # logins: non-negative, heavy right tail
    symmetric = rng.normal(10.0, 1.0, 5000)  # no tail to tame
    signed = rng.lognormal(2.0, 1.5, 5000) - 5.0  # heavy tail but negative values: left alone
    X = np.column_stack([counts, symmetric, signed])
    t = LogHeavyTails().fit(X)
    assert t.log_columns_.tolist() == [0]
    out = t.transform(X)
    np.testing.assert_allclose(out[:, 0], np.log1p(counts))
    np.testing.assert_array_equal(out[:, 1:], X[:, 1:])
    # a later batch is transformed with the fitted choice, whatever its own shape
    batch = np.array([[-1.0, 50.0, 1.0], [0.0, 1.0, 2.0]])
    np.testing.assert_allclose(t.transform(batch)[:, 0], [0.0, 0.0])
    np.testing.assert_array_equal(t.transform(batch)[:, 1:], batch[:, 1:])
    assert X[0, 0] == counts[0]  # the input is not changed in place
