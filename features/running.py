"""Running totals of rows sorted by supplier and day: per supplier, sequential, compiled (numba).

A supplier's sums restart at its first row and never mix with another supplier's values, so
they are as exact as a per-supplier loop (a global cumulative sum less each supplier's start
would lose the small values of one supplier against the large ones of those before it).
"""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True)
def segmented_cumsum(values: np.ndarray, first: np.ndarray) -> np.ndarray:
    """Column-wise cumulative sums of ``values`` (rows, columns) restarting where ``first``."""
    out = np.empty_like(values)
    for j in range(values.shape[1]):
        total = values.dtype.type(0)
        for i in range(values.shape[0]):
            if first[i]:
                total = values.dtype.type(0)
            total += values[i, j]
            out[i, j] = total
    return out


@numba.njit(cache=True)
def segmented_last_where(day: np.ndarray, positive: np.ndarray, first: np.ndarray) -> np.ndarray:
    """Per row, the latest ``day`` at or before it (same supplier) where ``positive``; -1 if
    none yet."""
    out = np.empty(day.shape[0], np.int64)
    last = -1
    for i in range(day.shape[0]):
        if first[i]:
            last = -1
        if positive[i]:
            last = day[i]
        out[i] = last
    return out


def day_keys(sid: np.ndarray, day: np.ndarray) -> np.ndarray:
    """One sortable int64 per (supplier number, day): the supplier in the high 32 bits, the day
    (days since 1970, biased to be non-negative) in the low ones, so that sorting by key sorts by
    supplier, then day."""
    return (sid.astype(np.int64) << 32) | (day.astype(np.int64) + (1 << 31))


def asof_positions(keys: np.ndarray, query: np.ndarray) -> np.ndarray:
    """For each ``query`` key, the position of the last of the sorted ``keys`` at or before it
    with the same supplier (an ASOF join's match: the same supplier's latest row on or before
    the query day); -1 where that supplier has no row on or before the day."""
    pos = np.searchsorted(keys, query, side="right") - 1
    found = pos >= 0
    found[found] = (keys[pos[found]] >> 32) == (query[found] >> 32)
    pos[~found] = -1
    return pos
