"""MLflow tracking and the model registry: experiments, registered models and the promotion gate.

Models are addressed by alias (``models:/churn@champion``). The alias moves only when a new
version beats the current champion on the same holdout; the decision and its reason are logged
to the run and kept as tags on the version. A champion evaluated on another holdout (new data,
another ``--train-until``) is scored again on the new version's holdout before they are
compared; one that cannot be scored there keeps its alias.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import mlflow
from mlflow import MlflowClient
from mlflow.entities.model_registry import ModelVersion

# The registered models' names.
CHURN_MODEL: Final = "churn"
HEALTH_MODEL: Final = "health_calibration"

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


def version_run_id(version: ModelVersion) -> str | None:
    """The run a registered version came from (its ``run_id``, or the tag we set on it)."""
    return version.run_id or version.tags.get("run_id")


def champion_services(client: MlflowClient, names: tuple[str, ...]) -> list[str]:
    """The feature services the current champions of ``names`` were trained on (their runs'
    ``feature_service`` and ``health_service`` tags), so a new run can score them on its own
    holdout; models without a champion add none."""
    services: list[str] = []
    for name in names:
        try:
            version = client.get_model_version_by_alias(name, CHAMPION)
        except mlflow.exceptions.MlflowException:
            continue
        run_id = version_run_id(version)
        if not run_id:
            continue
        tags = client.get_run(run_id).data.tags
        services += [tags[k] for k in ("feature_service", "health_service") if k in tags]
    return list(dict.fromkeys(services))


@dataclass(frozen=True)
class Promotion:
    promoted: bool
    reason: str
    version: str
    previous_champion: str | None


@dataclass(frozen=True)
class ChampionScore:
    """The champion's metric on the new version's holdout, or ``None`` with the reason it
    cannot be scored there; ``note`` qualifies a score (e.g. its training overlaps the holdout).
    """

    value: float | None
    note: str = ""


# Scores a registered version (the current champion) on the holdout of the version at the gate.
ChampionScorer = Callable[[ModelVersion], ChampionScore]


def promote_if_better(
    client: MlflowClient,
    name: str,
    version: str,
    metric: str,
    value: float,
    higher_is_better: bool,
    holdout_id: str,
    rescore: ChampionScorer | None = None,
) -> Promotion:
    """Move the champion alias to ``version`` when it beats the champion on the same holdout.

    Args:
        metric, value: the comparison metric of the new version on the holdout.
        holdout_id: names the holdout (e.g. data fingerprint and dates). A champion evaluated
            on this holdout is compared by its recorded metric.
        rescore: scores a champion evaluated on another holdout on this one. Without it, or
            when it cannot score the champion, the champion keeps its alias: a new version is
            never promoted over a champion it was not compared with.
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
        previous = str(current.version)
        tags = current.tags
        if tags.get("holdout_id") == holdout_id and f"holdout_{metric}" in tags:
            champion, where = ChampionScore(float(tags[f"holdout_{metric}"])), ""
        else:
            champion = rescore(current) if rescore is not None else ChampionScore(None)
            where = " (re-scored on this holdout" + (f"; {champion.note}" if champion.note else "")
            where += ")"
        if champion.value is None:
            promoted = False
            reason = (
                f"champion v{previous} was evaluated on another holdout and cannot be scored on "
                f"this one ({champion.note or 'no way to score it here'}): v{version} is "
                "registered, not promoted"
            )
        else:
            old = champion.value
            promoted = value > old if higher_is_better else value < old
            reason = (
                f"v{version} {metric} {value:.5f} "
                f"{'beats' if promoted else 'does not beat'} champion v{previous} {old:.5f}{where}"
            )
            if where:
                client.set_model_version_tag(
                    name, version, f"champion_v{previous}_holdout_{metric}", str(old)
                )
    if promoted:
        client.set_registered_model_alias(name, CHAMPION, version)
    client.set_model_version_tag(name, version, "promotion", reason)
    return Promotion(
        promoted=promoted, reason=reason, version=str(version), previous_champion=previous
    )
