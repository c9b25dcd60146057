"""The training job: a short pipeline over the steps' modules.

Fit and evaluate on one time split (:mod:`training.evaluation`), check and fit the deployed
refit (:mod:`training.refit`), then record both models in MLflow and gate them
(:mod:`training.tracking`, :mod:`training.registry`). Nothing here reads settings: the caller
passes the training frame (``wedsync_cs.feature_jobs.training_set``), the optional truth file,
the tracking URI and the artifact root.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from feature_repo.definitions import service_columns
from training.config import ExperimentConfig, Tuning
from training.dataset import TrainingWindow
from training.evaluation import evaluate_holdout, fit_models, health_inputs
from training.models import feature_matrix
from training.refit import RefitCheck, deployed_fit, refit_check
from training.registry import RegisteredVersion
from training.timing_job import TimingResult, record_timing
from training.tracking import (
    RunContext,
    flatten,
    holdout_identity,
    raw_fingerprint,
    record_runs,
    training_digest,
)
from training.truth import join_truth
from training.tuning import TuningResult

log = logging.getLogger(__name__)


def with_overrides(
    cfg: ExperimentConfig, trials: int | None = None, time_budget: float | None = None
) -> ExperimentConfig:
    """The experiment with the command line's tuning budget, validated like the YAML."""
    given = {"trials": trials, "time_budget_seconds": time_budget}
    update = {k: v for k, v in given.items() if v is not None}
    if not update:
        return cfg
    tuning = Tuning.model_validate({**cfg.tuning.model_dump(), **update})
    return cfg.model_copy(update={"tuning": tuning})


# -- the job ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class SplitSpan:
    rows: int
    first: pd.Timestamp
    last: pd.Timestamp


@dataclass(frozen=True)
class TrainResult:
    """What a training run produced; the CLI prints it, tests inspect it."""

    config: ExperimentConfig
    rows: int
    suppliers: int
    dropped_without_features: int
    splits: dict[str, SplitSpan]
    tuning: TuningResult
    evaluation: pd.DataFrame
    evaluated_rows: int
    evaluated_positives: int
    truth_source: str | None
    truth_note: str | None
    rows_without_truth: int
    holdout_rows_without_truth: int
    health_relearned: bool
    health_holdout_log_loss: dict[str, float]
    health_calibration_log_loss: dict[str, float]
    bands: pd.DataFrame
    bands_ordered: bool
    families: pd.Series
    holdout_id: str
    train_until: pd.Timestamp | None
    churn: RegisteredVersion
    health: RegisteredVersion
    timing: TimingResult
    tracking_uri: str
    artifact_root: Path
    window: TrainingWindow | None
    refit_check: RefitCheck | None
    refit_splits: dict[str, SplitSpan]


def _check_metrics(check: RefitCheck | None) -> dict[str, float]:
    if check is None:
        return {}
    return {
        f"refit_check/{fit}/{metric}": float(value)
        for fit, row in check.table.iterrows()
        for metric, value in row.items()
    }


def _window_params(window: TrainingWindow) -> dict[str, str]:
    h = window.history
    return {
        "window.history_start": str(h.start),
        "window.first_signup": str(h.first_signup),
        "window.accounts_older_than_history": str(h.signed_up_before),
        "window.first_cancellation": str(h.first_cancellation),
        "window.rows_left_out": str(window.rows_left_out),
    }


def _span(stamps: pd.Series, mask: np.ndarray) -> SplitSpan:
    s = stamps[mask]
    return SplitSpan(rows=int(mask.sum()), first=s.min(), last=s.max())


def _span_params(prefix: str, spans: dict) -> dict[str, str]:
    """MLflow parameters of named row spans: ``<prefix>.<name>.rows|from|to``."""
    return {
        f"{prefix}.{name}.{key}": str(value)
        for name, span in spans.items()
        for key, value in (
            ("rows", span.rows),
            ("from", f"{span.first:%Y-%m-%d}"),
            ("to", f"{span.last:%Y-%m-%d}"),
        )
    }


def run_training(
    frame: pd.DataFrame,
    cfg: ExperimentConfig,
    *,
    raw: Path,
    tracking_uri: str,
    artifact_root: Path,
    train_until: pd.Timestamp | None = None,
    threads: int = 2,
    window: TrainingWindow | None = None,
    truth_path: Path | None = None,
) -> TrainResult:
    """Fit, evaluate, explain, refit on every row, record and gate, on one training frame.

    Args:
        frame: ``supplier_id``, ``event_timestamp`` (UTC), ``label`` and the columns of the
            experiment's churn and health services, every label observed; it may also hold the
            current champions' columns, with which the promotion gate scores them.
        raw: the raw folder the frame comes from (fingerprinted).
        truth_path: true churn probabilities of the rows (a simulator's ``truth.parquet``):
            the evaluation's ceiling, and the rows it is measured on.
        window: the observation window that chose the frame's rows (recorded and printed).
    """
    frame = frame.sort_values(["event_timestamp", "supplier_id"], kind="stable")
    has_features = frame["health_score"].notna().to_numpy()
    dropped = int((~has_features).sum())
    if dropped:
        log.warning("%d training rows have no feature row and are left out", dropped)
    frame = frame[has_features].reset_index(drop=True)
    stamps = pd.to_datetime(frame["event_timestamp"], utc=True)

    truth, note = None, None
    if truth_path is not None:
        truth = join_truth(frame, pd.read_parquet(truth_path), str(truth_path))
        if truth.label_mismatches:
            note = (
                f"{truth.label_mismatches:,} rows' truth labels differ from the training labels "
                f"(truth simulated for another horizon?): no ceiling"
            )
        elif not truth.matched.any():
            note = (
                "no truth row falls on a training instant (truth is estimated at week "
                "boundaries of the simulation; weekly snapshots are Mondays 00:00 UTC): "
                "no ceiling"
            )
        if note:
            log.warning(note)

    log.info("fitting on %d rows (%d suppliers)", len(frame), frame["supplier_id"].nunique())
    models = fit_models(frame, service_columns(cfg.feature_service), cfg, threads)
    split = models.churn.split
    evaluation = evaluate_holdout(frame, models, cfg, truth)
    X = feature_matrix(frame, models.columns)
    y = frame["label"].to_numpy(int)
    log.info("refit check on the later half of the holdout")
    check = refit_check(X, y, stamps, evaluation.rows, models.churn, cfg, threads)
    log.info("refitting on all %d labelled rows", len(frame))
    factors, segment = health_inputs(frame)
    deployed = deployed_fit(X, y, stamps, factors, segment, models.churn, cfg, threads)
    del X, factors, segment
    usable = truth is not None and truth.usable
    fingerprint = raw_fingerprint(raw)
    holdout_id = holdout_identity(fingerprint, cfg, stamps[evaluation.rows], usable)
    splits = {
        "trees": _span(stamps, split.trees),
        "calibration": _span(stamps, split.calibration),
        "holdout": _span(stamps, split.holdout),
    }
    refit_splits = {
        "trees": _span(stamps, deployed.churn.split.trees),
        "calibration": _span(stamps, deployed.churn.split.calibration),
    }
    params = {
        **flatten(cfg.model_dump(), "experiment."),
        "data.raw": str(Path(raw).resolve()),
        "data.rows": str(len(frame)),
        "data.suppliers": str(frame["supplier_id"].nunique()),
        "data.first_snapshot": f"{stamps.min():%Y-%m-%d %H:%M}",
        "data.last_snapshot": f"{stamps.max():%Y-%m-%d %H:%M}",
        "data.train_until": "end of data" if train_until is None else f"{train_until}",
        "data.truth": str(truth_path) if usable else "none",
        "data.evaluated_rows": str(int(evaluation.rows.sum())),
        **_span_params("split", splits),
        **_span_params("refit", refit_splits),
        **(_window_params(window) if window is not None else {}),
    }
    ctx = RunContext(
        raw=Path(raw),
        fingerprint=fingerprint,
        holdout_id=holdout_id,
        train_until=train_until,
        params=params,
        dataset_digest=training_digest(frame, fingerprint),
        metrics=_check_metrics(check),
    )
    churn, health = record_runs(
        frame, models, deployed, evaluation, cfg, ctx, tracking_uri, artifact_root, threads
    )
    timing = record_timing(
        frame,
        models,
        evaluation,
        cfg,
        raw=Path(raw),
        holdout_id=holdout_id,
        tracking_uri=tracking_uri,
        artifact_root=artifact_root,
        threads=threads,
    )
    missing = (~truth.matched) if truth is not None else np.zeros(len(frame), bool)
    return TrainResult(
        config=cfg,
        rows=len(frame),
        suppliers=int(frame["supplier_id"].nunique()),
        dropped_without_features=dropped,
        splits=splits,
        tuning=models.churn.tuning,
        evaluation=evaluation.table,
        evaluated_rows=int(evaluation.rows.sum()),
        evaluated_positives=int(evaluation.y.sum()),
        truth_source=str(truth_path) if truth_path is not None else None,
        truth_note=note,
        rows_without_truth=int(missing.sum()) if truth is not None else 0,
        holdout_rows_without_truth=int((missing & split.holdout).sum()),
        health_relearned=models.health.model.relearned,
        health_holdout_log_loss=evaluation.health_log_loss,
        health_calibration_log_loss=models.health.calibration_log_loss,
        bands=evaluation.bands,
        bands_ordered=evaluation.bands_ordered,
        families=evaluation.family_importance,
        holdout_id=holdout_id,
        train_until=train_until,
        churn=churn,
        health=health,
        timing=timing,
        tracking_uri=tracking_uri,
        artifact_root=Path(artifact_root),
        window=window,
        refit_check=check,
        refit_splits=refit_splits,
    )
