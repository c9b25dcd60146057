"""MLflow tracking and the model registry: experiments, registered models and the promotion gate.

Models are addressed by alias (``models:/churn@champion``). The alias moves only when a new
version beats the current champion on the same holdout; the decision and its reason are logged
to the run and kept as tags on the version. A champion evaluated on another holdout (new data,
another ``--train-until``) is scored again on the new version's holdout before they are
compared; one that cannot be scored there keeps its alias.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import mlflow
import numpy as np
import pandas as pd
from mlflow import MlflowClient
from mlflow.entities.model_registry import ModelVersion
from sklearn.metrics import log_loss

from training.health_model import health_inputs
from training.metrics import EPS
from training.model_files import (
    Champions,
    ChurnModel,
    HealthCalibration,
    read_churn_model,
    read_health_model,
)
from training.model_names import CHAMPION, CHURN_MODEL, HEALTH_MODEL, version_run_id
from training.timing import TIMING_MODEL, read_timing_model

log = logging.getLogger(__name__)

# The registered models' names and the champion alias (training.model_names, re-exported).
# Both models are promoted on holdout log loss: a proper scoring rule, so it rewards ranking and
# calibration together; CS acts on the calibrated probability (risk levels, LTV at risk), not on
# the order alone, which is all PR-AUC sees.
PROMOTION_METRIC: Final = "log_loss"
# The registered files are the refit on every labelled row; the evaluation fit is logged beside
# them (``<model>_evaluation_fit``) and named in this version tag, so that a later gate compares
# evaluation fits on its holdout.
EVALUATION_SUFFIX: Final = "_evaluation_fit"
EVALUATION_FIT_TAG: Final = "evaluation_fit_uri"


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


@dataclass(frozen=True)
class RegisteredVersion:
    """One registered model version, the run that produced it, and the gate's decision."""

    name: str
    version: str
    run_id: str
    model_uri: str
    artifact_uri: str
    model_location: str
    promotion: Promotion


def load_churn_model(uri: str, threads: int = 2) -> ChurnModel:
    """Download a logged churn model (``models:/churn/3``, ``models:/churn@champion``)."""
    with tempfile.TemporaryDirectory(prefix="cs-churn-") as tmp:
        return read_churn_model(
            Path(mlflow.artifacts.download_artifacts(uri, dst_path=tmp)), threads
        )


def load_health_model(uri: str) -> HealthCalibration:
    """Download a logged health model (``models:/health_calibration/2``, ...)."""
    with tempfile.TemporaryDirectory(prefix="cs-health-") as tmp:
        return read_health_model(Path(mlflow.artifacts.download_artifacts(uri, dst_path=tmp)))


def load_champions(tracking_uri: str, threads: int = 2) -> Champions:
    """Download ``models:/churn@champion`` and ``models:/health_calibration@champion``.

    Raises:
        LookupError: a model has no champion yet (train first).
    """
    client = configure(tracking_uri)
    versions, runs = {}, {}
    for name in (CHURN_MODEL, HEALTH_MODEL):
        try:
            found = client.get_model_version_by_alias(name, CHAMPION)
            versions[name], runs[name] = str(found.version), found.run_id
        except mlflow.exceptions.MlflowException as err:
            raise LookupError(
                f"no {name}@{CHAMPION} in the MLflow registry at {tracking_uri}: run "
                "`wedsync-cs train` first"
            ) from err
    timing, timing_version, timing_run = None, None, None
    try:  # optional: homes trained before the timing model have none
        found = client.get_model_version_by_alias(TIMING_MODEL, CHAMPION)
    except mlflow.exceptions.MlflowException:
        found = None
    if found is not None:
        timing_version, timing_run = str(found.version), found.run_id
        with tempfile.TemporaryDirectory(prefix="cs-timing-") as tmp:
            folder = mlflow.artifacts.download_artifacts(
                f"models:/{TIMING_MODEL}/{timing_version}", dst_path=tmp
            )
            timing = read_timing_model(Path(folder), threads)
    return Champions(
        timing=timing,
        timing_version=timing_version,
        timing_run_id=timing_run,
        churn=load_churn_model(f"models:/{CHURN_MODEL}/{versions[CHURN_MODEL]}", threads),
        health=load_health_model(f"models:/{HEALTH_MODEL}/{versions[HEALTH_MODEL]}"),
        churn_version=versions[CHURN_MODEL],
        health_version=versions[HEALTH_MODEL],
        churn_run_id=runs[CHURN_MODEL],
        health_run_id=runs[HEALTH_MODEL],
    )


def champion_scorer(
    client,
    name: str,
    hold: pd.DataFrame,
    y: np.ndarray,
    holdout_start: pd.Timestamp,
    threads: int = 2,
) -> ChampionScorer:
    """Scores a registered version of ``name`` on this run's holdout rows ``hold`` (log loss).

    A champion whose features this training set lacks (another feature service) cannot be
    scored. One whose training labels reach into the holdout has seen some of its outcomes: it
    is still scored, and the note says its figure is optimistic (the gate then favours it).
    """

    def score(version) -> ChampionScore:
        try:
            return _score(version)
        except Exception as err:  # the champion keeps its alias; the reason names the error
            log.warning("cannot score %s v%s on this holdout: %s", name, version.version, err)
            return ChampionScore(None, f"{type(err).__name__}: {err}")

    def _score(version) -> ChampionScore:
        # like for like: the champion's evaluation fit, when it was logged (older versions were
        # their own evaluation fit)
        evaluation_uri = (version.tags or {}).get(EVALUATION_FIT_TAG)
        uri = evaluation_uri or f"models:/{name}/{version.version}"
        if name == CHURN_MODEL:
            churn = load_churn_model(uri, threads=threads)
            missing = sorted(set(churn.columns) - set(hold.columns))
            if missing:
                return ChampionScore(
                    None, f"it reads {len(missing)} features this training set lacks: {missing}"
                )
            p, config = churn.predict(hold), churn.config
        else:
            health = load_health_model(uri)
            factors, segment = health_inputs(hold)
            p, config = health.model.churn_probability(factors, segment), health.config
        value = float(log_loss(y, np.clip(p, EPS, 1 - EPS), labels=[0, 1]))
        run_id = version_run_id(version)
        params = client.get_run(run_id).data.params if run_id else {}
        window = "split.calibration.to" if evaluation_uri else "refit.calibration.to"
        fitted_to = params.get(window, params.get("split.calibration.to"))
        if fitted_to is None:
            return ChampionScore(value, "its training window is not recorded")
        labels_end = pd.Timestamp(fitted_to, tz="UTC") + pd.Timedelta(days=config.horizon_days)
        if labels_end >= holdout_start:
            return ChampionScore(
                value,
                f"its training labels reach {labels_end:%Y-%m-%d}, into this holdout, so its "
                "figure is optimistic",
            )
        return ChampionScore(value)

    return score


def register_and_gate(
    client,
    name: str,
    model_uri: str,
    run_id: str,
    artifact_uri: str,
    value: float,
    fingerprint: str,
    holdout_id: str,
    rescore: ChampionScorer,
    evaluation_uri: str,
) -> RegisteredVersion:
    """Register the deployed refit at ``model_uri``, tagged with its evaluation fit's URI (what
    a later gate re-scores), and gate it."""
    version = mlflow.register_model(
        model_uri,
        name,
        tags={
            "run_id": run_id,
            "raw_fingerprint": fingerprint,
            EVALUATION_FIT_TAG: evaluation_uri,
        },
    )
    promotion = promote_if_better(
        client, name, version.version, PROMOTION_METRIC, value, False, holdout_id, rescore
    )
    mlflow.set_tags(
        {
            "model_version": str(version.version),
            "promoted": str(promotion.promoted).lower(),
            "promotion": promotion.reason,
        }
    )
    log.info("%s v%s: %s", name, version.version, promotion.reason)
    return RegisteredVersion(
        name=name,
        version=str(version.version),
        run_id=run_id,
        model_uri=model_uri,
        artifact_uri=artifact_uri,
        model_location=mlflow.get_logged_model(
            model_uri.removeprefix("models:/")
        ).artifact_location,
        promotion=promotion,
    )
