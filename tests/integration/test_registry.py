"""MLflow for real, on SQLite and on PostgreSQL: an XGBoost model logged without pickles,
registered, and promoted only when it beats the champion on the same holdout."""

from __future__ import annotations

from pathlib import Path

import mlflow
import numpy as np
import pytest

from training.calibration import IsotonicCalibrator
from training.models import make_churn_model
from training.registry import (
    CHAMPION,
    ChampionScore,
    configure,
    ensure_experiment,
    promote_if_better,
)


@pytest.fixture(params=["sqlite", "postgresql"])
def tracking(request, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'mlflow.db'}"
    return request.getfixturevalue("postgres_uri")


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
    assert better.promoted and better.previous_champion == str(v1)
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


@pytest.mark.integration
def test_a_champion_of_another_holdout_is_rescored_before_it_loses_its_alias(
    tracking: str, tmp_path: Path
) -> None:
    client = configure(tracking)
    experiment = ensure_experiment(client, "churn", tmp_path / "artifacts")
    v1 = _log_version(client, experiment, tmp_path, 1)
    assert promote_if_better(client, "churn", v1, "log_loss", 0.060, False, "holdout-a").promoted
    seen: list[str] = []

    def rescored(value: float | None, note: str = ""):
        def score(version) -> ChampionScore:
            seen.append(version.version)
            return ChampionScore(value, note)

        return score

    # new data: v2's holdout is another one; without a way to score v1 there, v1 stays
    v2 = _log_version(client, experiment, tmp_path, 2)
    blind = promote_if_better(client, "churn", v2, "log_loss", 0.050, False, "holdout-b")
    assert not blind.promoted and "cannot be scored on this one" in blind.reason
    unscorable = promote_if_better(
        client, "churn", v2, "log_loss", 0.050, False, "holdout-b", rescored(None, "no features")
    )
    assert not unscorable.promoted and "(no features)" in unscorable.reason
    # v1 scores 0.045 on holdout-b: v2's 0.050 does not beat it, whatever v1 did on holdout-a
    kept = promote_if_better(
        client, "churn", v2, "log_loss", 0.050, False, "holdout-b", rescored(0.045, "optimistic")
    )
    assert not kept.promoted and seen == [v1, v1]
    assert "does not beat champion v1 0.04500 (re-scored on this holdout; optimistic)" in (
        kept.reason
    )
    assert client.get_model_version_by_alias("churn", CHAMPION).version == v1
    assert client.get_model_version("churn", v2).tags[f"champion_v{v1}_holdout_log_loss"] == (
        "0.045"
    )
    # v3 on holdout-c beats v1 re-scored there
    v3 = _log_version(client, experiment, tmp_path, 3)
    won = promote_if_better(
        client, "churn", v3, "log_loss", 0.040, False, "holdout-c", rescored(0.047)
    )
    assert won.promoted and won.previous_champion == str(v1)
    assert won.reason.endswith("beats champion v1 0.04700 (re-scored on this holdout)")
    assert client.get_model_version_by_alias("churn", CHAMPION).version == v3
    # and a version on v3's own holdout is compared by v3's recorded figure, not re-scored
    v4 = _log_version(client, experiment, tmp_path, 4)
    same = promote_if_better(
        client, "churn", v4, "log_loss", 0.041, False, "holdout-c", rescored(0.0)
    )
    assert not same.promoted and same.reason.endswith("does not beat champion v3 0.04000")
    assert seen == [v1, v1, v1]
