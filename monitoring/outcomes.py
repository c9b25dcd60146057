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
from sklearn.metrics import average_precision_score, brier_score_loss, log_loss, roc_auc_score

from features.catalog import CATEGORIES
from features.contract import SOUTHERN_HEMISPHERE_COUNTRIES
from training.metrics import EPS, expected_calibration_error

log = logging.getLogger(__name__)

DECILES: Final = 10
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
    off = days != days.dt.normalize()
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


def _cancellation_times(predictions: pd.DataFrame, cancellations: pd.DataFrame) -> pd.Series:
    """Each prediction row's supplier cancellation instant (NaT when none), aligned with
    ``predictions``' rows. Validates both frames."""
    _require(predictions, ("supplier_id", "day"), "predictions")
    _require(cancellations, ("supplier_id", "cancelled_at"), "cancellations")
    cancelled_at = _instants(cancellations["cancelled_at"], "cancellations.cancelled_at")
    by_supplier = cancelled_at.set_axis(cancellations["supplier_id"].astype(str)).dropna()
    repeated = by_supplier.index[by_supplier.index.duplicated()]
    if len(repeated):
        raise ValueError(
            f"cancellations has more than one row for supplier(s) {sorted(set(repeated))[:5]}"
        )
    times = predictions["supplier_id"].astype(str).map(by_supplier)
    return pd.to_datetime(times, utc=True)


def prediction_instants(predictions: pd.DataFrame) -> pd.Series:
    """The instant each row's prediction is made as of: the end of its ``day``, that is the
    next day at 00:00 UTC (aligned with ``predictions``' rows)."""
    _require(predictions, ("day",), "predictions")
    days = _days(predictions["day"], "predictions.day")
    return (days + pd.Timedelta(days=1)).dt.tz_localize("UTC")


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
    cancelled_at = _cancellation_times(predictions, cancellations)
    before = (cancelled_at <= prediction_instants(predictions)).to_numpy()
    return predictions[before].assign(cancelled_at=cancelled_at.array[before])


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
    cancelled_at = _cancellation_times(predictions, cancellations)
    instant = prediction_instants(predictions)
    end_of_as_of = pd.Timestamp(as_of, tz="UTC") + pd.Timedelta(days=1)
    horizon = pd.Timedelta(days=horizon_days)
    before = (cancelled_at <= instant).to_numpy()
    matured = (instant + horizon <= end_of_as_of).to_numpy()
    dropped = int((before & matured).sum())
    if dropped:
        log.warning(
            "dropped %d matured prediction row(s) of suppliers already cancelled at the "
            "prediction's instant",
            dropped,
        )
    keep = matured & ~before
    label = ((cancelled_at > instant) & (cancelled_at <= instant + horizon)).to_numpy()[keep]
    out = predictions[keep].assign(cancelled_at=cancelled_at.array[keep], label=label.astype(int))
    out = out.reset_index(drop=True)
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
    keys = labelled["supplier_id"].astype(str)
    return labelled.assign(**{c: keys.map(directory[c]).to_numpy() for c in SEGMENT_COLUMNS})


# -- metrics ---------------------------------------------------------------------------------
def _labels_and_scores(
    labelled: pd.DataFrame, score_column: str
) -> tuple[np.ndarray, np.ndarray, int]:
    """0/1 labels and scores of the rows with a score, and the number of rows without one."""
    _require(labelled, ("label", score_column), "labelled")
    y = pd.to_numeric(labelled["label"]).to_numpy(float)
    if not np.isin(y, (0.0, 1.0)).all():
        raise ValueError("label must hold 0 and 1 only")
    p = pd.to_numeric(labelled[score_column]).to_numpy(float)
    present = ~np.isnan(p)
    if ((p[present] < 0) | (p[present] > 1)).any():
        raise ValueError(f"{score_column} must be a probability in [0, 1]")
    return y[present].astype(int), p[present], int((~present).sum())


def calibration_by_decile(y: np.ndarray, p: np.ndarray) -> list[dict[str, float | int]]:
    """Observed churn rate against the mean prediction in ten equal-count bins of the
    prediction, lowest first (ties kept in row order; fewer than ten rows give fewer bins).

    The binning of ``training.metrics.expected_calibration_error``, so the table explains the
    ECE figure next to it.
    """
    order = np.argsort(p, kind="stable")
    table: list[dict[str, float | int]] = []
    for decile, rows in enumerate(np.array_split(order, DECILES), start=1):
        if len(rows):
            table.append(
                {
                    "decile": decile,
                    "mean_predicted": float(p[rows].mean()),
                    "observed_rate": float(y[rows].mean()),
                    "n": len(rows),
                }
            )
    return table


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
    y, p, missing = _labels_and_scores(labelled, score_column)
    out: dict[str, Any] = {"n": len(y), "positives": int(y.sum()), "missing_scores": missing}
    if not len(y):
        keys = ("auc", "pr_auc", "brier", "log_loss", "ece")
        return out | dict.fromkeys(keys) | {"calibration": []}
    clipped = np.clip(p, EPS, 1 - EPS)
    both = 0 < y.sum() < len(y)
    return out | {
        "auc": float(roc_auc_score(y, clipped)) if both else None,
        "pr_auc": float(average_precision_score(y, clipped)) if both else None,
        "brier": float(brier_score_loss(y, clipped, pos_label=1)),
        "log_loss": float(log_loss(y, clipped, labels=[0, 1])),
        "ece": float(expected_calibration_error(y, clipped)),
        "calibration": calibration_by_decile(y, p),
    }


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
    _require(labelled, (by,), "labelled")
    values = labelled[by].astype(object).where(labelled[by].notna(), UNKNOWN_SEGMENT).astype(str)
    return {
        value: outcome_metrics(labelled[(values == value).to_numpy()], score_column)
        for value in _segment_order(values, by)
    }


def metrics_over_time(
    labelled: pd.DataFrame, score_column: str, freq: str = "MS"
) -> dict[str, dict[str, Any]]:
    """``outcome_metrics`` per period of the prediction ``day`` (a pandas offset alias;
    months by default), keyed by the period's first day (ISO), oldest first; periods without
    rows are left out. A slow decline shows here before it moves the pooled figure."""
    _require(labelled, ("day",), "labelled")
    days = _days(labelled["day"], "labelled.day")
    groups = labelled.assign(_period=days.to_numpy()).groupby(pd.Grouper(key="_period", freq=freq))
    return {
        f"{start:%Y-%m-%d}": outcome_metrics(rows, score_column)
        for start, rows in groups
        if len(rows)
    }


# -- when to retrain -------------------------------------------------------------------------
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
