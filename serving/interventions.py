"""Triggering an intervention: validated, recorded as an execution, idempotent by key.

The key's claim, the execution and the stored answer are written in one transaction: a retry
with the same key, on any worker, waits for that transaction (the key is the table's primary
key) and then replays the stored answer, so concurrent retries make exactly one execution.
Delivery through channels, caps and the control group come with the intervention engine; the
executions table already has their columns.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, delete, select, update
from sqlalchemy.engine import Connection

from serving.api import schemas
from serving.db.migrate import insert_for
from serving.db.models import (
    ChurnPrediction,
    CustomerHealth,
    IdempotencyKey,
    InterventionExecution,
    Supplier,
)
from serving.errors import IdempotencyMismatchError, NotFoundError

CREATED = 201
MAX_KEY_LENGTH = 255


def request_fingerprint(route: str, body: dict[str, Any]) -> str:
    """A hash of the route and the request body (key order and spacing do not matter)."""
    canonical = json.dumps({"route": route, "body": body}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def forget_idempotency_keys(engine: Engine, before: datetime) -> int:
    """Delete the ``Idempotency-Key`` answers recorded before ``before``; returns how many.

    A retry with a forgotten key is a new request. The daily job calls this with its settings'
    retention (at least the contract's 24 hours), so the table holds days of keys, not years.
    """
    with engine.begin() as connection:
        return connection.execute(
            delete(IdempotencyKey).where(IdempotencyKey.created_at < before)
        ).rowcount


class InterventionRecorder:
    """Records single interventions in ``intervention_executions``."""

    route = "POST /api/customer-success/interventions/trigger"

    def __init__(self, engine: Engine, clock: Callable[[], datetime] | None = None) -> None:
        self.engine = engine
        self.clock = clock or (lambda: datetime.now(UTC))

    def trigger(
        self,
        request: schemas.TriggerInterventionRequest,
        idempotency_key: str | None = None,
        triggered_by: str = "manual",
    ) -> tuple[int, dict[str, Any]]:
        """Record the execution; answer (status, body). With a key already used for the same
        request, the first answer is replayed and nothing is written.

        Raises:
            NotFoundError: the supplier is not in the directory.
            IdempotencyMismatchError: the key was used for a different request.
        """
        if idempotency_key is None:
            with self.engine.begin() as connection:
                return self._record(connection, request, triggered_by)
        fingerprint = request_fingerprint(self.route, request.model_dump(mode="json"))
        with self.engine.begin() as connection:
            claimed = connection.execute(
                insert_for(connection)(IdempotencyKey)
                .values(
                    key=idempotency_key,
                    route=self.route,
                    request_hash=fingerprint,
                    created_at=self.clock(),
                )
                .on_conflict_do_nothing(index_elements=["key"])
                .returning(IdempotencyKey.key)  # rowcount is -1 here with psycopg
            ).first()
            if claimed is not None:
                status, body = self._record(connection, request, triggered_by)
                connection.execute(
                    update(IdempotencyKey)
                    .where(IdempotencyKey.key == idempotency_key)
                    .values(status_code=status, response=body)
                )
                return status, body
            first = connection.execute(
                select(IdempotencyKey).where(IdempotencyKey.key == idempotency_key)
            ).one()
        if first.request_hash != fingerprint or first.status_code is None:
            raise IdempotencyMismatchError(
                "this Idempotency-Key was already used for a different request; send a new "
                "key for a new request"
            )
        return first.status_code, first.response

    def _record(
        self, connection: Connection, request: schemas.TriggerInterventionRequest, by: str
    ) -> tuple[int, dict[str, Any]]:
        supplier = request.user_id
        known = select(Supplier.supplier_id).where(Supplier.supplier_id == supplier)
        if connection.scalar(known) is None:
            raise NotFoundError(f"unknown userId {supplier!r}")
        health = connection.scalar(
            select(CustomerHealth.score)
            .where(CustomerHealth.supplier_id == supplier)
            .order_by(CustomerHealth.day.desc())
            .limit(1)
        )
        prediction = connection.execute(
            select(ChurnPrediction.churn_probability, ChurnPrediction.ltv_at_risk)
            .where(ChurnPrediction.supplier_id == supplier)
            .order_by(ChurnPrediction.day.desc())
            .limit(1)
        ).first()
        now = self.clock()
        execution_id = str(uuid.uuid4())
        connection.execute(
            insert_for(connection)(InterventionExecution).values(
                id=execution_id,
                supplier_id=supplier,
                intervention_type=request.intervention_type,
                status="scheduled",
                scheduled_at=now,
                reason=request.reason,
                priority=request.priority,
                triggered_by=by,
                health_score_at_trigger=health,
                churn_probability_at_trigger=prediction.churn_probability if prediction else None,
                # the value at stake if the supplier is kept: churn probability x LTV
                estimated_retention_value=prediction.ltv_at_risk if prediction else None,
                customization=(
                    request.customization.model_dump(by_alias=True, exclude_none=True)
                    if request.customization
                    else None
                ),
                created_at=now,
                updated_at=now,
            )
        )
        body = schemas.TriggerResponse(
            execution=schemas.ExecutionSummary(
                id=execution_id,
                user_id=supplier,
                intervention_type=request.intervention_type,
                status="scheduled",
                scheduled_at=now,
                reason=request.reason,
                priority=request.priority,
            )
        ).model_dump(mode="json", by_alias=True)
        return CREATED, body
