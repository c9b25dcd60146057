"""MLflow for real, on SQLite and on PostgreSQL: an XGBoost model logged without pickles,
registered, and promoted only when it beats the champion on the same holdout."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import mlflow
import numpy as np
import pytest

from tests.conftest import require_service
from training.calibration import IsotonicCalibrator
from training.models import make_churn_model
from training.registry import CHAMPION, configure, ensure_experiment, promote_if_better


def _admin(sql: str) -> None:
    import psycopg

    with psycopg.connect("host=127.0.0.1 user=postgres dbname=postgres", autocommit=True) as con:
        con.execute(sql)


@pytest.fixture(params=["sqlite", "postgresql"])
def tracking(request, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'mlflow.db'}"
        return
    require_service("PostgreSQL", "127.0.0.1", 5432)
    name = f"mlflow_{uuid.uuid4().hex[:10]}"
    _admin(f"create database {name}")
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    finally:
        _admin(f"drop database if exists {name} with (force)")


def _log_version(client, experiment: str, tmp_path: Path, seed: int) -> str:
    rng = np.random.default_rng(seed)
    X = rng.random((300, 3))
    y = (X[:, 0] + 0.3 * rng.random(300) > 0.8).astype(int)
    model = make_churn_model({"max_depth": 2}, [], n_estimators=20, threads=1).fit(X, y)
    calibrator = IsotonicCalibrator().fit(model.predict_proba(X)[:, 1], y)
    with mlflow.start_run(experiment_id=experiment):
        info = mlflow.xgboost.log_model(model, name="churn", model_format="ubj")
        path = tmp_path / f"calibrator_{seed}.json"
        calibrator.save(path)
        mlflow.log_artifact(str(path), artifact_path="calibration")
        version = mlflow.register_model(info.model_uri, "churn")
    return version.version


@pytest.mark.integration
def test_register_and_promotion_gate(tracking: str, tmp_path: Path) -> None:
    client = configure(tracking)
    experiment = ensure_experiment(client, "churn", tmp_path / "artifacts")
    assert ensure_experiment(client, "churn", tmp_path / "artifacts") == experiment
    assert client.get_experiment(experiment).artifact_location.startswith("file://")

    v1 = _log_version(client, experiment, tmp_path, 1)
    first = promote_if_better(client, "churn", v1, "auc", 0.80, True, "holdout-a")
    assert first.promoted and first.reason == "no champion yet"

    v2 = _log_version(client, experiment, tmp_path, 2)
    worse = promote_if_better(client, "churn", v2, "auc", 0.79, True, "holdout-a")
    assert not worse.promoted and "does not beat" in worse.reason
    assert client.get_model_version_by_alias("churn", CHAMPION).version == v1

    v3 = _log_version(client, experiment, tmp_path, 3)
    better = promote_if_better(client, "churn", v3, "auc", 0.81, True, "holdout-a")
    assert better.promoted and better.previous_champion == v1
    assert client.get_model_version_by_alias("churn", CHAMPION).version == v3
    assert client.get_model_version("churn", v2).tags["promotion"] == worse.reason

    loaded = mlflow.xgboost.load_model("models:/churn@champion")
    assert loaded.predict_proba(np.random.default_rng(0).random((5, 3))).shape == (5, 2)
    stored = {
        Path(a.path).suffix
        for a in client.list_artifacts(client.get_model_version("churn", v3).run_id, "calibration")
    }
    assert stored == {".json"}
    files = [p for p in (tmp_path / "artifacts").rglob("*") if p.is_file()]
    assert any(p.suffix == ".ubj" for p in files)
    assert not [p for p in files if p.suffix in {".pkl", ".pickle", ".joblib"}]
