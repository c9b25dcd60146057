"""In-app messages and feature tours for the app: the pending ones of a supplier, and what the
supplier did with one (seen, dismissed, completed). Completing one completes its execution.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from sqlalchemy import Engine, select, update

from serving.api import schemas
from serving.db.models import InAppMessage, InterventionExecution, Supplier
from serving.errors import ConflictError, NotFoundError

# Where a message can go from each state ("seen" may be repeated; the last two are final).
_NEXT = {
    "pending": {"seen", "dismissed", "completed"},
    "seen": {"seen", "dismissed", "completed"},
    "dismissed": {"dismissed"},
    "completed": {"completed"},
}


class InAppInbox:
    def __init__(self, engine: Engine, clock: Callable[[], datetime] | None = None) -> None:
        self.engine = engine
        self.clock = clock or (lambda: datetime.now(UTC))

    def pending(self, supplier: str) -> list[schemas.InAppMessageOut]:
        """The supplier's messages not yet acted on, oldest first.

        Raises:
            NotFoundError: no such supplier.
        """
        with self.engine.connect() as connection:
            known = select(Supplier.supplier_id).where(Supplier.supplier_id == supplier)
            if connection.scalar(known) is None:
                raise NotFoundError(f"unknown userId {supplier!r}")
            rows = connection.execute(
                select(
                    InAppMessage.id,
                    InAppMessage.kind,
                    InAppMessage.title,
                    InAppMessage.body,
                    InAppMessage.created_at,
                )
                .where(InAppMessage.supplier_id == supplier, InAppMessage.status == "pending")
                .order_by(InAppMessage.created_at, InAppMessage.id)
            ).all()
        return [schemas.InAppMessageOut.model_validate(r._asdict()) for r in rows]

    def ack(self, message_id: str, action: str) -> None:
        """Record what the supplier did with the message (a repeat of the same is a no-op).

        Raises:
            NotFoundError: no such message.
            ConflictError: it was already dismissed or completed, and ``action`` is another.
        """
        now = self.clock()
        with self.engine.begin() as connection:
            row = connection.execute(
                select(InAppMessage.status, InAppMessage.execution_id)
                .where(InAppMessage.id == message_id)
                .with_for_update()
            ).first()
            if row is None:
                raise NotFoundError(f"unknown in-app message {message_id!r}")
            if action not in _NEXT[row.status]:
                raise ConflictError(f"the message was already {row.status}; it cannot be {action}")
            if action == row.status:
                return
            connection.execute(
                update(InAppMessage)
                .where(InAppMessage.id == message_id)
                .values(status=action, acted_at=now)
            )
            if action == "completed":
                connection.execute(
                    update(InterventionExecution)
                    .where(InterventionExecution.id == row.execution_id)
                    .values(status="completed", updated_at=now)
                )
