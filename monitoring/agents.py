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

from monitoring.kpis import (
    DELIVERED_STATUSES,
    active_at,
    day_end,
    decided_at,
    utc_instants,
    within_days,
)
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
                frame[column] = utc_instants(table, column, frame[column])
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


def credit_units(inputs: AgentInputs, day: dt.date) -> pd.DataFrame:
    """Each supplier's first execution of each rule scheduled in the credit window, with
    ``held_out``, ``churned`` (cancelled within 30 days of it), ``ltv`` and the supplier's
    ``agent_id``."""
    e = inputs.executions
    oldest, newest = CREDIT_WINDOW_DAYS
    end = day_end(day)
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


def _credits(units: pd.DataFrame) -> pd.DataFrame:
    """Per agent (index), the churn prevented by its contacted units of the rules with enough
    held-out units, its 95 % interval (``low``, ``high``) and the LTV impact; agents without
    such a unit are absent."""
    control = units[units["held_out"]].groupby("rule_id")["churned"].agg(["mean", "size"])
    control = control[control["size"] >= MIN_CONTROL]
    mine = units[(~units["held_out"]) & units["agent_id"].notna()]
    mine = mine[mine["rule_id"].isin(control.index)]
    if mine.empty:
        return pd.DataFrame(columns=["prevented", "low", "high", "impact"], dtype=float)
    credit = mine["rule_id"].map(control["mean"]).astype(float) - mine["churned"].astype(float)
    mine = mine.assign(credit=credit, impact=credit * mine["ltv"].astype(float))
    # per agent and rule: n p_t (1 - p_t) of the agent's outcomes, n^2 c (1 - c) / m of the rate
    groups = mine.groupby(["agent_id", "rule_id"])["churned"].agg(["size", "mean"])
    c = control.reindex(groups.index.get_level_values("rule_id"))
    n, p_t = groups["size"].to_numpy(float), groups["mean"].to_numpy(float)
    variance = n * p_t * (1 - p_t) + n * n * (c["mean"] * (1 - c["mean"]) / c["size"]).to_numpy()
    half = Z95 * np.sqrt(pd.Series(variance, index=groups.index).groupby(level="agent_id").sum())
    sums = mine.groupby("agent_id")[["credit", "impact"]].sum()
    return pd.DataFrame(
        {
            "prevented": sums["credit"],
            "low": sums["credit"] - half,
            "high": sums["credit"] + half,
            "impact": sums["impact"],
        }
    )


def agent_performance(inputs: AgentInputs, day: dt.date) -> list[AgentPerformance]:
    """Every agent's row for ``day``, in agent id order."""
    if isinstance(day, dt.datetime) or not isinstance(day, dt.date):
        raise TypeError(f"day must be a date, not {type(day).__name__}")
    end = day_end(day)
    start = end - pd.Timedelta(days=WINDOW_DAYS)
    d = inputs.directory
    active_now = active_at(d, end)
    active_then = active_at(d, start)
    e = inputs.executions
    delivered = e[
        e["status"].isin(DELIVERED_STATUSES) & within_days(decided_at(e), day, WINDOW_DAYS)
    ]
    t = inputs.tickets
    rated = t[
        t["resolved_at"].notna()
        & within_days(t["resolved_at"], day, WINDOW_DAYS)
        & t["satisfaction_rating"].notna()
    ]
    b = inputs.billing
    upgrades = b[
        (b["event_type"] == "plan_upgraded") & within_days(b["occurred_at"], day, WINDOW_DAYS)
    ]
    i = inputs.interactions
    done = i[
        i["outcome"].notna()
        & (i["outcome"] != "scheduled")
        & within_days(i["occurred_at"], day, WINDOW_DAYS)
    ]
    h = inputs.health
    now = h[h["day"] == day].set_index("supplier_id")["score"]
    then = h[h["day"] == day - dt.timedelta(days=WINDOW_DAYS)].set_index("supplier_id")["score"]
    change = (now - then).dropna()
    agent_of = d.set_index("supplier_id")["agent_id"]

    def per_agent(supplier_ids: pd.Series) -> pd.Series:
        return supplier_ids.map(agent_of).value_counts()

    cohort = d[active_then]
    cohort_churned = cohort["cancelled_at"].notna() & (cohort["cancelled_at"] < end)
    cohort_size = cohort["agent_id"].value_counts()
    churned = cohort.loc[cohort_churned, "agent_id"].value_counts()
    managed = d.loc[active_now, "agent_id"].value_counts()
    interactions = per_agent(delivered["supplier_id"]).add(
        done["agent_id"].value_counts(), fill_value=0
    )
    satisfaction = rated.groupby(rated["supplier_id"].map(agent_of))["satisfaction_rating"].mean()
    upgraded = per_agent(upgrades["supplier_id"])
    changes = change[change.index.isin(set(d.loc[active_now, "supplier_id"]))]
    by_agent = changes.groupby(changes.index.map(agent_of))
    improved = by_agent.apply(lambda x: int((x >= IMPROVEMENT_POINTS).sum()))
    mean_change = by_agent.mean()
    credits = _credits(credit_units(inputs, day))

    def count(series: pd.Series, agent: str) -> int:
        return int(series.get(agent, 0))

    def value(series: pd.Series, agent: str) -> float | None:
        found = series.get(agent)
        return None if found is None or found != found else float(found)

    rows = []
    for agent in inputs.agents.sort_values("agent_id").itertuples(index=False):
        a = agent.agent_id
        size, lost = count(cohort_size, a), count(churned, a)
        credit = credits.loc[a] if a in credits.index else None
        rows.append(
            AgentPerformance(
                agent_id=str(a),
                name=str(agent.name),
                day=day,
                accounts_managed=count(managed, a),
                interactions_completed=count(interactions, a),
                suppliers_retained=size - lost,
                suppliers_churned=lost,
                retention_rate=(size - lost) / size if size else None,
                satisfaction=value(satisfaction, a),
                upgrades=count(upgraded, a),
                health_improvements=count(improved, a),
                mean_health_change=value(mean_change, a),
                churn_prevented=None if credit is None else float(credit["prevented"]),
                churn_prevented_ci_low=None if credit is None else float(credit["low"]),
                churn_prevented_ci_high=None if credit is None else float(credit["high"]),
                ltv_impact=None if credit is None else float(credit["impact"]),
                credit_basis=NO_BASIS if credit is None else CONTROL_BASIS,
            )
        )
    return rows
