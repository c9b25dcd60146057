"""Feature and prediction drift with Evidently: the champion's feature columns and its churn
probability in a reference window (by default the rows the champion was trained on) against a
current one (by default the last 30 days of the feature table).

:func:`build_drift_report` runs Evidently's ``ValueDrift`` on every column with the columns'
types declared (:func:`drift_definition`: the feature catalogue's kinds, so that
low-cardinality counts are not taken as categories); :func:`drift_metrics` extracts what people
and alerts read from it: the share of drifted columns, each column's score, method, threshold
and verdict, and the prediction's. Evidently picks the method by column type and row count;
a p-value method (K-S, chi-square, Z-test, ...) drifts when its value is below the threshold, a
distance (Wasserstein, Jensen-Shannon, PSI, ...) when it is at or above it.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import yaml
from pydantic import BaseModel, ConfigDict, Field

from features.catalog import FEATURES
from monitoring.outcomes import MONITORING_CONFIG

PREDICTION = "churn_probability"


class DriftThresholds(BaseModel):
    """When drift is an alarm: the share of the monitored columns that drifted."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    max_drifted_share: float = Field(gt=0, le=1)


def load_drift_thresholds(path: Path = MONITORING_CONFIG) -> DriftThresholds:
    """The ``drift`` section of the monitoring file.

    Raises:
        ValueError: the file or its ``drift`` section is missing or wrong (named).
    """
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as error:
        raise ValueError(f"cannot read the monitoring thresholds {path}: {error}") from None
    if "drift" not in raw:
        raise ValueError(f"{path} has no drift section")
    try:
        return DriftThresholds.model_validate(raw["drift"])
    except ValueError as error:
        raise ValueError(f"{path}: drift: {error}") from None


def drift_definition(columns: Sequence[str]) -> Any:
    """Evidently's ``DataDefinition`` of ``columns`` (catalogue kinds) and the prediction."""
    with warnings.catch_warnings():  # Evidently's imports warn of its own dependencies' APIs
        warnings.simplefilter("ignore", DeprecationWarning)
        from evidently import DataDefinition

    unknown = [c for c in columns if c not in FEATURES and c != PREDICTION]
    if unknown:
        raise KeyError(f"no catalogue kind for the columns {unknown}")
    categorical = [c for c in columns if c in FEATURES and FEATURES[c][1] == "category"]
    numerical = [c for c in columns if c not in categorical]
    return DataDefinition(numerical_columns=numerical, categorical_columns=categorical)


def _frame(data: pd.DataFrame, columns: Sequence[str]) -> pd.DataFrame:
    out = data[list(columns)].copy()
    for c in columns:
        if c in FEATURES and FEATURES[c][1] == "category":
            out[c] = out[c].astype(object).where(out[c].notna(), None)
        else:
            out[c] = pd.to_numeric(out[c], errors="raise").astype("float64")
    return out


def build_drift_report(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    columns: Sequence[str],
) -> Any:
    """Evidently's drift snapshot of ``columns`` (features and, when present, the prediction)
    of ``current`` against ``reference``: one ``ValueDrift`` per column, with the method
    Evidently picks for the column's type and the rows' count.

    Not the ``DataDriftPreset``: for the same verdicts it computes each column's drift three
    times (its per-column metrics, its column count and the legacy dataset metric) and draws
    plotly subplots for each, about three times as long over the champion's hundred columns
    (benchmarks/README.md). The share of drifted columns is counted by :func:`drift_metrics`
    from the columns' verdicts, as the preset's count would be.

    Raises:
        KeyError: a column is missing from either frame, or has no catalogue kind.
        ValueError: a frame is empty.
    """
    with warnings.catch_warnings():  # Evidently's imports warn of its own dependencies' APIs
        warnings.simplefilter("ignore", DeprecationWarning)
        from evidently import Dataset, Report
        from evidently.metrics import ValueDrift

    for name, frame in (("reference", reference), ("current", current)):
        missing = [c for c in columns if c not in frame.columns]
        if missing:
            raise KeyError(f"the {name} rows lack the columns {missing}")
        if frame.empty:
            raise ValueError(f"the {name} window has no rows")
    definition = drift_definition(columns)
    return Report([ValueDrift(column=c) for c in columns]).run(
        reference_data=Dataset.from_pandas(_frame(reference, columns), data_definition=definition),
        current_data=Dataset.from_pandas(_frame(current, columns), data_definition=definition),
    )


def _is_p_value(method: str) -> bool:
    name = method.lower()
    return "p_value" in name or "p-value" in name or "test" in name


def drift_metrics(snapshot: Any, prediction: str = PREDICTION) -> dict[str, Any]:
    """What the report says, as plain values: ``drifted_share`` and ``drifted_count`` (of the
    columns: counted from their verdicts, or a preset's ``DriftedColumnsCount``), ``columns``
    (each: score, method, threshold, drifted), ``prediction`` (the same for the prediction
    column, None when absent)."""
    columns: dict[str, dict[str, Any]] = {}
    count: dict[str, float] = {}
    for metric in snapshot.dict()["metrics"]:
        config = metric["config"]
        kind = config.get("type", "")
        if kind.endswith("DriftedColumnsCount"):
            count = metric["value"]
        elif kind.endswith("ValueDrift"):
            score = float(metric["value"])
            threshold = float(config["threshold"])
            method = str(config["method"])
            drifted = score < threshold if _is_p_value(method) else score >= threshold
            columns[config["column"]] = {
                "score": score,
                "method": method,
                "threshold": threshold,
                "drifted": bool(drifted),
            }
    if not columns:
        raise ValueError("the snapshot holds no column drift: not a data-drift report")
    features = {c: v for c, v in columns.items() if c != prediction}
    return {
        "drifted_count": int(count.get("count", sum(v["drifted"] for v in columns.values()))),
        "drifted_share": float(
            count.get("share", sum(v["drifted"] for v in columns.values()) / len(columns))
        ),
        "feature_drifted_share": sum(v["drifted"] for v in features.values())
        / max(len(features), 1),
        "columns": features,
        "prediction": columns.get(prediction),
    }
