"""Directional properties: a supplier who stops logging in, whose payment fails or whose ratings
drop never gets a lower churn probability, a higher health score or a lower health churn
probability.

Each scenario changes the raw contract tables of real simulated suppliers (drops their recent
logins, adds a failed payment, lowers a support rating) and recomputes their feature rows with
the production code (``features.feature_table`` and, inside it, ``features.health``), so the
perturbed rows are rows the pipeline itself produces, health factors and segment included.
Before comparing predictions each scenario checks that its change moved only features the churn
model constrains, each in the direction that raises churn: that is what makes the property hold
by construction (``training.monotone``) rather than by luck.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest

from feature_repo.definitions import CHURN_SERVICE, service_columns
from features.catalog import HEALTH_FACTORS
from features.feature_table import build_feature_table
from features.health import add_health
from features.validation import validate_tables
from tests.model.conftest import FittedModels, SimulatedSet, trained_constraints
from training.evaluation import health_inputs
from training.health_model import HealthModel
from training.monotone import CHURN_DIRECTIONS, monotone_constraints

Tables = dict[str, pd.DataFrame]
# Context of the supplier's cohort (the same vendor type and hemisphere on the same day), not
# of the supplier: held at its unperturbed value when many suppliers are perturbed at once.
COHORT_CONTEXT = "cohort_logins_30d"


def test_the_fitted_models_keep_their_directions(fitted: FittedModels) -> None:
    assert trained_constraints(fitted.churn.booster) == monotone_constraints(fitted.churn.columns)
    # the calibrators keep the order: churn probability up with the score, down with health
    assert fitted.churn.calibrator.increasing and np.all(
        np.diff(fitted.churn.calibrator.y_thresholds_) >= 0
    )
    for name, model in health_models(fitted).items():
        assert not model.calibrator.increasing, name
        assert np.all(np.diff(model.calibrator.y_thresholds_) <= 0), name
        assert all(min(w) >= 0 for w in model.weights.values()), name


# -- raw-table perturbations -----------------------------------------------------------------
def stop_logging_in(tables: Tables, suppliers: pd.Index, day: date, quiet_days: int) -> Tables:
    """No activity for ``suppliers`` in the ``quiet_days`` days up to and including ``day``."""
    activity = tables["activity_daily"]
    dates = activity["date"]
    quiet = (dates > day - timedelta(days=quiet_days)) & (dates <= day)
    quiet = (quiet & activity["supplier_id"].isin(suppliers)).to_numpy(bool)
    return {**tables, "activity_daily": activity[~quiet].reset_index(drop=True)}


def fail_a_payment(tables: Tables, suppliers: pd.Index, day: date) -> Tables:
    """One failed payment of the supplier's monthly price at the last second of ``day``."""
    billing = tables["billing_events"]
    price = tables["suppliers"].set_index("supplier_id")["monthly_revenue"]
    at = pd.Timestamp(day, tz="UTC") + pd.Timedelta(days=1) - pd.Timedelta(seconds=1)
    failed = pd.DataFrame(
        {
            "event_id": [f"test-failed-{s}" for s in suppliers],
            "supplier_id": list(suppliers),
            "occurred_at": [at] * len(suppliers),
            "event_type": ["payment_failed"] * len(suppliers),
            "amount": price.reindex(suppliers).to_numpy(float),
        }
    ).astype(billing.dtypes.to_dict())
    return {**tables, "billing_events": pd.concat([billing, failed], ignore_index=True)}


def rated_tickets(tables: Tables, day: date, window_days: int = 90) -> pd.DataFrame:
    """Tickets whose rating is known by the end of ``day`` and within the 90-day window (a rating
    counts from the day its ticket is resolved, or is created if it never is)."""
    tickets = tables["support_tickets"]
    known = tickets["resolved_at"].fillna(tickets["created_at"])
    end = pd.Timestamp(day, tz="UTC") + pd.Timedelta(days=1)
    inside = (known < end) & (known >= end - pd.Timedelta(days=window_days))
    return tickets[inside.fillna(False) & tickets["satisfaction_rating"].notna()]


def lower_a_rating(tables: Tables, suppliers: pd.Index, day: date) -> Tables:
    """The supplier's latest good rating (3 to 5) in the window becomes a 1."""
    rated = rated_tickets(tables, day)
    good = rated[(rated["satisfaction_rating"] >= 3) & rated["supplier_id"].isin(suppliers)]
    latest = good.sort_values("created_at").groupby("supplier_id").tail(1).index
    tickets = tables["support_tickets"].copy()
    tickets.loc[latest, "satisfaction_rating"] = 1
    return {**tables, "support_tickets": tickets}


# -- features and predictions ----------------------------------------------------------------
def features_at(tables: Tables, day: date) -> pd.DataFrame:
    """Every active supplier's feature row at the end of ``day``, indexed by supplier."""
    return build_feature_table(tables, [day], threads=1).set_index("supplier_id")


def hold_cohort_context(after: pd.DataFrame, before: pd.DataFrame) -> pd.DataFrame:
    """``after`` with the cohort's mean logins of ``before`` and the supplier's ratio to it
    recomputed against that mean, as the feature table defines it (``logins_30d / mean``)."""
    mean = before.loc[after.index, COHORT_CONTEXT]
    return after.assign(
        **{
            COHORT_CONTEXT: mean,
            "logins_30d_vs_cohort": after["logins_30d"] / mean.where(mean != 0),
        }
    )


def assert_moved_only_towards_churn(before: pd.DataFrame, after: pd.DataFrame) -> None:
    """Unconstrained churn features unchanged; constrained ones unchanged or moved the way that
    raises churn."""
    for name in service_columns(CHURN_SERVICE):
        b, a = before[name], after[name]
        if name not in CHURN_DIRECTIONS:
            pd.testing.assert_series_equal(a, b, check_names=False, obj=name)
            continue
        assert (a.isna() == b.isna()).all(), f"{name}: the perturbation made values missing"
        step = CHURN_DIRECTIONS[name] * (a.astype(float) - b.astype(float))
        assert (step.dropna() >= -1e-12).all(), f"{name} moved against its churn direction"


def assert_riskier(fitted: FittedModels, before: pd.DataFrame, after: pd.DataFrame) -> None:
    """Features moved only towards churn, no row looks healthier, and the change raises the
    mean churn probability (the change matters to the model, not merely leaves it alone)."""
    assert_moved_only_towards_churn(before, after)
    p = assert_never_healthier(fitted, before, after)
    assert p["after"].mean() > p["before"].mean()


def health_models(fitted: FittedModels) -> dict[str, HealthModel]:
    h = fitted.health
    return {"chosen": h.model, "brief_weights": h.brief, "relearned_weights": h.relearned}


def assert_never_healthier(
    fitted: FittedModels, before: pd.DataFrame, after: pd.DataFrame
) -> dict[str, np.ndarray]:
    """Churn probability not lower, health factors and scores not higher, health churn
    probability not lower, for every row, each scored in the segment it has before and after
    the change (a supplier may leave the power-user segment). Returns the churn probabilities
    before and after.
    """
    p_before, p_after = fitted.churn.predict(before), fitted.churn.predict(after)
    lower = p_after < p_before
    assert not lower.any(), f"{lower.sum()} of {len(lower)} rows got a lower churn probability"
    factors_b, segment = health_inputs(before)
    factors_a, segment_after = health_inputs(after)
    for factor in HEALTH_FACTORS:
        assert np.all(factors_a[factor] <= factors_b[factor]), factor
    # the brief's score as the feature build stored it
    assert np.all(after["health_score"].to_numpy() <= before["health_score"].to_numpy() + 1e-9)
    for name, model in health_models(fitted).items():
        score_b, score_a = model.score(factors_b, segment), model.score(factors_a, segment_after)
        assert np.all(score_a <= score_b + 1e-9), f"{name}: {(score_a > score_b).sum()} rows"
        assert np.all(model.calibrator.predict(score_a) >= model.calibrator.predict(score_b))
    return {"before": p_before, "after": p_after}


def test_leaving_the_power_user_segment_never_raises_the_health_score() -> None:
    two_rows = pd.DataFrame(
        {
            "active_days_30d": [15, 14],  # 15 makes a power user (with 5 features used)
            "features_used_30d": [5, 5],
            "total_clients": [0, 0],
            "active_client_ratio": [np.nan, np.nan],
            "milestones_achieved": [6, 6],
            "tenure_days": [400, 400],
            **{
                c: [0, 0]
                for c in (
                    "open_tickets",
                    "bad_ratings_90d",
                    "tickets_30d",
                    "failed_payments_90d",
                    "card_expiring_30d",
                    "downgrades_90d",
                    "unresolved_payment_failure",
                )
            },
            "mean_satisfaction_90d": [np.nan, np.nan],
        }
    )
    scored = add_health(two_rows)
    assert list(scored["health_segment"]) == ["power_user", "established"]
    assert scored["health_score"][1] <= scored["health_score"][0]


@pytest.fixture(scope="module")
def day(simulated: SimulatedSet) -> date:
    """The latest snapshot day of the training rows (a row at ``d + 1`` 00:00 holds day ``d``)."""
    return (simulated.frame["event_timestamp"].max() - pd.Timedelta(days=1)).date()


@pytest.fixture(scope="module")
def baseline(simulated: SimulatedSet, day: date) -> pd.DataFrame:
    return features_at(simulated.tables, day)


def _perturbed(
    simulated: SimulatedSet,
    day: date,
    baseline: pd.DataFrame,
    change: Callable[[Tables], Tables],
    suppliers: pd.Index,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    tables = change(simulated.tables)
    assert validate_tables(tables).ok  # the changed tables still honour the data contract
    after = features_at(tables, day).loc[suppliers]
    assert after.index.equals(suppliers)
    return baseline.loc[suppliers], after


# -- the scenarios ---------------------------------------------------------------------------
# Quiet spells of any length: churn_v2 reads the login trend as ratios of recent to long-run
# login rates, which a spell never raises. (churn_v1's 30-day differences rose for a supplier in
# decline once a spell emptied both windows: a 90-day spell gave 2 of 799 suppliers a lower
# churn probability.)
@pytest.mark.parametrize("quiet_days", [7, 30, 90, 180])
def test_a_supplier_who_stops_logging_in_never_looks_safer(
    simulated: SimulatedSet,
    fitted: FittedModels,
    day: date,
    baseline: pd.DataFrame,
    quiet_days: int,
) -> None:
    # the longest login window the spell covers
    covered = max(w for w in (7, 30, 90) if w <= quiet_days)
    # suppliers who logged in during the window and also before it, so their last login stays
    # known (a supplier who never logged in has no days_since_last_login at all)
    window = baseline[f"logins_{covered}d"] > 0
    activity = simulated.tables["activity_daily"]
    earlier = (activity["date"] <= day - timedelta(days=quiet_days)) & (activity["logins"] > 0)
    logged_before = set(activity.loc[earlier.to_numpy(bool), "supplier_id"])
    suppliers = baseline.index[window & baseline.index.isin(logged_before)]
    assert len(suppliers) > 200
    before, after = _perturbed(
        simulated,
        day,
        baseline,
        lambda t: stop_logging_in(t, suppliers, day, quiet_days),
        suppliers,
    )
    after = hold_cohort_context(after, before)
    assert (after[f"logins_{covered}d"] == 0).all()
    assert (after[f"active_days_{covered}d"] == 0).all()
    assert (after["days_since_last_login"] >= quiet_days).all()
    for name in ("login_ewm_ratio_7d_90d", "login_ewm_ratio_30d_90d"):
        assert (after[name] < before[name]).all(), name  # the trend features see the spell
    assert_riskier(fitted, before, after)


def test_a_supplier_whose_payment_fails_never_looks_safer(
    simulated: SimulatedSet, fitted: FittedModels, day: date, baseline: pd.DataFrame
) -> None:
    suppliers = baseline.index
    before, after = _perturbed(
        simulated, day, baseline, lambda t: fail_a_payment(t, suppliers, day), suppliers
    )
    for window in ("30d", "90d"):
        np.testing.assert_array_equal(
            after[f"failed_payments_{window}"], before[f"failed_payments_{window}"] + 1
        )
    assert (after["unresolved_payment_failure"] == 1).all()
    assert (after["billing_health"] == 0).all()
    assert_riskier(fitted, before, after)


def test_a_supplier_whose_ratings_drop_never_looks_safer(
    simulated: SimulatedSet, fitted: FittedModels, day: date, baseline: pd.DataFrame
) -> None:
    rated = rated_tickets(simulated.tables, day)
    good = rated.loc[rated["satisfaction_rating"] >= 3, "supplier_id"]
    suppliers = baseline.index[baseline.index.isin(set(good))]
    assert len(suppliers) >= 30
    before, after = _perturbed(
        simulated, day, baseline, lambda t: lower_a_rating(t, suppliers, day), suppliers
    )
    np.testing.assert_array_equal(after["bad_ratings_90d"], before["bad_ratings_90d"] + 1)
    assert (after["mean_satisfaction_90d"] < before["mean_satisfaction_90d"]).all()
    assert (after["support_health"] < before["support_health"]).all()
    assert_moved_only_towards_churn(before, after)
    assert_never_healthier(fitted, before, after)
