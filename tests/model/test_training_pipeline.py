"""The training pipeline end to end on a small simulated set: honest splits and a full table."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from feature_repo.definitions import CHURN_SERVICE, HEALTH_SERVICE, service_columns
from features.simulator import SimulationConfig, simulate
from training.config import load_experiment
from training.models import feature_matrix
from training.pipeline import evaluation_table, fit_churn, make_logistic_baseline
from wedsync_cs.feature_jobs import training_set
from wedsync_cs.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> pd.DataFrame:
    out = tmp_path_factory.mktemp("train") / "set"
    simulate(SimulationConfig(suppliers=1500, days=400, seed=5, truth_paths=8), out)
    settings = Settings(home=tmp_path_factory.mktemp("home"), feature_recent_days=0)
    frame = training_set(settings, out / "raw", (CHURN_SERVICE, HEALTH_SERVICE), "weekly", 30)
    truth = pd.read_parquet(out / "truth.parquet")
    return frame.merge(
        truth[["supplier_id", "as_of", "p_true"]],
        left_on=["supplier_id", "event_timestamp"],
        right_on=["supplier_id", "as_of"],
        how="left",
    )


def test_pipeline_keeps_the_holdout_out_and_reports_every_model(data: pd.DataFrame) -> None:
    cfg = load_experiment(ROOT / "experiments" / "churn_v1.yaml")
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
    fit = fit_churn(X, y, stamps, cfg, threads=2)

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
    } <= set(table.columns)
    assert table.loc["ceiling_p_true", "auc_gap_closed"] == pytest.approx(1.0)
    assert table.loc["churn_model", "auc"] > table.loc["fixed_weight_rule", "auc"]
    assert table.loc["ceiling_p_true", "auc"] > table.loc["churn_model", "auc"]
    assert (table[["auc", "pr_auc", "brier", "ece"]].to_numpy() <= 1).all()
