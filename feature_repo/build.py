"""Building the feature table: validate an export, compute the features, write the table
atomically and register it in Feast; and what the last build wrote.

The table's location, the store and the build's resources come in one :class:`FeatureTableConfig`
(the CLI makes it from the settings); nothing here reads settings.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from features.feature_table import Cadence, connect, data_span, iter_feature_batches
from features.raw_reader import RawTables, load_raw

if TYPE_CHECKING:  # Feast is slow to import: only what needs it imports it
    from feature_repo.store import StoreConfig


@dataclass(frozen=True)
class FeatureTableConfig:
    """Where the feature table and its store live, and what a build may use.

    Attributes:
        table: the offline feature table (Parquet); ``build.json`` is written beside it.
        store: the Feast store the table is registered in.
        staging: where the valid rows of a folder with quarantined rows are written.
    """

    table: Path
    store: StoreConfig
    staging: Path
    threads: int = 2
    memory_limit: str = "4GB"
    cadence: Cadence = field(default_factory=Cadence)


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
    # validate, copy the kept rows, compute the new days, register in Feast
    stage_seconds: dict[str, float] = field(default_factory=dict)

    @property
    def data_end(self) -> datetime:
        """The end of the last day with data: the default materialisation instant."""
        return pd.Timestamp(date.fromisoformat(self.last_day) + timedelta(days=1), tz="UTC")


def stored_days(path: Path) -> set[date]:
    """The grid days the feature table at ``path`` holds (none when there is no table)."""
    if not path.exists():
        return set()
    stamps = pq.read_table(path, columns=["event_timestamp"])["event_timestamp"]
    unique = pc.unique(stamps).to_pandas()
    return {(ts - pd.Timedelta(days=1)).date() for ts in unique}


def _validated_files(tables: RawTables, raw: Path, staging: Path) -> Path:
    """A folder of contract files holding exactly the valid rows: ``raw`` itself when nothing
    was quarantined, else the valid rows written to ``staging``."""
    if tables.report.ok:
        return raw
    staging.mkdir(parents=True, exist_ok=True)
    for name, frame in tables.frames.items():
        pq.write_table(
            pa.Table.from_pandas(frame, preserve_index=False), staging / f"{name}.parquet"
        )
    return staging


def build_features(
    cfg: FeatureTableConfig,
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
    stages: dict[str, float] = {}
    tables = tables or load_raw(raw, quarantine)
    n_suppliers = len(tables["suppliers"])
    source = _validated_files(tables, Path(raw), cfg.staging)
    del tables  # DuckDB scans the files; the frames need not stay in memory
    stages["validate"] = time.perf_counter() - began
    pa.default_memory_pool().release_unused()
    con = connect(source, cfg.threads)
    first, last = data_span(con)
    con.close()
    days = cfg.cadence.days(first, last, extra_days)
    path = cfg.table
    have = stored_days(path) if incremental else set()
    todo = [d for d in days if d not in have]
    if todo:
        written, total = _write_table(path, source, todo, bool(have), cfg, raw, stages)
    else:  # every day is there already: the table stays as it is
        written, total = 0, pq.ParquetFile(path).metadata.num_rows
    registered = time.perf_counter()
    apply_definitions(open_store(cfg.store), cfg.store)
    stages["register"] = time.perf_counter() - registered
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
        stage_seconds={k: round(v, 1) for k, v in stages.items()},
    )
    (path.parent / "build.json").write_text(json.dumps(asdict(build), indent=2))
    return build


def _write_table(
    path: Path,
    source: Path,
    todo: list[date],
    keep_old: bool,
    cfg: FeatureTableConfig,
    raw: Path,
    stages: dict[str, float],
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
        began = time.perf_counter()
        if keep_old:
            old = pq.ParquetFile(path)
            writer = pq.ParquetWriter(tmp, old.schema_arrow, compression="zstd")
            for i in range(old.num_row_groups):
                group = old.read_row_group(i)
                writer.write_table(group)
                total += group.num_rows
        stages["copy kept rows"] = time.perf_counter() - began
        began = time.perf_counter()
        for batch in iter_feature_batches(source, todo, cfg.threads, cfg.memory_limit):
            table = pa.Table.from_pandas(batch, preserve_index=False)
            if writer is None:
                writer = pq.ParquetWriter(tmp, table.schema, compression="zstd")
            writer.write_table(table.cast(writer.schema))
            written += table.num_rows
        if writer is None:
            raise ValueError(f"no supplier is active on any feature day of {raw}")
        stages["compute new days"] = time.perf_counter() - began
        writer.close()
        os.replace(tmp, path)
    except BaseException:
        if writer is not None:
            writer.close()
        Path(tmp).unlink(missing_ok=True)
        raise
    return written, total


def extends_last_build(table: Path, raw: Path) -> bool:
    """Whether the feature table at ``table`` was built from this raw folder, so that an
    incremental build may keep its rows (a table of another folder is rebuilt in full)."""
    meta = table.parent / "build.json"
    if not (meta.exists() and table.exists()):
        return False
    return json.loads(meta.read_text()).get("raw") == str(Path(raw).resolve())


def last_build(table: Path) -> FeatureBuild:
    """What the last build of the table at ``table`` wrote.

    Raises:
        FileNotFoundError: the table was never built.
    """
    meta = table.parent / "build.json"
    if not meta.exists():
        raise FileNotFoundError(
            f"no feature build at {table.parent}: run `wedsync-cs features build` first"
        )
    return FeatureBuild(**json.loads(meta.read_text()))


def materialize(cfg: FeatureTableConfig, as_of: datetime | None = None) -> datetime:
    """Load each supplier's latest feature row up to ``as_of`` (default: the end of the data
    of the last build) into the online store; returns that instant."""
    from feature_repo.definitions import FEATURE_TTL
    from feature_repo.store import open_store

    end = as_of or last_build(cfg.table).data_end
    open_store(cfg.store).materialize(start_date=end - FEATURE_TTL, end_date=end)
    return end
