"""What the numbers mean for a CS manager: recommendations from the weakest health factors,
actions from what drives a churn prediction, the money at stake and when to look again.

Pure functions of scores and attributions, shared by the daily job (which stores them) and the
service (which answers with them). The money rules are the API contract's: LTV is 18 months of
revenue, ``ltvAtRisk`` the churn probability times LTV, ``preventionCost`` a tenth of that,
at most 500.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Final

import numpy as np
import pandas as pd

from features.catalog import HEALTH_FACTORS

LTV_MONTHS: Final = 18
PREVENTION_SHARE: Final = 0.1
PREVENTION_CAP: Final = 500.0
# A trend moves only when the score moved by more than this many points.
TREND_POINTS: Final = 5.0
# Days until a supplier's next review, by health band: the riskier, the sooner.
REVIEW_DAYS: Final = {"critical": 3, "at_risk": 7, "healthy": 30}
# A factor below this (0..1) is weak enough to recommend something about.
WEAK_FACTOR: Final = 0.6
MAX_RECOMMENDATIONS: Final = 3


@dataclass(frozen=True)
class Advice:
    type: str
    title: str
    description: str


# Per health factor: what to do when it is weak, in a CS manager's words.
FACTOR_ADVICE: Final[dict[str, Advice]] = {
    "login_frequency": Advice(
        "re_engagement",
        "Re-engage: logins have dropped",
        "The supplier logs in on few days. Send a short check-in with one concrete reason to "
        "come back this week (a client waiting, a form to finish).",
    ),
    "feature_adoption": Advice(
        "feature_tour",
        "Show the features they are not using",
        "Few of the core features are in use. Offer a guided tour of the next feature that "
        "fits their business (forms, journeys, automations).",
    ),
    "client_engagement": Advice(
        "client_activation",
        "Help them bring clients in",
        "Few of the supplier's clients are active. Suggest importing their couples and "
        "sending the first journey, so clients start working in the app.",
    ),
    "support_health": Advice(
        "personalized_support",
        "Resolve their support problems",
        "Open tickets or poor support ratings. Have an agent call to close the open issues "
        "and check they are satisfied.",
    ),
    "billing_health": Advice(
        "billing_help",
        "Fix the billing problem",
        "Failed payments, an expiring card or a downgrade. Remind them to update the card, "
        "or talk through whether their plan still fits.",
    ),
    "onboarding_progress": Advice(
        "onboarding_help",
        "Finish onboarding",
        "Onboarding milestones are missing. Walk them through the next step: the first "
        "client, form or journey.",
    ),
}
assert set(FACTOR_ADVICE) == set(HEALTH_FACTORS)

# Per churn factor family: the action that addresses it.
FAMILY_ACTIONS: Final[dict[str, str]] = {
    "login": "Re-engagement email sequence with a reason to log in this week",
    "adoption": "Feature tour of the core features they have not adopted",
    "engagement": "Help them invite clients and send a first journey",
    "support": "Personal support call to resolve open tickets",
    "billing": "Billing outreach: update the card or review the plan",
    "onboarding": "Onboarding session to complete the missing milestones",
    "season": "Off-season check-in: plan next season's bookings together",
    "account": "Account review: confirm the plan and tier still fit",
    "health": "Health review call with the supplier's CS agent",
}

# Which interventions the API accepts, and the one each health factor calls for.
INTERVENTION_TYPES: Final = (
    "email_sequence",
    "phone_call",
    "feature_tour",
    "personalized_support",
    "in_app_message",
)
PRIORITY_OF_RISK: Final = {"critical": "critical", "high": "high", "medium": "medium"}


def ltv(monthly_revenue: np.ndarray | pd.Series | float) -> np.ndarray:
    return np.asarray(monthly_revenue, dtype=float) * LTV_MONTHS


def ltv_at_risk(probability: np.ndarray | pd.Series | float, monthly_revenue) -> np.ndarray:
    return np.asarray(probability, dtype=float) * ltv(monthly_revenue)


def prevention_cost(at_risk: np.ndarray | pd.Series | float) -> np.ndarray:
    return np.minimum(PREVENTION_SHARE * np.asarray(at_risk, dtype=float), PREVENTION_CAP)


def trend(current: float | None, previous: float | None) -> str:
    """improving / declining when the score moved by more than :data:`TREND_POINTS` since the
    previous stored score, else stable (also when there is no previous score)."""
    if current is None or previous is None or np.isnan(current) or np.isnan(previous):
        return "stable"
    if current - previous > TREND_POINTS:
        return "improving"
    if previous - current > TREND_POINTS:
        return "declining"
    return "stable"


def trends(current: np.ndarray, previous: np.ndarray) -> np.ndarray:
    """:func:`trend` of arrays (NaN: no score)."""
    diff = np.asarray(current, dtype=float) - np.asarray(previous, dtype=float)
    out = np.full(diff.shape, "stable", dtype=object)
    out[diff > TREND_POINTS] = "improving"
    out[diff < -TREND_POINTS] = "declining"
    return out


def next_review(day: date, health_band: str | None) -> date:
    """When to look at the supplier again: sooner the riskier its health band."""
    return day + timedelta(days=REVIEW_DAYS.get(health_band or "critical", 3))


def _priority(value: float) -> str:
    if value < 0.25:
        return "critical"
    if value < 0.4:
        return "high"
    if value < WEAK_FACTOR:
        return "medium"
    return "low"


def recommendations(factors: dict[str, float | None]) -> list[dict[str, str]]:
    """Up to :data:`MAX_RECOMMENDATIONS` recommendations for the weakest factors (0..1) below
    :data:`WEAK_FACTOR`, weakest first; factors the data cannot tell are skipped."""
    known = [(v, k) for k, v in factors.items() if k in FACTOR_ADVICE and v is not None and v == v]
    weak = sorted((v, k) for v, k in known if v < WEAK_FACTOR)[:MAX_RECOMMENDATIONS]
    return [
        {
            "type": FACTOR_ADVICE[k].type,
            "title": FACTOR_ADVICE[k].title,
            "description": FACTOR_ADVICE[k].description,
            "priority": _priority(v),
        }
        for v, k in weak
    ]


def recommended_actions(families: dict[str, float], k: int = 3) -> list[str]:
    """Actions for the ``k`` families that push churn up the most (positive attributions only),
    largest first."""
    positive = sorted(((v, f) for f, v in families.items() if v == v and v > 0), reverse=True)
    return [FAMILY_ACTIONS[f] for _, f in positive[:k] if f in FAMILY_ACTIONS]


def priority(churn_level: str | None) -> str | None:
    """An intervention's priority from the churn risk level (none for low risk)."""
    return PRIORITY_OF_RISK.get(churn_level or "")
