"""Triggering an intervention: validated, recorded as an execution, idempotent by key.

The key's claim, the execution and the stored answer are written in one transaction: a retry
with the same key, on any worker, waits for that transaction (the key is the table's primary
key) and then replays the stored answer, so concurrent retries make exactly one execution.
A manual trigger is held back by the manual policy of the rules file (the same type within its
days, and for the automated types the contact-fatigue cap: :func:`serving.due.manual_cap`),
answered 409 with the first day it would be allowed; the supplier's row is locked for the
check and the insert, so two workers cannot both pass the cap. The control group does not hold
back a person's outreach. Delivery is the outbox's (:mod:`serving.dispatch`).
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, delete, select, update
from sqlalchemy.engine import Connection

from features.catalog import HEALTH_FACTORS
from serving.api import schemas
from serving.automation import contact_history
from serving.db.migrate import insert_for
from serving.db.models import (
    ChurnPrediction,
    CustomerHealth,
    IdempotencyKey,
    InterventionExecution,
    Supplier,
)
from serving.due import manual_cap
from serving.errors import ConflictError, IdempotencyMismatchError, NotFoundError
from serving.messages import MANUAL_TEMPLATES
from serving.rules import CHANNELS, DEFAULT_RULES, RuleSet, load_rules

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


def idempotent(
    engine: Engine,
    route: str,
    key: str | None,
    body: dict[str, Any],
    action: Callable[[Connection], tuple[int, dict[str, Any]]],
    now: datetime,
) -> tuple[int, dict[str, Any]]:
    """Run ``action`` in a transaction, once per ``Idempotency-Key``: the key's claim, what
    ``action`` writes and its answer are committed together; a retry with the same key and
    body (on any worker) waits for that transaction and gets the stored answer.

    Raises:
        IdempotencyMismatchError: the key was used for a different request.
    """
    if key is None:
        with engine.begin() as connection:
            return action(connection)
    fingerprint = request_fingerprint(route, body)
    with engine.begin() as connection:
        claimed = connection.execute(
            insert_for(connection)(IdempotencyKey)
            .values(key=key, route=route, request_hash=fingerprint, created_at=now)
            .on_conflict_do_nothing(index_elements=["key"])
            .returning(IdempotencyKey.key)  # rowcount is -1 here with psycopg
        ).first()
        if claimed is not None:
            status, answer = action(connection)
            connection.execute(
                update(IdempotencyKey)
                .where(IdempotencyKey.key == key)
                .values(status_code=status, response=answer)
            )
            return status, answer
        first = connection.execute(select(IdempotencyKey).where(IdempotencyKey.key == key)).one()
    if first.request_hash != fingerprint or first.status_code is None:
        raise IdempotencyMismatchError(
            "this Idempotency-Key was already used for a different request; send a new "
            "key for a new request"
        )
    return first.status_code, first.response


def lock_supplier(connection: Connection, supplier: str) -> str:
    """Lock the supplier's directory row until the transaction ends (a write: PostgreSQL locks
    the row, SQLite the database) and answer its status.

    Raises:
        NotFoundError: no such supplier.
    """
    touched = connection.execute(
        update(Supplier)
        .where(Supplier.supplier_id == supplier)
        .values(supplier_id=Supplier.supplier_id)
    ).rowcount
    if not touched:
        raise NotFoundError(f"unknown userId {supplier!r}")
    return connection.scalar(select(Supplier.status).where(Supplier.supplier_id == supplier))


def newest_health(connection: Connection, supplier: str) -> tuple[float | None, str | None]:
    """The supplier's health score on its newest stored day and its lowest health factor
    there (None, None without a stored day)."""
    row = connection.execute(
        select(CustomerHealth.score, *[getattr(CustomerHealth, f) for f in HEALTH_FACTORS])
        .where(CustomerHealth.supplier_id == supplier)
        .order_by(CustomerHealth.day.desc())
        .limit(1)
    ).first()
    if row is None:
        return None, None
    known = {f: v for f, v in zip(HEALTH_FACTORS, row[1:], strict=True) if v is not None}
    return row[0], (min(known, key=known.__getitem__) if known else None)


def manual_window(rules: RuleSet) -> timedelta:
    """How far back a manual trigger's caps look."""
    days = max([rules.fatigue.per_days, *rules.manual.max_frequency_days.values()])
    return timedelta(days=days)


class InterventionRecorder:
    """Records single interventions in ``intervention_executions``."""

    route = "POST /api/customer-success/interventions/trigger"

    def __init__(
        self,
        engine: Engine,
        clock: Callable[[], datetime] | None = None,
        rules: RuleSet | None = None,
    ) -> None:
        self.engine = engine
        self.clock = clock or (lambda: datetime.now(UTC))
        self.rules = rules or load_rules(DEFAULT_RULES)

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
            ConflictError: a cap holds it back (with the day it would be allowed), or the
                supplier is no longer active.
            IdempotencyMismatchError: the key was used for a different request.
        """
        return idempotent(
            self.engine,
            self.route,
            idempotency_key,
            request.model_dump(mode="json"),
            lambda connection: self._record(connection, request, triggered_by),
            self.clock(),
        )

    def _record(
        self, connection: Connection, request: schemas.TriggerInterventionRequest, by: str
    ) -> tuple[int, dict[str, Any]]:
        supplier = request.user_id
        status = lock_supplier(connection, supplier)
        if status != "active":
            raise ConflictError(f"supplier {supplier!r} is {status}: nothing can be sent")
        now = self.clock()
        history = contact_history(
            connection, now - manual_window(self.rules), supplier=supplier
        ).get(supplier, [])
        held = manual_cap(request.intervention_type, history, self.rules, now)
        if held is not None:
            cap, allowed = held
            what = (
                f"{request.intervention_type} reached this supplier less than "
                f"{self.rules.manual.cap_days(request.intervention_type)} days ago"
                if cap == "rule_cap"
                else f"the supplier had {self.rules.fatigue.max_contacts} contacts within "
                f"{self.rules.fatigue.per_days} days (the contact-fatigue cap)"
            )
            raise ConflictError(
                f"refused by the {cap.replace('_', ' ')}: {what}; allowed again on "
                f"{allowed.isoformat()}",
                next_allowed=allowed,
                cap=cap,
            )
        health, weakest = newest_health(connection, supplier)
        prediction = connection.execute(
            select(ChurnPrediction.churn_probability, ChurnPrediction.ltv_at_risk)
            .where(ChurnPrediction.supplier_id == supplier)
            .order_by(ChurnPrediction.day.desc())
            .limit(1)
        ).first()
        execution_id = str(uuid.uuid4())
        custom = (
            request.customization.model_dump(by_alias=True, exclude_none=True)
            if request.customization
            else {}
        )
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
                channel=CHANNELS[request.intervention_type],
                health_score_at_trigger=health,
                churn_probability_at_trigger=prediction.churn_probability if prediction else None,
                # the value at stake if the supplier is kept: churn probability x LTV
                estimated_retention_value=prediction.ltv_at_risk if prediction else None,
                customization={
                    **custom,
                    "template": MANUAL_TEMPLATES[request.intervention_type],
                    "facts": {"weakest_factor": weakest},
                },
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
