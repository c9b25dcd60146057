"""The survival model's building blocks: event times, the concordance index, curves that never
cross (a higher 30-day churn probability never gets a later date)."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest

from training.timing import (
    MAX_DAYS,
    concordance_index,
    event_times,
    fit_timing,
    read_timing_model,
    refit_timing,
    write_timing_model,
)


def _brute_c(time, event, risk) -> float:
    num = den = 0.0
    for i in range(len(time)):
        for j in range(len(time)):
            if event[i] and time[i] < time[j]:
                den += 1
                num += 1.0 if risk[i] > risk[j] else 0.5 if risk[i] == risk[j] else 0.0
    return num / den


def test_the_concordance_index_equals_the_pairwise_definition() -> None:
    rng = np.random.default_rng(0)
    for n in (12, 40, 200):
        time = rng.integers(1, 30, n).astype(float)  # many tied times
        event = rng.random(n) < 0.6
        risk = rng.integers(0, 8, n).astype(float)  # many tied risks
        assert concordance_index(time, event, risk) == pytest.approx(_brute_c(time, event, risk))
    t = np.arange(1.0, 11.0)
    assert concordance_index(t, np.ones(10, bool), -t) == 1.0
    assert concordance_index(t, np.ones(10, bool), t) == 0.0


def test_event_times_are_censored_at_the_end_of_the_data() -> None:
    instants = pd.Series(pd.to_datetime(["2025-01-01", "2025-01-01", "2025-03-01"], utc=True))
    suppliers = pd.Series(["a", "b", "a"])
    cancellations = pd.DataFrame(
        {"supplier_id": ["a"], "cancelled_at": pd.to_datetime(["2025-02-01"], utc=True)}
    )
    days, event = event_times(
        instants, suppliers, cancellations, pd.Timestamp("2025-06-01", tz="UTC")
    )
    np.testing.assert_allclose(days[:2], [31, 151])
    assert event.tolist() == [True, False, False]  # the third instant is after the cancellation


def _data(n: int = 3000, seed: int = 1):
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(
        {"logins_30d": rng.poisson(10, n).astype(float), "tenure_days": rng.uniform(0, 700, n)}
    )
    mu = 4.0 + 0.12 * X["logins_30d"].to_numpy() + 0.001 * X["tenure_days"].to_numpy()
    true_time = np.exp(mu + 0.8 * rng.standard_normal(n))
    follow = rng.uniform(30, 400, n)
    return X, np.minimum(true_time, follow), true_time <= follow, mu


def test_a_fitted_model_ranks_well_and_its_dates_never_disagree_with_its_30_day_risk(
    tmp_path,
) -> None:
    X, time, event, mu = _data()
    rows = np.arange(len(X))
    model = fit_timing(X, time, event, rows < 2000, (rows >= 2000) & (rows < 2500), threads=1)
    hold = rows >= 2500
    median = model.median_days(X[hold])
    c = concordance_index(time[hold], event[hold], -median)
    oracle = concordance_index(time[hold], event[hold], -mu[hold])  # the true model's ranking
    assert c > oracle - 0.03 and c > 0.6
    risk30 = model.churn_probability(X[hold], 30)
    order = np.argsort(-risk30, kind="stable")
    assert np.all(np.diff(median[order]) >= -1e-9)  # higher 30-day risk: never a later median
    dates = model.churn_dates(X[hold], [date(2025, 1, 1)] * int(hold.sum()))
    for d, m in zip(dates, median, strict=True):
        assert (d is None) == (m > MAX_DAYS)

    back = read_timing_model(write_timing_model(model, tmp_path / "timing"), threads=1)
    np.testing.assert_allclose(back.median_days(X[hold]), median, rtol=1e-6)
    deployed = refit_timing(X, time, event, model, threads=1)
    assert deployed.scale == model.scale and deployed.rounds == model.rounds
