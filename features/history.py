"""The export's observation window: where its event history starts, derived from the data.

A real export rarely holds an account's whole life. Retention or a migration cuts the event
history at some day while many accounts are older, and accounts that cancelled before that day
are not in the export at all. Before the history starts every supplier looks silent and none
churns; a model trained on such rows learns that silence is safe. So:

- the *history start* is the first day of ``activity_daily`` (every active supplier logs in, so
  the densest table starts where the export starts; with no activity, the first signup);
- a supplier who signed up before it is *pre-history*: a window of its features is known only
  once the window lies wholly after the start, and its lifetime counts never are;
- a training row ``(supplier, t)`` is *covered* when its supplier signed up on or after the start
  or every feature window (the longest is :data:`LONGEST_WINDOW_DAYS`) lies after it, and its
  label window ends on or after the first recorded cancellation (before that, the export does
  not record who left).

On an export whose history starts with its first account (the simulator's default) nothing is
pre-history and every row is covered.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Final

import duckdb
import numpy as np
import pandas as pd

LONGEST_WINDOW_DAYS: Final = 90
# Where each event table's history is read from (its first dated row).
EVENT_DATES: Final = {
    "activity_daily": "date",
    "feature_usage_daily": "date",
    "clients_daily": "date",
    "support_tickets": "created_at::date",
    "billing_events": "occurred_at::date",
    "milestones": "achieved_at::date",
}
# The SQL of the history start over the contract tables (see the module docstring).
HISTORY_START_SQL: Final = """coalesce((select min(date) from activity_daily),
                                      (select min(signup_at)::date from suppliers))"""


@dataclass(frozen=True)
class EventHistory:
    """Where the export's history starts and what that leaves uncovered."""

    start: date
    first_signup: date
    table_first_days: dict[str, date | None]
    first_cancellation: date | None
    suppliers: int
    signed_up_before: int
    longest_window_days: int = LONGEST_WINDOW_DAYS

    @property
    def accounts_predate_history(self) -> bool:
        return self.signed_up_before > 0

    @property
    def fully_covered_from(self) -> date:
        """The first snapshot day on which every supplier's longest window is covered."""
        if not self.accounts_predate_history:
            return self.start
        return self.start + timedelta(days=self.longest_window_days - 1)

    def warning(self) -> str | None:
        """What the history means for training, when accounts predate it (else None)."""
        if not self.accounts_predate_history:
            return None
        return (
            f"{self.signed_up_before:,} of {self.suppliers:,} accounts signed up before the "
            f"event history starts ({self.start}; first signup {self.first_signup}). Their "
            f"features are missing until a {self.longest_window_days}-day window lies inside "
            f"the history, accounts that cancelled before it are not in the export, so "
            f"training uses their rows only from {self.fully_covered_from} on."
        )


def event_history(con: duckdb.DuckDBPyConnection) -> EventHistory:
    """The history of the contract tables registered on ``con`` (see
    :func:`features.feature_table.connect`)."""
    firsts = {
        table: con.execute(f"select min({column}) from {table}").fetchone()[0]
        for table, column in EVENT_DATES.items()
    }
    start, first_signup, suppliers, before, first_cancel = con.execute(f"""
        with h as (select {HISTORY_START_SQL} as start)
        select h.start, (select min(signup_at)::date from suppliers),
               (select count(*) from suppliers),
               (select count(*) from suppliers, h where signup_at::date < h.start),
               (select min(cancelled_at)::date from cancellations)
        from h
    """).fetchone()
    return EventHistory(
        start=start,
        first_signup=first_signup,
        table_first_days=firsts,
        first_cancellation=first_cancel,
        suppliers=int(suppliers),
        signed_up_before=int(before),
    )


def covered_rows(
    days: pd.Series, signup_days: pd.Series, history: EventHistory, horizon_days: int
) -> np.ndarray:
    """Which snapshot rows the export covers, shape (n,).

    Args:
        days: each row's snapshot day (the features use data up to its end).
        signup_days: each row's supplier's signup day.
    """
    day = pd.to_datetime(days).to_numpy("datetime64[D]")
    signup = pd.to_datetime(signup_days).to_numpy("datetime64[D]")
    start = np.datetime64(history.start, "D")
    window_inside = day - np.timedelta64(history.longest_window_days - 1, "D") >= start
    covered = (signup >= start) | window_inside
    if history.first_cancellation is not None:
        label_end = day + np.timedelta64(horizon_days + 1, "D")
        covered &= label_end >= np.datetime64(history.first_cancellation, "D")
    return covered
