"""Training sets: entity rows at a snapshot cadence, contract labels, Feast point-in-time features.

Labels follow ``shared/DATA_CONTRACT.md``: a supplier active at ``t`` gets label 1 when it cancels
in ``(t, t + H days]``. A row is used only when its label is fully observed by ``until``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import pandas as pd
import pyarrow as pa

from features.feature_table import ACTIVE_AT, connect, data_span
from features.history import EventHistory, covered_rows, event_history
from features.raw_reader import load_raw

if TYPE_CHECKING:
    from feature_repo.build import FeatureTableConfig

SnapshotCadence = Literal["daily", "weekly", "monthly"]


def snapshot_days(cadence: SnapshotCadence, first: date, last: date) -> list[date]:
    """Grid days of a cadence: every day, every Sunday, or every month's last day.

    A row for day ``d`` is stamped at the end of ``d`` (next midnight, UTC), like the features.
    """
    if cadence == "daily":
        return [first + timedelta(days=k) for k in range((last - first).days + 1)]
    if cadence == "weekly":
        sunday = first + timedelta(days=(6 - first.weekday()) % 7)
        return [sunday + timedelta(days=k) for k in range(0, (last - sunday).days + 1, 7)]
    if cadence == "monthly":
        month_ends = pd.date_range(first, last, freq="ME")
        return [d.date() for d in month_ends]
    raise ValueError(f"unknown cadence {cadence!r}: daily, weekly or monthly")


def entity_rows(
    tables: Mapping[str, pd.DataFrame | pa.Table],
    days: list[date],
    horizon_days: int,
    until: pd.Timestamp,
) -> pd.DataFrame:
    """Active suppliers at the end of each day, with their labels fully observed by ``until``.

    Returns:
        ``supplier_id``, ``event_timestamp`` (UTC) and ``label`` (int8), one row per pair.
    """

    con = connect({name: tables[name] for name in ("suppliers", "cancellations")})
    con.register("days", pa.table({"day": pa.array(days, pa.date32())}))
    until_naive = pd.Timestamp(until).tz_convert("UTC").tz_localize(None)
    frame = con.execute(
        f"""
        with s as (select supplier_id, signup_at, cancelled_at
                   from suppliers left join cancellations using (supplier_id))
        select s.supplier_id, (d.day + 1)::timestamp as event_timestamp,
               coalesce(s.cancelled_at <= (d.day + 1)::timestamp
                            + interval {int(horizon_days)} day, false)::tinyint as label
        from s join days d on {ACTIVE_AT.format(t="(d.day + 1)::timestamp")}
        where (d.day + 1)::timestamp + interval {int(horizon_days)} day <= ?
        order by event_timestamp, supplier_id
    """,
        [until_naive.to_pydatetime()],
    ).df()
    con.close()
    frame["event_timestamp"] = pd.to_datetime(frame["event_timestamp"]).dt.tz_localize("UTC")
    return frame


@dataclass(frozen=True)
class TrainingWindow:
    """The rows a training set keeps: those its export's event history covers."""

    history: EventHistory
    rows_kept: int
    rows_left_out: int
    first_snapshot: pd.Timestamp | None

    def describe(self) -> str:
        h = self.history
        first = "none" if self.first_snapshot is None else f"{self.first_snapshot:%Y-%m-%d}"
        cancel = h.first_cancellation or "never"
        return (
            f"event history from {h.start} (first signup {h.first_signup}, "
            f"{h.signed_up_before:,} accounts older), cancellations recorded from {cancel}; "
            f"training rows from {first}: {self.rows_kept:,} kept, "
            f"{self.rows_left_out:,} left out as not covered"
        )


def within_history(
    entities: pd.DataFrame,
    signups: pd.DataFrame,
    history: EventHistory,
    horizon_days: int,
) -> tuple[pd.DataFrame, TrainingWindow]:
    """The entity rows the export covers (see :func:`features.history.covered_rows`).

    Args:
        entities: ``supplier_id``, ``event_timestamp`` (the end of the snapshot day) rows.
        signups: ``supplier_id`` and ``signup_at`` of every supplier.
    """
    signup = entities["supplier_id"].map(signups.set_index("supplier_id")["signup_at"])
    day = pd.to_datetime(entities["event_timestamp"], utc=True) - pd.Timedelta(days=1)
    keep = covered_rows(
        day.dt.tz_localize(None),
        pd.to_datetime(signup, utc=True).dt.tz_localize(None),
        history,
        horizon_days,
    )
    kept = entities[keep].reset_index(drop=True)
    window = TrainingWindow(
        history=history,
        rows_kept=len(kept),
        rows_left_out=int((~keep).sum()),
        first_snapshot=kept["event_timestamp"].min() if len(kept) else None,
    )
    return kept, window


@dataclass(frozen=True)
class TrainingSet:
    """Labelled rows with their features, and the observation window that chose them."""

    frame: pd.DataFrame
    window: TrainingWindow


def training_set(
    cfg: FeatureTableConfig,
    raw: Path,
    services: Sequence[str],
    cadence: SnapshotCadence,
    horizon_days: int,
    until: pd.Timestamp | None = None,
) -> TrainingSet:
    """Labelled entity rows at a cadence with the point-in-time features of ``services``.

    The raw folder is validated once and the feature table gets rows at exactly the cadence's
    days first (an incremental build adds the missing ones), so no entity row is served a
    stale feature row. Only rows that the export's event history covers are kept (see
    :mod:`features.history`): before it, every supplier looks silent and none churns.

    Args:
        until: labels must be observed by then (default, and at the latest: the end of the
            data, so that no label is read as 0 merely because its window is not over).
    """
    from feature_repo.build import build_features, extends_last_build
    from feature_repo.readers import historical_features
    from feature_repo.store import open_store

    tables = load_raw(raw)
    con = connect(tables.frames, cfg.threads)
    first, last = data_span(con)
    history = event_history(con)
    con.close()
    days = snapshot_days(cadence, first, last)
    end = pd.Timestamp(last + timedelta(days=1), tz="UTC")
    # a label can only be observed with data: never past the end of the folder
    until = end if until is None else min(pd.Timestamp(until).tz_convert("UTC"), end)
    entities, window = within_history(
        entity_rows(tables.frames, days, horizon_days, until),
        tables["suppliers"][["supplier_id", "signup_at"]],
        history,
        horizon_days,
    )
    build_features(
        cfg,
        raw,
        incremental=extends_last_build(cfg.table, raw),
        extra_days=tuple(days),
        tables=tables,
    )
    store = open_store(cfg.store)
    return TrainingSet(historical_features(store, services, entities), window)
