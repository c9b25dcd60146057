"""The training pipeline end to end on a small simulated set: honest splits and a full table."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from feature_repo.definitions import CHURN_SERVICE, service_columns
from tests.model.conftest import SimulatedSet, experiment, trained_constraints
from training.baseline import make_logistic_baseline
from training.models import feature_matrix
from training.monotone import monotone_constraints
from training.pipeline import evaluation_table, fit_churn


def test_pipeline_keeps_the_holdout_out_and_reports_every_model(simulated: SimulatedSet) -> None:
    data = simulated.frame
    cfg = experiment()
    cfg = cfg.model_copy(
        update={
            "tuning": cfg.tuning.model_copy(
                update={"trials": 3, "max_rounds": 80, "time_budget_seconds": 120}
            )
        }
    )
    columns = service_columns(CHURN_SERVICE)
    X, y = feature_matrix(data, columns), data["label"].to_numpy()
    stamps = data["event_timestamp"]
    fit = fit_churn(X, y, stamps, cfg, threads=1)
    assert trained_constraints(fit.model) == monotone_constraints(columns)

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
