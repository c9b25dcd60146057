"""The latent weekly dynamics: one transition and one churn hazard, shared by the simulation and
by the Monte Carlo estimate of the true churn probability.

Arrays of the state have shape ``(n,)`` in the simulation and ``(M, n)`` in the Monte Carlo, where
the same draws of shape ``(M, 1)`` are used for every supplier (common random numbers); per
supplier constants have shape ``(n,)`` and broadcast against both.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import TypeVar

import numpy as np

from features.contract import CORE_FEATURES
from simulator.population import TIER_PRICE, Population

DRAWS_NORMAL = ("engagement", "clients")
DRAWS_UNIFORM = ("leave", "pay", "card", "ticket", "bad", "milestone", "feature", "tier")
N_PLAIN_MILESTONES = 4  # account_setup, first_form, first_journey, first_automation
N_FEATURES = 8
_LOG_PRICE = np.log(TIER_PRICE / 49.0).astype(np.float32)
# Option ``feature_effects``: hazard-logit term of each adopted core feature. Suppliers who run
# their payments and journeys through the tool are locked in; those whose use is storing
# documents and looking at reports are the ones about to take their files and go.
FEATURE_HAZARD_LOGIT = {
    "payments": -0.6,
    "journey_automation": -0.5,
    "client_management": -0.2,
    "analytics": 0.4,
    "document_library": 0.7,
}
# Re-centres the intercept so that monthly churn stays where it is without the option.
FEATURE_HAZARD_CENTRE = 0.1
_FEATURE_HAZARD = [
    (CORE_FEATURES.index(name), np.float32(effect))
    for name, effect in FEATURE_HAZARD_LOGIT.items()
]
_T = TypeVar("_T")


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _take(obj: _T, idx: np.ndarray) -> _T:
    """``obj`` with every array field indexed by ``idx`` (flags and absent fields kept as they
    are)."""
    arrays = {
        f.name: v[idx] for f in fields(obj) if isinstance(v := getattr(obj, f.name), np.ndarray)
    }
    return replace(obj, **arrays)


@dataclass(frozen=True)
class Static:
    """Per-supplier constants the dynamics need (a view of :class:`Population`)."""

    base_engagement: np.ndarray
    friction: np.ndarray
    price_sensitivity: np.ndarray
    pay_risk: np.ndarray
    client_rate: np.ndarray
    feature_rank: np.ndarray  # (n, 8): place of each core feature in the adoption order
    # Option: which core features are adopted shifts the churn hazard (FEATURE_HAZARD_LOGIT).
    feature_effects: bool = False
    # Option ``interventions`` (read only when the state carries a lift, see State.lift): the
    # share of the lift left a week later, and the hazard log-odds one unit of lift removes.
    lift_decay: float = 1.0
    lift_hazard: float = 0.0

    @classmethod
    def of(
        cls,
        pop: Population,
        idx: np.ndarray | slice = slice(None),
        *,
        feature_effects: bool = False,
        lift_decay: float = 1.0,
        lift_hazard: float = 0.0,
    ) -> Static:
        options = {
            "feature_effects": feature_effects,
            "lift_decay": lift_decay,
            "lift_hazard": lift_hazard,
        }
        arrays = {f.name: getattr(pop, f.name)[idx] for f in fields(cls) if f.name not in options}
        return cls(**arrays, **options)

    def take(self, idx: np.ndarray) -> Static:
        return _take(self, idx)


@dataclass(frozen=True)
class WeekContext:
    """What the calendar says about one week for each supplier (arrays of shape (n,)).

    The renewal fields are set only with the ``cancel_at_renewal`` option (None otherwise): a
    supplier can then cancel only in the week its plan renews, on the renewal day.
    """

    season: np.ndarray  # float32 season intensity in [0, 1]
    tenure_weeks: np.ndarray  # int32 full weeks since the signup week
    bills: np.ndarray  # bool: a payment (monthly or yearly, by plan) falls due this week
    card_expires: np.ndarray  # bool: the card on file expires this week
    renews: np.ndarray | None = None  # bool: the plan renews this week (a bill after signup's)
    period_weeks: np.ndarray | None = None  # float32 weeks of the billing cycle (30/7 or 365/7)
    renew_offset: np.ndarray | None = None  # int32 days from the week's start to the bill day

    def take(self, idx: np.ndarray) -> WeekContext:
        return _take(self, idx)


@dataclass(frozen=True)
class State:
    """The latent state of suppliers at the start of a week."""

    engagement: np.ndarray  # float32, log-scale activity level
    leaving: np.ndarray  # int16 weeks in the disengaging regime (0: not leaving)
    past_due: np.ndarray  # int16 weeks a payment has been overdue (0: paid up)
    grievance: np.ndarray  # float32 decaying memory of bad support and failed payments
    milestones: np.ndarray  # int8 plain onboarding milestones reached (0..4)
    features: np.ndarray  # int8 core features adopted (1..8)
    clients: np.ndarray  # float32 (integral) clients in the book
    tier: np.ndarray  # int8 subscription tier
    card_ok: np.ndarray  # bool: the card on file works
    # Option ``interventions`` (None without it): float32 lift of the interventions delivered,
    # in engagement log-units; it raises the engagement target and lowers the churn hazard's
    # log-odds, and decays by ``Static.lift_decay`` a week (simulator/interventions.py).
    lift: np.ndarray | None = None

    def take(self, idx: np.ndarray) -> State:
        return State(*(None if v is None else v[..., idx] for v in self._values()))

    def where(self, mask: np.ndarray, other: State) -> State:
        """``self`` where ``mask`` holds, else ``other``."""
        return State(
            *(
                None if a is None else np.where(mask, a, b)
                for a, b in zip(self._values(), other._values(), strict=True)
            )
        )

    def _values(self) -> list[np.ndarray | None]:
        return [getattr(self, f.name) for f in fields(self)]


@dataclass(frozen=True)
class Events:
    """What happened during a week, drawn with the transition (for the observable tables)."""

    ticket: np.ndarray
    bad_experience: np.ndarray
    paid: np.ndarray
    payment_failed: np.ndarray
    new_milestone: np.ndarray
    new_feature: np.ndarray
    new_clients: np.ndarray
    tier_change: np.ndarray


def initial_state(pop: Population, *, lift: bool = False) -> State:
    """The state at signup; ``lift``: carry an intervention lift (zero), for the option."""
    n = pop.n
    return State(
        engagement=(pop.base_engagement - 0.6).astype(np.float32),
        leaving=np.zeros(n, np.int16),
        past_due=np.zeros(n, np.int16),
        grievance=np.zeros(n, np.float32),
        milestones=np.zeros(n, np.int8),
        features=np.ones(n, np.int8),
        clients=np.zeros(n, np.float32),
        tier=pop.tier0.copy(),
        card_ok=np.ones(n, bool),
        lift=np.zeros(n, np.float32) if lift else None,
    )


def weekly_churn_hazard(s: State, c: Static, ctx: WeekContext) -> np.ndarray:
    """Probability of cancelling during the week, given the state at its start.

    Suppliers leave the way they do in the field: they go quiet first. The disengaging regime
    does not raise the hazard by itself; it drags engagement down week after week (see
    :func:`transition`), and the hazard climbs steeply once engagement has fallen well below
    the supplier's own long-run level (a threshold relative to the supplier, not an absolute
    level: a venue and a stationer have very different normal activity).

    The options enter here, so that the Monte Carlo truth rolls the same rule forward: with
    ``feature_effects`` the adopted core features shift the logit (:func:`feature_hazard_logit`);
    with ``interventions`` the lift of delivered interventions lowers it (``lift_hazard`` per
    unit); with ``cancel_at_renewal`` the intent of a whole billing period is concentrated on the
    renewal week (:func:`renewal_hazard`).
    """
    logit = (
        -6.2
        + 5.0 * sigmoid(1.5 * (c.base_engagement - s.engagement - 1.8))
        - 0.25 * s.engagement
        + 0.4 * s.grievance
        + 0.8 * (s.past_due >= 1)
        + 4.0 * (s.past_due >= 4)
        + 0.7 * c.price_sensitivity * (0.5 - ctx.season)
        + 0.25 * c.price_sensitivity * _LOG_PRICE[s.tier]
        + 0.6 * ((ctx.tenure_weeks < 13) & (s.milestones < 2))
        - 0.2 * np.log1p(s.clients)
    )
    if c.feature_effects:
        logit = logit + feature_hazard_logit(s, c)
    if s.lift is not None:  # option interventions: the supplier feels looked after
        logit = logit - c.lift_hazard * s.lift
    hazard = np.where(ctx.tenure_weeks > 0, sigmoid(logit), 0.0).astype(np.float32)
    if ctx.renews is not None:
        hazard = renewal_hazard(hazard, ctx)
    return hazard


def feature_hazard_logit(s: State, c: Static) -> np.ndarray:
    """Hazard-logit term of the core features adopted (the first ``s.features`` of each
    supplier's adoption order), re-centred by ``FEATURE_HAZARD_CENTRE``."""
    term = np.float32(FEATURE_HAZARD_CENTRE)
    for feature, effect in _FEATURE_HAZARD:  # a handful of features, vectorised over suppliers
        term = term + effect * (c.feature_rank[..., feature] < s.features)
    return term


def renewal_hazard(weekly: np.ndarray, ctx: WeekContext) -> np.ndarray:
    """Cancel only at renewal: in the renewal week the probability of leaving accumulated over
    the billing period, ``1 - (1 - h) ** period_weeks``; in every other week nothing."""
    assert ctx.renews is not None and ctx.period_weeks is not None
    h = np.minimum(weekly.astype(np.float64), 1.0 - 1e-12)
    period = -np.expm1(ctx.period_weeks * np.log1p(-h))
    return np.where(ctx.renews, period, 0.0).astype(np.float32)


def hazard_share(ctx: WeekContext, frac: float) -> np.ndarray | float:
    """Share of a week's cancellation probability that falls in its first ``frac``.

    A cancellation is uniform over its week, so the share is ``frac``; with
    ``cancel_at_renewal`` it falls on the renewal day, so the share is 1 when that day lies in
    the first ``frac`` of the week and 0 otherwise (what keeps a partial horizon week exact).
    """
    if ctx.renew_offset is None or frac >= 1.0:
        return frac
    return (ctx.renew_offset < 7 * frac).astype(np.float32)


def transition(
    s: State, c: Static, ctx: WeekContext, draws: dict[str, np.ndarray]
) -> tuple[State, Events]:
    """The state a week later and what happened during the week."""
    leaving = s.leaving > 0
    log_clients = np.log1p(s.clients)
    # Billing: a payment falls due, or an overdue one is retried.
    pay_fail_p = np.where(s.card_ok, c.pay_risk, 0.85)
    retry_ok_p = np.where(s.card_ok, 0.6, 0.08)
    due = ctx.bills & (s.past_due == 0)
    overdue = s.past_due > 0
    failed = (due & (draws["pay"] < pay_fail_p)) | (overdue & (draws["pay"] >= retry_ok_p))
    paid = (due & (draws["pay"] >= pay_fail_p)) | (overdue & (draws["pay"] < retry_ok_p))
    past_due = np.where(failed, s.past_due + 1, np.where(paid, 0, s.past_due)).astype(np.int16)
    card_ok = np.where(s.card_ok, ~ctx.card_expires, draws["card"] < sigmoid(-0.8 + s.engagement))
    # Support: tickets, and whether the experience was bad.
    ticket = draws["ticket"] < sigmoid(
        -3.3 + 0.5 * c.friction + 1.3 * (ctx.tenure_weeks < 8) + 0.9 * overdue + 0.3 * leaving
    )
    bad = ticket & (draws["bad"] < sigmoid(-1.3 + 0.9 * c.friction + 0.7 * leaving))
    grievance = (0.85 * s.grievance + bad + 0.6 * failed).astype(np.float32)
    # The disengaging regime: entered under strain, left again by some.
    enter_p = sigmoid(
        -4.4
        + 0.5 * s.grievance
        + 0.9 * overdue
        + 1.0 * c.price_sensitivity * (0.5 - ctx.season)
        + 0.4 * c.price_sensitivity
        - 0.6 * s.engagement
        + 0.35 * (s.features < 2)
        - 0.12 * log_clients
    )
    leaving_next = np.where(
        leaving,
        np.where(draws["leave"] < 0.06, 0, np.minimum(s.leaving + 1, 1000)),
        np.where(draws["leave"] < enter_p, 1, 0),
    ).astype(np.int16)
    # Onboarding and adoption.
    new_milestone = (s.milestones < N_PLAIN_MILESTONES) & (
        draws["milestone"]
        < sigmoid(1.2 + 0.9 * s.engagement - 0.6 * s.milestones - 0.04 * ctx.tenure_weeks)
    )
    new_feature = (s.features < N_FEATURES) & (
        draws["feature"]
        < sigmoid(-1.9 + 0.9 * s.engagement - 0.22 * s.features + 0.25 * s.tier - 0.8 * leaving)
    )
    # The client book grows in season.
    rate = c.client_rate * (0.25 + 1.5 * ctx.season) * np.exp(0.45 * s.engagement)
    rate = np.where(leaving, 0.5 * rate, rate)
    new_clients = np.maximum(np.rint(rate + np.sqrt(rate) * draws["clients"]), 0.0)
    # Plan changes.
    up_p = np.where(s.tier < 3, sigmoid(-6.2 + 0.9 * s.engagement + 0.35 * log_clients), 0.0)
    down_p = np.where(
        s.tier > 0,
        sigmoid(-6.0 + 1.2 * c.price_sensitivity + 1.0 * leaving - 0.5 * s.engagement),
        0.0,
    )
    tier_change = np.where(draws["tier"] < up_p, 1, np.where(draws["tier"] > 1 - down_p, -1, 0))
    # Engagement drifts towards a level set by adoption, season, the book and the regime.
    target = (
        c.base_engagement
        + 0.12 * s.features
        + 0.1 * s.milestones
        + 0.9 * (ctx.season - 0.5)
        - 0.5 * np.minimum(s.leaving, 8)  # disengagement deepens for two months
        - 0.3 * s.grievance
        + 0.12 * log_clients
        - 0.6 * np.exp(-ctx.tenure_weeks / 5.0)
    )
    if s.lift is not None:  # option interventions: re-engaged, for as long as the lift lasts
        target = target + s.lift
    engagement = (
        s.engagement
        + np.where(leaving, 0.5, 0.3) * (target - s.engagement)
        + 0.2 * draws["engagement"]
    )
    state = State(
        engagement=engagement.astype(np.float32),
        leaving=leaving_next,
        past_due=past_due,
        grievance=grievance,
        milestones=(s.milestones + new_milestone).astype(np.int8),
        features=(s.features + new_feature).astype(np.int8),
        clients=(s.clients + new_clients).astype(np.float32),
        tier=(s.tier + tier_change).astype(np.int8),
        card_ok=card_ok,
        lift=None if s.lift is None else (c.lift_decay * s.lift).astype(np.float32),
    )
    events = Events(
        ticket,
        bad,
        paid,
        failed,
        new_milestone,
        new_feature,
        new_clients.astype(np.int32),
        tier_change.astype(np.int8),
    )
    return state, events


def draw(rng: np.random.Generator, shape: tuple[int, ...]) -> dict[str, np.ndarray]:
    """Fresh draws for one transition."""
    out = {k: rng.standard_normal(shape, dtype=np.float32) for k in DRAWS_NORMAL}
    out |= {k: rng.random(shape, dtype=np.float32) for k in DRAWS_UNIFORM}
    return out


__all__ = [
    "Events",
    "State",
    "Static",
    "WeekContext",
    "draw",
    "feature_hazard_logit",
    "hazard_share",
    "initial_state",
    "renewal_hazard",
    "replace",
    "transition",
    "weekly_churn_hazard",
]
