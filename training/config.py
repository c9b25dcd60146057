"""Experiment configuration: versioned YAML under ``experiments/`` parsed into frozen models."""

from __future__ import annotations

from pathlib import Path
from typing import Final, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from feature_repo.definitions import SERVICES
from features.health import AT_RISK, HEALTHY


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Range(_Frozen):
    """One hyperparameter's search range."""

    low: float
    high: float
    kind: Literal["int", "float"] = "float"
    log: bool = False

    @model_validator(mode="after")
    def _ordered(self) -> Range:
        if not self.low < self.high:
            raise ValueError(f"low ({self.low}) must be below high ({self.high})")
        if self.log and self.low <= 0:
            raise ValueError("a log-scaled range needs low > 0")
        return self


# A sensible configuration every tuned one is compared with on the same folds (the better is
# kept): a search that ends on a handful of shallow rounds has found noise, not a model.
FIXED_CONFIGURATION: Final = {
    "max_depth": 6,
    "learning_rate": 0.05,
    "min_child_weight": 5.0,
    "subsample": 0.8,
    "colsample_bytree": 0.8,
    "reg_lambda": 1.0,
    "gamma": 0.0,
}


class Tuning(_Frozen):
    trials: int = Field(ge=1)
    time_budget_seconds: float = Field(gt=0)
    seed: int = 0
    search_space: dict[str, Range]
    max_rounds: int = Field(default=1000, ge=10)
    early_stopping_rounds: int = Field(default=50, ge=1)
    fixed: dict[str, int | float] = Field(default_factory=lambda: dict(FIXED_CONFIGURATION))


class Thresholds(_Frozen):
    healthy: float = HEALTHY
    at_risk: float = AT_RISK
    churn_critical: float = 0.8
    churn_high: float = 0.6
    churn_medium: float = 0.4
    top_k: int = Field(default=500, ge=1)

    @model_validator(mode="after")
    def _ordered(self) -> Thresholds:
        if not self.at_risk < self.healthy:
            raise ValueError("at_risk must be below healthy")
        if not self.churn_medium < self.churn_high < self.churn_critical:
            raise ValueError("churn thresholds must rise: medium < high < critical")
        return self


class ExperimentConfig(_Frozen):
    """Everything a training run needs besides the data."""

    name: str
    feature_service: str
    health_service: str
    horizon_days: int = Field(ge=1)
    cadence: Literal["daily", "weekly", "monthly"]
    holdout_share: float = Field(gt=0, lt=1)
    folds: int = Field(ge=2)
    # the folds validate on the dates after this share of the tree window (each fold's model
    # learns from at least that share; see training.split.time_folds)
    validate_from: float = Field(default=0.5, ge=0, lt=1)
    calibration_share: float = Field(gt=0, lt=0.5)
    tuning: Tuning
    thresholds: Thresholds = Thresholds()

    @field_validator("feature_service", "health_service")
    @classmethod
    def _defined(cls, name: str) -> str:
        if name not in SERVICES:
            raise ValueError(f"no feature service {name!r}; defined: {sorted(SERVICES)}")
        return name


def load_experiment(path: Path) -> ExperimentConfig:
    """Parse an experiment YAML; errors name the file and the offending field."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as err:
        raise ValueError(f"cannot read experiment {path}: {err}") from err
    try:
        return ExperimentConfig.model_validate(raw)
    except ValueError as err:
        raise ValueError(f"experiment {path} is invalid: {err}") from err
