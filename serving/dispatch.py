"""The outbox's dispatcher: delivers the executions that are due, through their channel.

An execution is committed (``scheduled``) before anything is sent; the dispatcher, run by
``score-daily`` and by ``wedsync-cs deliver``, then

* writes in-app messages and feature tours to ``in_app_messages``, and books calls and
  personal support as ``support_interactions`` for an agent (:mod:`serving.calls`), each in the
  same transaction that marks the execution ``sent``: exactly once, whatever runs at the same
  time (the update only takes executions still due, and the message's execution id is unique);
* sends emails one at a time: it claims the execution (``claimed_at``, one more attempt,
  committed), sends, then records ``sent`` with the Message-ID, or ``failed`` with the error
  and, unless the failure is permanent or the attempts are used up, the time of the next try
  (the wait doubles each try).

A claim left by a dispatcher that stopped between sending and recording is found once its
lease has passed. A Maildir says whether the message was written, so the execution becomes
``sent`` or is tried again. An SMTP server cannot be asked, so the execution becomes
``failed`` with the outcome unknown and is not tried again by itself: sending it twice is the
worse mistake, and the error says how to check (the Message-ID) and resend
(``wedsync-cs deliver --retry ID``). Executions of suppliers who cancelled meanwhile are
``cancelled``, not sent.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, and_, bindparam, or_, select, update
from sqlalchemy.engine import Connection, Row

from serving.calls import Agent, BusinessHours, CallBook
from serving.db.migrate import insert_for
from serving.db.models import (
    CsAgent,
    InAppMessage,
    InterventionExecution,
    Supplier,
    SupportInteraction,
)
from serving.mail import DeliveryError, Mailer, build_email, message_id
from serving.messages import (
    MANUAL_TEMPLATES,
    TEMPLATES,
    Channel,
    MessageContext,
    Rendered,
    TemplateError,
    render,
)
from serving.rules import CHANNELS, PRIORITY_ORDER

log = logging.getLogger(__name__)
E = InterventionExecution
BATCH = 1000
ERROR_CHARS = 1000


@dataclass(frozen=True)
class DeliveryPolicy:
    """How the outbox tries and retries."""

    sender: str
    max_attempts: int = 5
    backoff_seconds: float = 300.0
    lease_seconds: float = 600.0
    hours: BusinessHours = field(default_factory=BusinessHours)
    horizon_days: int = 14  # how far ahead a call may be booked

    def retry_at(self, attempts: int, now: datetime) -> datetime | None:
        """When to try again after ``attempts`` failed tries; None once they are used up."""
        if attempts >= self.max_attempts:
            return None
        return now + timedelta(seconds=self.backoff_seconds * 2 ** max(attempts - 1, 0))


@dataclass
class DispatchReport:
    """What one run did: outcomes by (rule or ``manual``, channel, outcome)."""

    outcomes: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    recovered: Counter[str] = field(default_factory=Counter)  # stale claims, by what they became

    def count(self, by: int) -> Counter[str]:
        """Outcomes summed by rule (0), channel (1) or outcome (2)."""
        out: Counter[str] = Counter()
        for key, n in self.outcomes.items():
            out[key[by]] += n
        return out

    @property
    def total(self) -> int:
        return sum(self.outcomes.values())


def _due(now: datetime):
    return and_(
        E.claimed_at.is_(None),
        or_(
            and_(E.status == "scheduled", E.scheduled_at <= now),
            and_(E.status == "failed", E.next_attempt_at.is_not(None), E.next_attempt_at <= now),
        ),
    )


_COLUMNS = (
    E.id,
    E.supplier_id,
    E.intervention_type,
    E.channel,
    E.status,
    E.attempts,
    E.triggered_by,
    E.reason,
    E.priority,
    E.scheduled_at,
    E.customization,
    E.agent_id,
    E.health_score_at_trigger,
    E.churn_probability_at_trigger,
    Supplier.status.label("supplier_status"),
    Supplier.email,
    Supplier.first_name,
    Supplier.business_name,
    Supplier.vendor_type,
    Supplier.agent_id.label("supplier_agent"),
)


def _channel(row: Row) -> str:
    return row.channel or CHANNELS[row.intervention_type]


def _template(row: Row) -> str:
    custom = row.customization or {}
    return custom.get("template") or MANUAL_TEMPLATES[row.intervention_type]


def context(row: Row) -> MessageContext:
    """What the templates may say, from the execution and the supplier's directory row."""
    custom = row.customization or {}
    facts = custom.get("facts") or {}
    return MessageContext(
        execution_id=row.id,
        supplier_id=row.supplier_id,
        first_name=row.first_name,
        business_name=row.business_name,
        vendor_type=row.vendor_type,
        recent_features=tuple(facts.get("recent_features", ())),
        abandoned_features=tuple(facts.get("abandoned_features", ())),
        weakest_factor=facts.get("weakest_factor"),
        health_score=row.health_score_at_trigger,
        churn_probability=row.churn_probability_at_trigger,
        reason=row.reason,
        message=custom.get("message"),
        timeline=custom.get("timeline"),
        special_offers=tuple(custom.get("specialOffers", ())),
    )


class Dispatcher:
    """Delivers due executions (see the module's text)."""

    def __init__(
        self,
        engine: Engine,
        mailer: Mailer,
        policy: DeliveryPolicy,
        clock: Callable[[], datetime] | None = None,
        templates=TEMPLATES,
        call_order: Mapping[str, float] | None = None,
    ) -> None:
        self.engine = engine
        self.mailer = mailer
        self.policy = policy
        self.clock = clock or (lambda: datetime.now(UTC))
        self.templates = templates
        # each supplier's expected saved LTV of a call (uplift x LTV), when uplift targeting is
        # on for calls: within a priority, calls are booked highest first (the earliest slots
        # of an agent's limited capacity); None keeps the order of scheduling
        self.call_order = call_order or {}

    def run(self, limit: int | None = None) -> DispatchReport:
        """Recover stale claims, then deliver what is due now (at most ``limit``), the most
        urgent first."""
        report = DispatchReport()
        self._recover(report)
        now = self.clock()
        with self.engine.connect() as connection:
            rows = connection.execute(
                select(*_COLUMNS)
                .join(Supplier, Supplier.supplier_id == E.supplier_id)
                .where(_due(now))
            ).all()
        rank = {p: i for i, p in enumerate(PRIORITY_ORDER)}

        def saved(r: Any) -> float:
            if _channel(r) != "call":
                return 0.0
            return -self.call_order.get(r.supplier_id, float("-inf")) if self.call_order else 0.0

        rows.sort(key=lambda r: (rank.get(r.priority, len(rank)), saved(r), r.scheduled_at, r.id))
        rows = rows[:limit] if limit is not None else rows
        gone = [r for r in rows if r.supplier_status != "active"]
        self._cancel(gone, now, report)
        live = [r for r in rows if r.supplier_status == "active"]
        self._in_app([r for r in live if _channel(r) == "in_app"], now, report)
        self._calls([r for r in live if _channel(r) == "call"], now, report)
        try:
            for row in (r for r in live if _channel(r) == "email"):
                self._email(row, report)
        finally:
            self.mailer.close()
        return report

    # -- recovery and cancellation ------------------------------------------------------------

    def _recover(self, report: DispatchReport) -> None:
        now = self.clock()
        stale = now - timedelta(seconds=self.policy.lease_seconds)
        with self.engine.begin() as connection:
            rows = connection.execute(
                select(E.id, E.status, E.attempts, E.channel, E.claimed_at).where(
                    E.claimed_at.is_not(None), E.claimed_at < stale
                )
            ).all()
            for row in rows:
                written = self.mailer.delivered(row.id) if row.channel == "email" else False
                values: dict[str, Any]
                if written:
                    values = {
                        "status": "sent",
                        "executed_at": row.claimed_at,
                        "message_id": message_id(row.id),
                        "last_error": None,
                        "next_attempt_at": None,
                    }
                    outcome = "sent"
                elif written is None:  # SMTP: it may or may not have reached the server
                    values = {
                        "status": "failed",
                        "next_attempt_at": None,
                        "last_error": (
                            f"outcome unknown: the dispatcher stopped after claiming it at "
                            f"{row.claimed_at.isoformat()} and before recording the outcome; not "
                            f"sent again by itself so that the supplier is not emailed twice. "
                            f"Check the mail server's log for Message-ID {message_id(row.id)}; "
                            f"to send it, run: wedsync-cs deliver --retry {row.id}"
                        ),
                    }
                    outcome = "unknown"
                else:  # nothing was written: it is simply due again
                    values = {"next_attempt_at": now if row.status == "failed" else None}
                    outcome = "released"
                connection.execute(
                    update(E)
                    .where(E.id == row.id, E.claimed_at == row.claimed_at)
                    .values(claimed_at=None, updated_at=now, **values)
                )
                report.recovered[outcome] += 1
                log.warning("stale delivery claim of %s: %s", row.id, outcome)

    def _cancel(self, rows: Sequence[Row], now: datetime, report: DispatchReport) -> None:
        if not rows:
            return
        with self.engine.begin() as connection:
            done = self._mark(
                connection,
                [r.id for r in rows],
                now,
                attempt=False,
                status="cancelled",
                last_error="the supplier is no longer active",
                next_attempt_at=None,
            )
        for r in rows:
            if r.id in done:
                report.outcomes[(r.triggered_by, _channel(r), "cancelled")] += 1

    def _mark(
        self,
        connection: Connection,
        ids: Sequence[str],
        now: datetime,
        attempt: bool = True,
        **values: Any,
    ) -> set[str]:
        """Set ``values`` on those of ``ids`` still due and unclaimed (``attempt``: one more
        attempt); returns the ids it changed (another dispatcher may have taken the rest)."""
        changed: set[str] = set()
        tries = {"attempts": E.attempts + 1} if attempt else {}
        for start in range(0, len(ids), BATCH):
            part = ids[start : start + BATCH]
            changed.update(
                connection.scalars(
                    update(E)
                    .where(E.id.in_(part), _due(now))
                    .values(updated_at=now, **tries, **values)
                    .returning(E.id)
                )
            )
        return changed

    # -- in-app messages and feature tours ----------------------------------------------------

    def _render(
        self, rows: Sequence[Row], channel: Channel, now: datetime, report: DispatchReport
    ) -> tuple[list[Row], dict[str, Rendered]]:
        """The rows whose template renders, with what it rendered; the others failed for good
        (a retry renders the same)."""
        rendered, broken = {}, []
        for row in rows:
            try:
                rendered[row.id] = render(_template(row), channel, context(row), self.templates)
            except TemplateError as error:
                broken.append((row, str(error)))
        self._record_broken(broken, now, report)
        return [r for r in rows if r.id in rendered], rendered

    def _in_app(self, rows: Sequence[Row], now: datetime, report: DispatchReport) -> None:
        ok, rendered = self._render(rows, "in_app", now, report)
        if not ok:
            return
        with self.engine.begin() as connection:
            done = self._mark(
                connection,
                [r.id for r in ok],
                now,
                status="sent",
                executed_at=now,
                last_error=None,
                next_attempt_at=None,
            )
            messages = [
                {
                    "id": r.id,  # one message per execution: its id
                    "execution_id": r.id,
                    "supplier_id": r.supplier_id,
                    "kind": r.intervention_type
                    if r.intervention_type == "feature_tour"
                    else "in_app_message",
                    "title": rendered[r.id].subject[:300],
                    "body": rendered[r.id].text,
                    "status": "pending",
                    "created_at": now,
                }
                for r in ok
                if r.id in done
            ]
            for start in range(0, len(messages), BATCH):
                connection.execute(
                    insert_for(connection)(InAppMessage), messages[start : start + BATCH]
                )
        for r in ok:
            if r.id in done:
                report.outcomes[(r.triggered_by, "in_app", "sent")] += 1

    def _record_broken(self, broken, now: datetime, report: DispatchReport) -> None:
        """Executions whose template cannot render: failed for good (a retry renders the same)."""
        if not broken:
            return
        with self.engine.begin() as connection:
            for row, error in broken:
                done = self._mark(
                    connection,
                    [row.id],
                    now,
                    status="failed",
                    last_error=error[:ERROR_CHARS],
                    next_attempt_at=None,
                )
                if done:
                    report.outcomes[(row.triggered_by, _channel(row), "failed")] += 1

    # -- calls and personal support -----------------------------------------------------------

    def _calls(self, rows: Sequence[Row], now: datetime, report: DispatchReport) -> None:
        rows, rendered = self._render(rows, "call", now, report)
        if not rows:
            return
        with self.engine.begin() as connection:
            # one booking at a time over the agents' calendars: lock the agents (PostgreSQL;
            # SQLite has one writer anyway)
            agents = [
                Agent(a.agent_id, a.capacity_per_day, a.active)
                for a in connection.execute(
                    select(CsAgent.agent_id, CsAgent.capacity_per_day, CsAgent.active)
                    .order_by(CsAgent.agent_id)
                    .with_for_update()
                )
            ]
            horizon = now + timedelta(days=self.policy.horizon_days + 1)
            booked = connection.execute(
                select(SupportInteraction.agent_id, SupportInteraction.occurred_at).where(
                    SupportInteraction.agent_id.is_not(None),
                    SupportInteraction.occurred_at >= now - timedelta(days=1),
                    SupportInteraction.occurred_at < horizon,
                )
            ).all()
            book = CallBook(agents, booked, self.policy.hours, self.policy.horizon_days)
            bookings, full = {}, []
            for row in rows:
                earliest = max(row.scheduled_at, now)
                booking = book.book(row.agent_id or row.supplier_agent, earliest)
                if booking is None:
                    full.append(row)
                else:
                    bookings[row.id] = booking
            done = self._mark(
                connection,
                list(bookings),
                now,
                status="sent",
                executed_at=now,
                last_error=None,
                next_attempt_at=None,
            )
            if done:
                connection.execute(
                    update(E).where(E.id == bindparam("eid")).values(agent_id=bindparam("agent")),
                    [{"eid": i, "agent": bookings[i].agent_id} for i in done],
                )
                connection.execute(
                    insert_for(connection)(SupportInteraction),
                    [
                        {
                            "supplier_id": r.supplier_id,
                            "agent_id": bookings[r.id].agent_id,
                            "execution_id": r.id,
                            "kind": r.intervention_type,
                            "occurred_at": bookings[r.id].at,
                            "outcome": "scheduled",
                            "notes": f"{rendered[r.id].subject}\n\n{rendered[r.id].text}",
                        }
                        for r in rows
                        if r.id in done
                    ],
                )
            for row in full:
                # no slot: try again tomorrow, when a new day of slots opens
                tomorrow = datetime.combine(
                    now.date() + timedelta(days=1), datetime.min.time(), tzinfo=UTC
                )
                retry = tomorrow if row.attempts + 1 < self.policy.max_attempts else None
                self._mark(
                    connection,
                    [row.id],
                    now,
                    status="failed",
                    next_attempt_at=retry,
                    last_error=f"no agent has a free call slot in the next "
                    f"{self.policy.horizon_days} days" + ("" if agents else " (no agents)"),
                )
        for r in rows:
            if r.id in done:
                report.outcomes[(r.triggered_by, "call", "sent")] += 1
        for r in full:
            report.outcomes[(r.triggered_by, "call", "failed")] += 1

    # -- email --------------------------------------------------------------------------------

    def _email(self, row: Row, report: DispatchReport) -> None:
        now = self.clock()
        if not row.email:  # failed for good, like a template that does not render
            self._record_broken(
                [(row, "the supplier has no email address in the directory")], now, report
            )
            return
        try:
            rendered = render(_template(row), "email", context(row), self.templates)
        except TemplateError as error:
            self._record_broken([(row, str(error))], now, report)
            return
        email = build_email(rendered, row.email, row.first_name, self.policy.sender, row.id)
        with self.engine.begin() as connection:  # the claim, committed before sending
            claimed = self._mark(connection, [row.id], now, claimed_at=now)
        if not claimed:
            return  # another dispatcher has it
        attempts = row.attempts + 1
        try:
            self.mailer.send(email, row.id)
        except DeliveryError as error:
            values = {
                "status": "failed",
                "last_error": str(error)[:ERROR_CHARS],
                "next_attempt_at": None
                if error.permanent
                else self.policy.retry_at(attempts, now),
            }
            outcome = "failed"
        else:
            values = {
                "status": "sent",
                "executed_at": self.clock(),
                "last_error": None,
                "next_attempt_at": None,
                "message_id": email["Message-ID"],
            }
            outcome = "sent"
        with self.engine.begin() as connection:
            connection.execute(
                update(E)
                .where(E.id == row.id, E.claimed_at == now)
                .values(claimed_at=None, updated_at=self.clock(), **values)
            )
        report.outcomes[(row.triggered_by, "email", outcome)] += 1


def retry(engine: Engine, execution_id: str, now: datetime) -> bool:
    """Make a failed execution due again now (an operator's resend after checking); returns
    whether it was failed and is now due."""
    with engine.begin() as connection:
        return bool(
            connection.execute(
                update(E)
                .where(E.id == execution_id, E.status == "failed", E.claimed_at.is_(None))
                .values(next_attempt_at=now, updated_at=now)
            ).rowcount
        )
