"""The KPIs of one day on frames of a few rows, each against a value worked out by hand.

Every test takes the day 2024-06-30: its end is 2024-07-01 00:00 UTC, and a window of ``n``
days up to it, ``(day - n, day]``, starts at 00:00 UTC of the day ``n - 1`` days before it.
"""

from __future__ import annotations

from datetime import date, datetime

import pandas as pd
import pytest

from features.catalog import SEGMENTS
from monitoring.kpis import (
    KPIS,
    KPIS_BY_NAME,
    REQUIRED_COLUMNS,
    Kpi,
    KpiInputs,
    KpiValue,
    compute_kpis,
)

DAY = date(2024, 6, 30)


def ts(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz="UTC")


def frame(table: str, rows: list[dict] | None = None) -> pd.DataFrame:
    """A table with every required column, absent values None."""
    columns = REQUIRED_COLUMNS[table]
    return pd.DataFrame(
        [{c: row.get(c) for c in columns} for row in rows or []], columns=list(columns)
    )


def inputs(**tables: list[dict]) -> KpiInputs:
    return KpiInputs(**{t: frame(t, tables.get(t)) for t in REQUIRED_COLUMNS})


def kpis(bundle: KpiInputs, day: date = DAY) -> dict[str, float | None]:
    return {k.name: k.value for k in compute_kpis(bundle, day)}


def supplier(sid: str, signup: str, cancelled: str | None = None, revenue: float = 10.0) -> dict:
    return {
        "supplier_id": sid,
        "monthly_revenue": revenue,
        "signup_at": ts(signup),
        "cancelled_at": ts(cancelled) if cancelled else None,
    }


# --- the registry ----------------------------------------------------------------------------


def test_the_registry_defines_every_kpi_once_with_a_definition_and_a_unit() -> None:
    names = [d.name for d in KPIS]
    assert len(set(names)) == len(names) == len(KPIS_BY_NAME)
    assert len({n.split("[")[0] for n in names}) >= 10
    assert {f"mean_health_score[{s}]" for s in SEGMENTS} <= set(names)
    for definition in KPIS:
        assert definition.kpi.definition.strip() and definition.kpi.unit
        assert definition.kpi.definition.count(". ") == 0, "one sentence"


def test_a_kpi_name_must_be_snake_case_and_its_definition_a_sentence() -> None:
    with pytest.raises(ValueError, match="snake_case"):
        Kpi("Logo Churn", "A sentence.", "share")
    with pytest.raises(ValueError, match="sentence"):
        Kpi("logo_churn", "", "share")
    with pytest.raises(ValueError, match="unit"):
        Kpi("logo_churn", "A sentence.", "percent")  # type: ignore[arg-type]


def test_every_kpi_is_undefined_not_an_error_on_empty_tables() -> None:
    values = compute_kpis(inputs(), DAY)
    assert [v.name for v in values] == [d.name for d in KPIS]
    assert all(v.value is None for v in values), [v for v in values if v.value is not None]
    first = values[0]
    assert first == KpiValue(KPIS[0].name, KPIS[0].kpi.definition, None, KPIS[0].kpi.unit, DAY)


# --- validation ------------------------------------------------------------------------------


def test_a_missing_column_is_named_with_its_table() -> None:
    tables = {t: frame(t) for t in REQUIRED_COLUMNS}
    tables["executions"] = tables["executions"].drop(columns="status")
    with pytest.raises(KeyError, match=r"executions\.status"):
        KpiInputs(**tables)


def test_naive_times_are_refused_and_the_day_must_be_a_date() -> None:
    tables = {t: frame(t) for t in REQUIRED_COLUMNS}
    tables["tickets"] = pd.DataFrame(
        {
            "created_at": [pd.Timestamp("2024-06-01")],
            "resolved_at": [None],
            "satisfaction_rating": [None],
        }
    )
    with pytest.raises(ValueError, match=r"tickets\.created_at"):
        KpiInputs(**tables)
    with pytest.raises(TypeError):
        compute_kpis(inputs(), datetime(2024, 6, 30, 12))


# --- churn -----------------------------------------------------------------------------------


def test_logo_and_mrr_churn_count_the_suppliers_active_when_the_window_opened() -> None:
    # the window (2024-05-31, 2024-06-30]: from 2024-06-01 00:00 to 2024-07-01 00:00
    bundle = inputs(
        directory=[
            supplier("a", "2024-01-01", revenue=100.0),  # active throughout
            supplier("b", "2024-01-01", "2024-06-10", revenue=50.0),  # churned in the window
            supplier("c", "2024-01-01", "2024-05-31 23:00", revenue=70.0),  # gone before it
            supplier("d", "2024-06-05", "2024-06-20", revenue=30.0),  # signed up within it
            supplier("e", "2024-02-01", "2024-07-01 00:00", revenue=250.0),  # after the day
            supplier("f", "2024-06-01 00:00", revenue=5.0),  # signed up as it opened
            supplier("g", "2024-01-01", "2024-06-01 00:00", revenue=100.0),  # as it opened
        ]
    )
    values = kpis(bundle)
    # active at the start: a, b, e, g; cancelled within: b, g
    assert values["logo_churn_30d"] == pytest.approx(2 / 4)
    # (50 + 100) / (100 + 50 + 250 + 100)
    assert values["mrr_churn_30d"] == pytest.approx(0.3)


# --- risk and coverage -----------------------------------------------------------------------


def prediction(sid: str, day: date, p: float, level: str, revenue: float) -> dict:
    return {
        "supplier_id": sid,
        "day": day,
        "churn_probability": p,
        "risk_level": level,
        "ltv_at_risk": p * 18 * revenue,
    }


def execution(
    sid: str,
    status: str,
    scheduled: str,
    *,
    kind: str = "email_sequence",
    by: str = "rule-a",
    executed: str | None = None,
    created: str | None = None,
    retry: str | None = None,
) -> dict:
    return {
        "supplier_id": sid,
        "intervention_type": kind,
        "status": status,
        "scheduled_at": ts(scheduled),
        "executed_at": ts(executed) if executed else None,
        "triggered_by": by,
        "created_at": ts(created or scheduled),
        "next_attempt_at": ts(retry) if retry else None,
    }


RISK_DIRECTORY = [
    supplier("s1", "2024-01-01", revenue=100.0),
    supplier("s2", "2024-01-01", revenue=40.0),
    supplier("s3", "2024-01-01", revenue=10.0),
    supplier("s4", "2024-01-01", "2024-06-29", revenue=300.0),
    supplier("s5", "2024-01-01", revenue=20.0),
]
RISK_PREDICTIONS = [
    prediction("s1", DAY, 0.70, "high", 100.0),  # at risk: 0.7 x 18 x 100 = 1260
    prediction("s2", DAY, 0.55, "critical", 40.0),  # by its level: 0.55 x 18 x 40 = 396
    prediction("s3", DAY, 0.30, "low", 10.0),  # not at risk
    prediction("s3", date(2024, 6, 29), 0.95, "critical", 10.0),  # another day
    prediction("s4", DAY, 0.90, "critical", 300.0),  # cancelled the day before
    prediction("s5", DAY, 0.60, "medium", 20.0),  # by its probability: 0.6 x 18 x 20 = 216
]


def test_suppliers_and_ltv_at_risk_are_the_days_risky_predictions_of_active_suppliers() -> None:
    values = kpis(inputs(directory=RISK_DIRECTORY, predictions=RISK_PREDICTIONS))
    assert values["suppliers_at_risk"] == 3  # s1, s2, s5
    assert values["ltv_at_risk"] == pytest.approx(1260 + 396 + 216)


def test_coverage_counts_contacts_of_the_last_14_days_that_were_not_held_out() -> None:
    # the window (2024-06-16, 2024-06-30]: from 2024-06-17 00:00 to 2024-07-01 00:00
    executions = [
        execution("s1", "sent", "2024-06-20 10:00", executed="2024-06-20 10:00"),  # covered
        execution("s2", "held_out", "2024-06-29"),  # the control group: no contact
        execution("s2", "failed", "2024-06-28"),  # failed for good
        execution("s2", "cancelled", "2024-06-27"),
        execution("s2", "sent", "2024-06-16 12:00", executed="2024-06-16 12:00"),  # too early
        execution("s2", "scheduled", "2024-07-01 09:00"),  # after the day
        execution("s5", "failed", "2024-06-25", retry="2024-07-01 02:00"),  # covered: retry due
        execution("s3", "sent", "2024-06-25", executed="2024-06-25"),  # s3 is not at risk
    ]
    bundle = inputs(directory=RISK_DIRECTORY, predictions=RISK_PREDICTIONS, executions=executions)
    # at risk s1, s2, s5; covered s1, s5
    assert kpis(bundle)["intervention_coverage"] == pytest.approx(2 / 3)


def test_risk_kpis_are_undefined_on_a_day_not_scored_and_coverage_without_risk() -> None:
    unscored = kpis(inputs(directory=RISK_DIRECTORY, predictions=RISK_PREDICTIONS[3:4]))
    assert unscored["suppliers_at_risk"] is None and unscored["ltv_at_risk"] is None
    assert unscored["intervention_coverage"] is None
    calm = kpis(inputs(directory=RISK_DIRECTORY, predictions=RISK_PREDICTIONS[2:3]))
    assert calm["suppliers_at_risk"] == 0 and calm["ltv_at_risk"] == 0
    assert calm["intervention_coverage"] is None


# --- automation ------------------------------------------------------------------------------


def test_automation_rate_is_the_rules_automated_share_of_decided_executions() -> None:
    # scheduled in (2024-05-31, 2024-06-30]: from 2024-06-01 00:00 to 2024-07-01 00:00
    executions = [
        execution("a", "sent", "2024-06-10"),  # a rule's email: automated
        execution("b", "scheduled", "2024-06-11", kind="phone_call"),  # a rule's call
        execution("c", "sent", "2024-06-12", kind="in_app_message", by="manual"),  # by hand
        execution("d", "cancelled", "2024-06-13", kind="in_app_message"),  # automated
        execution("e", "held_out", "2024-06-14", kind="feature_tour"),  # left out
        execution("f", "sent", "2024-06-15", by="export"),  # left out
        execution("g", "sent", "2024-05-31 23:59", created="2024-06-16"),  # too early
        execution("h", "scheduled", "2024-06-30 23:00", created="2024-07-03"),  # counted
    ]
    # counted: a, b, c, d, h; automated: a, d, h
    assert kpis(inputs(executions=executions))["automation_rate_30d"] == pytest.approx(3 / 5)


# --- onboarding ------------------------------------------------------------------------------


def milestone(sid: str, kind: str, at: str) -> dict:
    return {"supplier_id": sid, "milestone_type": kind, "achieved_at": ts(at)}


def test_time_to_first_value_is_the_median_over_recent_signups_who_reached_it() -> None:
    # signed up in (2024-04-01, 2024-06-30]: from 2024-04-02 00:00
    bundle = inputs(
        directory=[
            supplier("m1", "2024-05-01"),
            supplier("m2", "2024-06-01"),
            supplier("m3", "2024-06-10"),
            supplier("m4", "2024-06-20"),
            supplier("m5", "2024-03-01"),
            supplier("m6", "2024-06-25"),
        ],
        milestones=[
            milestone("m1", "first_client", "2024-05-04 12:00"),  # 3.5 days
            milestone("m2", "first_client", "2024-06-11"),  # 10 days
            milestone("m3", "first_client", "2024-06-11"),  # 1 day
            milestone("m4", "account_setup", "2024-06-20"),  # no first client yet
            milestone("m5", "first_client", "2024-04-05"),  # signed up too long ago
            milestone("m6", "first_client", "2024-07-02"),  # after the day
        ],
    )
    # the median of 1, 3.5 and 10
    assert kpis(bundle)["time_to_first_value_days"] == pytest.approx(3.5)


def test_onboarding_completion_is_the_cohorts_share_through_the_critical_path() -> None:
    # signed up in (2024-02-01, 2024-05-01]: from 2024-02-02 00:00 to 2024-05-02 00:00
    path = ("account_setup", "first_client", "first_form", "first_journey")
    done = [milestone(s, m, "2024-04-20") for s in ("o1", "o3", "o5", "o6") for m in path]
    bundle = inputs(
        directory=[
            supplier("o1", "2024-03-01"),  # complete
            supplier("o2", "2024-03-01"),  # first journey after the day
            supplier("o3", "2024-04-15", "2024-05-20"),  # complete, then cancelled
            supplier("o4", "2024-05-01 12:00"),  # in the cohort, nothing reached
            supplier("o5", "2024-05-02 00:00"),  # too young
            supplier("o6", "2024-02-01"),  # too old
        ],
        milestones=[
            *done,
            *(milestone("o2", m, "2024-04-01") for m in path[:3]),
            milestone("o2", "ten_clients", "2024-04-01"),  # not on the path
            milestone("o2", "first_journey", "2024-07-05"),
        ],
    )
    # cohort o1, o2, o3, o4; complete o1, o3
    assert kpis(bundle)["onboarding_completion_rate"] == pytest.approx(0.5)


# --- health ----------------------------------------------------------------------------------


def test_mean_health_is_given_per_segment_over_the_days_scores_of_active_suppliers() -> None:
    def row(sid: str, segment: str, score: float | None, day: date = DAY) -> dict:
        return {"supplier_id": sid, "day": day, "score": score, "segment": segment}

    bundle = inputs(
        directory=[
            *(supplier(s, "2024-01-01") for s in ("h1", "h2", "h3", "h4", "h6")),
            supplier("h5", "2024-01-01", "2024-06-30 08:00"),
        ],
        health=[
            row("h1", "new_user", 40.0),
            row("h2", "new_user", 60.0),
            row("h3", "established", 80.0),
            row("h4", "established", None),  # no score
            row("h5", "established", 10.0),  # cancelled during the day
            row("h6", "power_user", 90.0, date(2024, 6, 29)),  # another day
        ],
    )
    values = kpis(bundle)
    assert values["mean_health_score[new_user]"] == pytest.approx(50.0)  # (40 + 60) / 2
    assert values["mean_health_score[established]"] == pytest.approx(80.0)
    assert values["mean_health_score[power_user]"] is None


# --- support ---------------------------------------------------------------------------------


def ticket(created: str, resolved: str | None, rating: int | None) -> dict:
    return {
        "created_at": ts(created),
        "resolved_at": ts(resolved) if resolved else None,
        "satisfaction_rating": rating,
    }


def test_csat_and_time_to_resolution_read_the_tickets_resolved_in_30_days() -> None:
    # resolved from 2024-06-01 00:00 to 2024-07-01 00:00
    tickets = [
        ticket("2024-06-10 09:00", "2024-06-10 11:00", 5),  # 2 hours
        ticket("2024-06-01 00:00", "2024-06-02 00:00", 2),  # 24 hours
        ticket("2024-06-20 00:00", "2024-06-20 04:00", None),  # 4 hours, not rated
        ticket("2024-05-30 00:00", "2024-05-31 23:00", 1),  # resolved before the window
        ticket("2024-06-29 00:00", None, None),  # open
        ticket("2024-06-30 20:00", "2024-07-01 01:00", 1),  # resolved after the day
    ]
    values = kpis(inputs(tickets=tickets))
    assert values["csat_30d"] == pytest.approx(3.5)  # (5 + 2) / 2
    assert values["mean_time_to_resolution_hours"] == pytest.approx(10.0)  # (2 + 24 + 4) / 3
    unrated = kpis(inputs(tickets=tickets[2:3]))
    assert unrated["csat_30d"] is None
    assert unrated["mean_time_to_resolution_hours"] == pytest.approx(4.0)


# --- saves -----------------------------------------------------------------------------------


def test_saves_are_contacted_at_risk_suppliers_still_active() -> None:
    # at risk on a day of (2024-05-01, 2024-05-31]; delivered from that day to 14 days after
    def risky(sid: str, day: date, p: float = 0.8, level: str = "critical") -> dict:
        return prediction(sid, day, p, level, 10.0)

    def sent(sid: str, at: str, status: str = "sent") -> dict:
        return execution(sid, status, at, executed=at)

    bundle = inputs(
        directory=[
            *(supplier(s, "2024-01-01") for s in ("v1", "v3", "v4", "v5", "v6", "v7", "v8")),
            supplier("v2", "2024-01-01", "2024-06-20"),
        ],
        predictions=[
            risky("v1", date(2024, 5, 10)),
            risky("v2", date(2024, 5, 31)),
            risky("v3", date(2024, 5, 5)),
            risky("v4", date(2024, 5, 15)),
            risky("v5", date(2024, 5, 1)),  # before the window
            risky("v6", date(2024, 5, 12), 0.2, "low"),  # not at risk
            risky("v7", date(2024, 5, 20)),
            risky("v8", date(2024, 5, 20)),
        ],
        executions=[
            sent("v1", "2024-05-20"),  # 10 days after: saved
            sent("v2", "2024-06-14 23:00"),  # the 14th day after, but cancelled since
            sent("v3", "2024-05-25"),  # 20 days after: too late
            execution("v4", "held_out", "2024-05-15"),  # the control group
            sent("v5", "2024-05-02"),
            sent("v6", "2024-05-13"),
            sent("v7", "2024-05-20 08:00", status="completed"),  # the same day: saved
            sent("v8", "2024-05-19"),  # the day before it was at risk
        ],
    )
    values = kpis(bundle)
    # contacted: v1, v2, v7; still active: v1, v7
    assert values["saves"] == 2
    assert values["save_rate"] == pytest.approx(2 / 3)


def test_saves_are_undefined_without_predictions_and_the_rate_without_contacts() -> None:
    directory = [supplier("v1", "2024-01-01")]
    late = prediction("v1", date(2024, 6, 10), 0.9, "critical", 10.0)  # not in the window
    assert kpis(inputs(directory=directory, predictions=[late]))["saves"] is None
    alone = prediction("v1", date(2024, 5, 10), 0.9, "critical", 10.0)
    values = kpis(inputs(directory=directory, predictions=[alone]))
    assert values["saves"] == 0 and values["save_rate"] is None
