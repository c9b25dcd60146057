"""The outcome monitor's archive: a columnar copy (Parquet, a file a day) of the stored
predictions of the days the daily job finished scoring.

A run of the monitor judges a year of days, and all but one of them were judged the day before:
their rows have not changed. Reading them from the operational database each day is most of
the run (tens of millions of rows, from indexes spread through a file of tens of gigabytes when
the cache is cold). So each finished day's (supplier, churn probability, health score's
probability) rows are copied once into ``day=YYYY-MM-DD.parquet`` (20 bytes a row), and a run
reads from the database only the days it has no current copy of.

A copy is current while it carries the day's token in ``scored_days`` (the daily job replaces a
day's token whenever it writes the day's rows again; :mod:`serving.db.scored_days`). A day whose
token changed while it was read, or that has none (being written, or stored before the ledger
by another loader), is used as read and not copied. The archive is a cache of the database:
deleting its folder costs one full read on the next run.

Suppliers are stored as int32 positions in ``suppliers.parquet``, the archive's own list of
supplier ids, which only grows (a position never changes meaning). Runs of the monitor take an
exclusive lock on the folder (``flock``), so one writes at a time.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Final

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from sqlalchemy import Engine

from serving.db.prediction_history import (
    DayRows,
    PredictionHistory,
    day_number,
    directory_ids,
    history_frame,
    read_days,
    read_directory,
)
from serving.db.scored_days import day_tokens

ARCHIVE_FORMAT: Final = b"1"  # the day files' layout; a file of another is read again
TOKEN_KEY: Final = b"wedsync.scored_day_token"
FORMAT_KEY: Final = b"wedsync.archive_format"
SUPPLIERS_FILE: Final = "suppliers.parquet"
LOCK_FILE: Final = ".lock"
DAY_SCHEMA: Final = pa.schema(
    [
        ("supplier", pa.int32()),
        ("churn_probability", pa.float64()),
        ("health_churn_probability", pa.float64()),
    ]
)


@dataclass(frozen=True)
class ArchiveUse:
    """Where a run's days came from."""

    from_archive: int  # days read from their current copy
    from_database: int  # days read from the database (days without rows nor token: none)
    archived: int  # of those, days copied into the archive now
    not_archived: tuple[date, ...]  # days of rows read and not copied (no stable token)
    removed: int  # copies deleted: their days were rewritten or are no longer stored

    def as_dict(self) -> dict:
        return {
            "days_from_archive": self.from_archive,
            "days_from_database": self.from_database,
            "days_archived": self.archived,
            "days_not_archived": [str(day) for day in self.not_archived],
            "copies_removed": self.removed,
        }


def archived_prediction_history(
    engine: Engine, folder: Path, first: date, last: date
) -> tuple[PredictionHistory, ArchiveUse]:
    """The stored predictions of ``first`` to ``last`` (as
    :func:`~serving.db.prediction_history.read_prediction_history` reads them), each day from its
    current copy in ``folder`` when there is one, else from the database, copying the finished
    days read.

    ``first`` is the oldest stored day: copies of earlier days are of rows no longer stored and
    are deleted, as are copies of days in the span without a token (being rewritten).

    Raises:
        ValueError: ``first`` after ``last``; a stored or archived row of a supplier the
            directory lacks.
    """
    if first > last:
        raise ValueError(f"the first day {first} is after the last {last}")
    directory = read_directory(engine)
    ids = directory_ids(directory)
    days = [first + timedelta(days=k) for k in range((last - first).days + 1)]
    folder.mkdir(parents=True, exist_ok=True)
    with _locked(folder):
        for partial in folder.glob("*.partial"):  # a run that died while writing
            partial.unlink()
        copies = _copies(folder)
        tokens = day_tokens(engine, first, last)
        current = [d for d in days if d in tokens and copies.get(d, (None,))[0] == tokens[d]]
        current_set = set(current)
        stale = [d for d in days if d not in current_set]
        fresh = read_days(engine, stale, ids)
        after = day_tokens(engine, first, last)
        finished = [d for d in stale if d in tokens and after.get(d) == tokens[d]]
        archive_ids = _archive_suppliers(folder)
        if finished:
            archive_ids = _write_days(folder, fresh, finished, tokens, ids, archive_ids)
        removed = 0
        for day, (_, path) in copies.items():
            if day < first or (day <= last and day not in after):
                path.unlink(missing_ok=True)
                removed += 1
        kept = _read_copies(folder, current, archive_ids, ids)
    rows = _concatenate([kept, fresh])
    with_rows = set(np.unique(fresh.days).astype("datetime64[D]").tolist())
    finished_set = set(finished)
    use = ArchiveUse(
        from_archive=len(current),
        from_database=len(with_rows | finished_set),
        archived=len(finished),
        not_archived=tuple(sorted(with_rows - finished_set)),
        removed=removed,
    )
    return PredictionHistory(history_frame(rows, ids), directory), use


# -- IO --------------------------------------------------------------------------------------
@contextmanager
def _locked(folder: Path) -> Iterator[None]:
    """An exclusive lock on the archive (released when the process dies)."""
    with open(folder / LOCK_FILE, "a+b") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _day_path(folder: Path, day: date) -> Path:
    return folder / f"day={day.isoformat()}.parquet"


def _copies(folder: Path) -> dict[date, tuple[str, Path]]:
    """Each archived day's token and file; a file of another layout, or unreadable, is left out
    (its day is read again and its file replaced)."""
    copies: dict[date, tuple[str, Path]] = {}
    for path in folder.glob("day=*.parquet"):
        try:
            day = date.fromisoformat(path.stem.removeprefix("day="))
            metadata = pq.read_schema(path).metadata or {}
        except (ValueError, OSError, pa.ArrowException):
            continue
        if metadata.get(FORMAT_KEY) == ARCHIVE_FORMAT and TOKEN_KEY in metadata:
            copies[day] = (metadata[TOKEN_KEY].decode(), path)
    return copies


def _archive_suppliers(folder: Path) -> pa.Array:
    path = folder / SUPPLIERS_FILE
    if not path.exists():
        return pa.array([], pa.string())
    return pq.read_table(path)["supplier_id"].combine_chunks()


def _replace(table: pa.Table, path: Path) -> None:
    """Write ``table`` to ``path`` whole or not at all (a temporary file renamed over it)."""
    partial = path.with_name(path.name + ".partial")
    pq.write_table(table, partial, compression="none", use_dictionary=False)
    os.replace(partial, path)


def _write_days(
    folder: Path,
    fresh: DayRows,
    days: list[date],
    tokens: dict[date, str],
    ids: pa.Array,
    archive_ids: pa.Array,
) -> pa.Array:
    """Copy ``days`` of ``fresh`` into the archive; returns the archive's supplier list (grown
    by the suppliers it lacked, written before the day files that use them)."""
    used = ids.take(pa.array(np.unique(fresh.codes)))
    new = pc.filter(used, pc.invert(pc.is_in(used, value_set=archive_ids)))
    if len(new):
        archive_ids = pa.concat_arrays([archive_ids, new.cast(pa.string())])
        _replace(pa.table({"supplier_id": archive_ids}), folder / SUPPLIERS_FILE)
    # directory position -> archive position (every used supplier has one now)
    to_archive = pc.index_in(ids, value_set=archive_ids).fill_null(-1).to_numpy()
    order = np.argsort(fresh.days, kind="stable")
    day_numbers = fresh.days[order]
    for day in days:
        number = day_number(day)
        rows = order[
            np.searchsorted(day_numbers, number) : np.searchsorted(day_numbers, number, "right")
        ]
        table = pa.table(
            [
                pa.array(to_archive[fresh.codes[rows]].astype(np.int32)),
                pa.array(fresh.churn[rows]),
                pa.array(fresh.health[rows]),
            ],
            schema=DAY_SCHEMA.with_metadata(
                {TOKEN_KEY: tokens[day].encode(), FORMAT_KEY: ARCHIVE_FORMAT}
            ),
        )
        _replace(table, _day_path(folder, day))
    return archive_ids


def _read_copies(folder: Path, days: list[date], archive_ids: pa.Array, ids: pa.Array) -> DayRows:
    """The archived rows of ``days``, suppliers as positions in the directory's ``ids``."""
    to_directory = pc.index_in(archive_ids, value_set=ids).fill_null(-1).to_numpy()

    def read(day: date) -> tuple[int, pa.Table]:
        return day_number(day), pq.read_table(_day_path(folder, day))

    with ThreadPoolExecutor(max_workers=2) as pool:
        tables = list(pool.map(read, days))
    if not tables:
        return _empty()
    supplier = np.concatenate([t["supplier"].to_numpy() for _, t in tables])
    codes = to_directory[supplier] if len(supplier) else supplier
    if (codes < 0).any():
        gone = archive_ids[int(supplier[np.flatnonzero(codes < 0)[0]])].as_py()
        raise ValueError(
            f"the prediction archive {folder} holds rows of supplier {gone!r}, no longer in "
            "suppliers: delete the folder to copy the stored days again"
        )
    return DayRows(
        codes.astype(np.int32),
        np.concatenate([np.full(t.num_rows, number, np.int32) for number, t in tables]),
        np.concatenate([t["churn_probability"].to_numpy() for _, t in tables]),
        np.concatenate([t["health_churn_probability"].to_numpy() for _, t in tables]),
    )


# -- pure transforms -------------------------------------------------------------------------
def _empty() -> DayRows:
    return DayRows(np.zeros(0, np.int32), np.zeros(0, np.int32), np.zeros(0), np.zeros(0))


def _concatenate(parts: list[DayRows]) -> DayRows:
    """The rows of ``parts`` in one, ordered by day (stable within a day)."""
    codes = np.concatenate([p.codes for p in parts])
    days = np.concatenate([p.days for p in parts])
    churn = np.concatenate([p.churn for p in parts])
    health = np.concatenate([p.health for p in parts])
    if not len(days) or (days[1:] >= days[:-1]).all():  # the usual case: a new day at the end
        return DayRows(codes, days, churn, health)
    order = np.argsort(days, kind="stable")
    return DayRows(codes[order], days[order], churn[order], health[order])
