"""Reading the stored daily predictions back in bulk, for the outcome monitor: a year of them is
tens of millions of rows (a row a supplier a day), too many for rows through SQLAlchemy.

The rows come through ADBC, the Arrow database drivers of the Apache Arrow project (its SQLite
and PostgreSQL drivers; PostgreSQL sends them with ``COPY ... TO STDOUT (FORMAT binary)``),
straight into Arrow columns. ``churn_predictions`` and ``customer_health`` are read side by side
(a thread and a connection each; the drivers release the GIL), each through its covering index
on (day, churn_probability, supplier_id) (migration 0006): tens of bytes a row instead of the
table's hundreds. SQLite reads one day at a time from that index (``INDEXED BY``), so the day
needs no column; PostgreSQL reads the span in one query, an index-only scan once the table is
vacuumed (autovacuum does it after inserts). The two tables are joined here on (supplier, day)
through dense integer codes: a database join would look each of the tens of millions of rows up
in the other table's index.

The supplier directory (a row a supplier) is read through SQLAlchemy as everywhere else.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Final

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy import Engine, func, select
from sqlalchemy.engine import URL

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

    ``frame`` holds ``supplier_id`` (categorical; its categories are the directory's ids),
    ``day`` (``datetime64``, midnight), ``churn_probability`` and
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
        ValueError: ``first`` after ``last``, or a stored row of a supplier the directory lacks
            (the foreign keys forbid it; a hand-edited database may not).
    """
    if first > last:
        raise ValueError(f"the first day {first} is after the last {last}")
    directory = read_directory(engine)
    ids = directory_ids(directory)
    days = [first + timedelta(days=k) for k in range((last - first).days + 1)]
    return PredictionHistory(history_frame(read_days(engine, days, ids), ids), directory)


@dataclass(frozen=True)
class DayRows:
    """Stored predictions as arrays, one element a supplier and day."""

    codes: np.ndarray  # int32 positions in the directory's ids
    days: np.ndarray  # int32 days since 1970-01-01
    churn: np.ndarray  # float64 churn_probability
    health: np.ndarray  # float64 health_churn_probability, NaN where none

    def __len__(self) -> int:
        return len(self.codes)


def directory_ids(directory: pd.DataFrame) -> pa.Array:
    """The directory's supplier ids, whose positions are the rows' supplier codes."""
    return pa.array(directory["supplier_id"].astype(str).to_numpy(), pa.string())


def read_days(engine: Engine, days: Sequence[date], ids: pa.Array) -> DayRows:
    """The stored predictions of ``days`` (any set of days), with the health score's of the same
    supplier and day: the two tables read side by side, each through its covering index.

    Raises:
        ValueError: a stored row of a supplier not in ``ids``.
    """
    days = sorted(set(days))
    if engine.url.get_backend_name() == "sqlite":
        # the Arrow driver brings its own copy of SQLite, and two copies in one process must
        # not have the file open at once: each keeps its own view of the file's locks and
        # write-ahead log index, and the driver then reads pages this process's connections
        # wrote as they were before (SQLite's "How To Corrupt", 2.2.1). Its connections are
        # closed before the driver opens the file; the engine opens new ones when next used.
        engine.dispose()
    with ThreadPoolExecutor(max_workers=2) as pool:
        predictions, health = pool.map(
            lambda index: _read(engine.url, index, days, ids), COVERING_INDEXES
        )
    return DayRows(
        predictions.codes,
        predictions.days,
        predictions.probabilities,
        _aligned(
            (predictions.codes, predictions.days),
            (health.codes, health.days),
            health.probabilities,
        ),
    )


def history_frame(rows: DayRows, ids: pa.Array) -> pd.DataFrame:
    """:class:`PredictionHistory`'s frame of ``rows`` (codes into ``ids``)."""
    return pd.DataFrame(
        {
            "supplier_id": pd.Categorical.from_codes(
                rows.codes, categories=pd.Index(ids.to_pylist(), dtype=object)
            ),
            "day": rows.days.astype("datetime64[D]").astype("datetime64[ns]"),
            "churn_probability": rows.churn,
            "health_churn_probability": rows.health,
        }
    )


# -- IO --------------------------------------------------------------------------------------
# (table, its covering index on (day, churn_probability, supplier_id))
COVERING_INDEXES: Final = (
    ("churn_predictions", "ix_churn_predictions_day_probability"),
    ("customer_health", "ix_customer_health_day_probability"),
)


BUSY_TIMEOUT_MS: Final = 30_000


def adbc_connect(url: URL):
    """An ADBC (Arrow) connection to the operational database at ``url``, SQLite or PostgreSQL.
    SQLite's waits for locks as the service's engine does (another connection may be opening the
    file: WAL recovery locks it for a moment).

    Raises:
        ValueError: another kind of database.
    """
    if url.get_backend_name() == "sqlite":
        import adbc_driver_sqlite.dbapi as adbc_sqlite

        connection = adbc_sqlite.connect(url.database)
        with connection.cursor() as cursor:
            cursor.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        return connection
    if url.get_backend_name() == "postgresql":
        import adbc_driver_postgresql.dbapi as adbc_postgresql

        plain = url.set(drivername="postgresql").render_as_string(hide_password=False)
        return adbc_postgresql.connect(plain)
    raise ValueError(f"no bulk reader for a {url.get_backend_name()} database")


@dataclass(frozen=True)
class _Rows:
    codes: np.ndarray  # int32 positions in the directory
    days: np.ndarray  # int32 days since 1970-01-01
    probabilities: np.ndarray  # float64, NaN where null


def _read(url: URL, covering: tuple[str, str], days: list[date], ids: pa.Array) -> _Rows:
    """One table's (supplier, day, probability) rows of ``days`` (sorted), through its covering
    index.

    The days are ``date`` objects rendered as ISO literals or bound as parameters (no user text
    reaches the SQL). SQLite's driver takes a column's type from its first rows' values, so a
    null probability travels as 0 with a flag (a first batch of nulls would type the column as
    integers).
    """
    table, index = covering
    columns = (
        "supplier_id, COALESCE(churn_probability, 0.0) AS p, "
        "CASE WHEN churn_probability IS NULL THEN 1 ELSE 0 END AS missing"
    )
    parts: list[tuple[pa.Table, int | None]] = []
    if not days:
        return _Rows(np.zeros(0, np.int32), np.zeros(0, np.int32), np.zeros(0))
    if url.get_backend_name() == "sqlite":
        with adbc_connect(url) as connection, connection.cursor() as cursor:
            # Arrow batches of 64k rows, not the driver's 1,024: fewer, larger chunks
            cursor.adbc_statement.set_options(**{"adbc.sqlite.query.batch_rows": "65536"})
            sql = f"SELECT {columns} FROM {table} INDEXED BY {index} WHERE day = ?"
            for day in days:
                cursor.execute(sql, (day.isoformat(),))
                parts.append((cursor.fetch_arrow_table(), day_number(day)))
    elif url.get_backend_name() == "postgresql":
        with adbc_connect(url) as connection, connection.cursor() as cursor:
            # most of the table's rows are wanted, so the planner would scan the table; its
            # rows are several times wider than the covering index's entries (the SHAP
            # factors), and an index-only scan reads the index alone once the table is vacuumed
            cursor.execute("SET enable_seqscan = off")
            cursor.execute("SET enable_bitmapscan = off")
            for first, last in _runs(days):  # a query a run of consecutive days
                cursor.execute(
                    f"SELECT {columns}, day FROM {table} WHERE day >= DATE "
                    f"'{first.isoformat()}' AND day <= DATE '{last.isoformat()}'"
                )
                parts.append((cursor.fetch_arrow_table(), None))
    else:
        raise ValueError(f"no bulk reader for a {url.get_backend_name()} database")
    # one look-up of all the rows' ids (a hash table of the directory built once)
    supplier_ids = pa.chunked_array(
        [chunk for part, _ in parts for chunk in part["supplier_id"].chunks], pa.string()
    )
    found = pc.index_in(supplier_ids, value_set=ids)
    if found.null_count:
        unknown = pc.filter(supplier_ids, pc.is_null(found))[0].as_py()
        raise ValueError(f"{table} holds rows of supplier {unknown!r}, not in suppliers")
    codes = found.to_numpy().astype(np.int32)
    days = np.concatenate(
        [
            _day_numbers(part["day"]) if day is None else np.full(part.num_rows, day, np.int32)
            for part, day in parts
        ]
    )
    values = np.concatenate([np.asarray(part["p"].to_numpy(), dtype=float) for part, _ in parts])
    missing = np.concatenate([np.asarray(part["missing"].to_numpy(), bool) for part, _ in parts])
    probabilities = np.where(missing, np.nan, values) if missing.any() else values
    return _Rows(codes, days, probabilities)


# -- pure transforms -------------------------------------------------------------------------
def _runs(days: list[date]) -> list[tuple[date, date]]:
    """Sorted distinct days as runs of consecutive days, (first, last) each."""
    runs: list[tuple[date, date]] = []
    for day in days:
        if runs and day - runs[-1][1] == timedelta(days=1):
            runs[-1] = (runs[-1][0], day)
        else:
            runs.append((day, day))
    return runs


def _as_date(value: date | str) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value)[:10])


def day_number(day: date) -> int:
    """Days since 1970-01-01, the rows' ``days``."""
    return (day - date(1970, 1, 1)).days


def _day_numbers(column: pa.ChunkedArray) -> np.ndarray:
    """Days since 1970-01-01 (int32) of a date column."""
    return column.to_numpy().astype("datetime64[D]").astype(np.int32)


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
