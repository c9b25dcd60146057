"""Bulk outreach: one intervention for every supplier a filter matches, as a dry run that
counts who would be contacted and who is left out and why, or for real.

The matched suppliers are those of the directory whose tier, vendor type and agent match,
and whose prediction of the newest scored day matches the risk levels and minimum churn
probability (when those are given). Of them, in this order, are left out: suppliers no longer
active, the control group (a bulk campaign is automated outreach: it keeps the experiment
clean), and those a manual cap holds back (:func:`serving.due.manual_cap`: the same type too
recently, or for an automated type the contact-fatigue cap). The answer's ``selection`` is a
hash of the intervention type and the suppliers to contact; an execution given the dry run's
``selection`` is refused (409) when the set has changed since, so it runs exactly the set the
dry run counted. Execution is idempotent by ``Idempotency-Key`` like the single trigger.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, and_, func, select
from sqlalchemy.engine import Connection

from serving.api import schemas
from serving.automation import contact_history, control_members
from serving.db.migrate import insert_for
from serving.db.models import (
    ChurnPrediction,
    ControlGroupMember,
    CustomerHealth,
    InterventionExecution,
    Supplier,
)
from serving.due import manual_cap
from serving.errors import ConflictError
from serving.interventions import idempotent, manual_window
from serving.messages import MANUAL_TEMPLATES
from serving.rules import CHANNELS, RuleSet
from serving.states import in_control_group

BATCH = 5000


@dataclass
class Selection:
    matched: int = 0
    contact: list[Any] = field(default_factory=list)  # rows of the suppliers to contact
    control_group: int = 0
    rule_cap: int = 0
    fatigue_cap: int = 0
    not_active: int = 0

    def digest(self, intervention_type: str) -> str:
        ids = sorted(r.supplier_id for r in self.contact)
        text = intervention_type + "\n" + "\n".join(ids)
        return hashlib.sha256(text.encode()).hexdigest()


class BulkOutreach:
    route = "POST /api/customer-success/interventions/bulk"

    def __init__(
        self,
        engine: Engine,
        rules: RuleSet,
        salt: str,
        share: float,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.engine = engine
        self.rules = rules
        self.salt = salt
        self.share = share
        self.clock = clock or (lambda: datetime.now(UTC))

    def run(
        self, request: schemas.BulkInterventionRequest, idempotency_key: str | None = None
    ) -> tuple[int, dict[str, Any]]:
        """A dry run (200, counts only) or the execution (201, with the execution ids).

        Raises:
            ConflictError: the request's ``selection`` is not the set it would contact now.
            IdempotencyMismatchError: the key was used for a different request.
        """
        if request.dry_run:
            with self.engine.connect() as connection:
                chosen = self._select(connection, request, self.clock())
            return 200, self._answer(request, chosen, None)
        return idempotent(
            self.engine,
            self.route,
            idempotency_key,
            request.model_dump(mode="json"),
            lambda connection: self._execute(connection, request),
            self.clock(),
        )

    def _answer(
        self, request: schemas.BulkInterventionRequest, chosen: Selection, ids: list[str] | None
    ) -> dict[str, Any]:
        return schemas.BulkResponse(
            dry_run=request.dry_run,
            matched=chosen.matched,
            to_contact=len(chosen.contact),
            excluded=schemas.BulkExcluded(
                control_group=chosen.control_group,
                rule_cap=chosen.rule_cap,
                fatigue_cap=chosen.fatigue_cap,
                not_active=chosen.not_active,
            ),
            selection=chosen.digest(request.intervention_type),
            execution_ids=ids,
        ).model_dump(mode="json", by_alias=True, exclude_none=True)

    def _select(
        self, connection: Connection, request: schemas.BulkInterventionRequest, now: datetime
    ) -> Selection:
        f = request.filter
        day = connection.scalar(select(func.max(ChurnPrediction.day)))
        P, H, C = ChurnPrediction, CustomerHealth, ControlGroupMember
        query = (
            select(
                Supplier.supplier_id,
                Supplier.status,
                Supplier.agent_id,
                P.churn_probability,
                P.ltv_at_risk,
                H.score,
                C.in_control,
            )
            .outerjoin(P, and_(P.supplier_id == Supplier.supplier_id, P.day == day))
            .outerjoin(H, and_(H.supplier_id == Supplier.supplier_id, H.day == day))
            .outerjoin(C, C.supplier_id == Supplier.supplier_id)
        )
        if f.tier:
            query = query.where(Supplier.subscription_tier.in_(f.tier))
        if f.vendor_type:
            query = query.where(Supplier.vendor_type.in_(f.vendor_type))
        if f.agent_id is not None:
            query = query.where(Supplier.agent_id == f.agent_id)
        if f.risk_level:
            query = query.where(P.risk_level.in_(f.risk_level))
        if f.min_churn_probability is not None:
            query = query.where(P.churn_probability >= f.min_churn_probability)
        rows = connection.execute(query).all()
        history = contact_history(connection, now - manual_window(self.rules))
        chosen = Selection(matched=len(rows))
        kind = request.intervention_type
        for row in rows:
            if row.status != "active":
                chosen.not_active += 1
                continue
            control = row.in_control
            if control is None:  # not drawn yet: drawn as the daily job will draw it
                control = in_control_group(row.supplier_id, self.salt, self.share)
            if control:
                chosen.control_group += 1
                continue
            held = manual_cap(kind, history.get(row.supplier_id, ()), self.rules, now)
            if held is None:
                chosen.contact.append(row)
            elif held[0] == "rule_cap":
                chosen.rule_cap += 1
            else:
                chosen.fatigue_cap += 1
        return chosen

    def _execute(
        self, connection: Connection, request: schemas.BulkInterventionRequest
    ) -> tuple[int, dict[str, Any]]:
        now = self.clock()
        chosen = self._select(connection, request, now)
        selection = chosen.digest(request.intervention_type)
        if request.selection is not None and request.selection != selection:
            raise ConflictError(
                "the suppliers this filter selects changed since the dry run (new scores, "
                "contacts or cancellations): run the dry run again and confirm its selection"
            )
        # the suppliers contacted are drawn for the control group for good (outside it)
        control_members(
            connection, [r.supplier_id for r in chosen.contact], self.salt, self.share, now
        )
        kind = request.intervention_type
        custom = (
            request.customization.model_dump(by_alias=True, exclude_none=True)
            if request.customization
            else {}
        )
        rows = [
            {
                "id": str(uuid.uuid4()),
                "supplier_id": r.supplier_id,
                "intervention_type": kind,
                "status": "scheduled",
                "scheduled_at": now,
                "reason": request.reason,
                "priority": request.priority,
                "triggered_by": "manual",
                "channel": CHANNELS[kind],
                "agent_id": r.agent_id if CHANNELS[kind] == "call" else None,
                "health_score_at_trigger": r.score,
                "churn_probability_at_trigger": r.churn_probability,
                "estimated_retention_value": r.ltv_at_risk,
                "customization": {
                    **custom,
                    "template": MANUAL_TEMPLATES[kind],
                    "facts": {},
                    "bulk": selection,
                },
                "created_at": now,
                "updated_at": now,
            }
            for r in chosen.contact
        ]
        for start in range(0, len(rows), BATCH):
            connection.execute(
                insert_for(connection)(InterventionExecution), rows[start : start + BATCH]
            )
        return 201, self._answer(request, chosen, [r["id"] for r in rows])
