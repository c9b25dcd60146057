"""Each customer-success agent's performance of one day (the ``cs_performance_metrics`` rows),
credited by outcomes against the randomised control group where the numbers allow it.

Pure functions over frames of the operational database and the export; reading and storing
happen at the edges (the daily job, the ``/agents`` route). Times follow
:mod:`monitoring.kpis`: ``day`` is a UTC calendar day, a window of ``n`` days up to ``day`` is
``(day - n, day]`` and "active" is signed up and not cancelled by the instant.

An agent's suppliers are those the directory assigns to it now (no assignment history is kept).

* ``accounts_managed``: its suppliers active at the end of the day.
* ``interactions_completed``: interventions decided in the last 30 days
  (:func:`monitoring.kpis.decided_at`) and delivered (sent or completed) to its suppliers, every
  channel, plus its support interactions of the window with an outcome other than
  ``scheduled``.
* ``suppliers_retained`` / ``suppliers_churned`` / ``retention_rate``: of its suppliers active
  30 days ago, those still active at the end of the day / cancelled since.
* ``satisfaction``: the mean rating (1..5) of its suppliers' tickets resolved in the window.
* ``upgrades``: its suppliers' ``plan_upgraded`` billing events in the window.
* ``health_improvements`` / ``mean_health_change``: of its active suppliers with a health score
  both on the day and 30 days before, those up by at least :data:`IMPROVEMENT_POINTS`, and the
  mean change.
* ``churn_prevented`` (credited, not counted from activity): the units are each supplier's
  first execution of each rule scheduled in ``(day - 90, day - 30]``, the days 89 to 30 before
  it (their 30 days have passed by its end); a unit has churned if its supplier cancelled by
  30 days after it. For every rule, the control group's held-out units over the whole book give
  the churn rate without the contact, ``c_r``. The agent's contacted units of that rule are
  credited ``c_r - churned`` each; a rule with fewer than :data:`MIN_CONTROL` held-out units is
  not credited (the numbers do not allow it). The 95 % interval adds the binomial variance of
  the agent's outcomes and of each ``c_r``. ``ltv_impact`` weighs each unit's credit by its LTV
  (18 months of revenue). Without a credited unit both are None and ``credit_basis`` says
  ``insufficient control data``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Final

import numpy as np
import pandas as pd

from monitoring.kpis import DELIVERED_STATUSES, decided_at
from serving.advice import LTV_MONTHS

WINDOW_DAYS: Final = 30
CREDIT_WINDOW_DAYS: Final = (90, 30)  # units scheduled in (day - 90, day - 30]
IMPROVEMENT_POINTS: Final = 5.0
MIN_CONTROL: Final = 10
Z95: Final = 1.959963984540054
CONTROL_BASIS: Final = "control group"
NO_BASIS: Final = "insufficient control data"

REQUIRED: Final[dict[str, tuple[str, ...]]] = {
    "agents": ("agent_id", "name"),
    "directory": ("supplier_id", "agent_id", "monthly_revenue", "signup_at", "cancelled_at"),
    "executions": (
        "supplier_id",
        "rule_id",
        "status",
        "control_group",
        "scheduled_at",
        "executed_at",
    ),
    "health": ("supplier_id", "day", "score"),
    "tickets": ("supplier_id", "resolved_at", "satisfaction_rating"),
    "billing": ("supplier_id", "occurred_at", "event_type"),
    "interactions": ("agent_id", "occurred_at", "outcome"),
}
INSTANTS: Final = frozenset(
    {"signup_at", "cancelled_at", "scheduled_at", "executed_at", "resolved_at", "occurred_at"}
)


def _instants(table: str, column: str, values: pd.Series) -> pd.Series:
    """UTC instants; naive ones are refused. A column with no time at all (an empty table,
    nobody cancelled yet) is UTC, not naive: it cannot be compared with the day's instants
    otherwise."""
    if values.isna().all():
        return pd.Series(pd.NaT, index=values.index, dtype="datetime64[ns, UTC]")
    stamps = pd.to_datetime(values)
    if stamps.dt.tz is None:
        raise ValueError(f"{table}.{column} holds naive times: give UTC instants")
    return stamps.dt.tz_convert("UTC")


@dataclass(frozen=True)
class AgentInputs:
    """The frames an agent's performance is computed from, checked, instants made UTC.

    Raises:
        KeyError: a frame lacks a column, named ``table.column``.
        ValueError: an instant column holds naive times.
    """

    agents: pd.DataFrame
    directory: pd.DataFrame
    executions: pd.DataFrame
    health: pd.DataFrame
    tickets: pd.DataFrame
    billing: pd.DataFrame
    interactions: pd.DataFrame

    def __post_init__(self) -> None:
        for table, columns in REQUIRED.items():
            frame = getattr(self, table)
            missing = [c for c in columns if c not in frame.columns]
            if missing:
                raise KeyError(", ".join(f"{table}.{c}" for c in missing))
            frame = frame.copy()
            for column in INSTANTS.intersection(frame.columns):
                frame[column] = _instants(table, column, frame[column])
            if "day" in frame.columns:
                frame["day"] = pd.to_datetime(frame["day"]).dt.date
            object.__setattr__(self, table, frame)


@dataclass(frozen=True)
class AgentPerformance:
    agent_id: str
    name: str
    day: dt.date
    accounts_managed: int
    interactions_completed: int
    suppliers_retained: int
    suppliers_churned: int
    retention_rate: float | None
    satisfaction: float | None
    upgrades: int
    health_improvements: int
    mean_health_change: float | None
    churn_prevented: float | None
    churn_prevented_ci_low: float | None
    churn_prevented_ci_high: float | None
    ltv_impact: float | None
    credit_basis: str


def _end(day: dt.date) -> pd.Timestamp:
    return pd.Timestamp(day + dt.timedelta(days=1), tz="UTC")


def _active_at(directory: pd.DataFrame, at: pd.Timestamp) -> pd.Series:
    cancelled = directory["cancelled_at"]
    return (directory["signup_at"] < at) & (cancelled.isna() | (cancelled >= at))


def _within(stamps: pd.Series, day: dt.date, days: int) -> pd.Series:
    return (stamps >= _end(day) - pd.Timedelta(days=days)) & (stamps < _end(day))


def credit_units(inputs: AgentInputs, day: dt.date) -> pd.DataFrame:
    """Each supplier's first execution of each rule scheduled in the credit window, with
    ``held_out``, ``churned`` (cancelled within 30 days of it), ``ltv`` and the supplier's
    ``agent_id``."""
    e = inputs.executions
    oldest, newest = CREDIT_WINDOW_DAYS
    end = _end(day)
    window = (
        e["rule_id"].notna()
        & (e["scheduled_at"] >= end - pd.Timedelta(days=oldest))
        & (e["scheduled_at"] < end - pd.Timedelta(days=newest))
    )
    units = (
        e[window]
        .sort_values("scheduled_at", kind="stable")
        .drop_duplicates(["supplier_id", "rule_id"])[
            ["supplier_id", "rule_id", "control_group", "scheduled_at"]
        ]
    )
    d = inputs.directory.set_index("supplier_id")
    units = units[units["supplier_id"].isin(d.index)]
    cancelled = units["supplier_id"].map(d["cancelled_at"])
    horizon = units["scheduled_at"] + pd.Timedelta(days=WINDOW_DAYS)
    return pd.DataFrame(
        {
            "supplier_id": units["supplier_id"].to_numpy(),
            "rule_id": units["rule_id"].to_numpy(),
            "held_out": units["control_group"].astype(bool).to_numpy(),
            "churned": (cancelled.notna() & (cancelled <= horizon)).to_numpy(),
            "ltv": (units["supplier_id"].map(d["monthly_revenue"]) * LTV_MONTHS).to_numpy(float),
            "agent_id": units["supplier_id"].map(d["agent_id"]).to_numpy(),
        }
    )


def _credit(units: pd.DataFrame, agent_id: str) -> tuple[float, float, float, float] | None:
    """(churn prevented, its 95 % interval, LTV impact) of the agent's contacted units of the
    rules with enough held-out units; None without any."""
    control = units[units["held_out"]].groupby("rule_id")["churned"].agg(["mean", "size"])
    control = control[control["size"] >= MIN_CONTROL]
    mine = units[(~units["held_out"]) & (units["agent_id"] == agent_id)]
    mine = mine[mine["rule_id"].isin(control.index)]
    if mine.empty:
        return None
    rate = mine["rule_id"].map(control["mean"]).to_numpy(float)
    churned = mine["churned"].to_numpy(float)
    prevented = float((rate - churned).sum())
    variance = 0.0
    for rule, group in mine.groupby("rule_id"):
        n, c = len(group), control.loc[rule]
        treated_rate = float(group["churned"].mean())
        variance += n * treated_rate * (1 - treated_rate)
        variance += n * n * c["mean"] * (1 - c["mean"]) / c["size"]
    half = Z95 * float(np.sqrt(variance))
    impact = float(((rate - churned) * mine["ltv"].to_numpy(float)).sum())
    return prevented, prevented - half, prevented + half, impact


def agent_performance(inputs: AgentInputs, day: dt.date) -> list[AgentPerformance]:
    """Every agent's row for ``day``, in agent id order."""
    if isinstance(day, dt.datetime) or not isinstance(day, dt.date):
        raise TypeError(f"day must be a date, not {type(day).__name__}")
    end = _end(day)
    start = end - pd.Timedelta(days=WINDOW_DAYS)
    d = inputs.directory
    active_now = _active_at(d, end)
    active_then = _active_at(d, start)
    e = inputs.executions
    delivered = e[e["status"].isin(DELIVERED_STATUSES) & _within(decided_at(e), day, WINDOW_DAYS)]
    t = inputs.tickets
    rated = t[
        t["resolved_at"].notna()
        & _within(t["resolved_at"], day, WINDOW_DAYS)
        & t["satisfaction_rating"].notna()
    ]
    b = inputs.billing
    upgrades = b[
        (b["event_type"] == "plan_upgraded") & _within(b["occurred_at"], day, WINDOW_DAYS)
    ]
    i = inputs.interactions
    done = i[
        i["outcome"].notna()
        & (i["outcome"] != "scheduled")
        & _within(i["occurred_at"], day, WINDOW_DAYS)
    ]
    h = inputs.health
    now = h[h["day"] == day].set_index("supplier_id")["score"]
    then = h[h["day"] == day - dt.timedelta(days=WINDOW_DAYS)].set_index("supplier_id")["score"]
    change = (now - then).dropna()
    units = credit_units(inputs, day)
    rows = []
    for agent in inputs.agents.sort_values("agent_id").itertuples(index=False):
        mine = d["agent_id"] == agent.agent_id
        ids = set(d.loc[mine, "supplier_id"])
        cohort = d[mine & active_then]
        churned = int((cohort["cancelled_at"].notna() & (cohort["cancelled_at"] < end)).sum())
        active_ids = set(d.loc[mine & active_now, "supplier_id"])
        changes = change[change.index.isin(active_ids)]
        ratings = rated.loc[rated["supplier_id"].isin(ids), "satisfaction_rating"]
        credit = _credit(units, agent.agent_id)
        rows.append(
            AgentPerformance(
                agent_id=str(agent.agent_id),
                name=str(agent.name),
                day=day,
                accounts_managed=len(active_ids),
                interactions_completed=int(delivered["supplier_id"].isin(ids).sum())
                + int((done["agent_id"] == agent.agent_id).sum()),
                suppliers_retained=len(cohort) - churned,
                suppliers_churned=churned,
                retention_rate=(len(cohort) - churned) / len(cohort) if len(cohort) else None,
                satisfaction=float(ratings.mean()) if len(ratings) else None,
                upgrades=int(upgrades["supplier_id"].isin(ids).sum()),
                health_improvements=int((changes >= IMPROVEMENT_POINTS).sum()),
                mean_health_change=float(changes.mean()) if len(changes) else None,
                churn_prevented=None if credit is None else credit[0],
                churn_prevented_ci_low=None if credit is None else credit[1],
                churn_prevented_ci_high=None if credit is None else credit[2],
                ltv_impact=None if credit is None else credit[3],
                credit_basis=NO_BASIS if credit is None else CONTROL_BASIS,
            )
        )
    return rows
