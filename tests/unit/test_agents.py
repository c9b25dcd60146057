"""The agents' performance of one day on frames of a few rows, each field against a value worked
out by hand.

Every test takes the day 2024-06-30: its end is 2024-07-01 00:00 UTC. A window of ``n`` days up
to it, ``(day - n, day]``, holds the instants from 00:00 UTC of the day ``n - 1`` days before it
to the end of the day: the 30-day window runs from 2024-06-01 00:00 to 2024-07-01 00:00, and
"30 days ago" is the instant 2024-06-01 00:00. The credit window ``(day - 90, day - 30]`` runs
from 2024-04-02 00:00 to 2024-06-01 00:00. Health scores are read on 2024-06-30 and 2024-05-31.
"""

from __future__ import annotations

import math
from dataclasses import asdict
from datetime import date, datetime

import pandas as pd
import pytest

from monitoring.agents import (
    CONTROL_BASIS,
    MIN_CONTROL,
    NO_BASIS,
    REQUIRED,
    Z95,
    AgentInputs,
    AgentPerformance,
    agent_performance,
    credit_units,
)

DAY = date(2024, 6, 30)


def ts(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz="UTC")


def frame(table: str, rows: list[dict] | None = None) -> pd.DataFrame:
    """A table with every required column, absent values None."""
    columns = REQUIRED[table]
    return pd.DataFrame(
        [{c: row.get(c) for c in columns} for row in rows or []], columns=list(columns)
    )


def inputs(**tables: list[dict]) -> AgentInputs:
    return AgentInputs(**{t: frame(t, tables.get(t)) for t in REQUIRED})


def performance(bundle: AgentInputs, day: date = DAY) -> dict[str, AgentPerformance]:
    return {row.agent_id: row for row in agent_performance(bundle, day)}


def supplier(
    sid: str, agent: str | None, revenue: float, cancelled: str | None = None, signup: str = ""
) -> dict:
    return {
        "supplier_id": sid,
        "agent_id": agent,
        "monthly_revenue": revenue,
        "signup_at": ts(signup or "2024-01-01"),
        "cancelled_at": ts(cancelled) if cancelled else None,
    }


def execution(
    sid: str,
    rule: str | None,
    status: str,
    scheduled: str,
    *,
    executed: str | None = None,
) -> dict:
    return {
        "supplier_id": sid,
        "rule_id": rule,
        "status": status,
        "control_group": status == "held_out",
        "scheduled_at": ts(scheduled),
        "executed_at": ts(executed) if executed else None,
    }


def sent(sid: str, rule: str | None, at: str, status: str = "sent") -> dict:
    return execution(sid, rule, status, at, executed=at)


def held_out(sid: str, rule: str, at: str) -> dict:
    return execution(sid, rule, "held_out", at)


def score(sid: str, day: date, value: float) -> dict:
    return {"supplier_id": sid, "day": day, "score": value}


def ticket(sid: str, resolved: str | None, rating: int | None) -> dict:
    return {
        "supplier_id": sid,
        "resolved_at": ts(resolved) if resolved else None,
        "satisfaction_rating": rating,
    }


def billing(sid: str, at: str, kind: str) -> dict:
    return {"supplier_id": sid, "occurred_at": ts(at), "event_type": kind}


def interaction(agent: str, at: str, outcome: str | None) -> dict:
    return {"agent_id": agent, "occurred_at": ts(at), "outcome": outcome}


# --- the book --------------------------------------------------------------------------------
#
# Two agents with nine suppliers between them, and suppliers without an agent (c01..c11) who
# only make up the control group.
AGENTS = [{"agent_id": "agent_b", "name": "Bo"}, {"agent_id": "agent_a", "name": "Ada"}]
DIRECTORY = [
    supplier("a1", "agent_a", 100.0),  # active throughout
    supplier("a2", "agent_a", 50.0, "2024-06-01 00:00"),  # cancelled as the window opened
    supplier("a3", "agent_a", 80.0, "2024-07-01 00:00"),  # cancelled as the day ended
    supplier("a4", "agent_a", 20.0, signup="2024-06-01 00:00"),  # signed up as it opened
    supplier("a5", "agent_a", 20.0, signup="2024-07-01 00:00"),  # signed up after the day
    supplier("a6", "agent_a", 20.0, "2024-05-31 23:59"),  # gone before the window
    supplier("b1", "agent_b", 60.0),  # active throughout
    supplier("b2", "agent_b", 40.0, "2024-06-30 23:59"),  # cancelled on the day
    supplier("b3", "agent_b", 30.0, "2024-05-20"),  # gone before the window
    supplier("c01", None, 10.0, "2024-05-31 00:00"),
    supplier("c02", None, 10.0, "2024-05-10"),
    supplier("c03", None, 10.0, "2024-05-20 00:00"),
    supplier("c04", None, 10.0, "2024-05-31 00:00:01"),
    supplier("c05", None, 10.0, "2024-05-02"),
    *(supplier(f"c0{i}", None, 10.0) for i in range(6, 10)),
    supplier("c10", None, 10.0, "2024-04-15"),
    supplier("c11", None, 10.0, "2024-06-15"),
]
CONTROL_SUPPLIERS = [f"c0{i}" for i in range(1, 10)]
EXECUTIONS = [
    # The control group. r1: c01..c09 and b2 held out, MIN_CONTROL (10) units; by 30 days after
    # 2024-05-01 00:00 (2024-05-31 00:00, inclusive) c01 (exactly then), c02, c03 and c05
    # cancelled, c04 a second too late: c_r1 = 4 / 10. b2's unit of 2024-05-15 is not churned
    # (cancelled 2024-06-30 23:59, after 2024-06-14).
    *(held_out(s, "r1", "2024-05-01 00:00") for s in CONTROL_SUPPLIERS),
    held_out("b2", "r1", "2024-05-15"),
    # outside the credit window by an instant, both churned: either would make r1 5 / 11
    held_out("c10", "r1", "2024-04-01 23:59"),
    held_out("c11", "r1", "2024-06-01 00:00"),
    # r2: c01..c09 held out, MIN_CONTROL - 1 units: never credited (c10 and c11 are outside)
    *(held_out(s, "r2", "2024-05-01 00:00") for s in CONTROL_SUPPLIERS),
    held_out("c10", "r2", "2024-04-01 23:59"),
    held_out("c11", "r2", "2024-06-01 00:00"),
    # r3: c01..c09 and c11 held out on 2024-04-20 00:00 (10 units); by 2024-05-20 00:00 c02, c03
    # (exactly then) and c05 cancelled: c_r3 = 3 / 10
    *(held_out(s, "r3", "2024-04-20 00:00") for s in [*CONTROL_SUPPLIERS, "c11"]),
    # agent_a's contacted units
    sent("a1", "r1", "2024-04-02 00:00"),  # the credit window's first instant: not churned
    sent("a2", "r1", "2024-05-02 00:00"),  # churned: cancelled exactly 30 days after
    sent("a2", "r1", "2024-05-20"),  # not a second unit: only the first execution of a rule
    sent("a3", "r1", "2024-05-31 23:59"),  # the window's last minute; cancelled 2024-07-01
    sent("a4", "r1", "2024-06-01 00:00"),  # after the credit window (delivered in the 30 days)
    sent("a6", "r1", "2024-04-01 23:59"),  # before the credit window
    sent("a1", "r2", "2024-05-01"),  # r2 has too few held-out units
    sent("a1", "r3", "2024-05-15"),  # not churned
    sent("a1", None, "2024-05-05"),  # by hand: not a rule's unit
    # agent_b's contacted units
    execution("b1", "r1", "failed", "2024-05-20"),  # contacted even if it never arrived
    sent("b3", "r1", "2024-04-25"),  # churned: cancelled 2024-05-20
    # deliveries of the 30-day window (r9 has no held-out unit)
    sent("a1", "r9", "2024-06-30 23:59", status="completed"),  # counted
    sent("a4", "r9", "2024-07-01 00:00"),  # after the day
    held_out("a4", "r9", "2024-06-15"),  # nothing delivered
    execution("a4", "r9", "failed", "2024-06-16", executed="2024-06-16"),  # not delivered
    sent("b2", "r9", "2024-06-10"),  # counted: cancelled since, still b's supplier
    execution("b1", "r9", "scheduled", "2024-06-29"),  # not delivered yet
    sent("c06", "r9", "2024-06-10"),  # nobody's
]
HEALTH = [
    score("a1", date(2024, 5, 31), 60.0),
    score("a1", DAY, 65.0),  # +5: an improvement, exactly
    score("a3", date(2024, 5, 31), 70.0),
    score("a3", DAY, 74.5),  # +4.5: not one
    score("a4", date(2024, 6, 1), 40.0),  # 29 days before, not 30
    score("a4", DAY, 50.0),  # no score 30 days before: left out
    score("a2", date(2024, 5, 31), 30.0),
    score("a2", DAY, 80.0),  # cancelled: left out
    score("b1", date(2024, 5, 30), 40.0),  # 31 days before
    score("b1", date(2024, 5, 31), 80.0),
    score("b1", DAY, 70.0),  # -10
    score("b2", date(2024, 5, 31), 50.0),
    score("b2", DAY, 90.0),  # cancelled before the end of the day: left out
]
TICKETS = [
    ticket("a1", "2024-06-01 00:00", 5),  # the window's first instant
    ticket("a2", "2024-06-10", 2),  # a churned supplier's ticket counts
    ticket("a3", "2024-06-12", None),  # not rated
    ticket("a3", "2024-05-31 23:59", 1),  # resolved before the window
    ticket("a4", None, None),  # open
    ticket("a4", "2024-07-01 00:00", 1),  # resolved after the day
    ticket("b1", "2024-06-30 23:59", 4),
    ticket("c06", "2024-06-10", 1),  # nobody's
]
BILLING = [
    billing("a1", "2024-06-01 00:00", "plan_upgraded"),
    billing("a3", "2024-06-20", "plan_upgraded"),
    billing("a1", "2024-06-10", "plan_downgraded"),
    billing("a3", "2024-05-31 23:59", "plan_upgraded"),  # before the window
    billing("b1", "2024-07-01 00:00", "plan_upgraded"),  # after the day
    billing("b1", "2024-06-15", "payment_failed"),
]
INTERACTIONS = [
    interaction("agent_a", "2024-06-01 00:00", "completed"),  # counted
    interaction("agent_a", "2024-06-15", "scheduled"),  # not done yet
    interaction("agent_a", "2024-06-20", None),  # no outcome
    interaction("agent_a", "2024-05-31 23:59", "completed"),  # before the window
    interaction("agent_b", "2024-06-30 23:59", "no_answer"),  # counted
    interaction("agent_b", "2024-07-01 00:00", "completed"),  # after the day
]


def book(agents: list[dict] = AGENTS) -> AgentInputs:
    return inputs(
        agents=agents,
        directory=DIRECTORY,
        executions=EXECUTIONS,
        health=HEALTH,
        tickets=TICKETS,
        billing=BILLING,
        interactions=INTERACTIONS,
    )


# --- every field -----------------------------------------------------------------------------


def test_the_rows_come_in_agent_order_with_the_agents_names() -> None:
    rows = agent_performance(book(), DAY)
    assert [(r.agent_id, r.name, r.day) for r in rows] == [
        ("agent_a", "Ada", DAY),
        ("agent_b", "Bo", DAY),
    ]


def test_the_control_group_of_the_whole_book_sets_each_rules_credit_units() -> None:
    assert MIN_CONTROL == 10, "the control groups of the book are built around 10"
    units = credit_units(book(), DAY)
    got = {
        (u.supplier_id, u.rule_id): (u.held_out, u.churned, u.ltv, u.agent_id)
        for u in units.itertuples(index=False)
    }
    # the edges: a1's r1 of 2024-04-02 00:00 and a3's of 2024-05-31 23:59 are in; a6's of
    # 2024-04-01 23:59, a4's and c11's of 2024-06-01 00:00 and c10's are not
    assert got[("a1", "r1")] == (False, False, 1800.0, "agent_a")  # 100 x 18
    assert got[("a2", "r1")] == (False, True, 900.0, "agent_a")  # exactly 30 days after
    assert got[("a3", "r1")] == (False, False, 1440.0, "agent_a")
    assert got[("b2", "r1")] == (True, False, 720.0, "agent_b")
    assert got[("b3", "r1")] == (False, True, 540.0, "agent_b")
    assert got[("c01", "r1")][:2] == (True, True)  # cancelled exactly 30 days after
    assert got[("c04", "r1")][:2] == (True, False)  # a second later
    assert got[("c03", "r3")][:2] == (True, True)  # exactly 30 days after 2024-04-20
    assert got[("c01", "r3")][:2] == (True, False)
    assert {k for k in got if k[0] in {"a4", "a6", "c10"}} == set()
    assert ("c11", "r1") not in got and ("c11", "r3") in got
    assert len(units) == len(got)  # a2's second r1 is not a unit
    # r1: 10 held out, 4 churned; r2: 9 held out; r3: 10 held out, 3 churned
    control = units[units["held_out"]].groupby("rule_id")["churned"].agg(["size", "sum"])
    assert control.to_dict("index") == {
        "r1": {"size": 10, "sum": 4},
        "r2": {"size": 9, "sum": 4},
        "r3": {"size": 10, "sum": 3},
    }


def test_every_field_of_both_agents_rows() -> None:
    rows = performance(book())
    # agent_a. Active at 2024-07-01 00:00: a1, a3 (cancelled at that instant), a4 (signed up
    # 2024-06-01 00:00); not a2, a5 (signed up at 2024-07-01 00:00), a6.
    # Delivered within the window: a4's r1 of 2024-06-01 00:00 and a1's r9 of 2024-06-30 23:59;
    # support interactions done: 2024-06-01 00:00. 2 + 1 = 3.
    # Active at 2024-06-01 00:00: a1, a2 (cancelled at that instant), a3; a2 has churned.
    # Ratings of tickets resolved within the window: 5 (a1), 2 (a2): 3.5.
    # Upgrades: a1 at 2024-06-01 00:00, a3 on 2024-06-20.
    # Health change of the active suppliers scored on both days: a1 +5, a3 +4.5; mean 4.75.
    # Credit: r1 (c = 0.4) a1 0.4 - 0, a2 0.4 - 1, a3 0.4 - 0; r3 (c = 0.3) a1 0.3 - 0;
    # r2 (9 held out) none. 0.4 - 0.6 + 0.4 + 0.3 = 0.5.
    # variance: r1 3 x 1/3 x 2/3 + 3^2 x 0.4 x 0.6 / 10 = 0.666667 + 0.216
    #           r3 1 x 0 x 1 + 1^2 x 0.3 x 0.7 / 10 = 0.021; in all 0.903667, sd 0.950614,
    # half width 1.959964 x 0.950614 = 1.863169.
    # LTV: 0.4 x 1800 - 0.6 x 900 + 0.4 x 1440 + 0.3 x 1800 = 720 - 540 + 576 + 540 = 1296.
    half_a = Z95 * math.sqrt(3 * (1 / 3) * (2 / 3) + 9 * 0.4 * 0.6 / 10 + 0.3 * 0.7 / 10)
    assert half_a == pytest.approx(1.863169, abs=1e-6)
    assert asdict(rows["agent_a"]) == pytest.approx(
        {
            "agent_id": "agent_a",
            "name": "Ada",
            "day": DAY,
            "accounts_managed": 3,
            "interactions_completed": 3,
            "suppliers_retained": 2,
            "suppliers_churned": 1,
            "retention_rate": 2 / 3,
            "satisfaction": 3.5,
            "upgrades": 2,
            "health_improvements": 1,
            "mean_health_change": 4.75,
            "churn_prevented": 0.5,
            "churn_prevented_ci_low": 0.5 - half_a,
            "churn_prevented_ci_high": 0.5 + half_a,
            "ltv_impact": 1296.0,
            "credit_basis": CONTROL_BASIS,
        }
    )
    # agent_b. Active at the end: b1 (b2 cancelled at 2024-06-30 23:59, b3 long before).
    # Delivered: b2's r9 of 2024-06-10; interactions done: 2024-06-30 23:59 "no_answer". 1 + 1.
    # Active 30 days ago: b1, b2; b2 has churned. Ratings: 4. Upgrades: none in the window.
    # Health: b1 70 - 80 = -10 (b2 is left out).
    # Credit: r1 b1 0.4 - 0 (failed, still contacted), b3 0.4 - 1; b2 is held out. -0.2.
    # variance: 2 x 1/2 x 1/2 + 2^2 x 0.4 x 0.6 / 10 = 0.5 + 0.096 = 0.596, sd 0.772011,
    # half width 1.513113. LTV: 0.4 x 1080 - 0.6 x 540 = 432 - 324 = 108.
    half_b = Z95 * math.sqrt(2 * 0.5 * 0.5 + 4 * 0.4 * 0.6 / 10)
    assert half_b == pytest.approx(1.513113, abs=1e-6)
    assert asdict(rows["agent_b"]) == pytest.approx(
        {
            "agent_id": "agent_b",
            "name": "Bo",
            "day": DAY,
            "accounts_managed": 1,
            "interactions_completed": 2,
            "suppliers_retained": 1,
            "suppliers_churned": 1,
            "retention_rate": 0.5,
            "satisfaction": 4.0,
            "upgrades": 0,
            "health_improvements": 0,
            "mean_health_change": -10.0,
            "churn_prevented": -0.2,
            "churn_prevented_ci_low": -0.2 - half_b,
            "churn_prevented_ci_high": -0.2 + half_b,
            "ltv_impact": 108.0,
            "credit_basis": CONTROL_BASIS,
        }
    )


# --- the control group's threshold -----------------------------------------------------------


def test_a_rule_is_credited_from_min_control_held_out_units_not_one_fewer() -> None:
    directory = [supplier("a1", "agent_a", 100.0)] + [
        supplier(f"h{i:02}", None, 10.0, "2024-05-10" if i < 2 else None)
        for i in range(MIN_CONTROL)
    ]
    contacted = sent("a1", "r1", "2024-05-01")
    control = [held_out(f"h{i:02}", "r1", "2024-05-01") for i in range(MIN_CONTROL)]
    agents = [{"agent_id": "agent_a", "name": "Ada"}]

    one_short = performance(
        inputs(agents=agents, directory=directory, executions=[contacted, *control[1:]])
    )["agent_a"]
    assert one_short.credit_basis == NO_BASIS
    assert one_short.churn_prevented is None and one_short.ltv_impact is None
    assert one_short.churn_prevented_ci_low is None and one_short.churn_prevented_ci_high is None

    # h00 and h01 churned of the 10: c = 0.2; a1 stayed: 0.2 - 0
    # variance: 1 x 0 x 1 + 1^2 x 0.2 x 0.8 / 10 = 0.016; LTV 0.2 x 1800 = 360
    enough = performance(
        inputs(agents=agents, directory=directory, executions=[contacted, *control])
    )["agent_a"]
    assert MIN_CONTROL == 10
    assert enough.credit_basis == CONTROL_BASIS
    assert enough.churn_prevented == pytest.approx(0.2)
    assert enough.churn_prevented_ci_low == pytest.approx(0.2 - Z95 * math.sqrt(0.016))
    assert enough.churn_prevented_ci_high == pytest.approx(0.2 + Z95 * math.sqrt(0.016))
    assert enough.ltv_impact == pytest.approx(360.0)


def test_the_credit_window_moves_with_the_day() -> None:
    # for 2024-07-01 the window (2024-04-01, 2024-05-31] runs from 2024-04-03 00:00 to
    # 2024-06-02 00:00: a6's r1 of 2024-04-01 23:59 stays out, a4's and c11's of 2024-06-01 00:00
    # come in
    def keys(day: date) -> set[tuple[str, str]]:
        units = credit_units(book(), day)
        return set(zip(units["supplier_id"], units["rule_id"], strict=True))

    assert {("a4", "r1"), ("c11", "r1"), ("c11", "r2")} <= keys(date(2024, 7, 1))
    assert ("a6", "r1") not in keys(date(2024, 7, 1))
    assert not {("a4", "r1"), ("c11", "r1"), ("c11", "r2")} & keys(DAY)


# --- nothing to count ------------------------------------------------------------------------


NOTHING = {
    "accounts_managed": 0,
    "interactions_completed": 0,
    "suppliers_retained": 0,
    "suppliers_churned": 0,
    "retention_rate": None,
    "satisfaction": None,
    "upgrades": 0,
    "health_improvements": 0,
    "mean_health_change": None,
    "churn_prevented": None,
    "churn_prevented_ci_low": None,
    "churn_prevented_ci_high": None,
    "ltv_impact": None,
    "credit_basis": NO_BASIS,
}


def test_an_agent_without_suppliers_gets_zeros_and_no_credit() -> None:
    rows = performance(book([*AGENTS, {"agent_id": "agent_c", "name": "Cy"}]))
    assert asdict(rows["agent_c"]) == {"agent_id": "agent_c", "name": "Cy", "day": DAY, **NOTHING}
    assert rows["agent_a"] == performance(book())["agent_a"]  # the others are unchanged


def test_empty_tables_give_zeros_not_an_error() -> None:
    rows = agent_performance(inputs(agents=[{"agent_id": "agent_c", "name": "Cy"}]), DAY)
    assert [asdict(r) for r in rows] == [
        {"agent_id": "agent_c", "name": "Cy", "day": DAY, **NOTHING}
    ]


def test_a_column_of_missing_times_only_is_not_taken_for_naive_times() -> None:
    # nobody has cancelled, nothing was delivered or resolved yet
    rows = performance(
        inputs(
            agents=[{"agent_id": "agent_a", "name": "Ada"}],
            directory=[supplier("a1", "agent_a", 100.0)],
            executions=[execution("a1", "r1", "scheduled", "2024-06-29")],
            tickets=[ticket("a1", None, None)],
        )
    )
    row = rows["agent_a"]
    assert (row.accounts_managed, row.suppliers_retained, row.retention_rate) == (1, 1, 1.0)
    assert row.interactions_completed == 0 and row.satisfaction is None


def test_satisfaction_is_undefined_when_no_resolved_ticket_is_rated() -> None:
    rows = performance(
        inputs(
            agents=[{"agent_id": "agent_a", "name": "Ada"}],
            directory=[supplier("a1", "agent_a", 100.0)],
            tickets=[ticket("a1", "2024-06-10", None), ticket("a1", "2024-05-10", 5)],
        )
    )
    assert rows["agent_a"].satisfaction is None  # the rated one was resolved before the window


# --- validation ------------------------------------------------------------------------------


def test_a_missing_column_is_named_with_its_table() -> None:
    tables = {t: frame(t) for t in REQUIRED}
    tables["executions"] = tables["executions"].drop(columns="control_group")
    with pytest.raises(KeyError, match=r"executions\.control_group"):
        AgentInputs(**tables)


def test_naive_times_are_refused_and_the_day_must_be_a_date() -> None:
    tables = {t: frame(t) for t in REQUIRED}
    tables["tickets"] = frame("tickets", [ticket("a1", None, 5)]).assign(
        resolved_at=[pd.Timestamp("2024-06-10")]
    )
    with pytest.raises(ValueError, match=r"tickets\.resolved_at"):
        AgentInputs(**tables)
    with pytest.raises(TypeError):
        agent_performance(inputs(), datetime(2024, 6, 30, 12))
    with pytest.raises(TypeError):
        agent_performance(inputs(), pd.Timestamp("2024-06-30"))  # type: ignore[arg-type]
