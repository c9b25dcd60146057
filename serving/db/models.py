"""The operational database's tables (SQLAlchemy 2), shared by the service, the daily scoring
job, the intervention engine and monitoring.

One row per supplier and day for scores and predictions (a rerun of a day replaces its rows),
executions that carry what the intervention engine and the effect measurement need (rule,
channel, control group, the scores at trigger), and idempotency keys, so that nothing shared
between requests lives in a worker's memory. The schema is made and changed only by the Alembic
migrations beside this module (``wedsync-cs db upgrade``); a test checks they agree.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# Constraint names fixed by convention, so that migrations name them the same on every database.
NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
ID = String(64)  # supplier ids, agent ids, rule names


class UtcDateTime(TypeDecorator[datetime]):
    """An instant, stored in UTC and read back time-zone aware on every database (SQLite keeps
    no zone); a naive datetime is refused rather than guessed."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value}: give it a time zone (UTC)")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


INSTANT = UtcDateTime()


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class CsAgent(Base):
    """A customer-success agent: who calls are scheduled for and whose results are measured."""

    __tablename__ = "cs_agents"

    agent_id: Mapped[str] = mapped_column(ID, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(320))
    capacity_per_day: Mapped[int] = mapped_column(Integer, default=20)
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class Supplier(Base):
    """The supplier directory, synced from the export (who the service may name and reach)."""

    __tablename__ = "suppliers"

    supplier_id: Mapped[str] = mapped_column(ID, primary_key=True)
    business_name: Mapped[str | None] = mapped_column(String(300))
    first_name: Mapped[str | None] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(320))
    vendor_type: Mapped[str] = mapped_column(String(40))
    subscription_tier: Mapped[str] = mapped_column(String(40))
    monthly_revenue: Mapped[float] = mapped_column(Float)
    country: Mapped[str | None] = mapped_column(String(2))
    signup_at: Mapped[datetime] = mapped_column(INSTANT)
    cancelled_at: Mapped[datetime | None] = mapped_column(INSTANT)
    status: Mapped[str] = mapped_column(String(20), index=True)  # active | cancelled
    agent_id: Mapped[str | None] = mapped_column(ForeignKey("cs_agents.agent_id"), index=True)
    synced_at: Mapped[datetime] = mapped_column(INSTANT)


class CustomerHealth(Base):
    """A supplier's health score of one day, with its six factors and the trend against the
    previous stored score."""

    __tablename__ = "customer_health"

    supplier_id: Mapped[str] = mapped_column(ForeignKey("suppliers.supplier_id"), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    score: Mapped[float | None] = mapped_column(Float)
    previous_score: Mapped[float | None] = mapped_column(Float)
    trend: Mapped[str | None] = mapped_column(String(20))  # improving | stable | declining
    risk_level: Mapped[str | None] = mapped_column(String(20), index=True)
    segment: Mapped[str] = mapped_column(String(20))
    login_frequency: Mapped[float | None] = mapped_column(Float)
    feature_adoption: Mapped[float | None] = mapped_column(Float)
    client_engagement: Mapped[float | None] = mapped_column(Float)
    support_health: Mapped[float | None] = mapped_column(Float)
    billing_health: Mapped[float | None] = mapped_column(Float)
    onboarding_progress: Mapped[float | None] = mapped_column(Float)
    churn_probability: Mapped[float | None] = mapped_column(Float)
    health_model_version: Mapped[str] = mapped_column(String(40))
    computed_at: Mapped[datetime] = mapped_column(INSTANT)
    last_login_day: Mapped[date | None] = mapped_column(Date)  # as of the day's features

    __table_args__ = (
        Index("ix_customer_health_day_risk", "day", "risk_level"),
        # covering the outcome monitor's read of a day's (supplier, probability) pairs
        Index("ix_customer_health_day_probability", "day", "churn_probability", "supplier_id"),
    )


class ChurnPrediction(Base):
    """A supplier's churn prediction of one day, with the models that made it."""

    __tablename__ = "churn_predictions"

    supplier_id: Mapped[str] = mapped_column(ForeignKey("suppliers.supplier_id"), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    churn_probability: Mapped[float] = mapped_column(Float)
    risk_level: Mapped[str] = mapped_column(String(20))
    factors: Mapped[dict[str, float]] = mapped_column(JSON)  # SHAP log-odds per factor family
    predicted_churn_date: Mapped[date | None] = mapped_column(Date)
    ltv_at_risk: Mapped[float] = mapped_column(Float)
    prevention_cost: Mapped[float] = mapped_column(Float)
    intervention_recommended: Mapped[bool] = mapped_column(Boolean)
    priority: Mapped[str | None] = mapped_column(String(20))
    churn_model_version: Mapped[str] = mapped_column(String(40))
    health_model_version: Mapped[str] = mapped_column(String(40))
    timing_model_version: Mapped[str | None] = mapped_column(String(40))
    computed_at: Mapped[datetime] = mapped_column(INSTANT)

    __table_args__ = (
        # the riskiest of a day first; covering the outcome monitor's read (with supplier_id)
        Index("ix_churn_predictions_day_probability", "day", "churn_probability", "supplier_id"),
    )


class ScoredDay(Base):
    """A day whose ``customer_health`` and ``churn_predictions`` rows the daily job finished
    writing. A run removes the day's row before it writes the day's rows and adds it again, with
    a new token, once it has written them all: a copy of a day's rows (the outcome monitor's
    archive) is current while it carries the day's token."""

    __tablename__ = "scored_days"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    token: Mapped[str] = mapped_column(String(32))
    health_rows: Mapped[int | None] = mapped_column(Integer)  # None: recorded by migration 0007
    prediction_rows: Mapped[int | None] = mapped_column(Integer)
    finished_at: Mapped[datetime] = mapped_column(INSTANT)


class SuccessMilestone(Base):
    """An onboarding milestone a supplier reached (once per supplier and milestone)."""

    __tablename__ = "success_milestones"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    supplier_id: Mapped[str] = mapped_column(ForeignKey("suppliers.supplier_id"))
    milestone_type: Mapped[str] = mapped_column(String(40))
    achieved_at: Mapped[datetime] = mapped_column(INSTANT)
    source: Mapped[str] = mapped_column(String(20))  # export | api
    details: Mapped[dict[str, Any] | None] = mapped_column(JSON)

    __table_args__ = (UniqueConstraint("supplier_id", "milestone_type"),)


class SupportInteraction(Base):
    """A contact between customer success and a supplier (call, email reply, meeting)."""

    __tablename__ = "support_interactions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    supplier_id: Mapped[str] = mapped_column(ForeignKey("suppliers.supplier_id"), index=True)
    agent_id: Mapped[str | None] = mapped_column(ForeignKey("cs_agents.agent_id"))
    # the execution that scheduled it (a call or support session); one per execution
    execution_id: Mapped[str | None] = mapped_column(
        ForeignKey("intervention_executions.id"), index=True, unique=True
    )
    kind: Mapped[str] = mapped_column(String(40))
    # when it happened, or for a scheduled call the slot it is booked for
    occurred_at: Mapped[datetime] = mapped_column(INSTANT)
    outcome: Mapped[str | None] = mapped_column(String(40))  # "scheduled" until it is done
    notes: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (Index("ix_support_interactions_agent_time", "agent_id", "occurred_at"),)


class AutomatedIntervention(Base):
    """A rule of the intervention engine (its definition lives in YAML; this row is what
    executions refer to and what caps are counted by)."""

    __tablename__ = "automated_interventions"

    rule_id: Mapped[str] = mapped_column(ID, primary_key=True)
    intervention_type: Mapped[str] = mapped_column(String(40))
    channel: Mapped[str] = mapped_column(String(20))  # email | in_app | call
    definition: Mapped[dict[str, Any]] = mapped_column(JSON)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    cap_days: Mapped[int | None] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(INSTANT)


class InterventionExecution(Base):
    """One intervention for one supplier: scheduled by a rule or by hand, held out for the
    control group, sent, failed, completed or cancelled."""

    __tablename__ = "intervention_executions"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    supplier_id: Mapped[str] = mapped_column(ForeignKey("suppliers.supplier_id"))
    intervention_type: Mapped[str] = mapped_column(String(40))
    status: Mapped[str] = mapped_column(String(20), index=True)
    scheduled_at: Mapped[datetime] = mapped_column(INSTANT)
    executed_at: Mapped[datetime | None] = mapped_column(INSTANT)
    reason: Mapped[str] = mapped_column(Text)
    priority: Mapped[str] = mapped_column(String(20))
    triggered_by: Mapped[str] = mapped_column(String(64))  # a rule name, or "manual"
    rule_id: Mapped[str | None] = mapped_column(ForeignKey("automated_interventions.rule_id"))
    channel: Mapped[str | None] = mapped_column(String(20))
    agent_id: Mapped[str | None] = mapped_column(ForeignKey("cs_agents.agent_id"))
    control_group: Mapped[bool] = mapped_column(Boolean, default=False)
    health_score_at_trigger: Mapped[float | None] = mapped_column(Float)
    churn_probability_at_trigger: Mapped[float | None] = mapped_column(Float)
    estimated_retention_value: Mapped[float | None] = mapped_column(Float)
    customization: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(INSTANT)
    updated_at: Mapped[datetime] = mapped_column(INSTANT)
    # a rule's execution: the scored day that made it due and the rules file's version (one
    # execution per supplier, rule and day, so a rerun of the day adds none)
    day: Mapped[date | None] = mapped_column(Date)
    rules_version: Mapped[str | None] = mapped_column(String(64))
    # delivery (the outbox, serving.dispatch): tries so far, the last error, when the next try
    # is due (None: no further try), the instant a dispatcher claimed it for sending (None:
    # not being sent) and the sent email's Message-ID
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    next_attempt_at: Mapped[datetime | None] = mapped_column(INSTANT)
    claimed_at: Mapped[datetime | None] = mapped_column(INSTANT)
    message_id: Mapped[str | None] = mapped_column(String(255))

    __table_args__ = (
        Index(
            "ix_intervention_executions_supplier_type_time",
            "supplier_id",
            "intervention_type",
            "scheduled_at",
        ),
        Index(
            "ux_intervention_executions_supplier_rule_day",
            "supplier_id",
            "triggered_by",
            "day",
            unique=True,
        ),
    )


class InAppMessage(Base):
    """An in-app message or feature tour for the app to show: pending until the supplier has
    seen, dismissed or completed it (one per execution)."""

    __tablename__ = "in_app_messages"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    execution_id: Mapped[str] = mapped_column(
        ForeignKey("intervention_executions.id"), unique=True
    )
    supplier_id: Mapped[str] = mapped_column(ForeignKey("suppliers.supplier_id"))
    kind: Mapped[str] = mapped_column(String(20))  # in_app_message | feature_tour
    title: Mapped[str] = mapped_column(String(300))
    body: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(20))  # pending | seen | dismissed | completed
    created_at: Mapped[datetime] = mapped_column(INSTANT)
    acted_at: Mapped[datetime | None] = mapped_column(INSTANT)

    __table_args__ = (Index("ix_in_app_messages_supplier_status", "supplier_id", "status"),)


class ControlGroupMember(Base):
    """A supplier's draw for the randomised control group (stored once: a later change of the
    share or salt does not move suppliers already drawn)."""

    __tablename__ = "control_group"

    supplier_id: Mapped[str] = mapped_column(ForeignKey("suppliers.supplier_id"), primary_key=True)
    in_control: Mapped[bool] = mapped_column(Boolean)
    salt: Mapped[str] = mapped_column(String(64))
    share: Mapped[float] = mapped_column(Float)
    assigned_at: Mapped[datetime] = mapped_column(INSTANT)


class FeatureAdoption(Base):
    """A supplier's adoption stage of one core feature on one day."""

    __tablename__ = "feature_adoption"

    supplier_id: Mapped[str] = mapped_column(ForeignKey("suppliers.supplier_id"), primary_key=True)
    feature_key: Mapped[str] = mapped_column(String(40), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    stage: Mapped[str | None] = mapped_column(String(20))
    days_used_30d: Mapped[int | None] = mapped_column(Integer)


class CsPerformanceMetric(Base):
    """One agent's measured results of one day."""

    __tablename__ = "cs_performance_metrics"

    agent_id: Mapped[str] = mapped_column(ForeignKey("cs_agents.agent_id"), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    suppliers_managed: Mapped[int] = mapped_column(Integer)
    interventions_completed: Mapped[int] = mapped_column(Integer)
    suppliers_retained: Mapped[int] = mapped_column(Integer)
    suppliers_churned: Mapped[int] = mapped_column(Integer)
    retention_rate: Mapped[float | None] = mapped_column(Float)
    mean_health_change: Mapped[float | None] = mapped_column(Float)
    credited_retention_value: Mapped[float | None] = mapped_column(Float)  # the LTV impact
    satisfaction: Mapped[float | None] = mapped_column(Float)
    upgrades: Mapped[int | None] = mapped_column(Integer)
    health_improvements: Mapped[int | None] = mapped_column(Integer)
    churn_prevented: Mapped[float | None] = mapped_column(Float)
    churn_prevented_ci_low: Mapped[float | None] = mapped_column(Float)
    churn_prevented_ci_high: Mapped[float | None] = mapped_column(Float)
    credit_basis: Mapped[str | None] = mapped_column(String(40))
    computed_at: Mapped[datetime | None] = mapped_column(INSTANT)


class CsKpi(Base):
    """One KPI of one day (:data:`monitoring.kpis.KPIS` defines them; the definition is kept
    as it read when the value was computed)."""

    __tablename__ = "cs_kpis"
    __table_args__ = (Index("ix_cs_kpis_day", "day"),)

    name: Mapped[str] = mapped_column(String(80), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    value: Mapped[float | None] = mapped_column(Float)
    unit: Mapped[str] = mapped_column(String(20))
    definition: Mapped[str] = mapped_column(Text)
    computed_at: Mapped[datetime] = mapped_column(INSTANT)


class IdempotencyKey(Base):
    """A request's ``Idempotency-Key``: the first request's fingerprint and answer, replayed to
    every retry of the same key (one execution however many workers receive it)."""

    __tablename__ = "idempotency_keys"

    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    route: Mapped[str] = mapped_column(String(200))
    request_hash: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int | None] = mapped_column(Integer)
    response: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(INSTANT)


class ModelVersion(Base):
    """A registered model version the platform served or scored with."""

    __tablename__ = "model_versions"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    version: Mapped[str] = mapped_column(String(40), primary_key=True)
    run_id: Mapped[str | None] = mapped_column(String(64))
    feature_service: Mapped[str | None] = mapped_column(String(64))
    first_used_at: Mapped[datetime] = mapped_column(INSTANT)
