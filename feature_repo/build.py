"""Building the feature table: validate an export, compute the features, write the table
atomically and register it in Feast; and what the last build wrote.

The table's location, the store and the build's resources come in one :class:`FeatureTableConfig`
(the CLI makes it from the settings); nothing here reads settings.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from feature_repo.table_parts import (
    new_folder_beside,
    part_files,
    part_name,
    swap_in,
    table_rows,
    table_schema,
    write_part,
)
from features.feature_table import (
    Cadence,
    RunningState,
    connect,
    data_span,
    iter_feature_batches,
    state_cutoff,
)
from features.raw_reader import RawTables, load_raw

if TYPE_CHECKING:  # Feast is slow to import: only what needs it imports it
    from feature_repo.store import StoreConfig


@dataclass(frozen=True)
class FeatureTableConfig:
    """Where the feature table and its store live, and what a build may use.

    Attributes:
        table: the offline feature table, a folder of Parquet parts
            (:mod:`feature_repo.table_parts`); ``build.json`` is written beside it.
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
    # validate, compute the new days (and write them), register in Feast
    stage_seconds: dict[str, float] = field(default_factory=dict)
    # the cutoff of the running state the new days were computed from (None: whole history)
    state_cutoff: str | None = None
    # the daily tables' rows validated were those after this day (None: every row)
    validated_after: str | None = None

    @property
    def data_end(self) -> datetime:
        """The end of the last day with data: the default materialisation instant."""
        return pd.Timestamp(date.fromisoformat(self.last_day) + timedelta(days=1), tz="UTC")


def stored_days(path: Path) -> set[date]:
    """The grid days the feature table at ``path`` holds (none when there is no table)."""
    parts = part_files(path)
    if not parts:
        return set()
    stamps = pq.read_table(parts, columns=["event_timestamp"])["event_timestamp"]
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

    With ``incremental``, only grid days not yet in the table are computed and written as a new
    part: rows of earlier days cannot change with later data (they are point-in-time), so the
    parts written before are kept as they are.
    """
    from feature_repo.store import apply_definitions, open_store

    began = time.perf_counter()
    stages: dict[str, float] = {}
    path = cfg.table
    have = stored_days(path) if incremental else set()
    # an incremental build validates the daily tables' rows after its last day only (the ones
    # before were validated by the builds that stored them: see load_raw)
    after = max(have) if have and quarantine is None and tables is None else None
    tables = tables or load_raw(raw, quarantine, after=after)
    n_suppliers = len(tables["suppliers"])
    source = _validated_files(tables, Path(raw), cfg.staging)
    del tables  # DuckDB scans the files; the frames need not stay in memory
    stages["validate"] = time.perf_counter() - began
    pa.default_memory_pool().release_unused()
    con = connect(source, cfg.threads)
    first, last = data_span(con)
    con.close()
    days = cfg.cadence.days(first, last, extra_days)
    todo = [d for d in days if d not in have]
    if todo:
        state = read_state(state_folder(path)) if have else None
        if state is not None and state.cutoff > state_cutoff(todo[0]):
            state = None  # an earlier day than the state allows: the whole history is read
        if not have:  # a new table: no state of the old one may outlive it
            shutil.rmtree(state_folder(path), ignore_errors=True)
        written, total = _write_table(path, source, todo, bool(have), state, cfg, raw, stages)
        started_from = state.cutoff.isoformat() if state is not None else None
    else:  # every day is there already: the table stays as it is
        written, total, started_from = 0, table_rows(path), None
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
        state_cutoff=started_from,
        validated_after=after.isoformat() if after is not None else None,
    )
    (path.parent / "build.json").write_text(json.dumps(asdict(build), indent=2))
    return build


def _write_table(
    path: Path,
    source: Path,
    todo: list[date],
    keep_old: bool,
    state: RunningState | None,
    cfg: FeatureTableConfig,
    raw: Path,
    stages: dict[str, float],
) -> tuple[int, int]:
    """Write the rows of ``todo`` as one part (computed from ``state`` when given): a new part
    of the table at ``path`` when its parts are kept, else the only part of a new table swapped
    in for the old one; then the running state at the end of the new days.

    Returns:
        Rows written for ``todo`` and rows kept from the old table.
    """
    began = time.perf_counter()
    kept: list[RunningState] = []
    batches = (
        pa.Table.from_pandas(batch, preserve_index=False)
        for batch in iter_feature_batches(
            source,
            todo,
            cfg.threads,
            cfg.memory_limit,
            state=state,
            # the next build's first day is after the last one built here
            checkpoint=state_cutoff(todo[-1] + timedelta(days=1)),
            keep=kept.append,
        )
    )
    name = part_name(todo[0], todo[-1])
    if keep_old:
        total = table_rows(path)
        written = write_part(path, name, batches, table_schema(path))
    else:
        total, folder = 0, new_folder_beside(path)
        try:
            written = write_part(folder, name, batches, None)
            if written:
                swap_in(folder, path)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
    if not written:
        raise ValueError(f"no supplier is active on any feature day of {raw}")
    stages["compute new days"] = time.perf_counter() - began
    if kept:
        write_state(kept[0], state_folder(path))
    return written, total


def state_folder(table: Path) -> Path:
    """Where the running state of the table at ``table`` is kept (see :func:`write_state`)."""
    return table.parent / "state"


def write_state(state: RunningState, folder: Path) -> None:
    """Write ``state`` to ``folder`` (one Parquet file per running table and ``state.json``),
    replacing the folder as a whole."""
    new = new_folder_beside(folder)
    try:
        for name, rows in state.tables.items():
            pq.write_table(rows, new / f"{name}.parquet")
        (new / "state.json").write_text(json.dumps({"cutoff": state.cutoff.isoformat()}))
        swap_in(new, folder)
    finally:
        shutil.rmtree(new, ignore_errors=True)


def read_state(folder: Path) -> RunningState | None:
    """The running state written to ``folder`` by :func:`write_state`; None without one."""
    meta = folder / "state.json"
    if not meta.exists():
        return None
    cutoff = date.fromisoformat(json.loads(meta.read_text())["cutoff"])
    return RunningState(cutoff, {p.stem: pq.read_table(p) for p in folder.glob("*.parquet")})


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
