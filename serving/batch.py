"""Batch predictions of the champion models for any (supplier, as-of instant) rows
(``wedsync-cs predict``).

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

import os
import tempfile
from pathlib import Path
from typing import Final

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from feature_repo.readers import utc as _utc
from serving.scorer import SCORE_COLUMNS, Scorer

ENTITY_COLUMNS: Final = ("supplier_id", "as_of")
_SCORE_TYPES: Final = {
    "churn_probability": pa.float64(),
    "health_score": pa.float64(),
    "health_churn_probability": pa.float64(),
    "predicted_churn_date": pa.date32(),
}
OUTPUT_SCHEMA: Final = pa.schema(
    [
        ("supplier_id", pa.string()),
        ("as_of", pa.timestamp("us", tz="UTC")),
        ("status", pa.string()),
        *[(c, _SCORE_TYPES.get(c, pa.string())) for c in SCORE_COLUMNS],
    ]
)


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


def predict_entities(entities: pd.DataFrame, status: np.ndarray, scorer: Scorer) -> pd.DataFrame:
    """The output rows of validated entities with their statuses: the active ones scored by
    ``scorer`` (whose reader reads each at its ``as_of``), every row in the entities' order."""
    active = entities.reset_index(drop=True)[status == "active"]
    if len(active) == 0:
        return assemble(entities, status, pd.DataFrame(columns=list(SCORE_COLUMNS)))
    scored = scorer.score(active)
    return assemble(entities, status, scored[scored["scored"]])


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
