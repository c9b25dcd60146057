"""The model files round-trip: what is written is what serving loads, prediction for prediction,
and no file is a pickle."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.model.conftest import FittedModels, SimulatedSet, experiment
from training.evaluation import health_inputs
from training.model_files import (
    HealthCalibration,
    read_churn_model,
    read_health_model,
    write_churn_model,
    write_health_model,
)

ROOT = Path(__file__).resolve().parents[2]


def test_churn_and_health_models_round_trip(
    fitted: FittedModels, simulated: SimulatedSet, tmp_path: Path
) -> None:
    cfg = experiment()
    churn = fitted.churn
    health = HealthCalibration(fitted.health.model, cfg)
    rows = simulated.frame[fitted.split.holdout].head(500)

    churn_back = read_churn_model(write_churn_model(churn, tmp_path / "churn"), threads=1)
    health_back = read_health_model(write_health_model(health, tmp_path / "health"))

    assert churn_back.columns == churn.columns and churn_back.config == cfg
    np.testing.assert_array_equal(churn_back.predict(rows), churn.predict(rows))
    factors, segment = health_inputs(rows)
    np.testing.assert_array_equal(
        health_back.model.churn_probability(factors, segment),
        health.model.churn_probability(factors, segment),
    )
    assert health_back.model.weights == health.model.weights
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert {p.suffix for p in files} == {".ubj", ".json"}
    for path in files:  # a pickle (protocol 2+) starts with 0x80 and the protocol number
        head = path.read_bytes()[:2]
        assert not (head[0] == 0x80 and 2 <= head[1] <= 5), path


def test_a_churn_model_with_other_category_levels_is_refused(
    fitted: FittedModels, tmp_path: Path
) -> None:
    churn = fitted.churn
    folder = write_churn_model(churn, tmp_path / "churn")
    spec_path = folder / "extra_files" / "features.json"
    spec = spec_path.read_text()
    categorical = next(c for c in fitted.churn.columns if f'"{c}": [' in spec)
    spec_path.write_text(spec.replace(f'"{categorical}": [', f'"{categorical}": ["zzz", '))
    with pytest.raises(ValueError, match=categorical):
        read_churn_model(folder)


def test_importing_the_scorer_imports_no_training_step() -> None:
    """Serving loads the scorer; Optuna and the fitting code stay out of its processes."""
    code = (
        "import sys, serving.scorer; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'optuna' or m in "
        "('training.train_job', 'training.tuning', 'training.pipeline', 'training.evaluation',"
        " 'training.tracking', 'training.refit')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"
