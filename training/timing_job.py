"""The churn-timing model's part of a training run: fit on the churn model's split, measure
its concordance on the holdout against the churn score as a ranking, refit on every row, log
one MLflow run, register ``churn_timing`` and gate it on the concordance index.

No information from after a split's end reaches it: the tree rows' times are censored at the
calibration split's start, the calibration rows' at the holdout's start; only the holdout and
the deployed refit follow suppliers to the end of the data.
"""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import numpy as np
import pandas as pd
from scipy.stats import spearmanr

from training.config import ExperimentConfig
from training.evaluation import Evaluation, TrainedModels
from training.registry import (
    ChampionScore,
    configure,
    ensure_experiment,
    promote_if_better,
)
from training.timing import (
    MAX_DAYS,
    TIMING_MODEL,
    TimingModel,
    concordance_index,
    event_times,
    fit_timing,
    read_timing_model,
    refit_timing,
    write_timing_model,
)
from training.tracking import log_model_folder

log = logging.getLogger(__name__)
TIMING_METRIC: Final = "c_index"


@dataclass(frozen=True)
class TimingResult:
    """The timing model's holdout figures and its registration."""

    c_index: float
    baseline_c_index: float
    rank_agreement: float
    holdout_rows: int
    holdout_events: int
    dated_share: float
    scale: float
    rounds: int
    version: str
    run_id: str
    promoted: bool
    promotion: str


def data_end(raw: Path) -> pd.Timestamp:
    """The end of the export's last day of data (midnight UTC after it)."""
    from features.feature_table import connect, data_span

    con = connect(Path(raw))
    try:
        _, last = data_span(con)
    finally:
        con.close()
    return pd.Timestamp(last, tz="UTC") + pd.Timedelta(days=1)


def record_timing(
    frame: pd.DataFrame,
    models: TrainedModels,
    evaluation: Evaluation,
    cfg: ExperimentConfig,
    *,
    raw: Path,
    holdout_id: str,
    tracking_uri: str,
    artifact_root: Path,
    threads: int = 2,
) -> TimingResult:
    from training.models import feature_matrix

    cancellations = pd.read_parquet(Path(raw) / "cancellations.parquet")
    end = data_end(raw)
    stamps = pd.to_datetime(frame["event_timestamp"], utc=True).reset_index(drop=True)
    suppliers = frame["supplier_id"].astype(str).reset_index(drop=True)
    split = models.churn.split
    X = feature_matrix(frame, models.columns).reset_index(drop=True)
    hold = evaluation.rows

    time = np.zeros(len(frame))
    event = np.zeros(len(frame), dtype=bool)
    for rows, until in (
        (split.trees, stamps[split.calibration].min()),
        (split.calibration, stamps[split.holdout].min()),
        (split.holdout, end),
    ):
        time[rows], event[rows] = event_times(stamps[rows], suppliers[rows], cancellations, until)
    fit = fit_timing(X, time, event, split.trees, split.calibration, threads)
    hold_frame = frame[hold]
    median = fit.median_days(hold_frame)
    c_index = concordance_index(time[hold], event[hold], -median)
    churn_p = models.churn.model.predict(hold_frame)
    baseline = concordance_index(time[hold], event[hold], churn_p)
    agreement = float(spearmanr(churn_p, -median).statistic) if hold.sum() > 2 else float("nan")
    log.info("churn timing: holdout c-index %.4f (churn score %.4f)", c_index, baseline)

    full_time, full_event = event_times(stamps, suppliers, cancellations, end)
    deployed = refit_timing(X, full_time, full_event, fit, threads)

    def rescore(current) -> ChampionScore:
        try:
            with tempfile.TemporaryDirectory(prefix="cs-timing-") as tmp:
                import mlflow

                folder = mlflow.artifacts.download_artifacts(
                    current.tags.get("evaluation_fit_uri", current.source), dst_path=tmp
                )
                champion = read_timing_model(Path(folder), threads)
            risk = -champion.median_days(hold_frame)
        except Exception as err:  # a champion of other features or files
            return ChampionScore(None, f"cannot be scored here: {err}")
        return ChampionScore(concordance_index(time[hold], event[hold], risk))

    client = configure(tracking_uri)
    experiment = ensure_experiment(client, TIMING_MODEL, artifact_root)
    import mlflow

    with (
        tempfile.TemporaryDirectory(prefix="cs-timing-") as tmp,
        mlflow.start_run(experiment_id=experiment, run_name=f"{cfg.name}-timing") as run,
    ):
        mlflow.set_tags({"feature_service": cfg.feature_service, "holdout_id": holdout_id})
        mlflow.log_params(
            {
                "distribution": "normal",
                "scale": fit.scale,
                "rounds": fit.rounds,
                "max_days": MAX_DAYS,
                "data.end": f"{end:%Y-%m-%d}",
            }
        )
        dated = float(np.mean(median <= MAX_DAYS)) if len(median) else float("nan")
        mlflow.log_metrics(
            {
                "holdout/c_index": c_index,
                "holdout/c_index_churn_score": baseline,
                "holdout/rank_agreement_with_churn": agreement,
                "holdout/events": int(event[hold].sum()),
                "holdout/rows": int(hold.sum()),
                "holdout/dated_share": dated,
            }
        )
        uris = {
            label: _log(client, model, label, run.info.run_id, experiment, Path(tmp))
            for label, model in (("", deployed), ("_evaluation_fit", fit))
        }
        version = mlflow.register_model(
            uris[""],
            TIMING_MODEL,
            tags={"run_id": run.info.run_id, "evaluation_fit_uri": uris["_evaluation_fit"]},
        )
        promotion = promote_if_better(
            client,
            TIMING_MODEL,
            str(version.version),
            TIMING_METRIC,
            c_index,
            True,
            holdout_id,
            rescore,
        )
        mlflow.set_tags(
            {
                "model_version": str(version.version),
                "promoted": str(promotion.promoted).lower(),
                "promotion": promotion.reason,
            }
        )
    return TimingResult(
        c_index=c_index,
        baseline_c_index=baseline,
        rank_agreement=agreement,
        holdout_rows=int(hold.sum()),
        holdout_events=int(event[hold].sum()),
        dated_share=dated,
        scale=fit.scale,
        rounds=fit.rounds,
        version=str(version.version),
        run_id=run.info.run_id,
        promoted=promotion.promoted,
        promotion=promotion.reason,
    )


def _log(client, model: TimingModel, label: str, run_id: str, experiment: str, work: Path) -> str:
    folder = write_timing_model(model, work / f"timing{label}")
    return log_model_folder(
        client,
        folder,
        f"{TIMING_MODEL}{label}",
        "churn_timing",
        run_id,
        experiment,
        "xgboost-ubj+json",
    )
