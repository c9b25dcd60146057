"""MLflow tracking and the model registry: experiments, registered models and the promotion gate.

Models are addressed by alias (``models:/churn@champion``). The alias moves only when a new
version beats the current champion on the same holdout; the decision and its reason are logged
to the run and kept as tags on the version.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import mlflow
from mlflow import MlflowClient

CHAMPION = "champion"


def configure(tracking_uri: str) -> MlflowClient:
    """Point MLflow at ``tracking_uri`` (SQLite file or PostgreSQL) for this process."""
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(tracking_uri)
    return MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)


def ensure_experiment(client: MlflowClient, name: str, artifact_root: Path) -> str:
    """The experiment's id, created with its artifacts under ``artifact_root`` (not ./mlruns)."""
    found = client.get_experiment_by_name(name)
    if found is not None:
        return found.experiment_id
    location = (Path(artifact_root) / name).resolve().as_uri()
    return client.create_experiment(name, artifact_location=location)


@dataclass(frozen=True)
class Promotion:
    promoted: bool
    reason: str
    version: str
    previous_champion: str | None


def promote_if_better(
    client: MlflowClient,
    name: str,
    version: str,
    metric: str,
    value: float,
    higher_is_better: bool,
    holdout_id: str,
) -> Promotion:
    """Move the champion alias to ``version`` when it beats the champion on the same holdout.

    Args:
        metric, value: the comparison metric of the new version on the holdout.
        holdout_id: names the holdout (e.g. data fingerprint and dates); champions evaluated on
            another holdout cannot be compared, and the new version wins by default.
    """
    client.set_model_version_tag(name, version, f"holdout_{metric}", str(value))
    client.set_model_version_tag(name, version, "holdout_id", holdout_id)
    try:
        current = client.get_model_version_by_alias(name, CHAMPION)
    except mlflow.exceptions.MlflowException:
        current = None
    if current is None:
        promoted, reason, previous = True, "no champion yet", None
    else:
        previous = current.version
        tags = current.tags
        if tags.get("holdout_id") != holdout_id or f"holdout_{metric}" not in tags:
            promoted = True
            reason = (
                f"champion v{previous} was evaluated on another holdout; v{version} replaces it"
            )
        else:
            old = float(tags[f"holdout_{metric}"])
            better = value > old if higher_is_better else value < old
            promoted = better
            reason = (
                f"v{version} {metric} {value:.5f} "
                f"{'beats' if better else 'does not beat'} champion v{previous} {old:.5f}"
            )
    if promoted:
        client.set_registered_model_alias(name, CHAMPION, version)
    client.set_model_version_tag(name, version, "promotion", reason)
    return Promotion(
        promoted=promoted, reason=reason, version=str(version), previous_champion=previous
    )
