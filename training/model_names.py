"""The names of the registered models and of the champion alias: a module of its own, so that a
job that only looks a champion up (the outcome monitor) need not import the training stack."""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from mlflow.entities.model_registry import ModelVersion

CHURN_MODEL: Final = "churn"
HEALTH_MODEL: Final = "health_calibration"
CHAMPION: Final = "champion"


def version_run_id(version: ModelVersion) -> str | None:
    """The run a registered version came from (its ``run_id``, or the tag we set on it)."""
    return version.run_id or version.tags.get("run_id")
