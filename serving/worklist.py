"""An agent's worklist: the suppliers of the agent's book that need a person, ranked by
expected loss (churn probability x LTV), cut at the agent's daily capacity.

A supplier needs a person when the newest day's prediction recommends an intervention (churn
risk medium or above) or when a call or support session is booked for the agent. Each item
says why (the factor families pushing the churn probability up most), what to do (the booked
call, else the action of the strongest factor) and what has already been done (the last
contact that reached or was to reach the supplier; held-out executions are not contacts).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, and_, false, func, or_, select

from serving.advice import FAMILY_ACTIONS
from serving.api import schemas
from serving.db.models import (
    ChurnPrediction,
    ControlGroupMember,
    CsAgent,
    InterventionExecution,
    Supplier,
    SupportInteraction,
)
from serving.errors import NotFoundError

TOP_FACTORS = 3


def suggested_action(factors: dict[str, float], booked: tuple[datetime, str] | None) -> str:
    """The booked call when there is one, else what addresses the strongest factor."""
    if booked is not None:
        at, kind = booked
        return f"{kind.replace('_', ' ')} booked for {at:%Y-%m-%d %H:%M} UTC"
    pushing = [f for f, v in sorted(factors.items(), key=lambda kv: -kv[1]) if v > 0]
    for family in pushing:
        if family in FAMILY_ACTIONS:
            return FAMILY_ACTIONS[family]
    return FAMILY_ACTIONS["health"]


def top_factors(factors: dict[str, float]) -> dict[str, float]:
    """The families that raise the churn probability most (positive attributions only)."""
    ranked = sorted(((f, v) for f, v in factors.items() if v > 0), key=lambda kv: -kv[1])
    return {f: round(v, 4) for f, v in ranked[:TOP_FACTORS]}


class Worklists:
    def __init__(self, engine: Engine, clock: Callable[[], datetime] | None = None) -> None:
        self.engine = engine
        self.clock = clock or (lambda: datetime.now(UTC))

    def for_agent(self, agent_id: str, limit: int | None = None) -> schemas.WorklistResponse:
        """The agent's worklist (at most its capacity, and ``limit`` when smaller).

        Raises:
            NotFoundError: no such agent.
        """
        now = self.clock()
        P, S = ChurnPrediction, Supplier
        with self.engine.connect() as connection:
            agent = connection.execute(
                select(CsAgent.agent_id, CsAgent.capacity_per_day).where(
                    CsAgent.agent_id == agent_id
                )
            ).first()
            if agent is None:
                raise NotFoundError(f"unknown agentId {agent_id!r}")
            day = connection.scalar(select(func.max(P.day)))
            booked = {
                r.supplier_id: (r.occurred_at, r.kind)
                for r in connection.execute(
                    select(
                        SupportInteraction.supplier_id,
                        SupportInteraction.occurred_at,
                        SupportInteraction.kind,
                    )
                    .where(
                        SupportInteraction.agent_id == agent_id,
                        SupportInteraction.outcome == "scheduled",
                        SupportInteraction.occurred_at >= now - timedelta(days=1),
                    )
                    .order_by(SupportInteraction.occurred_at.desc())
                )
            }
            rows = connection.execute(
                select(
                    S.supplier_id,
                    S.business_name,
                    S.monthly_revenue,
                    P.churn_probability,
                    P.ltv_at_risk,
                    P.factors,
                    ControlGroupMember.in_control,
                )
                .join(P, and_(P.supplier_id == S.supplier_id, P.day == day))
                .outerjoin(ControlGroupMember, ControlGroupMember.supplier_id == S.supplier_id)
                .where(
                    S.status == "active",
                    or_(
                        and_(S.agent_id == agent_id, P.intervention_recommended.is_(True)),
                        S.supplier_id.in_(list(booked)) if booked else false(),
                    ),
                )
                .order_by(P.ltv_at_risk.desc(), S.supplier_id)
                .limit(min(agent.capacity_per_day, limit or agent.capacity_per_day))
            ).all()
            ids = [r.supplier_id for r in rows]
            E = InterventionExecution
            last: dict[str, schemas.LastContact] = {}
            for r in connection.execute(
                select(
                    E.supplier_id, E.scheduled_at, E.intervention_type, E.status, E.triggered_by
                )
                .where(E.supplier_id.in_(ids), E.status != "held_out", E.scheduled_at <= now)
                .order_by(E.scheduled_at)
            ):
                last[r.supplier_id] = schemas.LastContact(
                    at=r.scheduled_at,
                    intervention_type=r.intervention_type,
                    status=r.status,
                    triggered_by=r.triggered_by,
                )
        items = [
            schemas.WorklistItem(
                user_id=r.supplier_id,
                business_name=r.business_name,
                churn_probability=round(r.churn_probability, 6),
                ltv_at_risk=round(r.ltv_at_risk, 2),
                expected_loss=round(r.ltv_at_risk, 2),
                factors=top_factors(r.factors or {}),
                suggested_action=suggested_action(r.factors or {}, booked.get(r.supplier_id)),
                booked_call=booked[r.supplier_id][0] if r.supplier_id in booked else None,
                last_contact=last.get(r.supplier_id),
                control_group=bool(r.in_control),
            )
            for r in rows
        ]
        return schemas.WorklistResponse(
            agent_id=agent_id, capacity=agent.capacity_per_day, items=items
        )
