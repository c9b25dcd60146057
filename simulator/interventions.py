"""Option ``interventions``: a customer-success policy applied inside the simulation, whose
effects are known, so that an effect estimate has something to be checked against.

Every week, at its start, the policy looks at what the app could see of each supplier (days
since the last login, logins and core features used in the last 28 days, an unresolved failed
payment, bad support ratings, tenure, the current plan) and each rule whose conditions all hold
makes its intervention type due, unless that type reached the supplier less than its cap
(``cap_days``) ago. A due contact is sent on the week's first day between 09:00 and 17:00 UTC
to a supplier still there at that time; a supplier of the held-out group (a share drawn once
from the seed) receives nothing, but its would-be contact is recorded in the truth and counts
toward the caps, as a sent one does, so that the two groups are contacted alike.

The effect model. A delivered intervention of type ``k`` adds ``effect_k`` to the supplier's
lift ``L`` (engagement log-units), where ``effect_k`` is the policy's effect of the type times
the multiplier of the supplier's tier at signup (its segment) and of its vendor type, and 0 for
the non-responders (a share of suppliers drawn once). ``L`` raises the target to which
engagement drifts (so logins and feature use rise over the following weeks) and lowers the
weekly churn hazard's log-odds by ``hazard_weight * L``; it halves every ``half_life_weeks``.
It enters the engagement of the week after the contact and the churn hazard from that week on.

The policy draws from a random stream of its own (``[seed, 5]``): the held-out group and the
non-responders first, then the send times, never from the simulation's streams. With every
effect 0 the simulation is the one without the policy, plus ``interventions_log``; with effects
the lifted suppliers behave differently and, from then on, so do the later draws.

The truth's ``p_true`` is rolled forward from the exact state, lift included, without further
contacts: with the policy on it is the churn probability if no new intervention were sent.

Each decided contact's true effect on churn, in probability units, is in the truth too
(``truth_intervention_contacts.parquet``): ``p_churn_30d_sent`` and ``p_churn_30d_withheld``
are the probabilities that the supplier cancels within 30 days after the contact's ``sent_at``
(in ``(sent_at, sent_at + 30 d]``) if this contact is delivered and if it is not, with no other
contact in either case, not even one of another type decided the same week (``p_churn_60d_*``:
within 60 days). Both are rolled forward
(``truth.contact_churn_probability``, ``truth_paths`` paths) from the exact state at the
decision, the start of the contact's week (lift of earlier contacts included, none of this
week's): the week's hazard has no new lift, as its cancellation was drawn before the contact;
"sent" then adds the contact's effect to the lift, as :meth:`PolicyRun.settle` does, before the
week's transition, so it enters next week's engagement and the hazard from then on. The
roll-forward runs from the week's start; it conditions on no cancellation before the send time
(hours into the week's first day) and counts the horizon's last week up to the send time's
hour, at the cancellation's exact share, so the window is the one after ``sent_at``. The two
share every random draw (common random numbers, so their difference has little Monte Carlo
noise) and equal each other exactly for non-responders; the held-out group's withheld contacts
state them too (what sending would have done). The draws come from a stream of their own
(``[seed, 6]``), so the rest of the output is the same as without these columns. Past the end of
the data the roll-forward keeps the simulation's calendar (no bill falls due) and the export's
cancellations are cut off, so compare observed churn only over windows that end within the data.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Annotated, Final

import numpy as np
import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    field_validator,
    model_validator,
)

from features.contract import (
    INTERVENTION_TYPES,
    SUBSCRIPTION_TIERS,
    VENDOR_TYPES,
    InterventionType,
    SubscriptionTier,
    VendorType,
)
from simulator.population import Population

N_TYPES: Final = len(INTERVENTION_TYPES)
WINDOW_WEEKS: Final = 4  # the "recent" window of the observables: 28 days
BAD_RATING: Final = 2  # a satisfaction rating of 2 or less is a bad one
SEND_HOURS: Final = (9.0, 17.0)  # contacts go out on the week's first day, office hours (UTC)
POLICY_STREAM: Final = 5  # the policy's random stream: np.random.default_rng([seed, 5])
CONTACT_TRUTH_STREAM: Final = 6  # the contacts' truth's roll-forward: [seed, 6]

Slug = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")]
Effect = Annotated[float, Field(ge=-3.0, le=3.0, allow_inf_nan=False)]
Multiplier = Annotated[float, Field(ge=0.0, le=10.0, allow_inf_nan=False)]
CapDays = Annotated[int, Field(ge=1, le=365)]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Conditions(_Frozen):
    """What the app sees of a supplier at the start of a week; every condition given must hold
    (an absent one does not constrain). Observed over the 28 days before the week."""

    tenure_days_at_least: int | None = Field(default=None, ge=0)
    tenure_days_at_most: int | None = Field(default=None, ge=0)
    days_since_last_login_at_least: int | None = Field(default=None, ge=0)
    days_since_last_login_at_most: int | None = Field(default=None, ge=0)
    logins_28d_at_least: int | None = Field(default=None, ge=0)
    logins_28d_at_most: int | None = Field(default=None, ge=0)
    features_used_28d_at_most: int | None = Field(default=None, ge=0, le=8)
    unresolved_payment_failure: bool | None = None
    bad_ratings_28d_at_least: int | None = Field(default=None, ge=1)

    @model_validator(mode="after")
    def _some(self) -> Conditions:
        if all(v is None for v in self.model_dump().values()):
            raise ValueError("give at least one condition (a rule for everyone is a broadcast)")
        return self


class Rule(_Frozen):
    """When an intervention type is due: all conditions hold and the current plan is one of
    ``tiers`` (any plan when not given)."""

    name: Slug
    intervention_type: InterventionType
    when: Conditions
    tiers: tuple[SubscriptionTier, ...] | None = Field(default=None, min_length=1)


class TypeEffects(_Frozen):
    """Lift of one delivered intervention of each type, in engagement log-units (and hazard
    log-odds, times ``hazard_weight``), before the segment's multiplier."""

    email_sequence: Effect = 0.1
    in_app_message: Effect = 0.05
    phone_call: Effect = 0.5
    feature_tour: Effect = 0.2
    personalized_support: Effect = 0.4


class TypeCaps(_Frozen):
    """Fewest days between two contacts of a type with the same supplier."""

    email_sequence: CapDays = 14
    in_app_message: CapDays = 14
    phone_call: CapDays = 42
    feature_tour: CapDays = 28
    personalized_support: CapDays = 28


class TierMultiplier(_Frozen):
    """Effect multiplier by the tier at signup (the segment): bigger accounts respond more."""

    starter: Multiplier = 0.6
    professional: Multiplier = 1.0
    scale: Multiplier = 1.2
    enterprise: Multiplier = 1.4


def _rule(name: str, kind: InterventionType, tiers: tuple | None = None, **when: object) -> Rule:
    return Rule.model_validate(
        {"name": name, "intervention_type": kind, "when": when, "tiers": tiers}
    )


DEFAULT_RULES: Final[tuple[Rule, ...]] = (
    _rule(
        "quiet-new-supplier-email",
        "email_sequence",
        tenure_days_at_least=7,
        tenure_days_at_most=60,
        days_since_last_login_at_least=7,
    ),
    _rule("failed-payment-email", "email_sequence", unresolved_payment_failure=True),
    _rule(
        "low-activity-message",
        "in_app_message",
        tenure_days_at_least=28,
        days_since_last_login_at_most=3,
        logins_28d_at_most=20,
    ),
    _rule(
        "narrow-use-tour",
        "feature_tour",
        tenure_days_at_least=21,
        tenure_days_at_most=90,
        days_since_last_login_at_most=7,
        features_used_28d_at_most=1,
    ),
    _rule(
        "silent-account-call",
        "phone_call",
        ("professional", "scale", "enterprise"),
        tenure_days_at_least=42,
        days_since_last_login_at_least=7,
    ),
    _rule("bad-support-follow-up", "personalized_support", bad_ratings_28d_at_least=1),
)


class InterventionPolicy(_Frozen):
    """The policy and its true effects (see the module's docstring); the defaults are the
    documented ones of ``experiments/sim_interventions.yaml``. ``enabled: false`` turns it off:
    the simulation is then exactly the one without a policy."""

    enabled: bool = True
    held_out_share: float = Field(default=0.1, ge=0.0, le=1.0, allow_inf_nan=False)
    non_responder_share: float = Field(default=0.3, ge=0.0, le=1.0, allow_inf_nan=False)
    half_life_weeks: float = Field(default=3.0, gt=0.0, le=520.0, allow_inf_nan=False)
    hazard_weight: float = Field(default=1.0, ge=0.0, le=5.0, allow_inf_nan=False)
    effects: TypeEffects = TypeEffects()
    tier_multiplier: TierMultiplier = TierMultiplier()
    vendor_multiplier: dict[VendorType, Multiplier] = Field(default_factory=dict)
    cap_days: TypeCaps = TypeCaps()
    rules: tuple[Rule, ...] = DEFAULT_RULES

    @field_validator("rules")
    @classmethod
    def _unique(cls, rules: tuple[Rule, ...]) -> tuple[Rule, ...]:
        names = [rule.name for rule in rules]
        if len(set(names)) < len(names):
            twice = sorted({n for n in names if names.count(n) > 1})
            raise ValueError(f"rule names must be unique, {twice} used twice")
        return rules

    @property
    def lift_decay(self) -> float:
        """Share of the lift left a week later."""
        return 0.5 ** (1.0 / self.half_life_weeks)


def _where(loc: tuple[int | str, ...]) -> str:
    """``rules[2].when.tenure_days_at_least`` for a pydantic location."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else f".{part}" if out else str(part)
    return out or "(the policy)"


def parse_policy(raw: object, source: str = "policy") -> InterventionPolicy:
    """The policy of a parsed YAML document (an empty document is the defaults).

    Raises:
        ValueError: a field is wrong; every problem is listed with its field.
    """
    try:
        return InterventionPolicy.model_validate({} if raw is None else raw)
    except ValidationError as error:
        problems = [f"  {_where(e['loc'])}: {e['msg']}" for e in error.errors()]
        message = f"{source} is not a valid intervention policy:\n" + "\n".join(problems)
        raise ValueError(message) from None


def load_policy(path: Path) -> InterventionPolicy:
    """The policy of the YAML file at ``path`` (e.g. ``experiments/sim_interventions.yaml``).

    Raises:
        ValueError: the file is missing, not YAML, or has a wrong field (named).
    """
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ValueError(f"no intervention policy file at {path}") from None
    except yaml.YAMLError as error:
        raise ValueError(f"{path} is not YAML: {error}") from None
    return parse_policy(raw, str(path))


# -- who is held out and who responds -------------------------------------------------------


@dataclass(frozen=True)
class Assignment:
    """Per supplier, drawn once: the held-out group, the responders and the true effects."""

    held_out: np.ndarray  # bool (n,)
    responder: np.ndarray  # bool (n,)
    effect: np.ndarray  # float32 (n, 5): lift of one contact of each type (INTERVENTION_TYPES)


def true_effects(policy: InterventionPolicy, pop: Population, responder: np.ndarray) -> np.ndarray:
    """(n, 5) float32: each type's effect times the supplier's tier-at-signup and vendor-type
    multipliers, 0 for non-responders."""
    base = np.array([getattr(policy.effects, k) for k in INTERVENTION_TYPES])
    tier = np.array([getattr(policy.tier_multiplier, t) for t in SUBSCRIPTION_TIERS])
    vendor = np.array([policy.vendor_multiplier.get(v, 1.0) for v in VENDOR_TYPES])
    scale = tier[pop.tier0] * vendor[pop.vendor] * responder
    return (scale[:, None] * base[None, :]).astype(np.float32)


def assign(policy: InterventionPolicy, pop: Population, rng: np.random.Generator) -> Assignment:
    """The held-out group and the non-responders, each from uniform draws of its own (so the
    group depends on the seed and the share only, and a larger share holds out a superset)."""
    held_out = rng.random(pop.n) < policy.held_out_share
    responder = rng.random(pop.n) >= policy.non_responder_share
    return Assignment(held_out, responder, true_effects(policy, pop, responder))


# -- what the app has seen ------------------------------------------------------------------


@dataclass(frozen=True)
class Observed:
    """What the app's tables show of each supplier so far, kept week by week; the recent window
    is a ring of the last ``WINDOW_WEEKS`` weeks (slot ``week % WINDOW_WEEKS``)."""

    last_login_day: np.ndarray  # float64 day of the latest login (-inf: none)
    logins: np.ndarray  # (n, 4) int32 logins in each recent week
    features: np.ndarray  # (n, 4) uint8 bit mask of the core features used in each recent week
    bad_ratings: np.ndarray  # (n, 4) int16 bad satisfaction ratings given in each recent week
    last_failed: np.ndarray  # float64 time of the latest failed payment (-inf: none)
    last_paid: np.ndarray  # float64 time of the latest successful payment (-inf: none)

    @classmethod
    def empty(cls, n: int) -> Observed:
        return cls(
            last_login_day=np.full(n, -np.inf),
            logins=np.zeros((n, WINDOW_WEEKS), np.int32),
            features=np.zeros((n, WINDOW_WEEKS), np.uint8),
            bad_ratings=np.zeros((n, WINDOW_WEEKS), np.int16),
            last_failed=np.full(n, -np.inf),
            last_paid=np.full(n, -np.inf),
        )


def _latest(current: np.ndarray, idx: np.ndarray, values: np.ndarray) -> np.ndarray:
    out = current.copy()
    np.maximum.at(out, idx, np.asarray(values, np.float64))
    return out


def _in_slot(current: np.ndarray, slot: int, values: np.ndarray) -> np.ndarray:
    out = current.copy()
    out[:, slot] = values
    return out


def observe(obs: Observed, week: int, rows: dict[str, dict[str, np.ndarray]]) -> Observed:
    """``obs`` with the week's observable rows (``emit_week``'s, before any export cut) added."""
    n, slot = len(obs.last_login_day), week % WINDOW_WEEKS
    activity, usage = rows["activity_daily"], rows["feature_usage_daily"]
    tickets, billing = rows["support_tickets"], rows["billing_events"]
    used = np.zeros(n, np.uint8)
    bits = np.left_shift(np.uint8(1), np.asarray(usage["feature"], np.uint8))
    np.bitwise_or.at(used, usage["supplier"], bits)
    bad = tickets["rated"] & (tickets["rating"] <= BAD_RATING)
    failed = billing["type"] == "payment_failed"
    paid = billing["type"] == "payment_succeeded"
    logins = np.bincount(activity["supplier"], weights=activity["logins"], minlength=n)
    return Observed(
        last_login_day=_latest(obs.last_login_day, activity["supplier"], activity["day"]),
        logins=_in_slot(obs.logins, slot, logins.astype(np.int32)),
        features=_in_slot(obs.features, slot, used),
        bad_ratings=_in_slot(
            obs.bad_ratings, slot, np.bincount(tickets["supplier"][bad], minlength=n)
        ),
        last_failed=_latest(obs.last_failed, billing["supplier"][failed], billing["time"][failed]),
        last_paid=_latest(obs.last_paid, billing["supplier"][paid], billing["time"][paid]),
    )


def observables(obs: Observed, day: int, signup_time: np.ndarray) -> dict[str, np.ndarray]:
    """The values the conditions read, at the start of ``day`` (00:00 UTC, so the latest full
    day is ``day - 1``; the recent window is the 28 days before)."""
    recent = np.bitwise_or.reduce(obs.features, axis=1)
    return {
        "tenure_days": day - signup_time,
        "days_since_last_login": (day - 1) - obs.last_login_day,
        "logins_28d": obs.logins.sum(axis=1),
        "features_used_28d": np.unpackbits(recent[:, None], axis=1).sum(axis=1),
        "unresolved_payment_failure": obs.last_failed > obs.last_paid,
        "bad_ratings_28d": obs.bad_ratings.sum(axis=1),
    }


# Each condition: the observable it reads and how it compares with the rule's value.
CONDITIONS: Final[dict[str, tuple[str, Callable[[np.ndarray, object], np.ndarray]]]] = {
    "tenure_days_at_least": ("tenure_days", operator.ge),
    "tenure_days_at_most": ("tenure_days", operator.le),
    "days_since_last_login_at_least": ("days_since_last_login", operator.ge),
    "days_since_last_login_at_most": ("days_since_last_login", operator.le),
    "logins_28d_at_least": ("logins_28d", operator.ge),
    "logins_28d_at_most": ("logins_28d", operator.le),
    "features_used_28d_at_most": ("features_used_28d", operator.le),
    "unresolved_payment_failure": ("unresolved_payment_failure", operator.eq),
    "bad_ratings_28d_at_least": ("bad_ratings_28d", operator.ge),
}


def rule_matches(rule: Rule, values: dict[str, np.ndarray], tier: np.ndarray) -> np.ndarray:
    """bool (n,): the suppliers for whom every condition of ``rule`` holds, on its plans."""
    match = np.ones(len(tier), bool)
    for name, threshold in rule.when.model_dump(exclude_none=True).items():
        observable, compare = CONDITIONS[name]
        match &= compare(values[observable], threshold)
    if rule.tiers is not None:
        match &= np.isin(tier, [SUBSCRIPTION_TIERS.index(t) for t in rule.tiers])
    return match


def due_contacts(
    policy: InterventionPolicy,
    values: dict[str, np.ndarray],
    tier: np.ndarray,
    eligible: np.ndarray,
    sent_at: np.ndarray,
    last_sent: np.ndarray,
) -> np.ndarray:
    """int16 (n, 5): index of the first rule that makes each type due for each supplier (-1:
    none, or the type's cap holds it back: its last contact was less than ``cap_days`` before
    ``sent_at``)."""
    first = np.full((len(tier), N_TYPES), -1, np.int16)
    for r, rule in enumerate(policy.rules):
        k = INTERVENTION_TYPES.index(rule.intervention_type)
        hit = eligible & (first[:, k] < 0) & rule_matches(rule, values, tier)
        first[hit, k] = r
    caps = np.array([getattr(policy.cap_days, t) for t in INTERVENTION_TYPES], np.float64)
    return np.where(sent_at[:, None] - last_sent >= caps, first, -1).astype(np.int16)


# -- the policy over a run --------------------------------------------------------------------


@dataclass(frozen=True)
class Contacts:
    """Contacts the policy decided (one row each): delivered, or withheld (held out)."""

    supplier: np.ndarray  # int64 supplier row numbers
    kind: np.ndarray  # int8 index into INTERVENTION_TYPES
    sent_at: np.ndarray  # float64 days since the start of the data
    rule: np.ndarray  # int16 index into the policy's rules
    held_out: np.ndarray  # bool: the supplier is in the held-out group (nothing was sent)

    def take(self, mask: np.ndarray) -> Contacts:
        return Contacts(*(getattr(self, f.name)[mask] for f in fields(self)))

    @classmethod
    def concat(cls, parts: list[Contacts]) -> Contacts:
        if not parts:
            return cls(
                np.empty(0, np.int64),
                np.empty(0, np.int8),
                np.empty(0),
                np.empty(0, np.int16),
                np.empty(0, bool),
            )
        return cls(*(np.concatenate([getattr(p, f.name) for p in parts]) for f in fields(cls)))


class PolicyRun:
    """The policy's memory across the weeks of one simulation: the assignment, what the app
    has observed, when each type last reached each supplier, and every contact decided.

    Per week: :meth:`decide` at its start (before the week's cancellations are drawn),
    :meth:`settle` once they are (a cancelled account gets nothing), :meth:`observe` with the
    week's rows.
    """

    def __init__(self, policy: InterventionPolicy, pop: Population, seed: int) -> None:
        self.policy = policy
        self.pop = pop
        self.rng = np.random.default_rng([seed, POLICY_STREAM])
        self.assignment = assign(policy, pop, self.rng)
        self.observed = Observed.empty(pop.n)
        self.last_sent = np.full((pop.n, N_TYPES), -np.inf)
        self.parts: list[Contacts] = []

    def decide(self, week: int, alive: np.ndarray, tier: np.ndarray) -> Contacts:
        """The contacts due this week, before the week's cancellations are known."""
        lo = 7 * week
        hours = SEND_HOURS[0] + (SEND_HOURS[1] - SEND_HOURS[0]) * self.rng.random(self.pop.n)
        sent_at = lo + hours / 24.0
        eligible = alive & (self.pop.signup_time <= lo)
        values = observables(self.observed, lo, self.pop.signup_time)
        first = due_contacts(self.policy, values, tier, eligible, sent_at, self.last_sent)
        supplier, kind = np.nonzero(first >= 0)
        return Contacts(
            supplier=supplier.astype(np.int64),
            kind=kind.astype(np.int8),
            sent_at=sent_at[supplier],
            rule=first[supplier, kind],
            held_out=self.assignment.held_out[supplier],
        )

    def settle(
        self, due: Contacts, cancel_time: np.ndarray
    ) -> tuple[Contacts, Contacts, np.ndarray]:
        """Record the due contacts of suppliers still there at the send time; those contacts
        (delivered or withheld, in the order :meth:`contacts` keeps), the delivered ones, and
        the lift they add to each supplier (float32, (n,))."""
        made = due.take(cancel_time[due.supplier] > due.sent_at)
        self.last_sent[made.supplier, made.kind] = made.sent_at
        self.parts.append(made)
        delivered = made.take(~made.held_out)
        effect = self.assignment.effect[delivered.supplier, delivered.kind]
        lift = np.bincount(delivered.supplier, weights=effect, minlength=self.pop.n)
        return made, delivered, lift.astype(np.float32)

    def observe(self, week: int, rows: dict[str, dict[str, np.ndarray]]) -> None:
        self.observed = observe(self.observed, week, rows)

    def contacts(self) -> Contacts:
        """Every contact decided so far, in the order decided."""
        return Contacts.concat(self.parts)
