"""Which intervention rules are due for a supplier: a pure function of its state, the rules,
its contact history and the instant (no database, no clock).

A rule is due when its conditions and audience match the supplier's state, unless its own
frequency cap holds it back (the same rule reached the supplier less than
``max_frequency_days`` ago), and only as far as the contact-fatigue cap allows (at most
``max_contacts`` contacts over every channel and rule within ``per_days``): the most urgent
rules first, then in the file's order.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Literal

from features.contract import CoreFeature, MilestoneType, SubscriptionTier, VendorType
from serving.api.schemas import ChurnLevel, HealthBand, Trend
from serving.rules import (
    AUTOMATED_TYPES,
    PRIORITY_ORDER,
    Conditions,
    HealthSegment,
    Rule,
    RuleSet,
)


@dataclass(frozen=True)
class SupplierState:
    """What the rules look at of one supplier on one day (from its scored feature row)."""

    supplier_id: str
    health_score: float
    health_risk: HealthBand
    churn_probability: float
    churn_risk: ChurnLevel
    trend: Trend
    tenure_days: int
    days_since_last_login: int | None  # None: never logged in
    unresolved_payment_failure: bool
    failed_payments_30d: int
    overdue_milestones: frozenset[MilestoneType]
    abandoned_features: frozenset[CoreFeature]  # core features in the "churned" stage
    segment: HealthSegment
    tier: SubscriptionTier
    vendor_type: VendorType


@dataclass(frozen=True)
class Contact:
    """An earlier intervention of the supplier: by a rule (``rule``) or by hand (None)."""

    at: datetime
    rule: str | None = None
    intervention_type: str | None = None


@dataclass(frozen=True)
class Due:
    """A rule due now: what to schedule, and when (``now`` plus the rule's delay)."""

    rule: Rule
    scheduled_at: datetime
    reason: str


@dataclass(frozen=True)
class Capped:
    """A rule that matches but is held back by a cap; ``next_allowed`` is the first day the
    cap would let it through (for the fatigue cap, as far as the contacts so far tell)."""

    rule: Rule
    cap: Literal["rule_cap", "fatigue_cap"]
    next_allowed: date


@dataclass(frozen=True)
class Evaluation:
    """The rules due for one supplier, and those that matched but were capped."""

    due: tuple[Due, ...]
    capped: tuple[Capped, ...]


def _one_of(value: object, allowed: tuple | None) -> bool:
    return allowed is None or value in allowed


def matches(when: Conditions, s: SupplierState) -> bool:
    """Whether every condition given in ``when`` holds for ``s``."""
    login = s.days_since_last_login
    return (
        (when.health_score_below is None or s.health_score < when.health_score_below)
        and (when.health_score_at_least is None or s.health_score >= when.health_score_at_least)
        and _one_of(s.health_risk, when.health_risk_in)
        and (
            when.churn_probability_at_least is None
            or s.churn_probability >= when.churn_probability_at_least
        )
        and _one_of(s.churn_risk, when.churn_risk_in)
        and _one_of(s.trend, when.trend_in)
        and (
            when.days_since_last_login_at_least is None
            or login is None
            or login >= when.days_since_last_login_at_least
        )
        and (when.tenure_days_at_most is None or s.tenure_days <= when.tenure_days_at_most)
        and (when.tenure_days_at_least is None or s.tenure_days >= when.tenure_days_at_least)
        and (
            when.unresolved_payment_failure is None
            or s.unresolved_payment_failure == when.unresolved_payment_failure
        )
        and (
            when.failed_payments_30d_at_least is None
            or s.failed_payments_30d >= when.failed_payments_30d_at_least
        )
        and (
            when.overdue_milestone_in is None
            or bool(s.overdue_milestones & set(when.overdue_milestone_in))
        )
        and (
            when.abandoned_feature_in is None
            or bool(s.abandoned_features & set(when.abandoned_feature_in))
        )
    )


def in_audience(rule: Rule, s: SupplierState) -> bool:
    """Whether ``s`` is among the suppliers ``rule`` is for."""
    a = rule.audience
    return (
        _one_of(s.tier, a.tiers)
        and _one_of(s.vendor_type, a.vendor_types)
        and _one_of(s.segment, a.segments)
    )


def _reason(rule: Rule, s: SupplierState) -> str:
    return (
        f"{rule.name}: {rule.description} (health {s.health_score:.0f}, {s.health_risk}; "
        f"churn {s.churn_probability:.0%}, {s.churn_risk})"
    )


def due_interventions(
    state: SupplierState, rules: RuleSet, history: Sequence[Contact], now: datetime
) -> Evaluation:
    """The rules due for ``state`` at ``now`` given its earlier contacts ``history``.

    Args:
        history: the supplier's earlier interventions, automated and manual, any order; those
            after ``now`` are ignored.
    """
    past = [c for c in history if c.at <= now]
    matched = [r for r in rules.rules if in_audience(r, state) and matches(r.when, state)]
    capped: list[Capped] = []
    candidates: list[Rule] = []
    for rule in matched:
        window = timedelta(days=rule.max_frequency_days)
        last = max((c.at for c in past if c.rule == rule.name), default=None)
        if last is not None and now - last < window:
            capped.append(Capped(rule, "rule_cap", (last + window).date()))
        else:
            candidates.append(rule)
    room, freed = fatigue_room(past, rules, now)
    order = sorted(candidates, key=lambda r: PRIORITY_ORDER.index(r.priority))
    due = [
        Due(rule, now + timedelta(days=rule.delay_days), _reason(rule, state))
        for rule in order[:room]
    ]
    capped += [Capped(rule, "fatigue_cap", freed) for rule in order[room:]]
    return Evaluation(tuple(due), tuple(capped))


def fatigue_room(history: Sequence[Contact], rules: RuleSet, now: datetime) -> tuple[int, date]:
    """How many more contacts the fatigue cap allows at ``now``, and the day a slot frees (when
    the oldest contact of the window leaves it)."""
    window = timedelta(days=rules.fatigue.per_days)
    recent = sorted(c.at for c in history if c.at <= now and now - c.at < window)
    freed = (recent[0] + window).date() if recent else now.date()
    return max(rules.fatigue.max_contacts - len(recent), 0), freed


def manual_cap(
    intervention_type: str, history: Sequence[Contact], rules: RuleSet, now: datetime
) -> tuple[Literal["rule_cap", "fatigue_cap"], date] | None:
    """Why a manual trigger of ``intervention_type`` may not go now, with the first day it
    would be allowed; None when it may (see :class:`serving.rules.ManualPolicy`)."""
    policy = rules.manual
    days = policy.cap_days(intervention_type)
    same = [c.at for c in history if c.at <= now and c.intervention_type == intervention_type]
    if days and same and now - max(same) < timedelta(days=days):
        return "rule_cap", (max(same) + timedelta(days=days)).date()
    human = intervention_type not in AUTOMATED_TYPES
    if human and policy.people_exceed_fatigue:
        return None
    room, freed = fatigue_room(history, rules, now)
    return None if room else ("fatigue_cap", freed)
