"""Tracking a training run in MLflow: one run per model, its parameters, metrics, reports and
files, then registration and the promotion gate (:mod:`training.registry`).

The metrics are the evaluation fit's; the files registered are the deployed refit's, with the
evaluation fit logged beside them (``<model>_evaluation_fit``) for a later gate to compare like
for like. Model files are JSON or UBJSON only (:mod:`training.model_files`).
"""

from __future__ import annotations

import hashlib
import logging
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import pandas as pd

from feature_repo.definitions import service_columns
from features import contract
from training.config import ExperimentConfig
from training.evaluation import Evaluation, TrainedModels
from training.model_files import (
    ChurnModel,
    HealthCalibration,
    write_churn_companions,
    write_health_model,
)
from training.refit import DeployedFit
from training.registry import (
    CHURN_MODEL,
    EVALUATION_SUFFIX,
    HEALTH_MODEL,
    PROMOTION_METRIC,
    ChampionScorer,
    RegisteredVersion,
    champion_scorer,
    configure,
    ensure_experiment,
    register_and_gate,
)
from training.reports import write_artifacts

log = logging.getLogger(__name__)


def raw_fingerprint(raw: Path) -> str:
    """SHA-256 over the bytes of the folder's contract files (the same data, the same print)."""
    digest = hashlib.sha256()
    for spec in contract.TABLES:
        path = Path(raw) / f"{spec.name}.parquet"
        if path.is_file():
            with path.open("rb") as f:
                digest.update(spec.name.encode() + hashlib.file_digest(f, "sha256").digest())
    return digest.hexdigest()


def holdout_identity(
    fingerprint: str, cfg: ExperimentConfig, stamps: pd.Series, truth_only: bool
) -> str:
    """Names the evaluated rows: data, cadence, horizon, holdout dates, row count, truth subset.
    Two runs compare their metrics only when this is equal."""
    s = pd.to_datetime(stamps, utc=True)
    return (
        f"{fingerprint[:16]}/{cfg.cadence}/h{cfg.horizon_days}/"
        f"{s.min():%Y-%m-%d}..{s.max():%Y-%m-%d}/{len(s)}rows{'/truth' if truth_only else ''}"
    )


def training_digest(frame: pd.DataFrame, fingerprint: str) -> str:
    """A 32-character digest of the training rows (keys and labels) and the raw data."""
    keys = pd.util.hash_pandas_object(
        frame[["supplier_id", "event_timestamp", "label"]], index=False
    )
    return hashlib.sha256(fingerprint.encode() + keys.to_numpy().tobytes()).hexdigest()[:32]


def flatten(data: dict, prefix: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in data.items():
        if isinstance(value, dict):
            out |= flatten(value, f"{prefix}{key}.")
        else:
            out[f"{prefix}{key}"] = str(value)
    return out


def table_metrics(table: pd.DataFrame) -> dict[str, float]:
    """Every cell of the evaluation table as ``holdout/<model>/<metric>``."""
    return {
        f"holdout/{model}/{metric}": float(value)
        for model, row in table.iterrows()
        for metric, value in row.items()
    }


@dataclass(frozen=True)
class RunContext:
    """What identifies a training run's data, shared by both runs."""

    raw: Path
    fingerprint: str
    holdout_id: str
    train_until: pd.Timestamp | None
    params: dict[str, str]
    dataset_digest: str
    metrics: dict[str, float]


SCHEMA_SAMPLE: Final = 2000


def training_columns(frame: pd.DataFrame, cfg: ExperimentConfig) -> pd.DataFrame:
    """The keys, the label and the experiment's services' columns (a frame may carry more: the
    champions' columns, for the promotion gate)."""
    columns = dict.fromkeys(
        [
            "supplier_id",
            "event_timestamp",
            "label",
            *service_columns(cfg.feature_service),
            *service_columns(cfg.health_service),
        ]
    )
    return frame[[c for c in columns if c in frame.columns]]


def _log_dataset(frame: pd.DataFrame, cfg: ExperimentConfig, ctx: RunContext) -> None:
    """``mlflow.log_input`` of the training set: its name, the raw folder as source, our digest,
    the row count, and the schema of a sample (MLflow would otherwise infer the schema value by
    value over every row, about 80 s per million rows; a sample has the same columns)."""
    import mlflow
    from mlflow.models import infer_signature

    with warnings.catch_warnings():  # file:// resolves to two identical local sources
        warnings.filterwarnings("ignore", message=".*can be interpreted in multiple ways")
        warnings.filterwarnings("ignore", message=".*[Ii]nteger column")
        dataset = mlflow.data.from_pandas(
            frame,
            source=Path(ctx.raw).resolve().as_uri(),
            name=f"{cfg.name}_training_set",
            targets="label",
            digest=ctx.dataset_digest,
        )
        # ``schema`` is a functools.cached_property: a value set first is the one used
        dataset.__dict__["schema"] = infer_signature(frame.head(SCHEMA_SAMPLE)).inputs
        mlflow.log_input(
            dataset,
            context="training",
            tags={"feature_services": f"{cfg.feature_service},{cfg.health_service}"},
        )


def _common_tags(cfg: ExperimentConfig, ctx: RunContext) -> dict[str, str]:
    return {
        "metrics_of": "evaluation_fit",
        "model_files_of": "refit_on_all_labelled_rows",
        "experiment_config": cfg.name,
        "feature_service": cfg.feature_service,
        "health_service": cfg.health_service,
        "raw": str(Path(ctx.raw).resolve()),
        "raw_fingerprint": ctx.fingerprint,
        "holdout_id": ctx.holdout_id,
    }


def _churn_params(models: TrainedModels) -> dict[str, str]:
    tuning = models.churn.tuning
    return {
        **{f"best.{k}": str(v) for k, v in tuning.params.items()},
        "tuning.rounds": str(tuning.rounds),
        "tuning.trials_run": str(tuning.trials_run),
        "tuning.trials_pruned": str(tuning.trials_pruned),
        "tuning.chosen": tuning.chosen,
    }


def _churn_metrics(models: TrainedModels, evaluation: Evaluation) -> dict[str, float]:
    tuning = models.churn.tuning
    return {
        "tuning/fold_log_loss": tuning.fold_log_loss,
        "tuning/fixed_fold_log_loss": tuning.fixed.log_loss,
        **{f"tuning/fold_{i}/log_loss": v for i, v in enumerate(tuning.kept.fold_losses)},
        **{f"tuning/fold_{i}/rounds": v for i, v in enumerate(tuning.kept.fold_rounds)},
        **{f"shap/{fam}/mean_abs": float(v) for fam, v in evaluation.family_importance.items()},
    }


def _health_params(deployed: DeployedFit) -> dict[str, str]:
    model = deployed.health.model
    return {
        "health.relearned": str(model.relearned),
        **{
            f"health.weights.{segment}": ",".join(f"{w:.4f}" for w in weights)
            for segment, weights in model.weights.items()
        },
    }


def _health_metrics(models: TrainedModels, evaluation: Evaluation) -> dict[str, float]:
    return {
        **{f"holdout/health_{k}/log_loss": v for k, v in evaluation.health_log_loss.items()},
        **{
            f"calibration/health_{k}/log_loss": v
            for k, v in models.health.calibration_log_loss.items()
        },
        **{
            f"bands/{r.band}/{m}": float(getattr(r, m))
            for r in evaluation.bands.itertuples()
            for m in ("rows", "churn_rate")
        },
        "bands/ordered": float(evaluation.bands_ordered),
    }


def _log_churn_model(model: ChurnModel, label: str, ctx: RunContext, work: Path) -> str:
    """Log a churn model (the XGBoost flavour: ``model.ubj`` and its companion files)."""
    import mlflow
    import xgboost as xgb

    extra = write_churn_companions(model, work / f"churn_files{label}")
    info = mlflow.xgboost.log_model(
        model.booster,
        name=f"{CHURN_MODEL}{label}",
        model_format="ubj",
        extra_files=[str(p) for p in extra],
        pip_requirements=[f"xgboost=={xgb.__version__}"],
        metadata={"feature_service": model.config.feature_service, "holdout_id": ctx.holdout_id},
    )
    return info.model_uri


def log_model_folder(
    client, folder: Path, name: str, model_type: str, run_id: str, experiment: str, fmt: str
) -> str:
    """Log a model's folder of files as a logged model of its own type; its ``models:/`` URI."""
    import mlflow

    logged = mlflow.initialize_logged_model(
        name=name,
        source_run_id=run_id,
        experiment_id=experiment,
        model_type=model_type,
        tags={"format": fmt},
    )
    client.log_model_artifacts(logged.model_id, str(folder))
    mlflow.finalize_logged_model(logged.model_id, "READY")
    return f"models:/{logged.model_id}"


def _log_health_model(
    client, model: HealthCalibration, label: str, run_id: str, experiment: str, work: Path
) -> str:
    """Log a health model (its JSON files, as a logged model of its own type)."""
    folder = write_health_model(model, work / f"health_model{label}")
    return log_model_folder(
        client, folder, f"{HEALTH_MODEL}{label}", "health_calibration", run_id, experiment, "json"
    )


def record_runs(
    frame: pd.DataFrame,
    models: TrainedModels,
    deployed: DeployedFit,
    evaluation: Evaluation,
    cfg: ExperimentConfig,
    ctx: RunContext,
    tracking_uri: str,
    artifact_root: Path,
    threads: int = 2,
) -> tuple[RegisteredVersion, RegisteredVersion]:
    """One run per model in the experiments ``churn`` and ``health_calibration``; register the
    models, and move each ``champion`` alias only when the new version wins on this holdout.

    The metrics are the evaluation fit's (``models``, tagged ``metrics_of``); the model files
    registered are the deployed refit's (``deployed``), the same configuration on every
    labelled row. The gate compares evaluation fits on one holdout, like for like.
    """
    client = configure(tracking_uri)
    hold = frame[evaluation.rows].reset_index(drop=True)
    holdout_start = pd.to_datetime(hold["event_timestamp"], utc=True).min()

    with tempfile.TemporaryDirectory(prefix="cs-train-") as tmp:
        work = Path(tmp)
        reports = write_artifacts(evaluation, work / "reports")
        runs = (
            (
                CHURN_MODEL,
                "churn_model",
                {},
                _churn_params(models),
                _churn_metrics(models, evaluation),
                {
                    "": deployed.churn.model,
                    EVALUATION_SUFFIX: models.churn.model,
                },
            ),
            (
                HEALTH_MODEL,
                "health_calibrated",
                {"health_relearned": str(deployed.health.model.relearned).lower()},
                _health_params(deployed),
                _health_metrics(models, evaluation),
                {
                    "": HealthCalibration(deployed.health.model, cfg),
                    EVALUATION_SUFFIX: HealthCalibration(models.health.model, cfg),
                },
            ),
        )
        registered = []
        for name, row, tags, params, metrics, fits in runs:
            registered.append(
                _record_run(
                    client,
                    name,
                    frame,
                    cfg,
                    ctx,
                    artifact_root,
                    reports,
                    work,
                    tags=tags,
                    params=params,
                    metrics=metrics,
                    fits=fits,
                    value=float(evaluation.table.loc[row, PROMOTION_METRIC]),
                    rescore=champion_scorer(
                        client, name, hold, evaluation.y, holdout_start, threads
                    ),
                    table=evaluation.table,
                )
            )
    return registered[0], registered[1]


def _record_run(
    client,
    name: str,
    frame: pd.DataFrame,
    cfg: ExperimentConfig,
    ctx: RunContext,
    artifact_root: Path,
    reports: Path,
    work: Path,
    *,
    tags: dict[str, str],
    params: dict[str, str],
    metrics: dict[str, float],
    fits: dict[str, ChurnModel | HealthCalibration],
    value: float,
    rescore: ChampionScorer,
    table: pd.DataFrame,
) -> RegisteredVersion:
    """One model's run: tags, the training set, parameters, metrics, reports, the deployed
    refit and the evaluation fit; then registration and the gate."""
    import mlflow

    experiment = ensure_experiment(client, name, artifact_root)
    suffix = "churn" if name == CHURN_MODEL else "health"
    with mlflow.start_run(experiment_id=experiment, run_name=f"{cfg.name}-{suffix}") as run:
        mlflow.set_tags({**_common_tags(cfg, ctx), **tags})
        _log_dataset(training_columns(frame, cfg), cfg, ctx)
        mlflow.log_params({**ctx.params, **params, "promotion_metric": PROMOTION_METRIC})
        mlflow.log_metrics({**table_metrics(table), **ctx.metrics, **metrics})
        mlflow.log_artifacts(str(reports))
        uris = {
            label: (
                _log_churn_model(fit, label, ctx, work)
                if isinstance(fit, ChurnModel)
                else _log_health_model(client, fit, label, run.info.run_id, experiment, work)
            )
            for label, fit in fits.items()
        }
        return register_and_gate(
            client,
            name,
            uris[""],
            run.info.run_id,
            run.info.artifact_uri,
            value,
            ctx.fingerprint,
            ctx.holdout_id,
            rescore,
            uris[EVALUATION_SUFFIX],
        )
