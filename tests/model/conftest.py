"""One small simulated set for the model tests, and models fitted on it the way training does.

The set goes the production way: simulated contract tables -> feature table -> Feast
point-in-time rows of both feature services (``training_set``), plus the simulator's true
churn probability. The churn model is untuned (fixed small hyperparameters) but built by the
production factory, split and calibrated like ``training.pipeline.fit_churn``; the health model
is fitted by ``training.health_model.fit_health_model`` on the same split.

XGBoost runs on one thread: on a shared two-core machine, OpenMP with two threads next to
another busy process was a hundred times slower here (33 s against 0.3 s for one small fit).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
import xgboost as xgb

from feature_repo.definitions import CHURN_SERVICE, HEALTH_SERVICE, service_columns
from features.raw_reader import load_raw
from simulator import SimulationConfig, simulate
from training.calibration import IsotonicCalibrator
from training.config import ExperimentConfig, load_experiment
from training.evaluation import health_inputs
from training.health_model import HealthFit, fit_health_model
from training.model_files import ChurnModel
from training.models import feature_matrix, make_churn_model
from training.pipeline import WindowSplit, window_split
from wedsync_cs.feature_jobs import training_set
from wedsync_cs.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
SIMULATION = SimulationConfig(suppliers=1500, days=400, seed=5, truth_paths=8)
CHURN_PARAMS = {"max_depth": 4, "learning_rate": 0.1, "min_child_weight": 5.0}
CHURN_ROUNDS = 150


@dataclass(frozen=True)
class SimulatedSet:
    """The raw contract tables and the labelled training rows (with ``p_true``) built on them."""

    raw: Path
    tables: dict[str, pd.DataFrame]
    frame: pd.DataFrame


@dataclass(frozen=True)
class FittedModels:
    """The churn model (as deployed: booster, calibrator, columns) and the health model's fit,
    on one split."""

    split: WindowSplit
    churn: ChurnModel
    health: HealthFit


def trained_constraints(model: xgb.XGBClassifier) -> dict[str, int]:
    """The non-zero monotone constraints a fitted model was trained with, by feature name."""
    booster = model.get_booster()
    params = json.loads(booster.save_config())["learner"]["gradient_booster"]["tree_train_param"]
    values = [int(v) for v in params["monotone_constraints"].strip("()").split(",") if v]
    if not values:  # fitted without any constraint
        return {}
    return {n: v for n, v in zip(booster.feature_names or [], values, strict=True) if v}


def experiment() -> ExperimentConfig:
    return load_experiment(ROOT / "experiments" / "churn_v3.yaml")


@pytest.fixture(scope="session")
def simulated(tmp_path_factory: pytest.TempPathFactory) -> SimulatedSet:
    out = tmp_path_factory.mktemp("simulated") / "set"
    simulate(SIMULATION, out)
    settings = Settings(home=tmp_path_factory.mktemp("home"), feature_recent_days=0)
    frame = training_set(
        settings, out / "raw", (CHURN_SERVICE, HEALTH_SERVICE), "weekly", 30
    ).frame
    truth = pd.read_parquet(out / "truth.parquet")
    frame = frame.merge(
        truth[["supplier_id", "as_of", "p_true"]],
        left_on=["supplier_id", "event_timestamp"],
        right_on=["supplier_id", "as_of"],
        how="left",
    )
    return SimulatedSet(raw=out / "raw", tables=load_raw(out / "raw").frames, frame=frame)


@pytest.fixture(scope="session")
def fitted(simulated: SimulatedSet) -> FittedModels:
    frame = simulated.frame
    columns = service_columns(CHURN_SERVICE)
    X, y = feature_matrix(frame, columns), frame["label"].to_numpy(int)
    split = window_split(frame["event_timestamp"], experiment())
    churn = make_churn_model(CHURN_PARAMS, columns, n_estimators=CHURN_ROUNDS, threads=1)
    churn.fit(X[split.trees], y[split.trees])
    calibrator = IsotonicCalibrator().fit(
        churn.predict_proba(X[split.calibration])[:, 1], y[split.calibration]
    )
    factors, segment = health_inputs(frame)
    health = fit_health_model(factors, segment, y, split.trees, split.calibration)
    return FittedModels(
        split=split,
        churn=ChurnModel(
            booster=churn, calibrator=calibrator, columns=columns, config=experiment()
        ),
        health=health,
    )
