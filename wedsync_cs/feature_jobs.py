"""Feature-store jobs: build and register the feature table, materialise it, show a supplier."""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from features.feature_table import Cadence, connect, data_span, iter_feature_batches
from features.history import event_history
from features.raw_reader import RawTables, load_raw
from training.dataset import SnapshotCadence, TrainingWindow
from wedsync_cs.settings import Settings

if TYPE_CHECKING:  # Feast is slow to import: only the commands that need it import it
    from feature_repo.readers import PointInTimeReader
    from feature_repo.store import StoreConfig


@dataclass(frozen=True)
class FeatureBuild:
    """What a feature build wrote (also kept as ``features/build.json`` under CS_HOME)."""

    raw: str
    first_day: str
    last_day: str
    days_built: int
    rows_written: int
    rows_total: int
    suppliers: int
    seconds: float
    incremental: bool

    @property
    def data_end(self) -> datetime:
        """The end of the last day with data: the default materialisation instant."""
        return pd.Timestamp(date.fromisoformat(self.last_day) + timedelta(days=1), tz="UTC")


def store_config(settings: Settings) -> StoreConfig:
    """The Feast store location and online-store choice of these settings."""
    from feature_repo.store import StoreConfig

    return StoreConfig(
        root=settings.feature_store_dir,
        feature_table=settings.feature_table_path,
        project=settings.feast_project,
        online_store=settings.online_store,
        redis_connection=settings.redis_connection,
    )


def stored_days(path: Path) -> set[date]:
    """The grid days the feature table at ``path`` holds (none when there is no table)."""
    if not path.exists():
        return set()
    stamps = pq.read_table(path, columns=["event_timestamp"])["event_timestamp"]
    unique = pc.unique(stamps).to_pandas()
    return {(ts - pd.Timedelta(days=1)).date() for ts in unique}


def _validated_files(tables: RawTables, raw: Path, staging: Path) -> Path:
    """A folder of contract files holding exactly the valid rows: ``raw`` itself when nothing
    was quarantined, else the valid rows written under CS_HOME."""
    if tables.report.ok:
        return raw
    staging.mkdir(parents=True, exist_ok=True)
    for name, frame in tables.frames.items():
        pq.write_table(
            pa.Table.from_pandas(frame, preserve_index=False), staging / f"{name}.parquet"
        )
    return staging


def build_features(
    settings: Settings,
    raw: Path,
    *,
    quarantine: Path | None = None,
    incremental: bool = False,
    extra_days: tuple[date, ...] = (),
    tables: RawTables | None = None,
) -> FeatureBuild:
    """Validate ``raw``, compute the feature table, write it atomically and register it in Feast.

    With ``incremental``, only grid days not yet in the table are computed and appended: rows of
    earlier days cannot change with later data (they are point-in-time), so they are kept.
    """
    from feature_repo.store import apply_definitions, open_store

    began = time.perf_counter()
    tables = tables or load_raw(raw, quarantine)
    n_suppliers = len(tables["suppliers"])
    source = _validated_files(tables, Path(raw), settings.home_dir / "data" / "validated")
    del tables  # DuckDB scans the files; the frames need not stay in memory
    pa.default_memory_pool().release_unused()
    con = connect(source, settings.threads)
    first, last = data_span(con)
    con.close()
    cadence = Cadence(settings.feature_history_every_days, settings.feature_recent_days)
    days = cadence.days(first, last, extra_days)
    path = settings.feature_table_path
    have = stored_days(path) if incremental else set()
    todo = [d for d in days if d not in have]
    if todo:
        written, total = _write_table(path, source, todo, bool(have), settings, raw)
    else:  # every day is there already: the table stays as it is
        written, total = 0, pq.ParquetFile(path).metadata.num_rows
    cfg = store_config(settings)
    apply_definitions(open_store(cfg), cfg)
    build = FeatureBuild(
        raw=str(Path(raw).resolve()),
        first_day=first.isoformat(),
        last_day=last.isoformat(),
        days_built=len(todo),
        rows_written=written,
        rows_total=total + written,
        suppliers=n_suppliers,
        seconds=round(time.perf_counter() - began, 1),
        incremental=incremental,
    )
    (path.parent / "build.json").write_text(json.dumps(asdict(build), indent=2))
    return build


def _write_table(
    path: Path, source: Path, todo: list[date], keep_old: bool, settings: Settings, raw: Path
) -> tuple[int, int]:
    """Write the table atomically: the old rows (when kept) and the rows of ``todo``.

    Returns:
        Rows written for ``todo`` and rows kept from the old table.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".features-", suffix=".parquet", dir=path.parent)
    os.close(fd)
    written = total = 0
    writer: pq.ParquetWriter | None = None
    try:
        if keep_old:
            old = pq.ParquetFile(path)
            writer = pq.ParquetWriter(tmp, old.schema_arrow, compression="zstd")
            for i in range(old.num_row_groups):
                group = old.read_row_group(i)
                writer.write_table(group)
                total += group.num_rows
        for batch in iter_feature_batches(
            source, todo, settings.threads, settings.feature_memory_limit
        ):
            table = pa.Table.from_pandas(batch, preserve_index=False)
            if writer is None:
                writer = pq.ParquetWriter(tmp, table.schema, compression="zstd")
            writer.write_table(table.cast(writer.schema))
            written += table.num_rows
        if writer is None:
            raise ValueError(f"no supplier is active on any feature day of {raw}")
        writer.close()
        os.replace(tmp, path)
    except BaseException:
        if writer is not None:
            writer.close()
        Path(tmp).unlink(missing_ok=True)
        raise
    return written, total


def extends_last_build(settings: Settings, raw: Path) -> bool:
    """Whether the feature table under CS_HOME was built from this raw folder, so that an
    incremental build may keep its rows (a table of another folder is rebuilt in full)."""
    meta = settings.feature_table_path.parent / "build.json"
    if not (meta.exists() and settings.feature_table_path.exists()):
        return False
    return json.loads(meta.read_text()).get("raw") == str(Path(raw).resolve())


def last_build(settings: Settings) -> FeatureBuild:
    meta = settings.feature_table_path.parent / "build.json"
    if not meta.exists():
        raise FileNotFoundError(
            f"no feature build under {settings.home_dir}: run `wedsync-cs features build` first"
        )
    return FeatureBuild(**json.loads(meta.read_text()))


def point_in_time_reader(settings: Settings, raw: Path, tables: RawTables) -> PointInTimeReader:
    """The reader of each (supplier, instant)'s feature row in the export ``raw``: from the
    offline store where its table was built from this folder, else computed from ``tables``
    for those rows only. Nothing is built or registered."""
    from feature_repo.readers import PointInTimeReader
    from feature_repo.store import open_store

    con = connect(tables.frames, settings.threads)
    span = data_span(con)
    con.close()
    if not extends_last_build(settings, raw):
        return PointInTimeReader(tables.frames, span, threads=settings.threads)
    return PointInTimeReader(
        tables.frames,
        span,
        store=open_store(store_config(settings)),
        stored_days=frozenset(stored_days(settings.feature_table_path)),
        threads=settings.threads,
    )


def materialize_features(settings: Settings, as_of: datetime | None = None) -> datetime:
    """Load each supplier's latest feature row up to ``as_of`` (default: end of the data)."""
    from feature_repo.definitions import FEATURE_TTL
    from feature_repo.store import open_store

    end = as_of or last_build(settings).data_end
    open_store(store_config(settings)).materialize(start_date=end - FEATURE_TTL, end_date=end)
    return end


@dataclass(frozen=True)
class TrainingSet:
    """Labelled rows with their features, and the observation window that chose them."""

    frame: pd.DataFrame
    window: TrainingWindow


def training_set(
    settings: Settings,
    raw: Path,
    services: Sequence[str],
    cadence: SnapshotCadence,
    horizon_days: int,
    until: pd.Timestamp | None = None,
) -> TrainingSet:
    """Labelled entity rows at a cadence with the point-in-time features of ``services``.

    The raw folder is validated once and the feature table gets rows at exactly the cadence's
    days first (an incremental build adds the missing ones), so no entity row is served a
    stale feature row. Only rows that the export's event history covers are kept (see
    :mod:`features.history`): before it, every supplier looks silent and none churns.

    Args:
        until: labels must be observed by then (default, and at the latest: the end of the
            data, so that no label is read as 0 merely because its window is not over).
    """
    from feature_repo.readers import historical_features
    from feature_repo.store import open_store
    from training.dataset import entity_rows, snapshot_days, within_history

    tables = load_raw(raw)
    con = connect(tables.frames, settings.threads)
    first, last = data_span(con)
    history = event_history(con)
    con.close()
    days = snapshot_days(cadence, first, last)
    end = pd.Timestamp(last + timedelta(days=1), tz="UTC")
    # a label can only be observed with data: never past the end of the folder
    until = end if until is None else min(pd.Timestamp(until).tz_convert("UTC"), end)
    entities, window = within_history(
        entity_rows(tables.frames, days, horizon_days, until),
        tables["suppliers"][["supplier_id", "signup_at"]],
        history,
        horizon_days,
    )
    build_features(
        settings,
        raw,
        incremental=extends_last_build(settings, raw),
        extra_days=tuple(days),
        tables=tables,
    )
    store = open_store(store_config(settings))
    return TrainingSet(historical_features(store, services, entities), window)
