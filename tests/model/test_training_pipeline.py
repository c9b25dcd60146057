"""The training pipeline end to end on a small simulated set: honest splits and a full table."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from feature_repo.definitions import CHURN_SERVICE, service_columns
from tests.model.conftest import SimulatedSet, experiment, trained_constraints
from training.baseline import make_logistic_baseline
from training.config import ExperimentConfig
from training.evaluation import health_inputs
from training.models import feature_matrix
from training.monotone import monotone_constraints
from training.pipeline import ChurnFit, evaluation_table, fit_churn, fit_unconstrained, refit_split
from training.refit import deployed_fit, refit_check


def _small_experiment(trials: int, max_rounds: int, budget: float) -> ExperimentConfig:
    """The shipped experiment with a search small enough for a test."""
    cfg = experiment()
    tuning = cfg.tuning.model_copy(
        update={"trials": trials, "max_rounds": max_rounds, "time_budget_seconds": budget}
    )
    return cfg.model_copy(update={"tuning": tuning})


def _fitted(
    data: pd.DataFrame, columns: list[str], cfg: ExperimentConfig
) -> tuple[pd.DataFrame, np.ndarray, pd.Series, ChurnFit]:
    """The feature matrix, labels and instants of ``data`` and the churn fit on them."""
    X, y = feature_matrix(data, columns), data["label"].to_numpy()
    stamps = data["event_timestamp"]
    return X, y, stamps, fit_churn(X, y, stamps, cfg, threads=1)


def test_pipeline_keeps_the_holdout_out_and_reports_every_model(simulated: SimulatedSet) -> None:
    data = simulated.frame
    cfg = _small_experiment(trials=3, max_rounds=80, budget=120)
    columns = service_columns(CHURN_SERVICE)
    X, y, stamps, fit = _fitted(data, columns, cfg)
    assert trained_constraints(fit.model.booster) == monotone_constraints(columns)

    split = fit.split
    start = split.outer.holdout_start
    horizon = pd.Timedelta(days=cfg.horizon_days)
    assert (
        not (split.trees & split.holdout).any() and not (split.calibration & split.holdout).any()
    )
    assert stamps[split.trees].max() + horizon < stamps[split.calibration].min()
    assert stamps[split.calibration].max() + horizon < start
    assert stamps[split.holdout].min() == start

    hold = split.holdout
    logistic = make_logistic_baseline(columns).fit(data.loc[split.trees, columns], y[split.trees])
    scores = {
        "churn_model": fit.predict(X[hold]),
        "fixed_weight_rule": 1 - data.loc[hold, "health_score"].to_numpy() / 100,
        "logistic_baseline": logistic.predict_proba(data.loc[hold, columns])[:, 1],
        "ceiling_p_true": data.loc[hold, "p_true"].to_numpy(),
    }
    assert not np.isnan(scores["ceiling_p_true"]).any()  # truth covers every weekly row
    table = evaluation_table(y[hold], scores, top_k=100, ceiling="ceiling_p_true")
    assert list(table.index) == list(scores)
    assert {
        "auc",
        "pr_auc",
        "brier",
        "log_loss",
        "ece",
        "lift_top_decile",
        "recall_top_decile",
        "precision_top_100",
        "auc_gap_closed",
        "pr_auc_gap_closed",
        "auc_rule_gap_closed",
        "pr_auc_rule_gap_closed",
    } <= set(table.columns)
    for gap in ("auc_gap_closed", "pr_auc_gap_closed", "auc_rule_gap_closed"):
        assert table.loc["ceiling_p_true", gap] == pytest.approx(1.0)
    assert table.loc["fixed_weight_rule", "auc_rule_gap_closed"] == pytest.approx(0.0)
    better = table.loc[["fixed_weight_rule", "logistic_baseline"], "auc"].idxmax()
    assert table.loc[better, "auc_gap_closed"] == pytest.approx(0.0)
    assert table.loc["churn_model", "auc"] > table.loc["fixed_weight_rule", "auc"]
    assert table.loc["ceiling_p_true", "auc"] > table.loc["churn_model", "auc"]
    assert (table[["auc", "pr_auc", "brier", "ece"]].to_numpy() <= 1).all()


def test_the_deployed_refit_sees_every_row_and_the_check_sees_none_of_its_half(
    simulated: SimulatedSet,
) -> None:
    data = simulated.frame
    cfg = _small_experiment(trials=2, max_rounds=60, budget=60)
    columns = service_columns(CHURN_SERVICE)
    X, y, stamps, fit = _fitted(data, columns, cfg)
    horizon = pd.Timedelta(days=cfg.horizon_days)

    # the refit's split: the newest slice calibrates (inside the evaluation's holdout), the
    # trees take every row before it and its gap: the evaluation's calibration slice included
    split = refit_split(stamps, cfg)
    assert not split.holdout.any() and not (split.trees & split.calibration).any()
    assert stamps[split.trees].max() + horizon < stamps[split.calibration].min()
    assert stamps[split.calibration].max() == stamps.max()
    assert stamps[split.calibration].min() >= stamps[fit.split.holdout].min()
    assert (split.trees & fit.split.calibration).any()
    assert stamps[split.trees].max() > stamps[fit.split.calibration].max()

    factors, segment = health_inputs(data)
    deployed = deployed_fit(X, y, stamps, factors, segment, fit, cfg, threads=1)
    np.testing.assert_array_equal(deployed.churn.split.trees, split.trees)
    assert deployed.churn.model.booster.get_params()["n_estimators"] == fit.tuning.rounds
    assert trained_constraints(deployed.churn.model.booster) == monotone_constraints(columns)
    p = deployed.churn.predict(X)
    assert np.all((p >= 0) & (p <= 1)) and not np.allclose(p, fit.predict(X))

    # the check: both fits on the later half of the holdout, which the check's refit never saw
    check = refit_check(X, y, stamps, fit.split.holdout, fit, cfg, threads=1)
    assert check is not None and list(check.table.index) == ["evaluation_fit", "refit"]
    later = stamps >= check.first
    assert check.rows == int(later.sum()) and check.positives == int(y[later.to_numpy()].sum())
    assert check.refit_labels_to <= check.first
    assert check.first > stamps[fit.split.holdout].min()
    assert (check.table["auc"] > 0.7).all()
    assert (check.table["pr_auc"] > 2 * check.positives / check.rows).all()  # they rank

    # the same configuration without monotone constraints, on the same rows
    free = fit_unconstrained(X, y, fit, cfg, threads=1)
    assert trained_constraints(free.model.booster) == {}
    assert free.model.booster.get_params()["n_estimators"] == fit.tuning.rounds
