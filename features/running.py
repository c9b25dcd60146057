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
