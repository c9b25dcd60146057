"""Realised outcomes: the stored daily predictions, once a horizon old, joined with the
cancellations that followed, and measured the way the champion was measured on its holdout.

A prediction for day ``d`` scores the supplier as of the end of that day, the instant
``t = d + 1 day, 00:00 UTC``, and is right or wrong about ``(t, t + H days]``
(``DATA_CONTRACT.md``, "Labels"). Its outcome is known once that window has passed; these
functions label the rows whose window has, measure a score column on them (overall, per segment,
per month), and compare the figures with the champion's holdout figures to say when to retrain.

Pure functions over frames: the monitoring job reads ``churn_predictions``, ``customer_health``,
``suppliers`` and the cancellations, and logs what these return.
"""

from __future__ import annotations

import logging
from datetime import date, datetime
from pathlib import Path
from typing import Any, Final

import numpy as np
import pandas as pd
import yaml
from pydantic import BaseModel, ConfigDict, Field

from features.catalog import CATEGORIES
from features.contract import SOUTHERN_HEMISPHERE_COUNTRIES
from training.metrics import EPS

log = logging.getLogger(__name__)

DECILES: Final = 10
NS_PER_DAY: Final = 86_400 * 10**9
NAT_NS: Final = np.iinfo(np.int64).min  # NaT's integer
MONITORING_CONFIG: Final = Path(__file__).resolve().parents[1] / "experiments" / "monitoring.yaml"
# ``realised_labels`` stores the number of rows it dropped (supplier already cancelled at the
# prediction's instant) under this key of the returned frame's ``attrs``.
DROPPED_ATTR: Final = "cancelled_before_prediction"
# The segment value of rows whose segment is unknown (a supplier missing from the directory).
UNKNOWN_SEGMENT: Final = "unknown"
# Per-segment columns ``with_segments`` attaches from the supplier directory.
SEGMENT_COLUMNS: Final = ("subscription_tier", "vendor_type", "hemisphere")
# Numbers closer than this are equal when comparing a drop with its margin, so that a drop of
# exactly the margin (0.80 - 0.77 is 0.030000000000000027 in floating point) does not fire.
_TOLERANCE: Final = 1e-12


# -- labels ----------------------------------------------------------------------------------
def _require(frame: pd.DataFrame, columns: tuple[str, ...], name: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise KeyError(f"{name} lacks column(s) {missing}; it has {list(frame.columns)}")


def _days(column: pd.Series, name: str) -> pd.Series:
    """A column of calendar days (``date`` objects or midnight timestamps without a zone) as
    naive ``datetime64`` at midnight; an instant is refused, not truncated."""
    try:
        days = pd.to_datetime(column)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{name} must hold calendar days: {err}") from err
    if isinstance(days.dtype, pd.DatetimeTZDtype):
        raise ValueError(f"{name} must hold calendar days, not time-zone aware instants")
    if days.isna().any():
        raise ValueError(f"{name} has {int(days.isna().sum())} missing day(s)")
    if days.dtype != np.dtype("datetime64[ns]"):
        days = days.astype("datetime64[ns]")
    off = (days.array.asi8 % NS_PER_DAY) != 0
    if off.any():
        raise ValueError(f"{name} must hold calendar days; e.g. {list(days[off].head(3))}")
    return days


def _instants(column: pd.Series, name: str) -> pd.Series:
    """A column of time-zone aware instants converted to UTC (any zones, mixed ones too).
    Naive timestamps are refused: the contract's timestamps are UTC, and a guessed zone would
    move a cancellation across a label window's edge."""
    if column.isna().all():
        return pd.Series(pd.NaT, index=column.index, dtype="datetime64[ns, UTC]")
    if isinstance(column.dtype, pd.DatetimeTZDtype):
        return column.dt.tz_convert("UTC")
    if column.dtype == object:  # e.g. datetime objects read from a database
        try:
            naive = [v for v in column.dropna() if pd.Timestamp(v).tz is None]
        except (TypeError, ValueError) as err:
            raise ValueError(f"{name} must hold time-zone aware instants: {err}") from err
        if not naive:
            return pd.to_datetime(column, utc=True)
    raise ValueError(f"{name} holds naive timestamps; give them a time zone (UTC)")


def _cancellation_ns(predictions: pd.DataFrame, cancellations: pd.DataFrame) -> np.ndarray:
    """Each prediction row's supplier cancellation instant in UTC nanoseconds (``NAT_NS`` when
    none), aligned with ``predictions``' rows. Validates both frames."""
    _require(predictions, ("supplier_id", "day"), "predictions")
    _require(cancellations, ("supplier_id", "cancelled_at"), "cancellations")
    cancelled_at = _instants(cancellations["cancelled_at"], "cancellations.cancelled_at")
    ids = cancellations["supplier_id"].astype(str)
    known = cancelled_at.notna().to_numpy()
    repeated = ids[known][ids[known].duplicated()]
    if len(repeated):
        raise ValueError(
            f"cancellations has more than one row for supplier(s) {sorted(set(repeated))[:5]}"
        )
    instants = cancelled_at[known].dt.tz_convert("UTC").dt.tz_localize(None)
    nanoseconds = instants.astype("datetime64[ns]").to_numpy().view(np.int64)
    return _per_supplier(predictions["supplier_id"], pd.Index(ids[known]), nanoseconds, NAT_NS)


def _per_supplier(keys: pd.Series, ids: pd.Index, values: np.ndarray, missing: Any) -> np.ndarray:
    """``values`` (one an id of ``ids``) at each row's supplier id, ``missing`` where the id is
    not there. A categorical ``keys`` column (the bulk reader's) is looked up once per category,
    not once per row."""
    if isinstance(keys.dtype, pd.CategoricalDtype):
        per_category = ids.get_indexer(keys.cat.categories.astype(str))
        codes = keys.cat.codes.to_numpy()
        position = np.where(codes >= 0, per_category[np.maximum(codes, 0)], -1)
    else:
        position = ids.get_indexer(keys.astype(str))
    found = position >= 0
    out = np.full(len(keys), missing, dtype=values.dtype)
    out[found] = values[position[found]]
    return out


def _instant_series(nanoseconds: np.ndarray, index: pd.Index) -> pd.Series:
    """UTC instants from nanoseconds (``NAT_NS`` as NaT)."""
    return pd.Series(nanoseconds.view("datetime64[ns]"), index=index, dtype="datetime64[ns, UTC]")


def _prediction_ns(predictions: pd.DataFrame) -> np.ndarray:
    """Each row's prediction instant (the end of its ``day``) in UTC nanoseconds."""
    _require(predictions, ("day",), "predictions")
    days = _days(predictions["day"], "predictions.day")
    return days.to_numpy().view(np.int64) + NS_PER_DAY


def prediction_instants(predictions: pd.DataFrame) -> pd.Series:
    """The instant each row's prediction is made as of: the end of its ``day``, that is the
    next day at 00:00 UTC (aligned with ``predictions``' rows)."""
    return _instant_series(_prediction_ns(predictions), predictions.index)


def cancelled_before_prediction(
    predictions: pd.DataFrame, cancellations: pd.DataFrame
) -> pd.DataFrame:
    """The prediction rows of suppliers already cancelled at the prediction's instant, with
    their ``cancelled_at``.

    A supplier cancelled at or before ``t`` is not active at ``t`` and gets no row under the
    contract; a stored prediction for one (a late directory sync, say) has no outcome to be
    judged on. ``realised_labels`` drops these rows and counts those old enough to be kept
    otherwise; this returns every such row, of any age, to show which they are.
    """
    cancel = _cancellation_ns(predictions, cancellations)
    before = (cancel != NAT_NS) & (cancel <= _prediction_ns(predictions))
    rows = predictions[before]
    return rows.assign(cancelled_at=_instant_series(cancel[before], rows.index))


def realised_labels(
    predictions: pd.DataFrame,
    cancellations: pd.DataFrame,
    as_of: date,
    horizon_days: int = 30,
) -> pd.DataFrame:
    """The predictions whose label window has fully passed by the end of ``as_of``, each with
    the outcome that followed.

    A row for day ``d`` is made as of ``t = d + 1 day, 00:00 UTC`` and its label is 1 when the
    supplier's ``cancelled_at`` falls in ``(t, t + H days]``, else 0 (``DATA_CONTRACT.md``).
    ``cancellations`` is taken to be complete up to the end of ``as_of``, the instant
    ``A = as_of + 1 day, 00:00 UTC``, that instant included (the same convention as a
    prediction's: data stamped at ``t`` is known at ``t``). A row is kept when its window ends
    by then, ``t + H <= A``, that is when ``d + H days <= as_of``: a younger row could still turn
    from 0 to 1, and counting it as 0 would bias the realised churn rate down.

    Rows of suppliers cancelled at or before ``t`` are dropped (see
    ``cancelled_before_prediction``); their number is logged and stored in the returned
    frame's ``attrs[DROPPED_ATTR]``, so that no row disappears silently.

    Args:
        predictions: one row per supplier and day: ``supplier_id``, ``day`` (calendar days)
            and any score columns, which are kept.
        cancellations: ``supplier_id`` and ``cancelled_at`` (time-zone aware; converted to
            UTC), at most one row per supplier; a null ``cancelled_at`` means not cancelled.
            The supplier directory (``suppliers``) serves as well as the contract table.
        as_of: the last day whose cancellations are known.
        horizon_days: the label horizon ``H``.

    Returns:
        The kept rows of ``predictions`` (original order, fresh index) with ``cancelled_at``
        (UTC, NaT when not cancelled) and ``label`` (0/1) added.

    Raises:
        KeyError: a required column is missing (named).
        ValueError: naive timestamps, a ``day`` that is not a calendar day, or a supplier
            cancelled twice.
    """
    if isinstance(as_of, datetime) or not isinstance(as_of, date):
        raise TypeError(f"as_of must be a calendar day (datetime.date), not {as_of!r}")
    if horizon_days < 1:
        raise ValueError(f"horizon_days must be at least 1, not {horizon_days}")
    cancel = _cancellation_ns(predictions, cancellations)
    at = _prediction_ns(predictions)
    end_of_as_of = (pd.Timestamp(as_of, tz="UTC") + pd.Timedelta(days=1)).value
    horizon = horizon_days * NS_PER_DAY
    cancelled = cancel != NAT_NS
    before = cancelled & (cancel <= at)
    matured = at + horizon <= end_of_as_of
    dropped = int((before & matured).sum())
    if dropped:
        log.warning(
            "dropped %d matured prediction row(s) of suppliers already cancelled at the "
            "prediction's instant",
            dropped,
        )
    keep = np.flatnonzero(matured & ~before)
    label = (cancelled & (cancel > at) & (cancel <= at + horizon))[keep]
    out = predictions.take(keep)  # a new frame: the columns below are added in place
    out.index = pd.RangeIndex(len(out))
    out["cancelled_at"] = _instant_series(cancel[keep], out.index)
    out["label"] = label.astype(np.int8)
    out.attrs[DROPPED_ATTR] = dropped
    return out


def hemisphere(country: pd.Series) -> pd.Series:
    """``southern`` for the countries of ``SOUTHERN_HEMISPHERE_COUNTRIES``, else ``northern``
    (a missing country too): the rule the feature table applies, so segments here are the
    model's own."""
    southern = country.isin(SOUTHERN_HEMISPHERE_COUNTRIES).to_numpy()
    return pd.Series(np.where(southern, "southern", "northern"), index=country.index)


def with_segments(labelled: pd.DataFrame, suppliers: pd.DataFrame) -> pd.DataFrame:
    """``labelled`` with each supplier's ``subscription_tier``, ``vendor_type`` and
    ``hemisphere`` from the supplier directory (replacing columns of those names).

    The directory holds today's tier, not the tier on the prediction's day: a supplier who
    downgraded before cancelling is counted under its last tier. A supplier missing from the
    directory gets null segments (``metrics_by`` reports them as ``unknown``).
    """
    _require(labelled, ("supplier_id",), "labelled")
    _require(
        suppliers, ("supplier_id", "subscription_tier", "vendor_type", "country"), "suppliers"
    )
    directory = pd.DataFrame(
        {
            "subscription_tier": suppliers["subscription_tier"].to_numpy(),
            "vendor_type": suppliers["vendor_type"].to_numpy(),
            "hemisphere": hemisphere(suppliers["country"]).to_numpy(),
        },
        index=suppliers["supplier_id"].astype(str).to_numpy(),
    )
    if directory.index.has_duplicates:
        repeated = sorted(set(directory.index[directory.index.duplicated()]))[:5]
        raise ValueError(f"suppliers has more than one row for supplier(s) {repeated}")
    keys = labelled["supplier_id"]
    out = labelled.copy(deep=False)  # the new columns only: the rows' data is shared
    for column in SEGMENT_COLUMNS:
        out[column] = _segment_column(keys, directory[column])
    return out


def _segment_column(keys: pd.Series, values: pd.Series) -> pd.Categorical:
    """A directory column at each row's supplier, as a categorical (null where the supplier is
    missing from the directory)."""
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    per_row = _per_supplier(keys, values.index, codes.astype(np.int32), -1)
    return pd.Categorical.from_codes(per_row, categories=pd.Index(uniques, dtype=object))


# -- metrics ---------------------------------------------------------------------------------
# A year of daily predictions is tens of millions of rows, measured overall, per segment and per
# month. Every figure needs the rows in score order only, so each score column is sorted once
# (``RankedScores``); a grouping's rows are then a stable partition of that order by small
# integer codes (a radix sort), each group already in score order, and every group's figures
# come out of one vectorised pass over them (``_group_figures``): no per-group sort, no Python
# loop over rows.
#
# The figures are scikit-learn's ``roc_auc_score`` and ``average_precision_score`` (rows of equal
# score form one threshold, as there) and the equal-count bins of
# ``training.metrics.expected_calibration_error``, with one difference: rows of equal score that
# straddle a bin's edge are split between the two bins in proportion (each bin gets its share
# of their churned rows), so the figures do not depend on the order the database returned the
# rows in. The unit tests check every figure by hand and against scikit-learn.
ECE_BINS: Final = 20
FIGURE_KEYS: Final = ("auc", "pr_auc", "brier", "log_loss", "ece")


def _labels_and_scores(
    labelled: pd.DataFrame, score_column: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """0/1 labels (int8) and scores of all rows (NaN where a score is missing), and the mask of
    rows with a score."""
    _require(labelled, ("label", score_column), "labelled")
    y = pd.to_numeric(labelled["label"]).to_numpy()
    if not ((y == 0) | (y == 1)).all():
        raise ValueError("label must hold 0 and 1 only")
    p = pd.to_numeric(labelled[score_column]).to_numpy(float)
    present = ~np.isnan(p)
    if (p[present] < 0).any() or (p[present] > 1).any():
        raise ValueError(f"{score_column} must be a probability in [0, 1]")
    return y.astype(np.int8), p, present


def _tie_extents(scores: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each of ``values`` (scores of the ascending ``scores``), the positions ``[left,
    right)`` of the rows whose clipped score equals its clipped score: the tie it belongs to as
    the figures see it (every score at or below ``EPS`` is one tie, so is every one at or above
    ``1 - EPS``)."""
    left = np.searchsorted(scores, values, side="left")
    right = np.searchsorted(scores, values, side="right")
    low, high = values <= EPS, values >= 1 - EPS
    if low.any():
        left[low], right[low] = 0, np.searchsorted(scores, EPS, side="right")
    if high.any():
        left[high], right[high] = np.searchsorted(scores, 1 - EPS, side="left"), len(scores)
    return left, right


def _bin_edges(n: int, count: int) -> np.ndarray:
    """The edges of ``np.array_split``'s ``count`` equal-count bins of ``n`` rows, empty bins
    left out."""
    j = np.arange(count + 1)
    return np.unique(j * (n // count) + np.minimum(j, n % count))


def _one_group(
    scores: np.ndarray,
    positive_at: np.ndarray,
    missing: int,
    squared_error: float,
    log_likelihood: float,
) -> dict[str, Any]:
    """The figures of one group: its scores ascending, the positions of its churned rows among
    them, its rows without a score, and its sums of squared error and log-likelihood."""
    n, positives = len(scores), len(positive_at)
    figures: dict[str, Any] = {"n": n, "positives": positives, "missing_scores": missing}
    if not n:
        return figures | dict.fromkeys(FIGURE_KEYS) | {"calibration": []}
    auc = pr_auc = None
    if 0 < positives < n:
        left, right = _tie_extents(scores, scores[positive_at])
        # AUC: the positives' mid-ranks (1-based) among all rows
        rank_sum = float(((left + right + 1) / 2).sum())
        auc = (rank_sum - positives * (positives + 1) / 2) / (positives * (n - positives))
        # average precision: each tie holding positives is one threshold; from it up, every row
        # is predicted positive; it adds its positives to the recall at that precision
        ties, first, in_tie = np.unique(left, return_index=True, return_counts=True)
        above = positives - first  # positives at or above the tie (they are in score order)
        pr_auc = float((in_tie * above / (n - ties)).sum()) / positives

    def sums(edges: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per bin between consecutive ``edges``: rows, churned rows (a tie across an edge
        split in proportion) and the sum of the clipped scores; and of the raw scores."""
        inner = edges[1:-1]
        left, right = _tie_extents(scores, scores[np.minimum(inner, n - 1)])
        before = np.searchsorted(positive_at, left)
        in_tie = np.searchsorted(positive_at, right) - before
        churned_at = np.r_[0.0, before + (inner - left) * in_tie / (right - left), positives]
        raw = np.add.reduceat(scores, edges[:-1])
        # clipping moves only the rows below EPS (first) and above 1 - EPS (last)
        low = int(np.searchsorted(scores, EPS, side="left"))
        high = int(np.searchsorted(scores, 1 - EPS, side="right"))
        low_sums = np.r_[0.0, np.cumsum(EPS - scores[:low])]
        high_sums = np.r_[0.0, np.cumsum(1 - EPS - scores[high:])]
        shift = low_sums[np.minimum(edges, low)] + high_sums[np.clip(edges - high, 0, n - high)]
        return np.diff(churned_at), raw + np.diff(shift), raw

    ece_edges = _bin_edges(n, ECE_BINS)
    churned, clipped, _ = sums(ece_edges)
    ece = float(np.abs(churned - clipped).sum()) / n
    decile_edges = _bin_edges(n, DECILES)
    churned, _, raw = sums(decile_edges)
    sizes = np.diff(decile_edges)
    return figures | {
        "auc": auc,
        "pr_auc": pr_auc,
        "brier": squared_error / n,
        "log_loss": -log_likelihood / n,
        "ece": ece,
        "calibration": [
            {
                "decile": d,
                "mean_predicted": float(total / size),
                "observed_rate": float(rate / size),
                "n": int(size),
            }
            for d, (size, total, rate) in enumerate(zip(sizes, raw, churned, strict=True), 1)
        ],
    }


def probability_order(p: np.ndarray) -> np.ndarray:
    """The row order of ascending ``p`` (probabilities in [0, 1], no NaN), ties by row: what a
    stable ``argsort`` gives, about twice as fast on tens of millions of rows.

    A non-negative float's bits, read as an unsigned integer, order as the float does. Each
    row's key is those bits with the lowest ones replaced by the row's index, so one sort of the
    keys (no index array carried along) gives the rows' order. Two scores that differ only in
    the replaced bits (closer than about 1e-8 relative: never for scores stored from float32,
    whose low 29 bits are zero) come out by row; a pass finds any such pair and sorts those runs
    again by score.
    """
    n = len(p)
    width = max(int(n - 1).bit_length(), 1)
    if n < 2 or width > 40:
        return np.argsort(p, kind="stable")
    low = (np.uint64(1) << np.uint64(width)) - np.uint64(1)
    keys = (np.ascontiguousarray(p, dtype=np.float64).view(np.uint64) & ~low) | np.arange(
        n, dtype=np.uint64
    )
    keys.sort()
    order = (keys & low).astype(np.int64)
    scores = p[order]
    wrong = np.flatnonzero(scores[1:] < scores[:-1])
    if len(wrong):
        # the runs of equal high bits that hold a wrong pair, sorted again by (score, row)
        high = keys >> np.uint64(width)
        starts = np.flatnonzero(np.r_[True, high[1:] != high[:-1]])
        run = np.searchsorted(starts, wrong, side="right") - 1
        ends = np.r_[starts[1:], n]
        runs = np.unique(run)
        at = np.concatenate([np.arange(starts[r], ends[r]) for r in runs])
        run_of = np.repeat(np.arange(len(runs)), ends[runs] - starts[runs])
        within = np.lexsort((order[at], scores[at], run_of))
        order[at] = order[at][within]
    return order


class RankedScores:
    """One score column of a labelled frame sorted once, measured overall and per group.

    ``outcome_metrics``, ``metrics_by`` and ``metrics_over_time`` each build one; the monitoring
    job builds one per score column and asks it for every breakdown. A grouping costs a radix
    sort of its codes and a few passes over the rows; the per-group work is over each group's
    churned rows and bin edges only (binary searches in its sorted scores).
    """

    def __init__(self, labelled: pd.DataFrame, score_column: str) -> None:
        y, p, present = _labels_and_scores(labelled, score_column)
        rows = None if present.all() else np.flatnonzero(present)
        order = probability_order(p if rows is None else p[rows])
        self._order = order if rows is None else rows[order]
        self._scores, self._labels = p[self._order], y[self._order]
        self._without_score = np.flatnonzero(~present)
        # each row's squared error and log-likelihood in row order (0 without a score), so a
        # group's sums are one weighted count
        clipped = np.clip(p if rows is None else np.where(present, p, 0.5), EPS, 1 - EPS)
        error = (clipped - y) ** 2
        # the log of the probability given to what happened (one log a row)
        likelihood = np.log(np.where(y == 1, clipped, 1 - clipped))
        if rows is not None:
            error[~present], likelihood[~present] = 0.0, 0.0
        self._squared_error, self._log_likelihood = error, likelihood

    def overall(self) -> dict[str, Any]:
        return _one_group(
            self._scores,
            np.flatnonzero(self._labels),
            len(self._without_score),
            float(self._squared_error.sum()),
            float(self._log_likelihood.sum()),
        )

    def by_codes(self, codes: np.ndarray, names: list[str]) -> dict[str, dict[str, Any]]:
        """The figures of each group: ``codes`` (one a row, ``0 .. len(names) - 1``) name the
        rows' groups; groups without rows are left out."""
        identity = np.arange(len(names))
        return self.by_cells(codes, {"": (identity, names)})[""]

    def by_cells(
        self, cells: np.ndarray, groupings: dict[str, tuple[np.ndarray, list[str]]]
    ) -> dict[str, dict[str, dict[str, Any]]]:
        """The figures of several groupings of the rows at once. ``cells`` gives each row a
        cell (``0 .. C - 1``: say, one a combination of tier, vendor type, hemisphere and
        month); each grouping maps the cells to its groups (an array of C group codes) and names
        the groups. The rows are gathered by cell once; each grouping then costs a radix sort
        of its codes over the score order and a few passes, its sums one weighted count of the
        cells'."""
        cells = np.asarray(cells, np.int16 if cells.max(initial=0) < 2**15 else np.int64)
        count = int(max((len(m) for m, _ in groupings.values()), default=0))
        cell_in_order = cells[self._order]
        missing = np.bincount(cells[self._without_score], minlength=count)
        squared = np.bincount(cells, weights=self._squared_error, minlength=count)
        likelihood = np.bincount(cells, weights=self._log_likelihood, minlength=count)
        out: dict[str, dict[str, dict[str, Any]]] = {}
        for key, (to_group, names) in groupings.items():
            k = len(names)
            to_group = np.asarray(to_group, np.int16 if k < 2**15 else np.int64)
            in_order = to_group[cell_in_order]
            grouped = np.argsort(in_order, kind="stable")  # a radix sort of small integers
            bounds = np.r_[0, np.cumsum(np.bincount(in_order, minlength=k))]
            scores = self._scores[grouped]
            positive_at = np.flatnonzero(self._labels[grouped])
            cut = np.searchsorted(positive_at, bounds)

            group_missing, group_squared, group_likelihood = (
                np.bincount(to_group, weights=per_cell, minlength=k)
                for per_cell in (missing, squared, likelihood)
            )
            figures = {}
            for g, name in enumerate(names):
                a, b = bounds[g], bounds[g + 1]
                if b > a or group_missing[g] > 0:
                    figures[name] = _one_group(
                        scores[a:b],
                        positive_at[cut[g] : cut[g + 1]] - a,
                        round(group_missing[g]),
                        float(group_squared[g]),
                        float(group_likelihood[g]),
                    )
            out[key] = figures
        return out

    def by(self, labelled: pd.DataFrame, by: str) -> dict[str, dict[str, Any]]:
        """The figures per value of the column ``by``; see ``metrics_by``."""
        codes, names = segment_codes(labelled, by)
        return self.by_codes(codes, names)

    def over_time(self, labelled: pd.DataFrame, freq: str = "MS") -> dict[str, dict[str, Any]]:
        """The figures per period of the prediction day; see ``metrics_over_time``."""
        codes, names = period_codes(labelled, freq)
        return self.by_codes(codes, names)


def segment_codes(labelled: pd.DataFrame, by: str) -> tuple[np.ndarray, list[str]]:
    """Each row's segment code under the column ``by`` and the segments' names: the present
    values in the catalog's order (``_segment_order``), a null as ``unknown`` (last)."""
    _require(labelled, (by,), "labelled")
    column = labelled[by]
    if isinstance(column.dtype, pd.CategoricalDtype):
        codes, uniques = column.cat.codes.to_numpy(), column.cat.categories
        used = np.bincount(codes[codes >= 0], minlength=len(uniques)) > 0
        codes = np.where(codes >= 0, codes, len(uniques))
        values = [str(v) for v in uniques] + [UNKNOWN_SEGMENT]
        used = np.r_[used, (column.cat.codes.to_numpy() < 0).any()]
    else:
        codes, uniques = pd.factorize(column, use_na_sentinel=True)
        codes = np.where(codes >= 0, codes, len(uniques))
        values = [str(v) for v in uniques] + [UNKNOWN_SEGMENT]
        used = np.r_[np.ones(len(uniques), bool), (codes == len(uniques)).any()]
    # one name may stand for several codes (a value "unknown", or 1 and "1"): merge them
    names = _segment_order(pd.Series([v for v, u in zip(values, used, strict=True) if u]), by)
    position = {name: k for k, name in enumerate(names)}
    remap = np.array([position.get(v, -1) for v in values], np.int32)
    return remap[codes], names


def combined_cells(
    groupings: dict[str, tuple[np.ndarray, list[str]]],
) -> tuple[np.ndarray, dict[str, tuple[np.ndarray, list[str]]]]:
    """One cell code a row for every combination of the groupings' codes (row-wise codes and
    names, as ``segment_codes`` and ``period_codes`` return them), and each grouping as a map
    from cells to its groups, for ``RankedScores.by_cells``."""
    sizes = [len(names) for _, names in groupings.values()]
    total = int(np.prod(sizes)) if sizes else 1
    cells = np.zeros(
        len(next(iter(groupings.values()))[0]) if groupings else 0,
        np.int32 if total < 2**31 else np.int64,
    )
    for (codes, _), size in zip(groupings.values(), sizes, strict=True):
        cells *= size
        cells += codes
    maps: dict[str, tuple[np.ndarray, list[str]]] = {}
    for position, (key, (_, names)) in enumerate(groupings.items()):
        inner = int(np.prod(sizes[position + 1 :])) if position + 1 < len(sizes) else 1
        maps[key] = ((np.arange(total) // inner) % sizes[position], names)
    return cells, maps


def period_codes(labelled: pd.DataFrame, freq: str = "MS") -> tuple[np.ndarray, list[str]]:
    """Each row's period of its prediction ``day`` (a pandas offset alias; months by default)
    and the periods' first days (ISO), oldest first."""
    _require(labelled, ("day",), "labelled")
    days = _days(labelled["day"], "labelled.day")
    if freq == "MS":  # months: numpy's own unit, codes by subtraction, no sort
        months = days.to_numpy().astype("datetime64[M]").astype(np.int64)
        first = int(months.min()) if len(months) else 0
        codes = months - first
        present = np.flatnonzero(np.bincount(codes, minlength=1))
        remap = np.full(int(codes.max(initial=0)) + 1, -1, np.int32)
        remap[present] = np.arange(len(present))
        names = [f"{np.datetime64(first + int(m), 'M')}-01" for m in present]
        return remap[codes], names
    periods = days.dt.to_period(pd.tseries.frequencies.to_offset(freq)).dt.start_time.to_numpy()
    uniques, codes = np.unique(periods, return_inverse=True)
    names = [f"{pd.Timestamp(u):%Y-%m-%d}" for u in uniques]
    return codes.reshape(-1), names


def calibration_by_decile(y: np.ndarray, p: np.ndarray) -> list[dict[str, float | int]]:
    """Observed churn rate against the mean prediction in ten equal-count bins of the
    prediction, lowest first (fewer than ten rows give fewer bins; rows of equal score across a
    bin's edge are split in proportion).

    The binning of ``training.metrics.expected_calibration_error``, so the table explains the
    ECE figure next to it.
    """
    frame = pd.DataFrame({"label": np.asarray(y), "score": np.asarray(p, float)})
    return RankedScores(frame, "score").overall()["calibration"]


def outcome_metrics(labelled: pd.DataFrame, score_column: str) -> dict[str, Any]:
    """Realised performance of one probability column against ``label``.

    The figures the champion's holdout reports (``training.metrics.evaluate``: the same
    clipping to ``[EPS, 1 - EPS]``, the same ECE bins), so that the two can be compared:
    ``n``, ``positives``, ``auc``, ``pr_auc``, ``brier``, ``log_loss``, ``ece`` and
    ``calibration`` (``calibration_by_decile``). ``missing_scores`` counts rows whose score is
    null (``customer_health.churn_probability`` may be); they are left out of every figure.

    ``auc`` and ``pr_auc`` are None when only one class is present (a small segment without a
    churn), and every figure but the counts is None without rows: a month or a segment can be
    thin, and a report must not crash on it.
    """
    return RankedScores(labelled, score_column).overall()


def _segment_order(values: pd.Series, by: str) -> list[str]:
    """Present values in the catalog's order when ``by`` is a catalog category, else sorted;
    ``unknown`` last."""
    present = set(values)
    known = [v for v in CATEGORIES.get(by, ()) if v in present]
    rest = sorted(present - set(known) - {UNKNOWN_SEGMENT})
    return known + rest + ([UNKNOWN_SEGMENT] if UNKNOWN_SEGMENT in present else [])


def metrics_by(labelled: pd.DataFrame, score_column: str, by: str) -> dict[str, dict[str, Any]]:
    """``outcome_metrics`` per value of the column ``by`` (``subscription_tier``,
    ``vendor_type``, ``hemisphere``, ``segment``...), keyed by the value as a string.

    A model can hold up overall and fail one segment (the southern season, a new tier). Only
    values present in ``labelled`` appear; null values are grouped as ``unknown`` rather than
    dropped.
    """
    return RankedScores(labelled, score_column).by(labelled, by)


def metrics_over_time(
    labelled: pd.DataFrame, score_column: str, freq: str = "MS"
) -> dict[str, dict[str, Any]]:
    """``outcome_metrics`` per period of the prediction ``day`` (a pandas offset alias;
    months by default), keyed by the period's first day (ISO), oldest first; periods without
    rows are left out. A slow decline shows here before it moves the pooled figure."""
    return RankedScores(labelled, score_column).over_time(labelled, freq)


class OutcomeThresholds(BaseModel):
    """How far realised performance may fall below the champion's holdout figures before the
    monitoring asks for a retrain (``experiments/monitoring.yaml``, section ``outcomes``).

    Args:
        max_auc_drop: absolute AUC points. With 200 to 400 churns, the standard error of an
            AUC near 0.8 is about 0.019 to 0.014 (Hanley and McNeil, 1982), so 0.03 is about
            1.5 to 2 standard errors: a real loss of ranking, not one month's noise.
        max_pr_auc_relative_drop: share of the holdout PR-AUC. PR-AUC moves with the churn rate
            itself, which swings with the wedding season, so the margin is relative and wide.
        max_brier_rise: absolute. At a churn rate of a few per cent a useful model's Brier score
            is about 0.03 to 0.05; a rise of 0.01 is a fifth or more of it, a miscalibration
            CS would feel in its risk bands.
        min_positives: below this many realised churns nothing is flagged: the figures are too
            noisy to act on (the report still shows them).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_auc_drop: float = Field(default=0.03, ge=0, le=1)
    max_pr_auc_relative_drop: float = Field(default=0.25, ge=0, lt=1)
    max_brier_rise: float = Field(default=0.01, ge=0, le=1)
    min_positives: int = Field(default=30, ge=0)


def load_outcome_thresholds(path: Path = MONITORING_CONFIG) -> OutcomeThresholds:
    """The ``outcomes`` section of the monitoring file (``experiments/monitoring.yaml`` by
    default).

    Raises:
        ValueError: the file or its ``outcomes`` section is missing or wrong (the file and the
            field named).
    """
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as err:
        raise ValueError(f"cannot read monitoring config {path}: {err}") from err
    if not isinstance(raw, dict) or not isinstance(raw.get("outcomes"), dict):
        raise ValueError(f"monitoring config {path} has no outcomes section")
    try:
        return OutcomeThresholds.model_validate(raw["outcomes"])
    except ValueError as err:
        raise ValueError(f"monitoring config {path} is invalid: {err}") from err


def retrain_flags(
    realised: dict[str, Any], holdout: dict[str, float], thresholds: OutcomeThresholds
) -> list[str]:
    """Why the champion should be retrained, one sentence a reason; empty when it holds up.

    Args:
        realised: ``outcome_metrics`` of the champion's stored predictions.
        holdout: the champion's holdout figures, keyed as ``training.metrics.evaluate`` keys
            them (``auc``, ``pr_auc``, ``brier``).
        thresholds: the margins.

    A drop of exactly the margin does not fire. Nothing fires with fewer than
    ``thresholds.min_positives`` realised churns, and AUC and PR-AUC are not compared when the
    realised rows hold one class (they are None).
    """
    compared = ("auc", "pr_auc", "brier")
    missing = [k for k in compared if k not in holdout]
    if missing:
        raise KeyError(f"holdout lacks {missing}; it has {sorted(holdout)}")
    if realised.get("positives", 0) < thresholds.min_positives:
        return []
    reasons = []
    auc, pr_auc, brier = (realised.get(k) for k in compared)
    if auc is not None and holdout["auc"] - auc > thresholds.max_auc_drop + _TOLERANCE:
        reasons.append(
            f"AUC {auc:.3f} is {holdout['auc'] - auc:.3f} below the champion's holdout "
            f"{holdout['auc']:.3f} (margin {thresholds.max_auc_drop:.3f})"
        )
    if pr_auc is not None and holdout["pr_auc"] > 0:
        drop = 1 - pr_auc / holdout["pr_auc"]
        if drop > thresholds.max_pr_auc_relative_drop + _TOLERANCE:
            reasons.append(
                f"PR-AUC {pr_auc:.3f} is {drop:.0%} below the champion's holdout "
                f"{holdout['pr_auc']:.3f} (margin {thresholds.max_pr_auc_relative_drop:.0%})"
            )
    if brier is not None and brier - holdout["brier"] > thresholds.max_brier_rise + _TOLERANCE:
        reasons.append(
            f"Brier score {brier:.4f} is {brier - holdout['brier']:.4f} above the champion's "
            f"holdout {holdout['brier']:.4f} (margin {thresholds.max_brier_rise:.4f})"
        )
    return reasons
