"""Batch predictions of the champion models for any (supplier, as-of instant) rows.

Pure steps: validate the entity rows, give each a status from the raw suppliers and
cancellations (point in time: what was known at its instant), score the rows that have
features, and assemble the output in the input's order. Loading the champions from the MLflow
registry (JSON and UBJSON files, never pickles) and writing the output file are the IO edges.

Statuses: ``ok``; ``unknown_supplier`` (not in the suppliers table); ``not_active`` (not signed
up yet, or cancelled at or before the instant); ``no_features`` (active, but no feature row at
most 8 days old at the instant, e.g. an instant long after the data ends). Rows that are not
``ok`` keep their place with null predictions.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import xgboost as xgb

from features.catalog import HEALTH_FACTORS
from training.calibration import IsotonicCalibrator
from training.config import ExperimentConfig
from training.explain import explain
from training.health_model import HealthModel
from training.models import feature_matrix
from training.pipeline import calibrated_churn
from training.risk import churn_risk, health_risk

ENTITY_COLUMNS: Final = ("supplier_id", "as_of")
TOP_FACTORS: Final = 3
OUTPUT_SCHEMA: Final = pa.schema(
    [
        ("supplier_id", pa.string()),
        ("as_of", pa.timestamp("us", tz="UTC")),
        ("status", pa.string()),
        ("churn_probability", pa.float64()),
        ("churn_risk", pa.string()),
        ("health_score", pa.float64()),
        ("health_churn_probability", pa.float64()),
        ("health_risk", pa.string()),
        *[(f"top_factor_{k}", pa.string()) for k in range(1, TOP_FACTORS + 1)],
    ]
)

SCORE_COLUMNS: Final = OUTPUT_SCHEMA.names[3:]


class EntitiesError(ValueError):
    """An entities file that cannot be scored; the message names the problem."""


def _is_string(t: pa.DataType) -> bool:
    if pa.types.is_dictionary(t):
        return _is_string(t.value_type)
    return pa.types.is_string(t) or pa.types.is_large_string(t)


def validate_entities(table: pa.Table, name: str = "entities") -> pd.DataFrame:
    """Check the entity rows and return them as ``supplier_id`` (str), ``as_of`` (UTC).

    ``as_of`` must be a time-zone-aware timestamp; other zones are converted to UTC (the same
    instant), naive timestamps are refused because their instant is unknown. Extra columns are
    ignored.

    Raises:
        EntitiesError: a column is missing or of the wrong type, or holds nulls.
    """
    missing = [c for c in ENTITY_COLUMNS if c not in table.column_names]
    if missing:
        raise EntitiesError(
            f"{name} lacks column(s) {', '.join(missing)}: needs supplier_id (string) and "
            "as_of (timestamp with time zone, UTC)"
        )
    id_type, ts_type = table.schema.field("supplier_id").type, table.schema.field("as_of").type
    if not _is_string(id_type):
        raise EntitiesError(f"{name}: supplier_id must be a string column, got {id_type}")
    if not pa.types.is_timestamp(ts_type):
        raise EntitiesError(f"{name}: as_of must be a timestamp column (UTC), got {ts_type}")
    if ts_type.tz is None:
        raise EntitiesError(
            f"{name}: as_of is a naive timestamp ({ts_type}); give it a time zone (UTC) so "
            "that each row names one instant"
        )
    for column in ENTITY_COLUMNS:
        nulls = table.column(column).is_null().to_numpy(zero_copy_only=False)
        if nulls.any():
            rows = np.flatnonzero(nulls)
            raise EntitiesError(
                f"{name}: {len(rows):,} null value(s) in {column}, at row(s) "
                f"{', '.join(map(str, rows[:5]))}{' ...' if len(rows) > 5 else ''}"
            )
    ids = table.column("supplier_id").cast(pa.string()).to_pylist()
    # the same instants labelled UTC (Arrow stores UTC epochs whatever the zone)
    stamps = table.column("as_of").cast(pa.timestamp(ts_type.unit, tz="UTC")).to_pandas()
    return pd.DataFrame({"supplier_id": pd.Series(ids, dtype=object), "as_of": _utc(stamps)})


def read_entities(path: Path) -> pd.DataFrame:
    """Read and validate an entities Parquet file (see :func:`validate_entities`)."""
    path = Path(path)
    if not path.is_file():
        raise EntitiesError(f"entities file {path} does not exist")
    try:
        table = pq.read_table(path)
    except (OSError, pa.ArrowException) as err:
        raise EntitiesError(f"cannot read entities file {path} as Parquet: {err}") from err
    return validate_entities(table, str(path))


def _utc(values: pd.Series) -> pd.Series:
    return pd.to_datetime(values, utc=True).astype("datetime64[ns, UTC]")


def entity_status(
    entities: pd.DataFrame, suppliers: pd.DataFrame, cancellations: pd.DataFrame
) -> np.ndarray:
    """``unknown_supplier``, ``not_active`` or ``active`` per entity row, as the contract defines
    active: signed up at or before the instant and no cancellation at or before it."""
    known = pd.DataFrame(
        {
            "supplier_id": suppliers["supplier_id"].astype(str).to_numpy(),
            "signup_at": _utc(suppliers["signup_at"]).to_numpy(),
        }
    )
    cancelled = pd.DataFrame(
        {
            "supplier_id": cancellations["supplier_id"].astype(str).to_numpy(),
            "cancelled_at": _utc(cancellations["cancelled_at"]).to_numpy(),
        }
    )
    rows = (
        entities[["supplier_id", "as_of"]]
        .merge(known, how="left", on="supplier_id", validate="many_to_one")
        .merge(cancelled, how="left", on="supplier_id", validate="many_to_one")
    )
    unknown = rows["signup_at"].isna().to_numpy()
    active = (rows["signup_at"] <= rows["as_of"]) & (
        rows["cancelled_at"].isna() | (rows["cancelled_at"] > rows["as_of"])
    )
    return np.select([unknown, active.to_numpy()], ["unknown_supplier", "active"], "not_active")


def feature_day(instants: pd.Series) -> pd.Series:
    """The grid day whose feature row is the latest known at each instant (same index): the
    row of day ``d`` is stamped ``d + 1`` 00:00 UTC, so an instant on day ``D`` reads ``D - 1``."""
    return (_utc(instants).dt.floor("D") - pd.Timedelta(days=1)).dt.date


def on_demand_features(
    tables: Mapping[str, pd.DataFrame | pa.Table],
    rows: pd.DataFrame,
    services: Sequence[str],
    threads: int = 2,
) -> pd.DataFrame:
    """The feature services' columns for ``rows`` (``supplier_id``, ``event_timestamp``: the
    instant), computed for these suppliers on their feature days only
    (:func:`features.feature_table.feature_rows_for`: the values the full table of those days
    holds) instead of building those days for every supplier. Same index as ``rows``; a row
    whose supplier has no feature row that day is all null.
    """
    from feature_repo.definitions import service_columns
    from features.feature_table import feature_rows_for

    days = feature_day(rows["event_timestamp"])
    pairs = pd.DataFrame({"supplier_id": rows["supplier_id"].astype(str), "day": days})
    table = feature_rows_for(tables, pairs, threads)
    table["day"] = (table["event_timestamp"] - pd.Timedelta(days=1)).dt.date
    columns = list(dict.fromkeys(c for s in services for c in service_columns(s)))
    found = pairs.merge(
        table[["supplier_id", "day", *columns]],
        how="left",
        on=["supplier_id", "day"],
        validate="many_to_one",
    )
    found = found.drop(columns="day").set_axis(rows.index)
    found.insert(1, "event_timestamp", rows["event_timestamp"])
    return found


@dataclass(frozen=True)
class ChampionModels:
    """The champion churn and health models, loaded from their JSON / UBJSON files."""

    churn: xgb.XGBClassifier
    calibrator: IsotonicCalibrator
    columns: list[str]
    health: HealthModel
    churn_config: ExperimentConfig
    health_config: ExperimentConfig
    churn_version: str
    health_version: str

    @property
    def feature_service(self) -> str:
        return self.churn_config.feature_service

    @property
    def health_service(self) -> str:
        return self.health_config.health_service


@dataclass(frozen=True)
class ChurnArtifacts:
    """A registered churn model: booster, calibrator, its columns and its experiment."""

    model: xgb.XGBClassifier
    calibrator: IsotonicCalibrator
    columns: list[str]
    config: ExperimentConfig

    def predict(self, features: pd.DataFrame) -> np.ndarray:
        """Calibrated churn probabilities of feature rows (the model's columns)."""
        return calibrated_churn(
            self.model, self.calibrator, feature_matrix(features, self.columns)
        )


@dataclass(frozen=True)
class HealthArtifacts:
    """A registered health calibration model and its experiment."""

    model: HealthModel
    config: ExperimentConfig


def load_churn_model(uri: str, threads: int = 2) -> ChurnArtifacts:
    """Download a logged churn model (``models:/churn/3``, ``models:/churn@champion``)."""
    import mlflow

    with tempfile.TemporaryDirectory(prefix="cs-churn-") as tmp:
        folder = Path(mlflow.artifacts.download_artifacts(uri, dst_path=tmp))
        model = xgb.XGBClassifier(n_jobs=threads)
        model.load_model(folder / "model.ubj")
        extra = folder / "extra_files"
        spec = json.loads((extra / "features.json").read_text())
        return ChurnArtifacts(
            model=model,
            calibrator=IsotonicCalibrator.load(extra / "calibrator.json"),
            columns=list(spec["columns"]),
            config=ExperimentConfig.model_validate_json((extra / "experiment.json").read_text()),
        )


def load_health_model(uri: str) -> HealthArtifacts:
    """Download a logged health calibration model (``models:/health_calibration/2``, ...)."""
    import mlflow

    with tempfile.TemporaryDirectory(prefix="cs-health-") as tmp:
        folder = Path(mlflow.artifacts.download_artifacts(uri, dst_path=tmp))
        return HealthArtifacts(
            model=HealthModel.from_json((folder / "health_model.json").read_text()),
            config=ExperimentConfig.model_validate_json((folder / "experiment.json").read_text()),
        )


def load_champions(tracking_uri: str, threads: int = 2) -> ChampionModels:
    """Download ``models:/churn@champion`` and ``models:/health_calibration@champion``.

    Raises:
        LookupError: a model has no champion yet (train first).
    """
    from mlflow.exceptions import MlflowException

    from training.registry import CHAMPION, CHURN_MODEL, HEALTH_MODEL, configure

    client = configure(tracking_uri)
    versions = {}
    for name in (CHURN_MODEL, HEALTH_MODEL):
        try:
            versions[name] = client.get_model_version_by_alias(name, CHAMPION).version
        except MlflowException as err:
            raise LookupError(
                f"no {name}@{CHAMPION} in the MLflow registry at {tracking_uri}: run "
                "`wedsync-cs train` first"
            ) from err
    churn = load_churn_model(f"models:/{CHURN_MODEL}/{versions[CHURN_MODEL]}", threads)
    health = load_health_model(f"models:/{HEALTH_MODEL}/{versions[HEALTH_MODEL]}")
    return ChampionModels(
        churn=churn.model,
        calibrator=churn.calibrator,
        columns=churn.columns,
        health=health.model,
        churn_config=churn.config,
        health_config=health.config,
        churn_version=str(versions[CHURN_MODEL]),
        health_version=str(versions[HEALTH_MODEL]),
    )


def top_positive_factors(contributions: pd.DataFrame, k: int = TOP_FACTORS) -> pd.DataFrame:
    """Per row, the ``k`` columns with the largest positive contributions (None past them)."""
    values = contributions.to_numpy(float)
    order = np.argsort(-values, axis=1, kind="stable")[:, :k]
    names = np.asarray(contributions.columns, dtype=object)[order]
    positive = np.take_along_axis(values, order, axis=1) > 0
    names = np.where(positive, names, None)
    return pd.DataFrame(
        names, index=contributions.index, columns=[f"top_factor_{i + 1}" for i in range(k)]
    )


def score_features(features: pd.DataFrame, models: ChampionModels) -> pd.DataFrame:
    """Predictions for rows that have features (one output row per input row, same index)."""
    X = feature_matrix(features, models.columns)
    churn = calibrated_churn(models.churn, models.calibrator, X)
    factors = features[list(HEALTH_FACTORS)].astype(float)
    segment = features["health_segment"].astype(object)
    score = models.health.score(factors, segment)
    thresholds = models.churn_config.thresholds
    out = pd.DataFrame(
        {
            "churn_probability": churn,
            "churn_risk": churn_risk(churn, thresholds),
            "health_score": score,
            "health_churn_probability": models.health.calibrator.predict(score),
            "health_risk": health_risk(score, models.health_config.thresholds),
        },
        index=features.index,
    )
    factors_by_family = explain(models.churn, X).by_family()
    return out.join(top_positive_factors(factors_by_family))


def assemble(entities: pd.DataFrame, status: np.ndarray, scored: pd.DataFrame) -> pd.DataFrame:
    """The output in the entities' order: every row with its status, and predictions for the
    rows ``scored`` holds (indexed by entity position). An ``active`` row that was not scored
    had no feature row at its instant: ``no_features``."""
    out = entities[list(ENTITY_COLUMNS)].reset_index(drop=True)
    scored = scored.reindex(index=out.index, columns=SCORE_COLUMNS)
    status = np.where(
        status == "active",
        np.where(scored["churn_probability"].notna(), "ok", "no_features"),
        status,
    )
    out = out.assign(status=status).join(scored)
    return out[OUTPUT_SCHEMA.names]


def write_predictions(frame: pd.DataFrame, out: Path) -> Path:
    """Write atomically: a temporary file beside ``out``, renamed over it when complete."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    table = pa.Table.from_pandas(frame, schema=OUTPUT_SCHEMA, preserve_index=False)
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}-", suffix=".tmp", dir=out.parent)
    os.close(fd)
    try:
        pq.write_table(table, tmp)
        os.chmod(tmp, 0o644)  # mkstemp makes it private; the output is an ordinary file
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return out
