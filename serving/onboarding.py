"""Onboarding: the six milestones, recorded once each, and where a supplier stands.

:func:`progress` is pure (milestones reached, signup, today); :class:`OnboardingTracker`
reads and writes ``success_milestones`` (the export's milestones are synced there by
``score-daily``; the app records new ones through the API).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Final

from sqlalchemy import Engine, select

from features.catalog import MILESTONE_TARGET_DAYS
from serving.api import schemas
from serving.db.migrate import insert_for
from serving.db.models import SuccessMilestone, Supplier
from serving.errors import NotFoundError

# The milestones in the order they are due.
STEPS: Final = tuple(sorted(MILESTONE_TARGET_DAYS, key=MILESTONE_TARGET_DAYS.__getitem__))
ACTIONS: Final = {
    "account_setup": "Finish the account setup: business details, logo and payment settings.",
    "first_client": "Add the first client (import couples from a spreadsheet or add one).",
    "first_form": "Send the first form to a client (a questionnaire or booking form).",
    "first_journey": "Start a first client journey to automate the steps of a booking.",
    "first_automation": "Turn on a first automation (a reminder or a follow-up email).",
    "ten_clients": "Bring the client list to ten: invite the couples booked this season.",
}
LABELS: Final = {m: m.replace("_", " ") for m in STEPS}


def progress(
    supplier_id: str, signup: date, reached: dict[str, date], today: date
) -> schemas.OnboardingProgress:
    """Where a supplier stands in onboarding on ``today``.

    ``currentStep`` is the first milestone (in due order) not reached; ``blockers`` are those
    past their target day (signup + :data:`features.catalog.MILESTONE_TARGET_DAYS`);
    ``expectedCompletionDate`` is the last target day when nothing is late, else the remaining
    schedule shifted to start today; the date the last milestone was reached once all are.
    """
    remaining = [m for m in STEPS if m not in reached]
    done = [m for m in STEPS if m in reached]
    target = {m: signup + timedelta(days=MILESTONE_TARGET_DAYS[m]) for m in STEPS}
    late = [m for m in remaining if target[m] < today]
    if not remaining:
        expected: date | None = max(reached.values())
        end = expected
    elif not late:
        expected = max(target[m] for m in remaining)
        end = today
    else:
        first, last = remaining[0], remaining[-1]
        expected = today + (target[last] - target[first])
        end = today
    blockers = [
        schemas.Blocker(
            milestone=m,
            target_date=target[m],
            days_late=(today - target[m]).days,
            description=f"{LABELS[m]} was due {target[m]} ({(today - target[m]).days} days ago)",
        )
        for m in late
    ]
    actions = [ACTIONS[m] for m in remaining[:2]]
    if late:
        actions.append("Offer an onboarding call: milestones are overdue.")
    return schemas.OnboardingProgress(
        user_id=supplier_id,
        current_step=remaining[0] if remaining else "completed",
        total_steps=len(STEPS),
        milestones_completed=len(done),
        total_milestones=len(STEPS),
        days_in_onboarding=max((end - signup).days, 0),
        expected_completion_date=expected,
        completed=done,
        blockers=blockers,
        next_actions=actions,
    )


class OnboardingTracker:
    """Milestones in the operational database."""

    def __init__(self, engine: Engine, clock: Callable[[], datetime] | None = None) -> None:
        self.engine = engine
        self.clock = clock or (lambda: datetime.now(UTC))

    def _signup(self, connection, supplier_id: str) -> date:
        signup = connection.scalar(
            select(Supplier.signup_at).where(Supplier.supplier_id == supplier_id)
        )
        if signup is None:
            raise NotFoundError(f"unknown userId {supplier_id!r}")
        return signup.date()

    def record(self, request: schemas.MilestoneCompletionRequest) -> schemas.OnboardingProgress:
        """Record a milestone (a repeat changes nothing) and answer the progress."""
        now = self.clock()
        with self.engine.begin() as connection:
            self._signup(connection, request.user_id)
            details = request.metadata.model_dump(by_alias=True) if request.metadata else None
            connection.execute(
                insert_for(self.engine)(SuccessMilestone)
                .values(
                    supplier_id=request.user_id,
                    milestone_type=request.milestone_type,
                    achieved_at=now,
                    source="api",
                    details=details,
                )
                .on_conflict_do_nothing(index_elements=["supplier_id", "milestone_type"])
            )
        return self.progress(request.user_id)

    def progress(self, supplier_id: str) -> schemas.OnboardingProgress:
        """Raises NotFoundError for a supplier not in the directory."""
        with self.engine.connect() as connection:
            signup = self._signup(connection, supplier_id)
            rows = connection.execute(
                select(SuccessMilestone.milestone_type, SuccessMilestone.achieved_at).where(
                    SuccessMilestone.supplier_id == supplier_id
                )
            ).all()
        reached = {r.milestone_type: r.achieved_at.date() for r in rows}
        return progress(supplier_id, signup, reached, self.clock().date())
