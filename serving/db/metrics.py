"""The daily KPIs and agent performance: reading their inputs from the operational database and
the export, and storing and reading back what :mod:`monitoring.kpis` and
:mod:`monitoring.agents` computed. The computations themselves are pure and live there."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, Final

import pandas as pd
import pyarrow.parquet as pq
from sqlalchemy import Engine, or_, select, type_coerce
from sqlalchemy.types import NullType

from monitoring.agents import AgentInputs, AgentPerformance
from monitoring.kpis import (
    AT_RISK_LEVELS,
    AT_RISK_PROBABILITY,
    FIRST_VALUE_SIGNUP_DAYS,
    ONBOARDING_COHORT_DAYS,
    KpiInputs,
    KpiValue,
)
from serving.db.models import (
    ChurnPrediction,
    CsAgent,
    CsKpi,
    CsPerformanceMetric,
    CustomerHealth,
    InterventionExecution,
    SuccessMilestone,
    Supplier,
    SupportInteraction,
)
from serving.db.scores import upsert

PREDICTION_DAYS: Final = 60  # saves look back 60 days
EXECUTION_DAYS: Final = 100  # the agents' credit window reaches 90 days back
HEALTH_BACK_DAYS: Final = 30
# the KPIs read milestones of suppliers signed up lately only (onboarding's cohort, time to
# first value's)
MILESTONE_SIGNUP_DAYS: Final = max(ONBOARDING_COHORT_DAYS[0], FIRST_VALUE_SIGNUP_DAYS)


def _utc(frame: pd.DataFrame, *columns: str) -> pd.DataFrame:
    for column in columns:
        frame[column] = pd.to_datetime(frame[column], utc=True, format="ISO8601")
    return frame


def _raw(*columns: Any) -> list[Any]:
    """The columns without their result processing (SQLAlchemy's per-row conversion of each
    instant and day is most of the time of reading 100,000s of rows); the frame's columns are
    converted at once afterwards (:func:`_utc`, ``pd.to_datetime``)."""
    return [type_coerce(c, NullType()).label(c.key) for c in columns]


def _export(
    raw: Path, name: str, columns: list[str], since: tuple[str, datetime], **equal: str
) -> pd.DataFrame:
    """The export table's ``columns``, only its rows with ``since[0]`` at or after ``since[1]``
    (compared as the file stores it, with or without a time zone) and the ``equal`` values."""
    path = Path(raw) / f"{name}.parquet"
    column, at = since
    stored = pq.read_schema(path).field(column).type
    bound = pd.Timestamp(at)
    bound = bound.tz_convert(stored.tz) if getattr(stored, "tz", None) else bound.tz_convert(None)
    filters = [(column, ">=", bound), *((k, "==", v) for k, v in equal.items())]
    frame = pq.read_table(path, columns=columns, filters=filters).to_pandas()
    for column in columns:
        if column.endswith("_at"):
            frame[column] = pd.to_datetime(frame[column], utc=True)
    return frame


@dataclasses.dataclass(frozen=True)
class DayMetricInputs:
    kpis: KpiInputs
    agents: AgentInputs


def read_inputs(engine: Engine, raw: Path, day: date) -> DayMetricInputs:
    """What the KPIs and the agents' rows of ``day`` read, and only that: the day's predictions
    with the older days' at-risk ones, the health of the day and of 30 days before, the
    executions of the last 100 days."""
    end = datetime.combine(day + timedelta(days=1), datetime.min.time(), UTC)
    first = day - timedelta(days=PREDICTION_DAYS - 1)
    P, H, E = ChurnPrediction, CustomerHealth, InterventionExecution
    with engine.connect() as c:
        directory = _utc(
            pd.read_sql(
                select(
                    *_raw(
                        Supplier.supplier_id,
                        Supplier.agent_id,
                        Supplier.monthly_revenue,
                        Supplier.signup_at,
                        Supplier.cancelled_at,
                    )
                ),
                c,
            ),
            "signup_at",
            "cancelled_at",
        )
        predictions = pd.read_sql(
            select(
                *_raw(P.supplier_id, P.day, P.churn_probability, P.risk_level, P.ltv_at_risk)
            ).where(
                P.day >= first,
                P.day <= day,
                or_(
                    P.day == day,
                    P.risk_level.in_(sorted(AT_RISK_LEVELS)),
                    P.churn_probability >= AT_RISK_PROBABILITY,
                ),
            ),
            c,
        )
        health = pd.read_sql(
            select(*_raw(H.supplier_id, H.day, H.score, H.segment)).where(
                H.day.in_([day, day - timedelta(days=HEALTH_BACK_DAYS)])
            ),
            c,
        )
        executions = _utc(
            pd.read_sql(
                select(
                    *_raw(
                        E.supplier_id,
                        E.intervention_type,
                        E.status,
                        E.scheduled_at,
                        E.executed_at,
                        E.triggered_by,
                        E.created_at,
                        E.next_attempt_at,
                        E.rule_id,
                        E.control_group,
                        E.day,
                    )
                ).where(E.scheduled_at >= end - timedelta(days=EXECUTION_DAYS)),
                c,
            ),
            "scheduled_at",
            "executed_at",
            "created_at",
            "next_attempt_at",
        )
        milestones = _utc(
            pd.read_sql(
                select(
                    *_raw(
                        SuccessMilestone.supplier_id,
                        SuccessMilestone.milestone_type,
                        SuccessMilestone.achieved_at,
                    )
                )
                .join(Supplier, Supplier.supplier_id == SuccessMilestone.supplier_id)
                .where(Supplier.signup_at >= end - timedelta(days=MILESTONE_SIGNUP_DAYS)),
                c,
            ),
            "achieved_at",
        )
        agents = pd.read_sql(select(CsAgent.agent_id, CsAgent.name), c)
        interactions = _utc(
            pd.read_sql(
                select(
                    *_raw(
                        SupportInteraction.agent_id,
                        SupportInteraction.occurred_at,
                        SupportInteraction.outcome,
                    )
                ).where(SupportInteraction.occurred_at >= end - timedelta(days=HEALTH_BACK_DAYS)),
                c,
            ),
            "occurred_at",
        )
    for frame in (predictions, health):
        frame["day"] = pd.to_datetime(frame["day"]).dt.date
    executions["day"] = pd.to_datetime(executions["day"]).dt.date
    executions["control_group"] = executions["control_group"].astype(bool)
    # the export's tickets resolved and its upgrades of the 30-day windows (a day's margin for
    # the time zone of the file's timestamps)
    since = end - timedelta(days=HEALTH_BACK_DAYS + 1)
    tickets = _export(
        raw,
        "support_tickets",
        ["supplier_id", "created_at", "resolved_at", "satisfaction_rating"],
        ("resolved_at", since),
    )
    billing = _export(
        raw,
        "billing_events",
        ["supplier_id", "occurred_at", "event_type"],
        ("occurred_at", since),
        event_type="plan_upgraded",
    )
    return DayMetricInputs(
        kpis=KpiInputs(
            directory=directory,
            health=health,
            predictions=predictions,
            executions=executions,
            milestones=milestones,
            tickets=tickets,
        ),
        agents=AgentInputs(
            agents=agents,
            directory=directory,
            executions=executions,
            health=health,
            tickets=tickets,
            billing=billing,
            interactions=interactions,
        ),
    )


def store_kpis(engine: Engine, values: Sequence[KpiValue], computed_at: datetime) -> int:
    """Insert or replace the KPI values (keyed by name and day)."""
    rows = [
        {
            "name": v.name,
            "day": v.date,
            "value": v.value,
            "unit": v.unit,
            "definition": v.definition,
            "computed_at": computed_at,
        }
        for v in values
    ]
    return upsert(engine, CsKpi, rows, keys=("name", "day"))


# AgentPerformance's fields that cs_performance_metrics names otherwise (older columns)
AGENT_COLUMNS: Final = {
    "accounts_managed": "suppliers_managed",
    "interactions_completed": "interventions_completed",
    "ltv_impact": "credited_retention_value",
}


def store_agents(engine: Engine, rows: Sequence[AgentPerformance], computed_at: datetime) -> int:
    """Insert or replace the agents' rows (keyed by agent and day); ``name`` is the
    directory's, not stored again."""
    records = [
        {AGENT_COLUMNS.get(k, k): v for k, v in dataclasses.asdict(row).items() if k != "name"}
        | {"computed_at": computed_at}
        for row in rows
    ]
    return upsert(engine, CsPerformanceMetric, records, keys=("agent_id", "day"))
