"""The API's request and response bodies (``shared/API_CONTRACT.md`` v1.1), camelCase on the
wire. Requests are strict: an unknown field or a value of the wrong type is a 422, never
coerced."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from pydantic.alias_generators import to_camel

from monitoring.effects import InterventionEffect, OutcomeEffect

UserId = Annotated[
    str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")
]
InterventionType = Literal[
    "email_sequence", "phone_call", "feature_tour", "personalized_support", "in_app_message"
]
Priority = Literal["low", "medium", "high", "critical"]
ChurnLevel = Literal["low", "medium", "high", "critical"]
HealthBand = Literal["healthy", "at_risk", "critical"]
Trend = Literal["improving", "stable", "declining"]
MilestoneType = Literal[
    "account_setup", "first_client", "first_form", "first_journey", "ten_clients",
    "first_automation",
]  # fmt: skip


ExecutionStatus = Literal["scheduled", "held_out", "sent", "failed", "completed", "cancelled"]
SubscriptionTier = Literal["starter", "professional", "scale", "enterprise"]
VendorType = Literal[
    "photographer", "videographer", "venue", "florist", "caterer", "planner", "dj_band",
    "baker", "hair_makeup", "stationer", "other",
]  # fmt: skip
AgentId = Annotated[
    str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")
]


class Wire(BaseModel):
    """camelCase on the wire, snake_case in Python."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)


class Request(Wire):
    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", strict=True
    )


# ----- errors -----------------------------------------------------------------------------


class ErrorBody(Wire):
    code: str
    message: str
    # a 409 of a cap: which cap, and the first day the intervention would be allowed
    cap: Literal["rule_cap", "fatigue_cap"] | None = None
    next_allowed_date: date | None = None


class ErrorResponse(Wire):
    success: Literal[False] = False
    error: ErrorBody


# ----- health score -----------------------------------------------------------------------


class Breakdown(Wire):
    login_frequency: int = Field(ge=0, le=100)
    feature_adoption: int = Field(ge=0, le=100)
    client_engagement: int = Field(ge=0, le=100)
    support_health: int = Field(ge=0, le=100)
    billing_health: int = Field(ge=0, le=100)
    onboarding_progress: int = Field(ge=0, le=100)


class Recommendation(Wire):
    type: str
    title: str
    description: str
    priority: Priority


class HealthScore(Wire):
    current: int = Field(ge=0, le=100)
    previous: int | None = Field(ge=0, le=100)
    trend: Trend
    risk_level: HealthBand
    breakdown: Breakdown
    churn_probability: float = Field(ge=0, le=1)
    recommendations: list[Recommendation]
    next_review_date: date


class HealthScoreResponse(Wire):
    success: Literal[True] = True
    health_score: HealthScore


# ----- churn predictions ------------------------------------------------------------------


class ChurnPredictionItem(Wire):
    user_id: str
    churn_probability: float = Field(ge=0, le=1)
    risk_level: ChurnLevel
    predicted_churn_date: date | None
    factors: dict[str, float]
    recommended_actions: list[str]
    ltv_at_risk: float
    prevention_cost: float
    model_version: str


class ChurnPredictionsResponse(Wire):
    success: Literal[True] = True
    predictions: list[ChurnPredictionItem]
    total_at_risk: int
    total_ltv_at_risk: float


# ----- interventions ----------------------------------------------------------------------


class Customization(Request):
    message: str | None = Field(default=None, max_length=5000)
    timeline: str | None = Field(default=None, max_length=200)
    special_offers: list[Annotated[str, StringConstraints(max_length=200)]] | None = Field(
        default=None, max_length=20
    )


class TriggerInterventionRequest(Request):
    user_id: UserId
    intervention_type: InterventionType
    reason: Annotated[str, StringConstraints(min_length=1, max_length=2000)]
    priority: Priority
    customization: Customization | None = None


class ExecutionSummary(Wire):
    id: str
    user_id: str
    intervention_type: InterventionType
    status: ExecutionStatus
    scheduled_at: datetime
    reason: str
    priority: Priority


class TriggerResponse(Wire):
    success: Literal[True] = True
    execution: ExecutionSummary


class Execution(Wire):
    """An intervention execution (the contract's ``Execution``, with its delivery state)."""

    id: str
    user_id: str
    intervention_type: InterventionType
    status: ExecutionStatus
    scheduled_at: datetime
    executed_at: datetime | None
    reason: str
    priority: Priority
    triggered_by: str  # a rule name, or "manual"
    health_score_at_trigger: float | None
    churn_probability_at_trigger: float | None
    estimated_retention_value: float | None
    channel: Literal["email", "in_app", "call"]
    agent_id: str | None
    attempts: int
    last_error: str | None
    next_attempt_at: datetime | None


class ExecutionsResponse(Wire):
    success: Literal[True] = True
    executions: list[Execution]


class BulkFilter(Request):
    risk_level: list[ChurnLevel] | None = Field(default=None, max_length=4)
    tier: list[SubscriptionTier] | None = Field(default=None, max_length=4)
    vendor_type: list[VendorType] | None = Field(default=None, max_length=11)
    agent_id: AgentId | None = None
    min_churn_probability: float | None = Field(default=None, ge=0, le=1, allow_inf_nan=False)


class BulkInterventionRequest(Request):
    filter: BulkFilter
    intervention_type: InterventionType
    reason: Annotated[str, StringConstraints(min_length=1, max_length=2000)]
    priority: Priority
    dry_run: bool
    # the dry run's ``selection``: the execution is refused (409) if the set changed since
    selection: Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")] | None = None
    customization: Customization | None = None


class BulkExcluded(Wire):
    control_group: int
    rule_cap: int
    fatigue_cap: int
    not_active: int


class BulkResponse(Wire):
    success: Literal[True] = True
    dry_run: bool
    matched: int
    to_contact: int
    excluded: BulkExcluded
    selection: str  # a hash of the suppliers to contact: pass it back to run exactly that set
    execution_ids: list[str] | None = None


class LastContact(Wire):
    at: datetime
    intervention_type: InterventionType
    status: ExecutionStatus
    triggered_by: str


class WorklistItem(Wire):
    user_id: str
    business_name: str | None
    churn_probability: float = Field(ge=0, le=1)
    ltv_at_risk: float
    expected_loss: float  # churn probability x LTV (the ranking)
    factors: dict[str, float]  # the factor families that push the churn probability up most
    suggested_action: str
    booked_call: datetime | None  # a call or support session booked for this agent
    last_contact: LastContact | None
    control_group: bool  # in the control group: no automated contact, a person may still call


class WorklistResponse(Wire):
    success: Literal[True] = True
    agent_id: str
    capacity: int
    items: list[WorklistItem]
    # how the items are ordered: expected loss ("risk"), or the call's expected saved LTV
    # ("uplift_x_ltv": its uplift model beats random targeting), and why
    ranking: Literal["uplift_x_ltv", "risk"] = "risk"
    ranking_reason: str = ""


class InAppMessageOut(Wire):
    id: str
    kind: Literal["in_app_message", "feature_tour"]
    title: str
    body: str
    created_at: datetime


class InAppMessagesResponse(Wire):
    success: Literal[True] = True
    messages: list[InAppMessageOut]


class AckRequest(Request):
    action: Literal["seen", "dismissed", "completed"]


class SuccessResponse(Wire):
    success: Literal[True] = True


# ----- monitoring: KPIs and agents ----------------------------------------------------------


class KpiOut(Wire):
    name: str
    definition: str
    value: float | None  # None: undefined that day (no denominator, a day not scored)
    unit: str
    date: date


class KpisResponse(Wire):
    success: Literal[True] = True
    kpis: list[KpiOut]


class AgentPerformanceOut(Wire):
    """A ``cs_performance_metrics`` row: the agent's results of the day (see
    :mod:`monitoring.agents` for each definition)."""

    agent_id: str
    name: str
    date: date
    accounts_managed: int
    interactions_completed: int
    suppliers_retained: int
    suppliers_churned: int
    retention_rate: float | None
    satisfaction: float | None
    upgrades: int | None
    health_improvements: int | None
    mean_health_change: float | None
    churn_prevented: float | None  # credited against the control group, with its 95 % CI
    churn_prevented_ci_low: float | None
    churn_prevented_ci_high: float | None
    ltv_impact: float | None
    credit_basis: str | None


class AgentsResponse(Wire):
    success: Literal[True] = True
    agents: list[AgentPerformanceOut]


# ----- onboarding -------------------------------------------------------------------------


class MilestoneMetadata(Request):
    time_to_complete: float | None = Field(default=None, ge=0)
    assistance_required: bool | None = None
    satisfaction_rating: int | None = Field(default=None, ge=1, le=5)


class MilestoneCompletionRequest(Request):
    user_id: UserId
    milestone_type: MilestoneType
    metadata: MilestoneMetadata | None = None


class Blocker(Wire):
    milestone: MilestoneType
    target_date: date
    days_late: int = Field(ge=1)
    description: str


class OnboardingProgress(Wire):
    user_id: str
    current_step: MilestoneType | Literal["completed"]
    total_steps: int
    milestones_completed: int
    total_milestones: int
    days_in_onboarding: int
    expected_completion_date: date | None
    completed: list[MilestoneType]
    blockers: list[Blocker]
    next_actions: list[str]


class OnboardingResponse(Wire):
    success: Literal[True] = True
    onboarding: OnboardingProgress


# ----- model-serving ----------------------------------------------------------------------


class ScoreRequest(Request):
    user_ids: list[UserId] = Field(min_length=1, max_length=1000)


class UserScore(Wire):
    user_id: str
    found: bool
    health_score: int | None = Field(ge=0, le=100)
    health_risk_level: HealthBand | None
    breakdown: Breakdown | None
    churn_probability: float | None = Field(ge=0, le=1)
    health_churn_probability: float | None = Field(ge=0, le=1)
    churn_risk_level: ChurnLevel | None
    predicted_churn_date: date | None
    top_factors: list[str]
    churn_model_version: str
    health_model_version: str


class ScoreResponse(Wire):
    success: Literal[True] = True
    scores: list[UserScore]


class ExplainRequest(Request):
    user_id: UserId


class Explanation(Wire):
    user_id: str
    base_value: float
    margin: float
    churn_probability: float = Field(ge=0, le=1)
    features: dict[str, float]
    families: dict[str, float]
    model_version: str


class ExplainResponse(Wire):
    success: Literal[True] = True
    explanation: Explanation


class ServedModel(Wire):
    name: str
    version: str
    run_id: str | None
    feature_service: str
    role: str


class ModelsResponse(Wire):
    success: Literal[True] = True
    models: list[ServedModel]


_CAMEL_FROZEN = ConfigDict(
    alias_generator=to_camel, populate_by_name=True, frozen=True, extra="forbid"
)


class OutcomeEffectOut(OutcomeEffect):
    """:class:`monitoring.effects.OutcomeEffect`, camelCase on the wire."""

    model_config = _CAMEL_FROZEN


class InterventionEffectOut(InterventionEffect):
    """:class:`monitoring.effects.InterventionEffect` (a type's when ``rule`` is null, else a
    rule's), camelCase on the wire; ``outcomes`` keyed login_7d, health_change_14d,
    retained_30d and retained_60d."""

    model_config = _CAMEL_FROZEN
    outcomes: dict[str, OutcomeEffectOut]


class EffectsResponse(Wire):
    success: Literal[True] = True
    as_of: date | None  # the last scored day: outcomes known by its end
    since: date | None
    effects: list[InterventionEffectOut]
