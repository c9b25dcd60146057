"""The feature build's running totals and lookups (features.running) against plain references:
a per-supplier Python loop and DuckDB's own ASOF join."""

from __future__ import annotations

import duckdb
import numpy as np
import pandas as pd
import pytest

from features.running import asof_positions, day_keys, segmented_cumsum, segmented_last_where


def _rows(seed: int) -> pd.DataFrame:
    """Rows of a few suppliers on distinct days, sorted by supplier then day."""
    rng = np.random.default_rng(seed)
    frames = []
    for sid in rng.choice(50, size=12, replace=False):
        days = np.sort(rng.choice(np.arange(-40, 400), size=rng.integers(1, 30), replace=False))
        frames.append(pd.DataFrame({"sid": sid, "day": days, "x": rng.integers(0, 5, len(days))}))
    return pd.concat(frames).sort_values(["sid", "day"], ignore_index=True)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_running_sums_and_last_day_restart_per_supplier(seed: int) -> None:
    rows = _rows(seed)
    first = (rows["sid"] != rows["sid"].shift()).to_numpy()
    sums = segmented_cumsum(rows[["x"]].to_numpy(np.int64), first)[:, 0]
    assert sums.tolist() == rows.groupby("sid")["x"].cumsum().tolist()
    last = segmented_last_where(rows["day"].to_numpy(np.int64), rows["x"].to_numpy() > 0, first)
    expected = rows["day"].where(rows["x"] > 0).groupby(rows["sid"]).ffill().fillna(-1).astype(int)
    assert last.tolist() == expected.tolist()


def test_day_keys_sort_by_supplier_then_day_including_days_before_1970() -> None:
    sid = np.array([1, 1, 2, 2, 3])
    day = np.array([-5, 7, -100, 0, 3])
    keys = day_keys(sid, day)
    assert (np.diff(keys) > 0).all()
    assert ((keys >> 32) == sid).all()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_positions_match_duckdb_asof_join(seed: int) -> None:
    """The latest row of the same supplier on or before each query day, -1 where none: what
    ``asof left join ... on sid = sid and qday >= day`` matches."""
    rows = _rows(seed).reset_index(names="pos")
    rng = np.random.default_rng(seed + 100)
    queries = pd.DataFrame(
        {"q": np.arange(400), "sid": rng.integers(0, 55, 400), "qday": rng.integers(-60, 420, 400)}
    )
    found = asof_positions(
        day_keys(rows["sid"].to_numpy(), rows["day"].to_numpy()),
        day_keys(queries["sid"].to_numpy(), queries["qday"].to_numpy()),
    )
    expected = (
        duckdb.sql("""
            select q.q, coalesce(r.pos, -1) as pos
            from queries q asof left join rows r on q.sid = r.sid and q.qday >= r.day
            order by q.q
        """)
        .df()["pos"]
        .to_numpy()
    )
    assert (found >= 0).any() and (found < 0).any()  # both cases are exercised
    assert found.tolist() == expected.tolist()
