"""operational tables

Revision ID: 0001
Revises:
Create Date: 2026-12-03 08:25:08.496035
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "automated_interventions",
        sa.Column("rule_id", sa.String(length=64), nullable=False),
        sa.Column("intervention_type", sa.String(length=40), nullable=False),
        sa.Column("channel", sa.String(length=20), nullable=False),
        sa.Column("definition", sa.JSON(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("cap_days", sa.Integer(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("rule_id", name=op.f("pk_automated_interventions")),
    )
    op.create_table(
        "cs_agents",
        sa.Column("agent_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=True),
        sa.Column("capacity_per_day", sa.Integer(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("agent_id", name=op.f("pk_cs_agents")),
    )
    op.create_table(
        "idempotency_keys",
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("route", sa.String(length=200), nullable=False),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("response", sa.JSON(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_idempotency_keys")),
    )
    op.create_table(
        "model_versions",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("version", sa.String(length=40), nullable=False),
        sa.Column("run_id", sa.String(length=64), nullable=True),
        sa.Column("feature_service", sa.String(length=64), nullable=True),
        sa.Column("first_used_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", "version", name=op.f("pk_model_versions")),
    )
    op.create_table(
        "cs_performance_metrics",
        sa.Column("agent_id", sa.String(length=64), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("suppliers_managed", sa.Integer(), nullable=False),
        sa.Column("interventions_completed", sa.Integer(), nullable=False),
        sa.Column("suppliers_retained", sa.Integer(), nullable=False),
        sa.Column("suppliers_churned", sa.Integer(), nullable=False),
        sa.Column("retention_rate", sa.Float(), nullable=True),
        sa.Column("mean_health_change", sa.Float(), nullable=True),
        sa.Column("credited_retention_value", sa.Float(), nullable=True),
        sa.ForeignKeyConstraint(
            ["agent_id"],
            ["cs_agents.agent_id"],
            name=op.f("fk_cs_performance_metrics_agent_id_cs_agents"),
        ),
        sa.PrimaryKeyConstraint("agent_id", "day", name=op.f("pk_cs_performance_metrics")),
    )
    op.create_table(
        "suppliers",
        sa.Column("supplier_id", sa.String(length=64), nullable=False),
        sa.Column("business_name", sa.String(length=300), nullable=True),
        sa.Column("first_name", sa.String(length=200), nullable=True),
        sa.Column("email", sa.String(length=320), nullable=True),
        sa.Column("vendor_type", sa.String(length=40), nullable=False),
        sa.Column("subscription_tier", sa.String(length=40), nullable=False),
        sa.Column("monthly_revenue", sa.Float(), nullable=False),
        sa.Column("country", sa.String(length=2), nullable=True),
        sa.Column("signup_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("cancelled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("agent_id", sa.String(length=64), nullable=True),
        sa.Column("synced_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["agent_id"], ["cs_agents.agent_id"], name=op.f("fk_suppliers_agent_id_cs_agents")
        ),
        sa.PrimaryKeyConstraint("supplier_id", name=op.f("pk_suppliers")),
    )
    with op.batch_alter_table("suppliers", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_suppliers_agent_id"), ["agent_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_suppliers_status"), ["status"], unique=False)

    op.create_table(
        "churn_predictions",
        sa.Column("supplier_id", sa.String(length=64), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("churn_probability", sa.Float(), nullable=False),
        sa.Column("risk_level", sa.String(length=20), nullable=False),
        sa.Column("factors", sa.JSON(), nullable=False),
        sa.Column("predicted_churn_date", sa.Date(), nullable=True),
        sa.Column("ltv_at_risk", sa.Float(), nullable=False),
        sa.Column("prevention_cost", sa.Float(), nullable=False),
        sa.Column("intervention_recommended", sa.Boolean(), nullable=False),
        sa.Column("priority", sa.String(length=20), nullable=True),
        sa.Column("churn_model_version", sa.String(length=40), nullable=False),
        sa.Column("health_model_version", sa.String(length=40), nullable=False),
        sa.Column("timing_model_version", sa.String(length=40), nullable=True),
        sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["supplier_id"],
            ["suppliers.supplier_id"],
            name=op.f("fk_churn_predictions_supplier_id_suppliers"),
        ),
        sa.PrimaryKeyConstraint("supplier_id", "day", name=op.f("pk_churn_predictions")),
    )
    with op.batch_alter_table("churn_predictions", schema=None) as batch_op:
        batch_op.create_index(
            "ix_churn_predictions_day_probability", ["day", "churn_probability"], unique=False
        )

    op.create_table(
        "customer_health",
        sa.Column("supplier_id", sa.String(length=64), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("score", sa.Float(), nullable=True),
        sa.Column("previous_score", sa.Float(), nullable=True),
        sa.Column("trend", sa.String(length=20), nullable=True),
        sa.Column("risk_level", sa.String(length=20), nullable=True),
        sa.Column("segment", sa.String(length=20), nullable=False),
        sa.Column("login_frequency", sa.Float(), nullable=True),
        sa.Column("feature_adoption", sa.Float(), nullable=True),
        sa.Column("client_engagement", sa.Float(), nullable=True),
        sa.Column("support_health", sa.Float(), nullable=True),
        sa.Column("billing_health", sa.Float(), nullable=True),
        sa.Column("onboarding_progress", sa.Float(), nullable=True),
        sa.Column("churn_probability", sa.Float(), nullable=True),
        sa.Column("health_model_version", sa.String(length=40), nullable=False),
        sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["supplier_id"],
            ["suppliers.supplier_id"],
            name=op.f("fk_customer_health_supplier_id_suppliers"),
        ),
        sa.PrimaryKeyConstraint("supplier_id", "day", name=op.f("pk_customer_health")),
    )
    with op.batch_alter_table("customer_health", schema=None) as batch_op:
        batch_op.create_index("ix_customer_health_day_risk", ["day", "risk_level"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_customer_health_risk_level"), ["risk_level"], unique=False
        )

    op.create_table(
        "feature_adoption",
        sa.Column("supplier_id", sa.String(length=64), nullable=False),
        sa.Column("feature_key", sa.String(length=40), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("stage", sa.String(length=20), nullable=True),
        sa.Column("days_used_30d", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["supplier_id"],
            ["suppliers.supplier_id"],
            name=op.f("fk_feature_adoption_supplier_id_suppliers"),
        ),
        sa.PrimaryKeyConstraint(
            "supplier_id", "feature_key", "day", name=op.f("pk_feature_adoption")
        ),
    )
    op.create_table(
        "intervention_executions",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("supplier_id", sa.String(length=64), nullable=False),
        sa.Column("intervention_type", sa.String(length=40), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("scheduled_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("executed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("priority", sa.String(length=20), nullable=False),
        sa.Column("triggered_by", sa.String(length=64), nullable=False),
        sa.Column("rule_id", sa.String(length=64), nullable=True),
        sa.Column("channel", sa.String(length=20), nullable=True),
        sa.Column("agent_id", sa.String(length=64), nullable=True),
        sa.Column("control_group", sa.Boolean(), nullable=False),
        sa.Column("health_score_at_trigger", sa.Float(), nullable=True),
        sa.Column("churn_probability_at_trigger", sa.Float(), nullable=True),
        sa.Column("estimated_retention_value", sa.Float(), nullable=True),
        sa.Column("customization", sa.JSON(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["agent_id"],
            ["cs_agents.agent_id"],
            name=op.f("fk_intervention_executions_agent_id_cs_agents"),
        ),
        sa.ForeignKeyConstraint(
            ["rule_id"],
            ["automated_interventions.rule_id"],
            name=op.f("fk_intervention_executions_rule_id_automated_interventions"),
        ),
        sa.ForeignKeyConstraint(
            ["supplier_id"],
            ["suppliers.supplier_id"],
            name=op.f("fk_intervention_executions_supplier_id_suppliers"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_intervention_executions")),
    )
    with op.batch_alter_table("intervention_executions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_intervention_executions_status"), ["status"], unique=False
        )
        batch_op.create_index(
            "ix_intervention_executions_supplier_type_time",
            ["supplier_id", "intervention_type", "scheduled_at"],
            unique=False,
        )

    op.create_table(
        "success_milestones",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("supplier_id", sa.String(length=64), nullable=False),
        sa.Column("milestone_type", sa.String(length=40), nullable=False),
        sa.Column("achieved_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("source", sa.String(length=20), nullable=False),
        sa.Column("details", sa.JSON(), nullable=True),
        sa.ForeignKeyConstraint(
            ["supplier_id"],
            ["suppliers.supplier_id"],
            name=op.f("fk_success_milestones_supplier_id_suppliers"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_success_milestones")),
        sa.UniqueConstraint(
            "supplier_id",
            "milestone_type",
            name=op.f("uq_success_milestones_supplier_id_milestone_type"),
        ),
    )
    op.create_table(
        "support_interactions",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("supplier_id", sa.String(length=64), nullable=False),
        sa.Column("agent_id", sa.String(length=64), nullable=True),
        sa.Column("execution_id", sa.String(length=36), nullable=True),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("outcome", sa.String(length=40), nullable=True),
        sa.Column("notes", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["agent_id"],
            ["cs_agents.agent_id"],
            name=op.f("fk_support_interactions_agent_id_cs_agents"),
        ),
        sa.ForeignKeyConstraint(
            ["execution_id"],
            ["intervention_executions.id"],
            name=op.f("fk_support_interactions_execution_id_intervention_executions"),
        ),
        sa.ForeignKeyConstraint(
            ["supplier_id"],
            ["suppliers.supplier_id"],
            name=op.f("fk_support_interactions_supplier_id_suppliers"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_support_interactions")),
    )
    with op.batch_alter_table("support_interactions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_support_interactions_execution_id"), ["execution_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_support_interactions_supplier_id"), ["supplier_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("support_interactions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_support_interactions_supplier_id"))
        batch_op.drop_index(batch_op.f("ix_support_interactions_execution_id"))

    op.drop_table("support_interactions")
    op.drop_table("success_milestones")
    with op.batch_alter_table("intervention_executions", schema=None) as batch_op:
        batch_op.drop_index("ix_intervention_executions_supplier_type_time")
        batch_op.drop_index(batch_op.f("ix_intervention_executions_status"))

    op.drop_table("intervention_executions")
    op.drop_table("feature_adoption")
    with op.batch_alter_table("customer_health", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_customer_health_risk_level"))
        batch_op.drop_index("ix_customer_health_day_risk")

    op.drop_table("customer_health")
    with op.batch_alter_table("churn_predictions", schema=None) as batch_op:
        batch_op.drop_index("ix_churn_predictions_day_probability")

    op.drop_table("churn_predictions")
    with op.batch_alter_table("suppliers", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_suppliers_status"))
        batch_op.drop_index(batch_op.f("ix_suppliers_agent_id"))

    op.drop_table("suppliers")
    op.drop_table("cs_performance_metrics")
    op.drop_table("model_versions")
    op.drop_table("idempotency_keys")
    op.drop_table("cs_agents")
    op.drop_table("automated_interventions")
