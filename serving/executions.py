"""Reading intervention executions back: the API's list, newest first, with filters."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from sqlalchemy import Engine, select

from serving.api import schemas
from serving.db.models import InterventionExecution as E
from serving.rules import CHANNELS

MAX_LIMIT = 1000


class ExecutionLog:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def list(
        self,
        supplier: str | None = None,
        types: Sequence[str] = (),
        statuses: Sequence[str] = (),
        since: datetime | None = None,
        limit: int = 50,
    ) -> list[schemas.Execution]:
        """Executions matching every filter given, newest scheduled first (``since``: scheduled
        at or after it; a naive instant is taken as UTC)."""
        query = select(
            E.id,
            E.supplier_id,
            E.intervention_type,
            E.status,
            E.scheduled_at,
            E.executed_at,
            E.reason,
            E.priority,
            E.triggered_by,
            E.health_score_at_trigger,
            E.churn_probability_at_trigger,
            E.estimated_retention_value,
            E.channel,
            E.agent_id,
            E.attempts,
            E.last_error,
            E.next_attempt_at,
        )
        if supplier is not None:
            query = query.where(E.supplier_id == supplier)
        if types:
            query = query.where(E.intervention_type.in_(types))
        if statuses:
            query = query.where(E.status.in_(statuses))
        if since is not None:
            query = query.where(
                E.scheduled_at >= (since if since.tzinfo else since.replace(tzinfo=UTC))
            )
        query = query.order_by(E.scheduled_at.desc(), E.id).limit(min(limit, MAX_LIMIT))
        with self.engine.connect() as connection:
            rows = connection.execute(query).all()
        return [
            schemas.Execution(
                **{k: v for k, v in r._asdict().items() if k not in ("supplier_id", "channel")},
                user_id=r.supplier_id,
                channel=r.channel or CHANNELS[r.intervention_type],
            )
            for r in rows
        ]
