"""The one way the platform loads raw contract tables: read, validate, optionally quarantine.

Reading normalises only what cannot change meaning (dictionary-encoded strings, narrower ints,
float32, timestamp units, all-null columns); anything else that differs from the contract is a
validation error, never a silent coercion.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from features import contract
from features.validation import ValidationReport, validate_tables


class RawDataError(ValueError):
    """A raw folder that does not follow the contract; the message names what is wrong."""

    def __init__(self, message: str, report: ValidationReport | None = None) -> None:
        super().__init__(message)
        self.report = report


@dataclass(frozen=True)
class RawTables:
    """Validated contract tables (Arrow-backed pandas frames), keyed by table name."""

    frames: dict[str, pd.DataFrame]
    report: ValidationReport
    quarantined: dict[str, int]

    def __getitem__(self, table: str) -> pd.DataFrame:
        return self.frames[table]


def _normalise_type(value: pa.DataType, wanted: pa.DataType) -> pa.DataType | None:
    """The lossless cast that brings ``value`` to the contract's type family, if any."""
    if pa.types.is_dictionary(value):
        return _normalise_type(value.value_type, wanted) or value.value_type
    if pa.types.is_null(value):
        return wanted
    if pa.types.is_large_string(value) and pa.types.is_string(wanted):
        return wanted
    if pa.types.is_integer(value) and pa.types.is_int64(wanted) and value.bit_width < 64:
        return wanted
    if pa.types.is_float32(value) and pa.types.is_float64(wanted):
        return wanted
    if pa.types.is_timestamp(value) and pa.types.is_timestamp(wanted) and value.unit != "us":
        return pa.timestamp("us", tz=value.tz)  # tz kept: a non-UTC zone is still an error
    return None


def _normalise(table: pa.Table, spec: contract.TableSpec) -> pa.Table:
    for name, wanted in spec.columns:
        i = table.schema.get_field_index(name)
        target = _normalise_type(table.schema.field(i).type, wanted)
        if target is not None:
            table = table.set_column(i, name, table.column(i).cast(target, safe=False))
    return table


def read_table(raw_dir: Path, spec: contract.TableSpec, after: date | None = None) -> pd.DataFrame:
    """Read one table's contract columns into an Arrow-backed frame (extra columns ignored).

    Args:
        after: for a table of :data:`features.contract.DAILY_TABLES` whose ``date`` column has
            the contract's type, only the rows dated after this day.

    Raises:
        RawDataError: the file of a required table, or a contract column, is missing.
    """
    path = raw_dir / f"{spec.name}.parquet"
    if not path.exists():
        if spec.required:
            raise RawDataError(f"missing table {spec.name!r}: expected file {path}")
        return spec.schema.empty_table().to_pandas(types_mapper=pd.ArrowDtype)
    present = set(pq.read_schema(path).names)
    missing = [c for c in spec.column_names if c not in present]
    if missing:
        raise RawDataError(
            f"table {spec.name!r} ({path}) lacks required column(s): {', '.join(missing)}"
        )
    # a date column of another type is read whole: validation names the wrong type
    dated = spec.name in contract.DAILY_TABLES and pq.read_schema(path).field("date").type
    filters = [("date", ">", after)] if after is not None and dated == pa.date32() else None
    table = pq.read_table(path, columns=list(spec.column_names), filters=filters)
    return _normalise(table, spec).to_pandas(types_mapper=pd.ArrowDtype).reset_index(drop=True)


def read_tables(raw_dir: Path, after: date | None = None) -> dict[str, pd.DataFrame]:
    """Every contract table of ``raw_dir``, read but not yet validated (``after``: see
    :func:`read_table`)."""
    raw_dir = Path(raw_dir)
    if not raw_dir.is_dir():
        raise RawDataError(f"raw folder {raw_dir} does not exist")
    return {spec.name: read_table(raw_dir, spec, after) for spec in contract.TABLES}


def format_report(report: ValidationReport) -> str:
    return "\n\n".join(v.describe() for v in report.violations)


def _write_quarantine(
    frames: dict[str, pd.DataFrame], report: ValidationReport, out: Path
) -> dict[str, int]:
    """Write every bad row with its reasons to ``out/<table>.parquet``, all or nothing."""
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".quarantine-", dir=out.parent))
    counts: dict[str, int] = {}
    try:
        for name, frame in frames.items():
            reasons = report.bad_rows(name)
            counts[name] = len(reasons)
            if reasons.empty:
                continue
            bad = frame.iloc[reasons.index.to_numpy()].assign(_reasons=reasons.to_numpy())
            bad.insert(0, "_row", reasons.index.to_numpy())
            pa_table = pa.Table.from_pandas(bad, preserve_index=False)
            pq.write_table(pa_table, staging / f"{name}.parquet")
        if out.exists():
            shutil.rmtree(out)
        staging.rename(out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return counts


def load_raw(
    raw_dir: Path, quarantine: Path | None = None, after: date | None = None
) -> RawTables:
    """Read and validate a contract folder.

    Without ``quarantine`` any violation raises :class:`RawDataError` and nothing is written.
    With it, bad rows (and their reasons) go to ``quarantine/<table>.parquet`` and the valid rows
    are returned; whole-table problems (a wrong column type) still raise.

    With ``after`` (an incremental build's last day built), the daily tables' rows up to that
    day are neither read nor validated (see :data:`features.contract.DAILY_TABLES`); the frames
    then hold only the newer rows, so it cannot go with a quarantine, whose valid rows replace
    the folder's.
    """
    if after is not None and quarantine is not None:
        raise ValueError("load_raw: a quarantine needs every row validated; drop `after`")
    frames = read_tables(Path(raw_dir), after)
    report = validate_tables(frames)
    if report.ok:
        return RawTables(frames, report, {k: 0 for k in frames})
    if quarantine is None or report.table_level:
        raise RawDataError(
            f"raw folder {raw_dir} breaks the data contract:\n\n{format_report(report)}", report
        )
    counts = _write_quarantine(frames, report, Path(quarantine))
    valid = {
        name: frame.drop(index=report.bad_rows(name).index).reset_index(drop=True)
        for name, frame in frames.items()
    }
    return RawTables(valid, report, counts)
