"""``wedsync-cs monitor drift``: wiring only. The champion's feature rows of two windows of the
offline feature table, its churn probabilities for both, the Evidently report
(:mod:`monitoring.drift`) saved under ``CS_HOME/reports`` and its metrics logged to the
champion's MLflow run.
"""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.parquet as pq

from wedsync_cs.settings import Settings

CURRENT_DAYS = 30
SEED = 20261203


@dataclass(frozen=True)
class Window:
    first: date
    last: date

    @classmethod
    def parse(cls, text: str) -> Window:
        """``FROM..TO`` (dates, both included).

        Raises:
            ValueError: not two dates in order.
        """
        head, sep, tail = text.partition("..")
        try:
            window = cls(date.fromisoformat(head), date.fromisoformat(tail))
        except ValueError:
            raise ValueError(
                f"a window is FROM..TO as YYYY-MM-DD..YYYY-MM-DD, got {text!r}"
            ) from None
        if not sep or window.first > window.last:
            raise ValueError(f"the window {text!r} ends before it starts")
        return window

    def __str__(self) -> str:
        return f"{self.first}..{self.last}"


@dataclass(frozen=True)
class DriftRun:
    reference: Window
    current: Window
    reference_rows: int
    current_rows: int
    metrics: dict[str, Any]
    report: Path
    max_drifted_share: float
    run_id: str | None

    @property
    def alarm(self) -> bool:
        return self.metrics["drifted_share"] > self.max_drifted_share


def _rows(table: Path, columns: list[str], window: Window, max_rows: int) -> pd.DataFrame:
    """The table's rows stamped inside ``window`` (a row of day d is stamped d+1 00:00 UTC),
    at most ``max_rows`` of them, drawn with a fixed seed."""
    start = pd.Timestamp(window.first + timedelta(days=1), tz="UTC")
    end = pd.Timestamp(window.last + timedelta(days=1), tz="UTC")
    frame = pq.read_table(
        table,
        columns=["supplier_id", "event_timestamp", *columns],
        filters=[("event_timestamp", ">=", start), ("event_timestamp", "<=", end)],
    ).to_pandas()
    if len(frame) > max_rows:
        frame = frame.sample(n=max_rows, random_state=SEED)
    return frame.reset_index(drop=True)


def _training_window(tracking_uri: str, run_id: str | None) -> Window:
    """The rows the champion's trees were fitted on (its run's ``refit.trees`` span)."""
    from mlflow.tracking import MlflowClient

    if run_id is None:
        raise LookupError("the champion has no MLflow run: pass --reference FROM..TO")
    params = MlflowClient(tracking_uri).get_run(run_id).data.params
    try:
        return Window(
            date.fromisoformat(params["refit.trees.from"]),
            date.fromisoformat(params["refit.trees.to"]),
        )
    except KeyError:
        raise LookupError(
            f"the champion's run {run_id} records no training window: pass --reference FROM..TO"
        ) from None


def run_drift(
    settings: Settings,
    reference: Window | None = None,
    current: Window | None = None,
    max_rows: int = 100_000,
) -> DriftRun:
    """Build, save and log the drift report of the champion's columns and predictions.

    Raises:
        LookupError: no champion, or no training window to default the reference to.
        ValueError: a window has no rows, or the thresholds file is wrong.
    """
    import mlflow
    from mlflow.tracking import MlflowClient

    from monitoring.drift import (
        PREDICTION,
        build_drift_report,
        drift_metrics,
        load_drift_thresholds,
    )
    from training.registry import load_champions
    from wedsync_cs.feature_jobs import last_build

    thresholds = load_drift_thresholds()
    champions = load_champions(settings.tracking_uri, settings.threads)
    columns = list(champions.churn.columns)
    table = settings.feature_table_path
    if not table.exists():
        raise LookupError(f"no feature table at {table}: run `wedsync-cs score-daily` first")
    if reference is None:
        reference = _training_window(settings.tracking_uri, champions.churn_run_id)
    if current is None:  # the last day built (its rows are stamped the next midnight)
        last = date.fromisoformat(last_build(settings).last_day)
        current = Window(last - timedelta(days=CURRENT_DAYS - 1), last)
    frames = {}
    for name, window in (("reference", reference), ("current", current)):
        rows = _rows(table, columns, window, max_rows)
        if rows.empty:
            raise ValueError(f"the {name} window {window} has no feature rows")
        rows[PREDICTION] = champions.churn.predict(rows)
        frames[name] = rows
    snapshot = build_drift_report(
        frames["reference"],
        frames["current"],
        [*columns, PREDICTION],
    )
    metrics = drift_metrics(snapshot)
    folder = settings.ensure_home() / "reports"
    folder.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    report = folder / f"drift-{current.last}-{stamp}.html"
    snapshot.save_html(str(report))  # (a Path is silently not written)
    summary = {
        "reference": str(reference),
        "current": str(current),
        "reference_rows": len(frames["reference"]),
        "current_rows": len(frames["current"]),
        "max_drifted_share": thresholds.max_drifted_share,
        **metrics,
    }
    (report.with_suffix(".json")).write_text(json.dumps(summary, indent=2, default=str))
    run_id = champions.churn_run_id
    if run_id is not None:  # the champion's own run: its drift over time, beside its training
        mlflow.set_tracking_uri(settings.tracking_uri)
        client = MlflowClient(settings.tracking_uri)
        at = int(datetime.now(UTC).timestamp() * 1000)
        step = int(current.last.strftime("%Y%m%d"))
        values = {
            "drift.drifted_share": metrics["drifted_share"],
            "drift.drifted_count": metrics["drifted_count"],
            "drift.feature_drifted_share": metrics["feature_drifted_share"],
        }
        if metrics["prediction"] is not None:
            values["drift.prediction_score"] = metrics["prediction"]["score"]
        for key, value in values.items():
            client.log_metric(run_id, key, float(value), timestamp=at, step=step)
        client.log_artifact(run_id, str(report), artifact_path="monitoring")
        client.log_artifact(run_id, str(report.with_suffix(".json")), artifact_path="monitoring")
    return DriftRun(
        reference=reference,
        current=current,
        reference_rows=len(frames["reference"]),
        current_rows=len(frames["current"]),
        metrics=metrics,
        report=report,
        max_drifted_share=thresholds.max_drifted_share,
        run_id=run_id,
    )


@dataclass(frozen=True)
class OutcomesRun:
    as_of: date
    horizon_days: int
    summary: dict[str, Any]
    flags: list[str]
    report: Path | None
    run_id: str | None


def run_outcomes(
    settings: Settings, as_of: date | None = None, horizon_days: int = 30
) -> OutcomesRun:
    """The stored daily predictions at least one horizon old against the cancellations that
    followed (:mod:`monitoring.outcomes`), for the churn model and the calibrated health
    score, overall, per segment and per month; the retrain flags against the champion's
    holdout; saved under ``CS_HOME/reports`` and logged to the champion's MLflow run.

    Without a registered champion (predictions stored by an earlier deployment, say) the
    figures are measured and saved all the same; there is no holdout to compare them with and
    no run to log them to, and the summary says so.

    Raises:
        LookupError: no stored prediction yet.
        ValueError: no stored prediction is a horizon old by ``as_of``.
    """
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    from monitoring.outcomes import (
        DROPPED_ATTR,
        SEGMENT_COLUMNS,
        RankedScores,
        combined_cells,
        load_outcome_thresholds,
        period_codes,
        realised_labels,
        retrain_flags,
        segment_codes,
        with_segments,
    )
    from serving.db.migrate import require_current
    from serving.db.prediction_archive import archived_prediction_history
    from serving.db.prediction_history import stored_day_range
    from training.model_names import CHAMPION, CHURN_MODEL, version_run_id
    from wedsync_cs.database import operational_engine

    thresholds = load_outcome_thresholds()
    seconds: dict[str, float] = {}
    clock = time.perf_counter()

    def stage(name: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        seconds[name] = round(now - clock, 2)
        clock = now

    engine = operational_engine(settings)
    require_current(engine)
    try:
        stored = stored_day_range(engine)
        if stored is None:
            raise LookupError("no stored prediction: run `wedsync-cs score-daily` first")
        oldest, newest = stored
        as_of = as_of or newest
        last_judged = as_of - timedelta(days=horizon_days)
        if last_judged < oldest:
            raise ValueError(
                f"no stored prediction is {horizon_days} days old by {as_of} (stored days "
                f"{oldest} to {newest}); the first judged is "
                f"{oldest + timedelta(days=horizon_days)}"
            )
        # only the days whose label window has passed: the younger rows would be dropped.
        # Each finished day is read from the database once, then from its archived copy
        history, archive = archived_prediction_history(
            engine, settings.prediction_archive_dir, oldest, min(last_judged, newest)
        )
    finally:
        engine.dispose()
    stage("read")
    directory = history.directory
    labelled = realised_labels(history.frame, directory, as_of, horizon_days)
    read_rows = len(history.frame)
    del history  # the unlabelled rows: a year of them is gigabytes
    if labelled.empty:
        raise ValueError(
            f"no stored prediction of {oldest} to {last_judged} has an outcome to judge: every "
            f"one of its {read_rows:,} rows is of a supplier already cancelled"
        )
    dropped = int(labelled.attrs[DROPPED_ATTR])
    labelled = with_segments(labelled, directory)
    stage("label")
    summary: dict[str, Any] = {
        "as_of": str(as_of),
        "horizon_days": horizon_days,
        "stored_days": [str(oldest), str(newest)],
        "days": [str(labelled["day"].min().date()), str(labelled["day"].max().date())],
        "cancelled_before_prediction": dropped,
        "archive": archive.as_dict(),
    }
    keys = {"subscription_tier": "by_tier", "vendor_type": "by_vendor_type"}
    groupings = {keys.get(c, f"by_{c}"): segment_codes(labelled, c) for c in SEGMENT_COLUMNS}
    groupings["by_month"] = period_codes(labelled)

    cells, maps = combined_cells(groupings)  # one cell a (tier, vendor type, hemisphere, month)
    # the measuring needs the labels and scores only: the rest of a year's rows is gigabytes
    scored = labelled[["label", "churn_probability", "health_churn_probability"]]
    del groupings, labelled

    def measure(column: str) -> dict[str, Any]:
        ranked = RankedScores(scored, column)
        return {"overall": ranked.overall()} | ranked.by_cells(cells, maps)

    # the two score columns side by side: numpy's sorts and gathers release the GIL
    with ThreadPoolExecutor(max_workers=2) as pool:
        churn, health = pool.map(measure, ("churn_probability", "health_churn_probability"))
    summary["churn"], summary["health"] = churn, health
    stage("measure")
    client = MlflowClient(tracking_uri=settings.tracking_uri, registry_uri=settings.tracking_uri)
    try:
        run_id = version_run_id(client.get_model_version_by_alias(CHURN_MODEL, CHAMPION))
    except MlflowException:
        run_id = None
    flags: list[str] = []
    if run_id is None:
        summary["champion"] = None
        summary["why_no_flags"] = f"no {CHURN_MODEL}@{CHAMPION} registered to compare with"
    else:
        summary["champion"] = run_id
        logged = client.get_run(run_id).data.metrics
        holdout = {k: logged.get(f"holdout/churn_model/{k}") for k in ("auc", "pr_auc", "brier")}
        if all(v is not None for v in holdout.values()):
            summary["holdout"] = holdout
            flags = retrain_flags(summary["churn"]["overall"], holdout, thresholds)
        else:
            summary["why_no_flags"] = "the champion's run logged no holdout figures"
    summary["retrain_flags"] = flags
    folder = settings.ensure_home() / "reports"
    folder.mkdir(exist_ok=True)
    report = folder / f"outcomes-{as_of}.json"
    summary["seconds"] = seconds
    report.write_text(json.dumps(summary, indent=2, default=str))
    if run_id is not None:
        at = int(datetime.now(UTC).timestamp() * 1000)
        step = int(as_of.strftime("%Y%m%d"))
        overall = summary["churn"]["overall"]
        for key in ("auc", "pr_auc", "brier", "ece"):
            if overall.get(key) is not None:
                client.log_metric(run_id, f"outcomes.{key}", float(overall[key]), at, step)
        client.log_metric(run_id, "outcomes.rows", float(overall["n"]), at, step)
        client.log_artifact(run_id, str(report), artifact_path="monitoring")
    stage("save and log")
    return OutcomesRun(as_of, horizon_days, summary, flags, report, run_id)
