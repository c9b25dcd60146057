"""The model jobs behind ``wedsync-cs train`` and ``predict``: settings, feature store and
printing around :mod:`training.train_job` and :mod:`serving.batch`."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import typer

from serving.db.migrate import redact
from training.config import load_experiment
from wedsync_cs.settings import Settings


def _quiet_mlflow() -> None:
    """No per-file progress bars when MLflow copies a handful of small artifacts."""
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")


def _section(title: str) -> None:
    typer.secho(f"\n{title}", bold=True)


def _print_frame(frame: pd.DataFrame, digits: int = 4) -> None:
    text = frame.to_string(float_format=lambda v: f"{v:.{digits}f}", na_rep="-")
    typer.echo("\n".join(f"  {line}" for line in text.splitlines()))


def train(
    settings: Settings,
    raw: Path,
    experiment: Path,
    *,
    train_until: pd.Timestamp | None = None,
    trials: int | None = None,
    time_budget: float | None = None,
    truth: Path | None = None,
):
    """Build the training set, fit, evaluate, record and gate; print what happened.

    Returns:
        The :class:`training.train_job.TrainResult`.
    """
    from training.train_job import run_training, with_overrides
    from wedsync_cs.feature_jobs import training_set

    cfg = with_overrides(load_experiment(experiment), trials, time_budget)
    settings.ensure_home()
    _quiet_mlflow()
    typer.secho(
        f"Training {cfg.name} on {raw} ({cfg.cadence} rows, {cfg.horizon_days}-day horizon, "
        f"{cfg.tuning.trials} trials or {cfg.tuning.time_budget_seconds:.0f} s)",
        bold=True,
    )
    # the champions' services too: the promotion gate scores them on this run's holdout
    from feature_repo.definitions import SERVICES
    from training.registry import CHURN_MODEL, HEALTH_MODEL, champion_services, configure

    champions = champion_services(configure(settings.tracking_uri), (CHURN_MODEL, HEALTH_MODEL))
    services = (cfg.feature_service, cfg.health_service, *(s for s in champions if s in SERVICES))
    data = training_set(
        settings,
        raw,
        tuple(dict.fromkeys(services)),
        cfg.cadence,
        cfg.horizon_days,
        until=train_until,
    )
    result = run_training(
        data.frame,
        cfg,
        truth_path=truth,
        window=data.window,
        raw=raw,
        tracking_uri=settings.tracking_uri,
        artifact_root=settings.mlflow_artifact_root,
        train_until=train_until,
        threads=settings.threads,
    )
    print_training(result)
    return result


def print_training(result) -> None:
    """The run's summary: data, splits, the evaluation table, bands, SHAP, promotions."""
    r = result
    _section("Data")
    until = "the end of the data"
    if r.train_until is not None:
        until = f"{r.train_until:%Y-%m-%d %H:%M} UTC"
    typer.echo(f"  {r.rows:,} rows of {r.suppliers:,} suppliers, labels observed by {until}")
    if r.window is not None:
        typer.echo(f"  observation window: {r.window.describe()}")
        warning = r.window.history.warning()
        if warning:
            typer.secho(f"  note: {warning}", fg=typer.colors.YELLOW)
    if r.dropped_without_features:
        typer.echo(f"  {r.dropped_without_features:,} rows without a feature row left out")
    typer.echo("  evaluation fit (decides the promotion):")
    for name, span in r.splits.items():
        typer.echo(
            f"    {name:<12} {span.rows:>9,} rows  {span.first:%Y-%m-%d} .. {span.last:%Y-%m-%d}"
        )
    typer.echo("  deployed refit on every labelled row (registered):")
    for name, span in r.refit_splits.items():
        typer.echo(
            f"    {name:<12} {span.rows:>9,} rows  {span.first:%Y-%m-%d} .. {span.last:%Y-%m-%d}"
        )
    t = r.tuning
    typer.echo(f"  tuning: {t.trials_run} trials ({t.trials_pruned} pruned) on time-ordered folds")
    for label, fit in (("best tuned", t.tuned), ("fixed", t.fixed)):
        if fit is None:
            typer.echo(f"    {label:<10} no trial completed within the budget")
            continue
        folds = ", ".join(f"{v:.5f}" for v in fit.fold_losses)
        rounds = ", ".join(str(v) for v in fit.fold_rounds)
        typer.echo(
            f"    {label:<10} fold log loss {fit.log_loss:.5f} (folds {folds}), "
            f"rounds {rounds}: {fit.params}"
        )
    typer.echo(f"    kept the {t.chosen} configuration: {t.rounds} rounds")
    if t.rounds < 30:
        typer.secho(
            f"  warning: the kept model has only {t.rounds} rounds: check the folds' rows",
            fg=typer.colors.YELLOW,
        )
    if r.truth_source is None:
        typer.echo("  truth: none found beside the raw folder: no ceiling row")
    else:
        typer.echo(
            f"  truth: {r.truth_source}; {r.rows_without_truth:,} training rows "
            f"({r.holdout_rows_without_truth:,} in the holdout) have no true probability"
        )
        if r.truth_note:
            typer.secho(f"  warning: {r.truth_note}", fg=typer.colors.YELLOW)

    _section(
        f"Holdout evaluation ({r.evaluated_rows:,} rows, {r.evaluated_positives:,} churned; "
        f"holdout id {r.holdout_id})"
    )
    _print_frame(r.evaluation.T)

    if r.refit_check is not None:
        c = r.refit_check
        _section(
            f"Refit check (later half of the holdout, from {c.first:%Y-%m-%d}: {c.rows:,} rows, "
            f"{c.positives:,} churned; the refit's labels end {c.refit_labels_to:%Y-%m-%d})"
        )
        _print_frame(c.table)
        verdict = "at least as good as" if c.refit_not_worse else "WORSE than"
        typer.echo(f"  the refit procedure is {verdict} the evaluation fit on log loss")

    _section("Health model")
    weights = "re-learned" if r.health_relearned else "the brief's"
    typer.echo(f"  serves {weights} weights (chosen on the calibration slice)")
    cal, hold = r.health_calibration_log_loss, r.health_holdout_log_loss
    for key in ("brief_weights", "relearned_weights"):
        typer.echo(
            f"  {key:<18} log loss: calibration slice {cal[key]:.5f}, holdout {hold[key]:.5f}"
        )
    typer.echo("  risk bands on the holdout:")
    _print_frame(r.bands.set_index("band"))
    if not r.bands_ordered:
        typer.secho(
            "  warning: observed churn does not rise from healthy to critical across the bands",
            fg=typer.colors.YELLOW,
        )

    _section("Churn drivers: mean |SHAP| per factor family (log-odds)")
    _print_frame(r.families.rename("mean_abs_shap").to_frame())

    t = r.timing
    _section("Churn timing (survival:aft): predicted churn date")
    typer.echo(
        f"  holdout concordance index {t.c_index:.4f} (the churn score as a ranking: "
        f"{t.baseline_c_index:.4f}) on {t.holdout_rows:,} rows with {t.holdout_events:,} "
        f"cancellations; rank agreement with the churn probability {t.rank_agreement:.3f}; "
        f"{t.dated_share:.1%} of the rows get a date within a year (scale {t.scale}, "
        f"{t.rounds} rounds)"
    )
    verdict = "promoted to champion" if t.promoted else "not promoted"
    typer.echo(f"  churn_timing v{t.version}: {verdict}: {t.promotion}")

    _section("Registry (promotion on holdout log loss)")
    for v in (r.churn, r.health):
        verdict = "promoted to champion" if v.promotion.promoted else "not promoted"
        typer.echo(f"  {v.name} v{v.version}: {verdict}: {v.promotion.reason}")
        typer.echo(f"    models:/{v.name}/{v.version} = {v.model_uri}, run {v.run_id}")
        typer.echo(f"    files: {v.model_location}")
    typer.echo(f"  run artifacts (tables, plots) under {r.artifact_root}")
    typer.echo(f"  MLflow UI: mlflow ui --backend-store-uri {redact(r.tracking_uri)}")


@dataclass(frozen=True)
class PredictSummary:
    out: Path
    rows: int
    statuses: dict[str, int]
    churn_version: str
    health_version: str


def predict(settings: Settings, raw: Path, entities_path: Path, out: Path) -> PredictSummary:
    """Score entity rows with the champion models, point in time; write ``out`` atomically.

    Raises:
        serving.batch.EntitiesError: the entities file is unusable (nothing is written).
        LookupError: no champion model yet.
    """
    from features.raw_reader import load_raw
    from serving.batch import entity_status, predict_entities, read_entities, write_predictions
    from serving.scorer import Scorer
    from training.registry import load_champions
    from wedsync_cs.feature_jobs import point_in_time_reader

    entities = read_entities(entities_path)
    if settings.mlflow_tracking_uri is None and not (settings.mlflow_dir / "mlflow.db").exists():
        raise LookupError(
            f"no MLflow store under {settings.home_dir}: run `wedsync-cs train` first"
        )
    _quiet_mlflow()
    models = load_champions(settings.tracking_uri, settings.threads)
    tables = load_raw(raw)
    status = entity_status(entities, tables["suppliers"], tables["cancellations"])
    scorer = Scorer(models, point_in_time_reader(settings, raw, tables))
    frame = predict_entities(entities, status, scorer)
    write_predictions(frame, out)
    counts = frame["status"].value_counts().to_dict()
    summary = PredictSummary(
        out=Path(out),
        rows=len(frame),
        statuses={k: int(v) for k, v in counts.items()},
        churn_version=models.churn_version,
        health_version=models.health_version,
    )
    typer.echo(
        f"predictions: {summary.rows:,} rows -> {out} (churn v{summary.churn_version}, "
        f"health_calibration v{summary.health_version}); "
        + ", ".join(f"{k} {v:,}" for k, v in sorted(summary.statuses.items()))
    )
    return summary
