"""The offline feature table as a folder of Parquet parts, one per build.

A daily build appends one small part instead of rewriting the whole table; a full build writes a
new folder and swaps it in. Readers see the folder as one table: pandas and pyarrow read the
folder itself, Feast's DuckDB offline store reads :func:`parts_glob`. Files being written are
dot-prefixed and end in ``.tmp``, so that no reader sees a half-written part.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Iterable
from datetime import date
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

PART_SUFFIX = ".parquet"


def parts_glob(folder: Path) -> str:
    """The pattern matching every part of the table at ``folder`` (what Feast reads)."""
    return str(Path(folder).resolve() / f"*{PART_SUFFIX}")


def part_files(folder: Path) -> list[Path]:
    """The finished parts of the table at ``folder``, oldest first (none when there is none)."""
    if not folder.is_dir():
        return []
    return sorted(
        p for p in folder.iterdir() if p.name.endswith(PART_SUFFIX) and p.name[0] not in "._"
    )


def part_name(first: date, last: date) -> str:
    """A part's file name: the first and last grid day it holds."""
    return f"part-{first.isoformat()}-{last.isoformat()}{PART_SUFFIX}"


def table_rows(folder: Path) -> int:
    """Rows in all parts of the table at ``folder`` (from the Parquet footers)."""
    return sum(pq.read_metadata(p).num_rows for p in part_files(folder))


def table_schema(folder: Path) -> pa.Schema | None:
    """The schema every part of the table shares (that of its first part); None without one."""
    parts = part_files(folder)
    return pq.read_schema(parts[0]) if parts else None


def write_part(
    folder: Path, name: str, tables: Iterable[pa.Table], schema: pa.Schema | None
) -> int:
    """Write ``tables`` as the part ``name`` of ``folder`` atomically (a hidden temporary file
    renamed into place); each is cast to ``schema`` (default: the first table's).

    Returns:
        The rows written; with no rows, no part is written.
    """
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".{name}.{uuid.uuid4().hex[:8]}.tmp"
    writer: pq.ParquetWriter | None = None
    rows = 0
    try:
        for table in tables:
            if writer is None:
                writer = pq.ParquetWriter(tmp, schema or table.schema, compression="zstd")
            writer.write_table(table.cast(writer.schema))
            rows += table.num_rows
        if writer is not None:
            writer.close()
            os.replace(tmp, folder / name)
    except BaseException:
        if writer is not None:
            writer.close()
        tmp.unlink(missing_ok=True)
        raise
    return rows


def new_folder_beside(folder: Path) -> Path:
    """An empty hidden folder beside ``folder``, to build a replacement of it in."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f".{folder.name}-", suffix=".tmp", dir=folder.parent))


def swap_in(new: Path, folder: Path) -> None:
    """Put the folder ``new`` in the place of ``folder`` (renames; the old one is removed).

    A file at ``folder`` (a table of the single-file layout) is replaced the same way.
    """
    old: Path | None = None
    if folder.exists():
        old = folder.with_name(f".{folder.name}-old-{uuid.uuid4().hex[:8]}.tmp")
        os.replace(folder, old)
    os.replace(new, folder)
    if old is not None:
        if old.is_dir():
            shutil.rmtree(old, ignore_errors=True)
        else:
            old.unlink(missing_ok=True)
