"""Intervention rules: the versioned YAML file (``experiments/interventions.yaml``) parsed into
frozen models, refused with the rule and field named when it is wrong.

A rule says when a supplier is due an intervention (conditions over its state, and the
audience it applies to), which intervention and template, after what delay, how often at most,
and with what priority. Which rules are due for a supplier is decided by
:func:`serving.due.due_interventions`; nothing here reads a database or the clock.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Final, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    model_validator,
)

from features.contract import (
    CoreFeature,
    InterventionType,
    MilestoneType,
    SubscriptionTier,
    VendorType,
)
from serving.api.schemas import ChurnLevel, HealthBand, Priority, Trend

HealthSegment = Literal["new_user", "established", "power_user"]  # features.catalog.SEGMENTS

# Most urgent first: the order in which a contact cap admits due rules.
PRIORITY_ORDER: Final[tuple[Priority, ...]] = ("critical", "high", "medium", "low")
# Interventions that run without a person (the brief's automation rate counts these).
AUTOMATED_TYPES: Final[frozenset[str]] = frozenset(
    {"email_sequence", "in_app_message", "feature_tour"}
)
# The channel of each intervention type (feature tours are shown in the app).
CHANNELS: Final[dict[str, str]] = {
    "email_sequence": "email",
    "in_app_message": "in_app",
    "feature_tour": "in_app",
    "phone_call": "call",
    "personalized_support": "call",
}
DEFAULT_RULES: Final = Path(__file__).resolve().parents[1] / "experiments" / "interventions.yaml"

Slug = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Conditions(_Frozen):
    """What a supplier's state must be for the rule to fire: every condition given holds (an
    absent one does not constrain). Lists mean "one of"."""

    health_score_below: float | None = Field(default=None, ge=0, le=100)
    health_score_at_least: float | None = Field(default=None, ge=0, le=100)
    health_risk_in: tuple[HealthBand, ...] | None = None
    churn_probability_at_least: float | None = Field(default=None, ge=0, le=1)
    churn_risk_in: tuple[ChurnLevel, ...] | None = None
    trend_in: tuple[Trend, ...] | None = None
    days_since_last_login_at_least: int | None = Field(default=None, ge=0)
    tenure_days_at_most: int | None = Field(default=None, ge=0)
    tenure_days_at_least: int | None = Field(default=None, ge=0)
    unresolved_payment_failure: bool | None = None
    failed_payments_30d_at_least: int | None = Field(default=None, ge=1)
    overdue_milestone_in: tuple[MilestoneType, ...] | None = None
    abandoned_feature_in: tuple[CoreFeature, ...] | None = None

    @model_validator(mode="after")
    def _some(self) -> Conditions:
        if all(v is None for v in self.model_dump().values()):
            raise ValueError("give at least one condition (a rule for everyone is a broadcast)")
        return self


class Audience(_Frozen):
    """Which suppliers the rule is for (all, when nothing is given)."""

    tiers: tuple[SubscriptionTier, ...] | None = None
    vendor_types: tuple[VendorType, ...] | None = None
    segments: tuple[HealthSegment, ...] | None = None


class Rule(_Frozen):
    """One intervention rule of the rules file."""

    name: Slug
    description: str = Field(min_length=1)
    when: Conditions
    audience: Audience = Audience()
    intervention_type: InterventionType
    template: Slug
    delay_days: int = Field(default=0, ge=0, le=90)
    max_frequency_days: int = Field(ge=1, le=365)
    priority: Priority

    @property
    def automated(self) -> bool:
        """Whether it runs without a person (email, in-app message, feature tour)."""
        return self.intervention_type in AUTOMATED_TYPES


class FatigueCap(_Frozen):
    """At most ``max_contacts`` contacts of a supplier, over every channel and rule, within
    ``per_days`` days; no rule bypasses it."""

    max_contacts: int = Field(default=2, ge=1)
    per_days: int = Field(default=7, ge=1)


def _manual_caps() -> dict[str, int]:
    return {
        "email_sequence": 3,
        "in_app_message": 1,
        "feature_tour": 7,
        "phone_call": 2,
        "personalized_support": 2,
    }


class ManualPolicy(_Frozen):
    """What holds back an intervention triggered by hand (the API's trigger and bulk routes).

    ``max_frequency_days``: the same intervention type reaches a supplier at most once within
    that many days, whoever sent the earlier one. Every manual contact counts toward the
    fatigue cap; an automated type (email, in-app message, feature tour) triggered by hand is
    held back by it like a rule's, while a call or personal support, which a person decided
    on, may go beyond it when ``people_exceed_fatigue`` (the default).
    """

    max_frequency_days: dict[InterventionType, Annotated[int, Field(ge=0, le=365)]] = Field(
        default_factory=_manual_caps
    )
    people_exceed_fatigue: bool = True

    def cap_days(self, intervention_type: str) -> int:
        return self.max_frequency_days.get(intervention_type, 0)  # type: ignore[call-overload]


class RuleSet(_Frozen):
    """A rules file: its version, the contact-fatigue cap, the manual policy and the rules,
    names unique."""

    version: Slug
    fatigue: FatigueCap = FatigueCap()
    manual: ManualPolicy = ManualPolicy()
    rules: tuple[Rule, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique(self) -> RuleSet:
        seen: set[str] = set()
        for rule in self.rules:
            if rule.name in seen:
                raise ValueError(f"rule name {rule.name!r} is used twice")
            seen.add(rule.name)
        return self


class RulesFileError(ValueError):
    """A rules file that cannot be used; the message names the rule and the field."""


def _where(loc: tuple[int | str, ...], raw: object) -> str:
    """``rule 'name' (rules[3]): when.churn_probability_at_least`` for a pydantic location."""
    if len(loc) >= 2 and loc[0] == "rules" and isinstance(loc[1], int):
        rules = raw.get("rules") if isinstance(raw, dict) else None
        entry = rules[loc[1]] if isinstance(rules, list) and loc[1] < len(rules) else None
        name = entry.get("name") if isinstance(entry, dict) else None
        field = ".".join(str(p) for p in loc[2:]) or "(the rule)"
        label = f"rule {name!r}" if name else "a rule without a name"
        return f"{label} (rules[{loc[1]}]): {field}"
    return ".".join(str(p) for p in loc) or "(the file)"


def parse_rules(raw: object, source: str = "rules") -> RuleSet:
    """The rule set of a parsed YAML document.

    Raises:
        RulesFileError: a rule or field is wrong; every problem is listed, each with its rule
            and field.
    """
    try:
        return RuleSet.model_validate(raw)
    except ValidationError as error:
        problems = [f"  {_where(e['loc'], raw)}: {e['msg']}" for e in error.errors()]
        message = f"{source} is not a valid rules file:\n" + "\n".join(problems)
        raise RulesFileError(message) from None


def load_rules(path: Path = DEFAULT_RULES) -> RuleSet:
    """The rule set of the YAML file at ``path``.

    Raises:
        RulesFileError: the file is missing, not YAML, or breaks a rule's schema.
    """
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise RulesFileError(f"no rules file at {path}") from None
    except yaml.YAMLError as error:
        raise RulesFileError(f"{path} is not YAML: {error}") from None
    return parse_rules(raw, str(path))
