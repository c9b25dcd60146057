"""Reading the stored daily predictions back in bulk, for the outcome monitor: a year of them is
tens of millions of rows (a row a supplier a day), too many for rows through SQLAlchemy.

The rows come through ADBC, the Arrow database drivers of the Apache Arrow project (its SQLite
and PostgreSQL drivers; PostgreSQL sends them with ``COPY ... TO STDOUT (FORMAT binary)``),
straight into Arrow columns. ``churn_predictions`` and ``customer_health`` are read as two flat
scans of three columns each and joined here on (supplier, day) through dense integer codes: a
database join would look each of the tens of millions of rows up in the other table's index.

The supplier directory (a row a supplier) is read through SQLAlchemy as everywhere else.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Final

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy import Engine, func, select

from serving.db.models import ChurnPrediction, Supplier

DIRECTORY_COLUMNS: Final = (
    "supplier_id",
    "cancelled_at",
    "subscription_tier",
    "vendor_type",
    "country",
)


@dataclass(frozen=True)
class PredictionHistory:
    """The stored predictions of a span of days, one row a supplier and day.

    ``frame`` holds ``supplier_id`` (categorical; its categories are the directory's ids, then
    any id the directory lacks), ``day`` (``datetime64``, midnight), ``churn_probability`` and
    ``health_churn_probability`` (the calibrated health score's probability for the same
    supplier and day; NaN where ``customer_health`` has no row or a null one).
    """

    frame: pd.DataFrame
    directory: pd.DataFrame


def stored_day_range(engine: Engine) -> tuple[date, date] | None:
    """The oldest and newest day of ``churn_predictions`` (two index look-ups), or None when
    the table is empty."""
    with engine.connect() as connection:
        oldest = connection.execute(select(func.min(ChurnPrediction.day))).scalar()
        newest = connection.execute(select(func.max(ChurnPrediction.day))).scalar()
    if oldest is None or newest is None:
        return None
    return _as_date(oldest), _as_date(newest)


def read_directory(engine: Engine) -> pd.DataFrame:
    """The supplier directory's columns the outcome monitor needs; ``cancelled_at`` in UTC."""
    columns = [getattr(Supplier, name) for name in DIRECTORY_COLUMNS]
    with engine.connect() as connection:
        frame = pd.DataFrame(connection.execute(select(*columns)).all(), columns=DIRECTORY_COLUMNS)
    frame["cancelled_at"] = pd.to_datetime(frame["cancelled_at"], utc=True)
    return frame


def read_prediction_history(engine: Engine, first: date, last: date) -> PredictionHistory:
    """The stored predictions of the days ``first`` to ``last`` (inclusive), each with the
    calibrated health score's probability of the same supplier and day, and the directory.

    Raises:
        ValueError: ``first`` after ``last``.
    """
    if first > last:
        raise ValueError(f"the first day {first} is after the last {last}")
    directory = read_directory(engine)
    url = engine.url
    predictions = _scan(url, "churn_predictions", first, last)
    health = _scan(url, "customer_health", first, last)
    ids = pa.array(directory["supplier_id"].astype(str).to_numpy(), pa.string())
    categories, p_codes, h_codes = _supplier_codes(
        ids, predictions["supplier_id"], health["supplier_id"]
    )
    p_days = _day_numbers(predictions["day"])
    h_days = _day_numbers(health["day"])
    churn = _probabilities(predictions)
    health_p = _aligned((p_codes, p_days), (h_codes, h_days), _probabilities(health))
    frame = pd.DataFrame(
        {
            "supplier_id": pd.Categorical.from_codes(p_codes, categories=categories),
            "day": (p_days.astype("datetime64[D]")).astype("datetime64[ns]"),
            "churn_probability": churn,
            "health_churn_probability": health_p,
        }
    )
    return PredictionHistory(frame, directory)


# -- IO --------------------------------------------------------------------------------------
def _scan(url, table: str, first: date, last: date) -> pa.Table:
    """``supplier_id``, ``day``, ``churn_probability`` (0 where null) and ``missing`` (1 where
    it is null) of ``table`` for the days, as Arrow.

    The days are ``date`` objects rendered as ISO literals (no user text reaches the SQL). On
    SQLite the table is scanned in storage order (``NOT INDEXED``): a range over most of the
    table through the ``day`` index would look every row up again.
    """
    lo, hi = first.isoformat(), last.isoformat()
    if url.get_backend_name() == "sqlite":
        import adbc_driver_sqlite.dbapi as adbc

        connect = adbc.connect(url.database)
        where = f"day >= '{lo}' AND day <= '{hi}'"
        source = f"{table} NOT INDEXED"
    elif url.get_backend_name() == "postgresql":
        import adbc_driver_postgresql.dbapi as adbc

        plain = url.set(drivername="postgresql").render_as_string(hide_password=False)
        connect = adbc.connect(plain)
        where = f"day >= DATE '{lo}' AND day <= DATE '{hi}'"
        source = table
    else:
        raise ValueError(f"no bulk reader for a {url.get_backend_name()} database")
    with connect as connection, connection.cursor() as cursor:
        # SQLite's driver takes each column's type from its first rows' values: a first batch of
        # nulls would make the probability an integer column, so nulls travel as a flag
        cursor.execute(
            "SELECT supplier_id, day, COALESCE(churn_probability, 0.0) AS churn_probability, "
            f"CASE WHEN churn_probability IS NULL THEN 1 ELSE 0 END AS missing FROM {source} "
            f"WHERE {where}"
        )
        return cursor.fetch_arrow_table()


# -- pure transforms -------------------------------------------------------------------------
def _as_date(value: date | str) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value)[:10])


def _supplier_codes(directory_ids: pa.Array, *columns: pa.ChunkedArray) -> tuple[pd.Index, ...]:
    """Integer codes of each column's supplier ids into one list of ids: the directory's, then
    those the directory lacks (sorted). Returns the list, then each column's codes (int32)."""
    strings = [c.cast(pa.string()) if c.type != pa.string() else c for c in columns]
    codes = [pc.index_in(column, value_set=directory_ids) for column in strings]
    everything = directory_ids
    if any(c.null_count for c in codes):
        missing = pa.concat_arrays(
            [
                pc.unique(pc.filter(column, pc.is_null(c))).combine_chunks()
                for column, c in zip(strings, codes, strict=True)
            ]
        )
        extra = pc.unique(missing).sort()
        everything = pa.concat_arrays([directory_ids, extra])
        codes = [pc.index_in(column, value_set=everything) for column in strings]
    codes = [c.to_numpy(zero_copy_only=False).astype(np.int32) for c in codes]
    return (pd.Index(everything.to_pylist(), dtype=object), *codes)


def _day_numbers(column: pa.ChunkedArray) -> np.ndarray:
    """Days since 1970-01-01 (int32) of a column of dates or of ISO date strings (SQLite's)."""
    if pa.types.is_date32(column.type):
        return column.to_numpy().astype("datetime64[D]").astype(np.int32)
    encoded = column.combine_chunks().dictionary_encode()  # a few hundred distinct days
    values = pc.cast(pc.utf8_slice_codeunits(encoded.dictionary, 0, 10), pa.date32())
    days = values.to_numpy(zero_copy_only=False).astype("datetime64[D]").astype(np.int32)
    return days[encoded.indices.to_numpy(zero_copy_only=False)]


def _probabilities(scanned: pa.Table) -> np.ndarray:
    """The scanned probabilities, NaN where the stored one is null."""
    values = np.asarray(scanned["churn_probability"].to_numpy(), dtype=float)
    missing = np.asarray(scanned["missing"].to_numpy(), dtype=bool)
    if missing.any():
        values = np.where(missing, np.nan, values)
    return values


def _aligned(
    keys: tuple[np.ndarray, np.ndarray],
    other_keys: tuple[np.ndarray, np.ndarray],
    other_values: np.ndarray,
) -> np.ndarray:
    """``other_values`` at each (supplier code, day) of ``keys``, NaN where ``other_keys`` has
    no such row: a gather through a dense grid of the suppliers present in ``keys`` by the days
    they span, O(rows), no sort. Each (supplier, day) appears at most once in ``other_keys``
    (the tables' primary key)."""
    codes, days = keys
    if not len(codes):
        return np.empty(0)
    present = np.zeros(max(codes.max(), other_keys[0].max(initial=0)) + 1, bool)
    present[codes] = True
    compact = np.cumsum(present, dtype=np.int64) - 1
    first_day, last_day = int(days.min()), int(days.max())
    width = last_day - first_day + 1
    grid = np.full(int(present.sum()) * width, np.nan)
    o_codes, o_days = other_keys
    inside = present[o_codes] & (o_days >= first_day) & (o_days <= last_day)
    grid[compact[o_codes[inside]] * width + (o_days[inside] - first_day)] = other_values[inside]
    return grid[compact[codes] * width + (days - first_day)]
