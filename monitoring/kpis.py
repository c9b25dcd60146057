"""The customer-success KPIs of one day: every KPI's name, definition, unit and computation in
one registry (:data:`KPIS`), computed by :func:`compute_kpis` from frames of the operational
database and the export. Pure functions: reading the frames and storing the values happen at
the edges (the daily job, the ``/kpis`` route).

Time. ``day`` is a UTC calendar day and "by ``day``" means before the first instant of the next
day. A window of ``n`` days up to ``day``, written ``(day - n, day]``, holds the instants from
the end of ``day - n`` to the end of ``day``. Every KPI reads only rows stamped by the end of
``day`` (timestamps, or the ``day`` column of scores), and "active" follows the data contract's
rule (signed up, and not cancelled, by the instant), read from ``signup_at`` and
``cancelled_at`` rather than the directory's ``status``, which is as of its last sync. The same
frames can therefore be computed for a range of past days (the route's ``from``/``to``), which
is why the day is an argument of :func:`compute_kpis` and not part of :class:`KpiInputs`. One
exception: an execution's ``status`` is as stored now (a past day sees today's status).

Where the data differs from the issue's wording, the definitions follow the data:

* MRR churn uses each supplier's ``monthly_revenue`` as the directory holds it now: no revenue
  history is kept, so a plan change inside the window is not seen.
* ``ltv_at_risk`` sums the predictions' ``ltv_at_risk`` (churn probability x 18 months of
  revenue, the API contract's ``ltvAtRisk``) over the at-risk suppliers, so it is the
  dashboard's per-supplier figure added up, not their whole lifetime value.
* At risk: a prediction of the day with risk level ``high`` or ``critical``, or a churn
  probability of at least 0.6 (the API contract's ``high``, should an experiment's thresholds
  differ), for a supplier active at the end of the day. No prediction of the day at all leaves
  the at-risk KPIs undefined: a day not scored is not a day with nobody at risk.
* A contact (coverage) is an execution decided in the window that is not held out, cancelled
  or failed for good (a failed one still to be tried again counts), as the contact caps count
  them (:func:`serving.automation.contact_history`). Not ``created_at``: the export's
  interventions are stored with ``created_at`` at their sync, not when they were sent.
* Automation rate counts what the engine and people decided: the export's executions (who
  decided is unknown) and the control group's held-out ones (nobody is contacted) are left out;
  an automated type triggered by hand is manual, as in
  :attr:`serving.automation.DayInterventions.automation_rate`.
* An execution's time, for coverage and automation, is when it was decided
  (:func:`decided_at`): the rules' day for theirs, whose sends are scheduled after that day's
  end, else ``scheduled_at``.
* Onboarding completion: the critical path is :data:`features.catalog.CRITICAL_PATH`
  (account setup, first client, first form, first journey, due by day 30); the cohort signed up
  60 to 150 days ago has had at least twice that. ``ten_clients`` and ``first_automation`` are
  not on the path. Cancelled suppliers stay in their cohort.
* CSAT: the export's tickets carry ``satisfaction_rating`` (1..5, nullable), so CSAT is the mean
  rating of the rated tickets, not a share of satisfied ones.
* Saves: the intervention must be delivered (``sent`` or ``completed``, stamped by
  ``executed_at``), from the at-risk day to 14 days after it; held-out suppliers are never
  delivered anything, so the control group gives no saves.

Undefined values (no denominator, a day not scored) are ``None``, never an error or zero.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, Literal, get_args

import numpy as np
import pandas as pd

from features.catalog import CRITICAL_PATH, SEGMENTS
from serving.rules import AUTOMATED_TYPES

Unit = Literal["share", "count", "currency", "days", "hours", "score", "rating"]

CHURN_WINDOW_DAYS: Final = 30
COVERAGE_WINDOW_DAYS: Final = 14
AUTOMATION_WINDOW_DAYS: Final = 30
FIRST_VALUE_SIGNUP_DAYS: Final = 90
# Suppliers signed up between these many days ago (exclusive, inclusive) are judged on
# onboarding: the youngest have had twice the 30 days the critical path is due in.
ONBOARDING_COHORT_DAYS: Final = (150, 60)
TICKET_WINDOW_DAYS: Final = 30
# At risk on a day in (day - 60, day - 30], contacted within 14 days, still active at day.
SAVE_RISK_DAYS: Final = (60, 30)
SAVE_CONTACT_DAYS: Final = 14

AT_RISK_LEVELS: Final = frozenset({"high", "critical"})
AT_RISK_PROBABILITY: Final = 0.6  # the API contract's "high"
FIRST_VALUE_MILESTONE: Final = "first_client"
# Statuses of an execution that reached or is to reach the supplier (a failed one only while
# another try is due).
CONTACT_STATUSES: Final = frozenset({"scheduled", "sent", "completed"})
DELIVERED_STATUSES: Final = frozenset({"sent", "completed"})
MANUAL: Final = "manual"
EXPORT: Final = "export"

# The columns each table must have (extra ones are ignored), and which of them are instants
# (time-zone-aware UTC) or calendar days.
REQUIRED_COLUMNS: Final[dict[str, tuple[str, ...]]] = {
    "directory": ("supplier_id", "monthly_revenue", "signup_at", "cancelled_at"),
    "health": ("supplier_id", "day", "score", "segment"),
    "predictions": ("supplier_id", "day", "churn_probability", "risk_level", "ltv_at_risk"),
    "executions": (
        "supplier_id",
        "intervention_type",
        "status",
        "scheduled_at",
        "executed_at",
        "triggered_by",
        "created_at",
        "next_attempt_at",
    ),
    "milestones": ("supplier_id", "milestone_type", "achieved_at"),
    "tickets": ("created_at", "resolved_at", "satisfaction_rating"),
}
INSTANT_COLUMNS: Final = frozenset(
    {
        "signup_at",
        "cancelled_at",
        "scheduled_at",
        "executed_at",
        "created_at",
        "next_attempt_at",
        "achieved_at",
        "resolved_at",
    }
)
DAY_COLUMNS: Final = frozenset({"day"})

_NAME = re.compile(r"^[a-z][a-z0-9_]*(\[[a-z0-9_]+\])?$")


@dataclass(frozen=True)
class Kpi:
    """What a KPI is, in a CS manager's words.

    Attributes:
        name: snake_case; a KPI given per segment carries it in brackets
            (``mean_health_score[new_user]``), so the API's ``{name, value}`` needs no extra
            field.
        definition: one sentence saying exactly what is counted over which window.
        unit: ``share`` (0..1), ``count``, ``currency`` (that of ``monthly_revenue``),
            ``days``, ``hours``, ``score`` (health, 0..100) or ``rating`` (1..5).
    """

    name: str
    definition: str
    unit: Unit

    def __post_init__(self) -> None:
        if not _NAME.match(self.name):
            raise ValueError(f"KPI name {self.name!r} is not snake_case (with [segment])")
        if not self.definition.strip().endswith("."):
            raise ValueError(f"KPI {self.name}: give its definition as one full sentence")
        if self.unit not in get_args(Unit):
            raise ValueError(f"KPI {self.name}: unit {self.unit!r} is not one of {get_args(Unit)}")


@dataclass(frozen=True)
class KpiInputs:
    """The frames the KPIs are computed from, checked and with their times made UTC.

    Attributes:
        directory: ``suppliers`` (one row per supplier).
        health: ``customer_health`` rows (any days; the KPIs pick theirs).
        predictions: ``churn_predictions`` rows of the day and the 59 before it (saves look
            back 60 days; the older days need only their at-risk rows, but a window without
            any row reads as not scored, so saves are then None rather than 0).
        executions: ``intervention_executions`` rows.
        milestones: ``success_milestones`` rows.
        tickets: the export's ``support_tickets``.

    Raises:
        KeyError: a table lacks a column, named as ``table.column``.
        ValueError: a timestamp column holds naive times.
    """

    directory: pd.DataFrame
    health: pd.DataFrame
    predictions: pd.DataFrame
    executions: pd.DataFrame
    milestones: pd.DataFrame
    tickets: pd.DataFrame

    def __post_init__(self) -> None:
        for table, columns in REQUIRED_COLUMNS.items():
            object.__setattr__(self, table, _checked(table, getattr(self, table), columns))


@dataclass(frozen=True)
class KpiDefinition:
    """A KPI and how it is computed from the inputs for a day."""

    kpi: Kpi
    compute: Callable[[KpiInputs, dt.date], float | None]

    @property
    def name(self) -> str:
        return self.kpi.name


@dataclass(frozen=True)
class KpiValue:
    """One KPI of one day, shaped as the ``/kpis`` route answers it."""

    name: str
    definition: str
    value: float | None
    unit: Unit
    date: dt.date


def _checked(table: str, frame: pd.DataFrame, columns: tuple[str, ...]) -> pd.DataFrame:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise KeyError(f"{table}.{missing[0]}: column missing (needs {', '.join(columns)})")
    out = frame.copy()
    for column in columns:
        if column in INSTANT_COLUMNS:
            out[column] = utc_instants(table, column, out[column])
        elif column in DAY_COLUMNS:
            out[column] = _days(out[column])
    return out


def utc_instants(table: str, column: str, values: pd.Series) -> pd.Series:
    """Time-zone-aware UTC instants; naive ones are refused rather than guessed."""
    if values.isna().all():
        return pd.Series(pd.NaT, index=values.index, dtype="datetime64[ns, UTC]")
    stamps = pd.to_datetime(values)
    if stamps.dt.tz is None:
        raise ValueError(f"{table}.{column} holds naive times: give them a time zone (UTC)")
    return stamps.dt.tz_convert("UTC")


def _days(values: pd.Series) -> pd.Series:
    """Calendar days as naive midnights (dates, or stamps of a day in any zone)."""
    stamps = pd.to_datetime(values)
    if stamps.dt.tz is not None:
        stamps = stamps.dt.tz_localize(None)
    return stamps.dt.normalize()


# --- time ------------------------------------------------------------------------------------


def day_end(day: dt.date) -> pd.Timestamp:
    """The first instant after ``day``: what is stamped before it is known by ``day``."""
    return pd.Timestamp(day + dt.timedelta(days=1), tz="UTC")


def _days_back(day: dt.date, days: int) -> dt.date:
    return day - dt.timedelta(days=days)


def within_days(stamps: pd.Series, day: dt.date, days: int) -> pd.Series:
    """Whether each instant falls in the ``days`` days up to ``day``: (day - days, day]."""
    return (stamps >= day_end(_days_back(day, days))) & (stamps < day_end(day))


def active_at(directory: pd.DataFrame, at: pd.Timestamp) -> pd.Series:
    """The data contract's active: signed up before ``at`` and not cancelled before it."""
    cancelled = directory["cancelled_at"]
    return (directory["signup_at"] < at) & (cancelled.isna() | (cancelled >= at))


def _active_ids(inputs: KpiInputs, day: dt.date) -> set[str]:
    directory = inputs.directory
    return set(directory.loc[active_at(directory, day_end(day)), "supplier_id"])


def _ratio(numerator: float, denominator: float) -> float | None:
    return float(numerator) / float(denominator) if denominator else None


def _mean(values: pd.Series) -> float | None:
    values = values.dropna()
    return float(values.mean()) if len(values) else None


# --- risk and contacts -----------------------------------------------------------------------


def _risky(predictions: pd.DataFrame) -> pd.Series:
    return predictions["risk_level"].isin(AT_RISK_LEVELS) | (
        predictions["churn_probability"] >= AT_RISK_PROBABILITY
    )


def _at_risk(inputs: KpiInputs, day: dt.date) -> pd.DataFrame | None:
    """The day's predictions of active suppliers at risk; None when the day was not scored."""
    scored = inputs.predictions[inputs.predictions["day"] == pd.Timestamp(day)]
    if scored.empty:
        return None
    scored = scored[_risky(scored) & scored["supplier_id"].isin(_active_ids(inputs, day))]
    return scored.drop_duplicates("supplier_id", keep="last")


def _contacted(executions: pd.DataFrame, day: dt.date, days: int) -> set[str]:
    """Suppliers with a contact scheduled in the ``days`` days up to ``day``."""
    status = executions["status"]
    contact = status.isin(CONTACT_STATUSES) | (
        (status == "failed") & executions["next_attempt_at"].notna()
    )
    rows = executions[contact & within_days(decided_at(executions), day, days)]
    return set(rows["supplier_id"])


def decided_at(executions: pd.DataFrame) -> pd.Series:
    """When each execution was decided: the start of its rules' ``day`` (the data's day the
    rules ran for; their sends are scheduled after it) when the optional ``day`` column holds
    one, else ``scheduled_at`` (a manual or bulk trigger is scheduled when it is made)."""
    at = executions["scheduled_at"]
    if "day" not in executions.columns:
        return at
    day = pd.to_datetime(executions["day"]).dt.tz_localize("UTC")
    return day.where(day.notna(), at)


def _saved(inputs: KpiInputs, day: dt.date) -> tuple[set[str], set[str]] | None:
    """(contacted, saved): suppliers at risk on a day of (day - 60, day - 30] who got a delivered
    intervention from that day to 14 days after it, and those of them active at ``day``. None
    when no day of the window was scored."""
    oldest, newest = (pd.Timestamp(_days_back(day, d)) for d in SAVE_RISK_DAYS)
    predictions = inputs.predictions
    window = predictions[(predictions["day"] > oldest) & (predictions["day"] <= newest)]
    if window.empty:
        return None
    risky = window.loc[_risky(window), ["supplier_id", "day"]]
    executions = inputs.executions
    delivered = executions.loc[
        executions["status"].isin(DELIVERED_STATUSES) & (executions["executed_at"] < day_end(day)),
        ["supplier_id", "executed_at"],
    ]
    pairs = risky.merge(delivered, on="supplier_id")
    risk_day = pairs["day"].dt.tz_localize("UTC")
    in_time = (pairs["executed_at"] >= risk_day) & (
        pairs["executed_at"] < risk_day + pd.Timedelta(days=SAVE_CONTACT_DAYS + 1)
    )
    contacted = set(pairs.loc[in_time, "supplier_id"])
    return contacted, contacted & _active_ids(inputs, day)


# --- the KPIs --------------------------------------------------------------------------------


def _churn_cohort(inputs: KpiInputs, day: dt.date) -> tuple[pd.Series, pd.Series]:
    """(active at the start of the 30-day window, of them cancelled within it) as masks."""
    directory = inputs.directory
    start = active_at(directory, day_end(_days_back(day, CHURN_WINDOW_DAYS)))
    churned = start & within_days(directory["cancelled_at"], day, CHURN_WINDOW_DAYS)
    return start, churned


def logo_churn(inputs: KpiInputs, day: dt.date) -> float | None:
    start, churned = _churn_cohort(inputs, day)
    return _ratio(churned.sum(), start.sum())


def mrr_churn(inputs: KpiInputs, day: dt.date) -> float | None:
    start, churned = _churn_cohort(inputs, day)
    revenue = inputs.directory["monthly_revenue"]
    return _ratio(revenue[churned].sum(), revenue[start].sum())


def suppliers_at_risk(inputs: KpiInputs, day: dt.date) -> float | None:
    risky = _at_risk(inputs, day)
    return None if risky is None else float(len(risky))


def ltv_at_risk(inputs: KpiInputs, day: dt.date) -> float | None:
    risky = _at_risk(inputs, day)
    return None if risky is None else float(risky["ltv_at_risk"].sum())


def intervention_coverage(inputs: KpiInputs, day: dt.date) -> float | None:
    risky = _at_risk(inputs, day)
    if risky is None:
        return None
    contacted = _contacted(inputs.executions, day, COVERAGE_WINDOW_DAYS)
    return _ratio(risky["supplier_id"].isin(contacted).sum(), len(risky))


def automation_rate(inputs: KpiInputs, day: dt.date) -> float | None:
    executions = inputs.executions
    counted = executions[
        within_days(decided_at(executions), day, AUTOMATION_WINDOW_DAYS)
        & (executions["status"] != "held_out")
        & (executions["triggered_by"] != EXPORT)
    ]
    automated = (counted["triggered_by"] != MANUAL) & counted["intervention_type"].isin(
        AUTOMATED_TYPES
    )
    return _ratio(automated.sum(), len(counted))


def _signed_up_between(inputs: KpiInputs, day: dt.date, oldest: int, newest: int) -> pd.Series:
    """Suppliers signed up in (day - oldest, day - newest], as a mask of the directory."""
    signup = inputs.directory["signup_at"]
    return (signup >= day_end(_days_back(day, oldest))) & (
        signup < day_end(_days_back(day, newest))
    )


def _reached(inputs: KpiInputs, day: dt.date) -> pd.DataFrame:
    milestones = inputs.milestones
    return milestones[milestones["achieved_at"] < day_end(day)]


def time_to_first_value(inputs: KpiInputs, day: dt.date) -> float | None:
    directory = inputs.directory
    cohort = directory.loc[
        _signed_up_between(inputs, day, FIRST_VALUE_SIGNUP_DAYS, 0), ["supplier_id", "signup_at"]
    ]
    reached = _reached(inputs, day)
    first = reached.loc[reached["milestone_type"] == FIRST_VALUE_MILESTONE]
    first = first.groupby("supplier_id", as_index=False)["achieved_at"].min()
    both = cohort.merge(first, on="supplier_id")
    days = (both["achieved_at"] - both["signup_at"]) / pd.Timedelta(days=1)
    return float(days.median()) if len(days) else None


def onboarding_completion(inputs: KpiInputs, day: dt.date) -> float | None:
    directory = inputs.directory
    cohort = directory.loc[_signed_up_between(inputs, day, *ONBOARDING_COHORT_DAYS), "supplier_id"]
    reached = _reached(inputs, day)
    on_path = reached[reached["milestone_type"].isin(CRITICAL_PATH)]
    steps = on_path.groupby("supplier_id")["milestone_type"].nunique()
    done = set(steps.index[steps == len(CRITICAL_PATH)])
    return _ratio(cohort.isin(done).sum(), len(cohort))


def mean_health_score(segment: str) -> Callable[[KpiInputs, dt.date], float | None]:
    """The computation of the mean health score of one segment."""

    def compute(inputs: KpiInputs, day: dt.date) -> float | None:
        health = inputs.health
        rows = health[
            (health["day"] == pd.Timestamp(day))
            & (health["segment"] == segment)
            & health["supplier_id"].isin(_active_ids(inputs, day))
        ]
        return _mean(rows["score"])

    return compute


def _resolved(inputs: KpiInputs, day: dt.date) -> pd.DataFrame:
    tickets = inputs.tickets
    return tickets[within_days(tickets["resolved_at"], day, TICKET_WINDOW_DAYS)]


def csat(inputs: KpiInputs, day: dt.date) -> float | None:
    return _mean(_resolved(inputs, day)["satisfaction_rating"].astype(float))


def mean_time_to_resolution(inputs: KpiInputs, day: dt.date) -> float | None:
    tickets = _resolved(inputs, day)
    return _mean((tickets["resolved_at"] - tickets["created_at"]) / pd.Timedelta(hours=1))


def saves(inputs: KpiInputs, day: dt.date) -> float | None:
    found = _saved(inputs, day)
    return None if found is None else float(len(found[1]))


def save_rate(inputs: KpiInputs, day: dt.date) -> float | None:
    found = _saved(inputs, day)
    return None if found is None else _ratio(len(found[1]), len(found[0]))


_AT_RISK = f"risk level high or critical, or churn probability at least {AT_RISK_PROBABILITY:g}"
_SAVE_WINDOW = (
    f"whose prediction of some day {SAVE_RISK_DAYS[1]} to {SAVE_RISK_DAYS[0] - 1} days before "
    f"the day put them at risk ({_AT_RISK})"
)
_SEGMENT_WORDS: Final = {
    "new_user": "new users",
    "established": "established suppliers",
    "power_user": "power users",
}

KPIS: Final[tuple[KpiDefinition, ...]] = (
    KpiDefinition(
        Kpi(
            "logo_churn_30d",
            f"Of the suppliers active at the end of the day {CHURN_WINDOW_DAYS} days ago, the "
            f"share who cancelled in the {CHURN_WINDOW_DAYS} days since (suppliers who signed up "
            "within the window are not counted).",
            "share",
        ),
        logo_churn,
    ),
    KpiDefinition(
        Kpi(
            "mrr_churn_30d",
            f"The monthly revenue of the suppliers counted by logo_churn_30d as cancelled, over "
            f"the monthly revenue of all suppliers active {CHURN_WINDOW_DAYS} days ago (each at "
            "its current monthly revenue, as no revenue history is kept).",
            "share",
        ),
        mrr_churn,
    ),
    KpiDefinition(
        Kpi(
            "suppliers_at_risk",
            "The number of active suppliers whose prediction of the day puts them at risk: "
            f"{_AT_RISK}.",
            "count",
        ),
        suppliers_at_risk,
    ),
    KpiDefinition(
        Kpi(
            "ltv_at_risk",
            "The sum over the suppliers counted by suppliers_at_risk of their LTV at risk in "
            "the day's prediction (churn probability x 18 x monthly revenue).",
            "currency",
        ),
        ltv_at_risk,
    ),
    KpiDefinition(
        Kpi(
            "intervention_coverage",
            "Of the suppliers counted by suppliers_at_risk, the share with an intervention "
            f"decided in the last {COVERAGE_WINDOW_DAYS} days up to the day that was not held "
            "out for the control group, not cancelled and not failed without a retry due.",
            "share",
        ),
        intervention_coverage,
    ),
    KpiDefinition(
        Kpi(
            "automation_rate_30d",
            f"Of the interventions decided in the last {AUTOMATION_WINDOW_DAYS} days (leaving "
            "out the control group's held-out ones and those copied from the app's export), the "
            "share scheduled by a rule as an email sequence, in-app message or feature tour "
            "rather than triggered by a person.",
            "share",
        ),
        automation_rate,
    ),
    KpiDefinition(
        Kpi(
            "time_to_first_value_days",
            "The median number of days from signup to adding the first client, over the "
            f"suppliers who signed up in the last {FIRST_VALUE_SIGNUP_DAYS} days and have "
            "already added one.",
            "days",
        ),
        time_to_first_value,
    ),
    KpiDefinition(
        Kpi(
            "onboarding_completion_rate",
            f"Of the suppliers who signed up {ONBOARDING_COHORT_DAYS[1]} to "
            f"{ONBOARDING_COHORT_DAYS[0] - 1} days before the day (cancelled ones included), the "
            "share who have reached every critical-path milestone: "
            f"{', '.join(m.replace('_', ' ') for m in CRITICAL_PATH)}.",
            "share",
        ),
        onboarding_completion,
    ),
    *(
        KpiDefinition(
            Kpi(
                f"mean_health_score[{segment}]",
                f"The mean health score (0 to 100) of the day over the active {words}.",
                "score",
            ),
            mean_health_score(segment),
        )
        for segment, words in ((s, _SEGMENT_WORDS[s]) for s in SEGMENTS)
    ),
    KpiDefinition(
        Kpi(
            "csat_30d",
            "The mean satisfaction rating (1 to 5) of the support tickets resolved in the last "
            f"{TICKET_WINDOW_DAYS} days that were rated.",
            "rating",
        ),
        csat,
    ),
    KpiDefinition(
        Kpi(
            "mean_time_to_resolution_hours",
            "The mean number of hours from a support ticket's creation to its resolution, over "
            f"the tickets resolved in the last {TICKET_WINDOW_DAYS} days.",
            "hours",
        ),
        mean_time_to_resolution,
    ),
    KpiDefinition(
        Kpi(
            "saves",
            f"The number of suppliers {_SAVE_WINDOW} who were sent an intervention between that "
            f"day and {SAVE_CONTACT_DAYS} days after it and are still active at the end of the "
            "day.",
            "count",
        ),
        saves,
    ),
    KpiDefinition(
        Kpi(
            "save_rate",
            f"Of the suppliers {_SAVE_WINDOW} who were sent an intervention between that day and "
            f"{SAVE_CONTACT_DAYS} days after it, the share still active at the end of the day.",
            "share",
        ),
        save_rate,
    ),
)
KPIS_BY_NAME: Final = {d.name: d for d in KPIS}
assert len(KPIS_BY_NAME) == len(KPIS), "KPI names must be unique"


def compute_kpis(inputs: KpiInputs, day: dt.date) -> list[KpiValue]:
    """Every KPI of the registry for ``day``, in the registry's order; an undefined one (no
    denominator, a day not scored) has value None."""
    if isinstance(day, dt.datetime) or not isinstance(day, dt.date):
        raise TypeError(f"day must be a date, not {type(day).__name__}")
    out = []
    for definition in KPIS:
        value = definition.compute(inputs, day)
        if value is not None and not np.isfinite(value):
            value = None
        kpi = definition.kpi
        out.append(KpiValue(kpi.name, kpi.definition, value, kpi.unit, day))
    return out
