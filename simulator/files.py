"""Where the simulator's files are: the raw contract folder and the truth beside it."""

from __future__ import annotations

from pathlib import Path


def find_truth(raw: Path) -> Path | None:
    """``truth.parquet`` beside the raw folder (where the simulator writes it) or inside it;
    ``None`` for an export that has no truth (every real one)."""
    raw = Path(raw)
    for candidate in (raw.parent / "truth.parquet", raw / "truth.parquet"):
        if candidate.is_file():
            return candidate
    return None
