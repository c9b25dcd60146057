"""``wedsync-cs monitor drift``: wiring only. The champion's feature rows of two windows of the
offline feature table, its churn probabilities for both, the Evidently report
(:mod:`monitoring.drift`) saved under ``CS_HOME/reports`` and its metrics logged to the
champion's MLflow run.
"""

from __future__ import annotations

import json
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

    thresholds = load_drift_thresholds()
    champions = load_champions(settings.tracking_uri, settings.threads)
    columns = list(champions.churn.columns)
    table = settings.feature_table_path
    if not table.exists():
        raise LookupError(f"no feature table at {table}: run `wedsync-cs score-daily` first")
    if reference is None:
        reference = _training_window(settings.tracking_uri, champions.churn_run_id)
    if current is None:
        stamps = pq.read_table(table, columns=["event_timestamp"]).column(0).to_pandas()
        last = (stamps.max() - pd.Timedelta(days=1)).date()
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
        drift_share=thresholds.max_drifted_share,
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
