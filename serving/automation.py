"""The daily run of the intervention rules: every scored supplier's due rules recorded as
executions (``scheduled``, or ``held_out`` for the control group), once per supplier, rule and
day, so that a rerun of the day adds none. The outbox (:mod:`serving.dispatch`) delivers what
is scheduled.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, and_, func, or_, select
from sqlalchemy.engine import Connection

from serving.db.migrate import insert_for
from serving.db.models import AutomatedIntervention, ControlGroupMember, InterventionExecution
from serving.due import Contact, SupplierState, due_interventions
from serving.messages import TEMPLATES, check_templates
from serving.rules import CHANNELS, RuleSet, RulesFileError
from serving.states import in_control_group

# Executions that reached nobody and do not count as a contact (a failed one counts while it
# is still to be tried again).
_NOT_CONTACTS = ("cancelled", "failed")


@dataclass
class DayInterventions:
    """What one day's rules did, by rule."""

    scheduled: Counter[str] = field(default_factory=Counter)
    held_out: Counter[str] = field(default_factory=Counter)
    capped: Counter[str] = field(default_factory=Counter)  # "<rule> (<cap>)"
    already: int = 0  # due but recorded by an earlier run of the day
    automated: int = 0  # of the scheduled: those no person has to carry out
    manual: int = 0  # executions triggered by hand (API, bulk) during the day

    @property
    def automation_rate(self) -> float | None:
        """Automated executions over all executions of the day: the rules' scheduled ones and
        those triggered by hand (None without any)."""
        total = sum(self.scheduled.values()) + self.manual
        return self.automated / total if total else None


def check_rule_templates(rules: RuleSet, folder: Path = TEMPLATES) -> None:
    """Refuse rules whose template is missing or lacks a block its channel needs.

    Raises:
        RulesFileError: naming each rule and its template's problem.
    """
    problems = check_templates(
        [(f"rule {r.name!r}", CHANNELS[r.intervention_type], r.template) for r in rules.rules],
        folder,
    )
    if problems:
        raise RulesFileError(
            "the rules name templates that cannot be used:\n"
            + "\n".join(f"  {p}" for p in problems)
        )


def sync_rules(connection: Connection, rules: RuleSet, now: datetime) -> None:
    """Upsert each rule into ``automated_interventions`` (what executions refer to)."""
    insert = insert_for(connection)(AutomatedIntervention)
    rows = [
        {
            "rule_id": r.name,
            "intervention_type": r.intervention_type,
            "channel": CHANNELS[r.intervention_type],
            "definition": {**r.model_dump(mode="json"), "rules_version": rules.version},
            "enabled": True,
            "cap_days": r.max_frequency_days,
            "updated_at": now,
        }
        for r in rules.rules
    ]
    connection.execute(
        insert.on_conflict_do_update(
            index_elements=["rule_id"],
            set_={c: insert.excluded[c] for c in rows[0] if c != "rule_id"},
        ),
        rows,
    )


def control_members(
    connection: Connection, ids: Sequence[str], salt: str, share: float, now: datetime
) -> set[str]:
    """The suppliers of ``ids`` in the control group: drawn once (a salted hash, see
    :func:`serving.states.in_control_group`) and stored; a stored draw is kept."""
    stored = {
        r.supplier_id: r.in_control
        for r in connection.execute(
            select(ControlGroupMember.supplier_id, ControlGroupMember.in_control)
        )
    }
    new = [
        {
            "supplier_id": s,
            "in_control": in_control_group(s, salt, share),
            "salt": salt,
            "share": share,
            "assigned_at": now,
        }
        for s in ids
        if s not in stored
    ]
    for start in range(0, len(new), 5000):
        connection.execute(
            insert_for(connection)(ControlGroupMember).on_conflict_do_nothing(
                index_elements=["supplier_id"]
            ),
            new[start : start + 5000],
        )
    stored.update({r["supplier_id"]: r["in_control"] for r in new})
    return {s for s in ids if stored[s]}


def contact_history(
    connection: Connection, since: datetime, day: date | None = None, supplier: str | None = None
) -> dict[str, list[Contact]]:
    """Each supplier's contacts since ``since`` (only ``supplier``'s when given): its
    executions that reached or were to reach it (held-out ones included, so the control group
    is capped like the rest; failed ones while they are to be tried again), except the rules'
    executions of ``day`` itself (a rerun of the day must decide as the first run)."""
    query = (
        select(
            InterventionExecution.supplier_id,
            InterventionExecution.scheduled_at,
            InterventionExecution.rule_id,
            InterventionExecution.intervention_type,
        )
        .where(InterventionExecution.scheduled_at >= since)
        .where(
            or_(
                InterventionExecution.status.not_in(_NOT_CONTACTS),
                and_(
                    InterventionExecution.status == "failed",
                    InterventionExecution.next_attempt_at.is_not(None),
                ),
            )
        )
    )
    if day is not None:
        query = query.where(
            or_(InterventionExecution.day.is_(None), InterventionExecution.day != day)
        )
    if supplier is not None:
        query = query.where(InterventionExecution.supplier_id == supplier)
    rows = connection.execute(query)
    history: dict[str, list[Contact]] = {}
    for who, at, rule, kind in rows:
        history.setdefault(who, []).append(Contact(at=at, rule=rule, intervention_type=kind))
    return history


def record_day(
    engine: Engine,
    states: Sequence[SupplierState],
    rules: RuleSet,
    day: date,
    now: datetime,
    *,
    salt: str,
    share: float,
    retention_values: Mapping[str, float],
    agents: Mapping[str, str | None],
    facts: Mapping[str, Mapping[str, Any]] | None = None,
) -> DayInterventions:
    """Evaluate the rules for every state at ``now`` and record the due executions of ``day``
    in one transaction: ``scheduled``, or ``held_out`` for suppliers of the control group
    (who would have been contacted, and by which rule).

    Args:
        retention_values: each supplier's LTV at risk (the execution's estimated value).
        agents: each supplier's CS agent (for calls), None without one.
        facts: what each supplier's messages may mention (:func:`serving.states.message_facts`).
    """
    facts = facts or {}
    out = DayInterventions()
    longest = max([r.max_frequency_days for r in rules.rules] + [rules.fatigue.per_days])
    rows: list[dict[str, Any]] = []
    with engine.begin() as connection:
        sync_rules(connection, rules, now)
        control = control_members(connection, [s.supplier_id for s in states], salt, share, now)
        history = contact_history(connection, now - timedelta(days=longest), day)
        for state in states:
            evaluation = due_interventions(state, rules, history.get(state.supplier_id, []), now)
            for capped in evaluation.capped:
                out.capped[f"{capped.rule.name} ({capped.cap})"] += 1
            held = state.supplier_id in control
            for due in evaluation.due:
                rule = due.rule
                rows.append(
                    {
                        "id": str(uuid.uuid4()),
                        "supplier_id": state.supplier_id,
                        "intervention_type": rule.intervention_type,
                        "status": "held_out" if held else "scheduled",
                        "scheduled_at": due.scheduled_at,
                        "reason": due.reason,
                        "priority": rule.priority,
                        "triggered_by": rule.name,
                        "rule_id": rule.name,
                        "channel": CHANNELS[rule.intervention_type],
                        "agent_id": agents.get(state.supplier_id)
                        if CHANNELS[rule.intervention_type] == "call"
                        else None,
                        "control_group": held,
                        "health_score_at_trigger": state.health_score,
                        "churn_probability_at_trigger": state.churn_probability,
                        "estimated_retention_value": retention_values.get(state.supplier_id),
                        "customization": {
                            "template": rule.template,
                            "facts": dict(facts.get(state.supplier_id, {})),
                        },
                        "created_at": now,
                        "updated_at": now,
                        "day": day,
                        "rules_version": rules.version,
                    }
                )
        statement = insert_for(connection)(InterventionExecution).on_conflict_do_nothing(
            index_elements=["supplier_id", "triggered_by", "day"]
        )
        inserted: set[tuple[str, str]] = set()
        for start in range(0, len(rows), 5000):
            got = connection.execute(
                statement.returning(
                    InterventionExecution.supplier_id, InterventionExecution.triggered_by
                ),
                rows[start : start + 5000],
            )
            inserted.update((r[0], r[1]) for r in got)
        out.manual = connection.scalar(
            select(func.count())
            .select_from(InterventionExecution)
            .where(
                InterventionExecution.triggered_by == "manual",
                InterventionExecution.created_at >= now - timedelta(days=1),
                InterventionExecution.created_at < now,
            )
        )
    automated_rules = {r.name for r in rules.rules if r.automated}
    for row in rows:
        if (row["supplier_id"], row["triggered_by"]) not in inserted:
            out.already += 1
        elif row["status"] == "held_out":
            out.held_out[row["triggered_by"]] += 1
        else:
            out.scheduled[row["triggered_by"]] += 1
            out.automated += row["triggered_by"] in automated_rules
    return out
