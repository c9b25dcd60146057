"""The model files: the churn and health models as written to and read from a folder.

JSON and UBJSON only, never pickles. A churn model is the folder MLflow's XGBoost flavour logs:
the booster as ``model.ubj``, and beside it under ``extra_files/`` the calibrator
(``calibrator.json``), its feature columns and category levels (``features.json``) and its
experiment (``experiment.json``). A health model is ``health_model.json`` (weights and
calibration map) with ``experiment.json``.

This module reads no registry and imports no training step: serving loads models through it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import numpy as np
import pandas as pd
import xgboost as xgb

from features.catalog import CATEGORIES, FEATURES
from training.calibration import IsotonicCalibrator
from training.config import ExperimentConfig
from training.health_model import HealthModel
from training.models import feature_matrix
from training.timing import TimingModel

BOOSTER_FILE: Final = "model.ubj"
COMPANIONS: Final = "extra_files"
HEALTH_FILE: Final = "health_model.json"
EXPERIMENT_FILE: Final = "experiment.json"


def calibrated_churn(
    model: xgb.XGBClassifier, calibrator: IsotonicCalibrator, X: pd.DataFrame
) -> np.ndarray:
    """Calibrated churn probabilities of a model's feature matrix, shape (n,)."""
    return calibrator.predict(model.predict_proba(X)[:, 1])


@dataclass(frozen=True)
class ChurnModel:
    """A churn model as deployed: the booster, its calibrator, the columns it reads (in order)
    and the experiment it was trained by."""

    booster: xgb.XGBClassifier
    calibrator: IsotonicCalibrator
    columns: list[str]
    config: ExperimentConfig

    def matrix(self, features: pd.DataFrame) -> pd.DataFrame:
        """The booster's input from feature rows (see :func:`training.models.feature_matrix`)."""
        return feature_matrix(features, self.columns)

    def predict(self, features: pd.DataFrame) -> np.ndarray:
        """Calibrated churn probabilities of feature rows, shape (n,)."""
        return calibrated_churn(self.booster, self.calibrator, self.matrix(features))


@dataclass(frozen=True)
class HealthCalibration:
    """A health model as deployed: score weights and calibration map, with its experiment."""

    model: HealthModel
    config: ExperimentConfig


def write_churn_companions(model: ChurnModel, folder: Path) -> list[Path]:
    """The files that go beside the booster (MLflow logs them as its ``extra_files``)."""
    folder.mkdir(parents=True, exist_ok=True)
    calibrator = folder / "calibrator.json"
    model.calibrator.save(calibrator)
    features = folder / "features.json"
    features.write_text(
        json.dumps(
            {
                "feature_service": model.config.feature_service,
                "columns": model.columns,
                "categories": {
                    c: list(CATEGORIES[c]) for c in model.columns if FEATURES[c][1] == "category"
                },
            },
            indent=2,
        )
    )
    experiment = folder / EXPERIMENT_FILE
    experiment.write_text(model.config.model_dump_json(indent=2))
    return [calibrator, features, experiment]


def write_churn_model(model: ChurnModel, folder: Path) -> Path:
    """The whole churn model folder, laid out as MLflow logs it (booster and companions)."""
    folder.mkdir(parents=True, exist_ok=True)
    model.booster.save_model(folder / BOOSTER_FILE)
    write_churn_companions(model, folder / COMPANIONS)
    return folder


def read_churn_model(folder: Path, threads: int = 2) -> ChurnModel:
    """A churn model folder as :func:`write_churn_model` (or MLflow) wrote it.

    Raises:
        FileNotFoundError: a file of the model is missing.
        ValueError: ``features.json`` names other category levels than the catalogue's (the
            model's category codes would not mean what they meant in training).
    """
    folder = Path(folder)
    booster = xgb.XGBClassifier(n_jobs=threads)
    booster.load_model(folder / BOOSTER_FILE)
    extra = folder / COMPANIONS
    spec = json.loads((extra / "features.json").read_text())
    for column, levels in spec.get("categories", {}).items():
        if list(levels) != list(CATEGORIES[column]):
            raise ValueError(
                f"{folder}: {column}'s category levels {levels} differ from the catalogue's "
                f"{list(CATEGORIES[column])}"
            )
    return ChurnModel(
        booster=booster,
        calibrator=IsotonicCalibrator.load(extra / "calibrator.json"),
        columns=list(spec["columns"]),
        config=ExperimentConfig.model_validate_json((extra / EXPERIMENT_FILE).read_text()),
    )


def write_health_model(health: HealthCalibration, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / HEALTH_FILE).write_text(health.model.to_json())
    (folder / EXPERIMENT_FILE).write_text(health.config.model_dump_json(indent=2))
    return folder


def read_health_model(folder: Path) -> HealthCalibration:
    folder = Path(folder)
    return HealthCalibration(
        model=HealthModel.from_json((folder / HEALTH_FILE).read_text()),
        config=ExperimentConfig.model_validate_json((folder / EXPERIMENT_FILE).read_text()),
    )


@dataclass(frozen=True)
class Champions:
    """The champion churn and health models and their registered versions."""

    churn: ChurnModel
    health: HealthCalibration
    churn_version: str
    health_version: str
    churn_run_id: str | None = None
    health_run_id: str | None = None
    timing: TimingModel | None = None
    timing_version: str | None = None
    timing_run_id: str | None = None

    @property
    def services(self) -> tuple[str, str]:
        """The feature services the two models read (churn, then health)."""
        return self.churn.config.feature_service, self.health.config.health_service
