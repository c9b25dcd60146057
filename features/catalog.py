"""The supplier features: every column of the feature table, its family and its type.

One list, read by the Feast repo (one feature view per family), training (SHAP grouping) and
serving. Nobody copies a feature list.
"""

from __future__ import annotations

from typing import Final, Literal, get_args

from features.contract import CORE_FEATURES, MILESTONE_TYPES, SUBSCRIPTION_TIERS, VENDOR_TYPES

Family = Literal[
    "login",
    "adoption",
    "engagement",
    "support",
    "billing",
    "onboarding",
    "season",
    "account",
    "health",
]
Kind = Literal["float", "int", "category"]

ADOPTION_STAGES: Final = ("never_used", "trial", "adopting", "power_user", "churned")
SEGMENTS: Final = ("new_user", "established", "power_user")
TIERS: Final = SUBSCRIPTION_TIERS
HEALTH_FACTORS: Final = (
    "login_frequency",
    "feature_adoption",
    "client_engagement",
    "support_health",
    "billing_health",
    "onboarding_progress",
)
# Days after signup by which each onboarding milestone is due (the critical path first).
MILESTONE_TARGET_DAYS: Final = {
    "account_setup": 1,
    "first_client": 7,
    "first_form": 14,
    "first_journey": 30,
    "first_automation": 45,
    "ten_clients": 60,
}
CRITICAL_PATH: Final = ("account_setup", "first_client", "first_form", "first_journey")
EWM_HALF_LIVES: Final = (7, 30, 90)
# Recent login rate relative to the supplier's own long-run rate: (short, long) half-lives.
# Unlike a difference of two windows, the ratio never rises when recent logins are removed
# (the short half-life weighs the newest days more), however long a quiet spell lasts.
EWM_RATIOS: Final = ((7, 90), (30, 90))
# The share of a window's logins that fell in its most recent part: (recent, whole) days. The
# recent part is nested in the whole, so removing the newest logins never raises the share
# (0 when the whole window holds none).
LOGIN_SHARES: Final = ((7, 30), (30, 60), (30, 90))
# Per core feature: its uses over these windows, and the trend of the 30-day rate against the
# supplier's own 90-day rate (what a feature's use says differs by feature and by source).
USAGE_WINDOWS: Final = (7, 30, 90)
# Billing cycles an interval between two successful payments is read as (days), and the widest
# relative distance at which it still is one of them.
BILLING_CYCLES: Final = (30, 91, 365)
CYCLE_TOLERANCE: Final = 0.35
assert set(MILESTONE_TARGET_DAYS) == set(MILESTONE_TYPES)

_F: list[tuple[str, Family, Kind]] = [
    ("days_since_last_login", "login", "float"),
    ("logins_7d", "login", "int"),
    ("logins_30d", "login", "int"),
    ("logins_90d", "login", "int"),
    ("active_days_7d", "login", "int"),
    ("active_days_30d", "login", "int"),
    ("active_days_90d", "login", "int"),
    ("session_minutes_30d", "login", "float"),
    ("logins_30d_change", "login", "int"),
    ("logins_30d_ratio_prev_30d", "login", "float"),
    *[(f"login_ewm_rate_{h}d", "login", "float") for h in EWM_HALF_LIVES],
    *[(f"login_ewm_ratio_{a}d_{b}d", "login", "float") for a, b in EWM_RATIOS],
    *[(f"logins_{a}d_share_of_{b}d", "login", "float") for a, b in LOGIN_SHARES],
    ("logins_30d_vs_cohort", "login", "float"),
    *[(f"{f}_stage", "adoption", "category") for f in CORE_FEATURES],
    *[(f"{f}_days_30d", "adoption", "int") for f in CORE_FEATURES],
    ("features_used_30d", "adoption", "int"),
    ("features_used_ever", "adoption", "int"),
    ("features_used_prev_30d", "adoption", "int"),
    ("feature_breadth_trend", "adoption", "int"),
    ("features_used_30d_vs_cohort", "adoption", "float"),
    *[(f"{f}_uses_{w}d", "adoption", "float") for f in CORE_FEATURES for w in USAGE_WINDOWS],
    *[(f"{f}_uses_trend", "adoption", "float") for f in CORE_FEATURES],
    ("total_clients", "engagement", "int"),
    ("active_clients_30d", "engagement", "int"),
    ("active_client_ratio", "engagement", "float"),
    ("new_clients_30d", "engagement", "int"),
    ("active_client_ratio_vs_cohort", "engagement", "float"),
    ("tickets_30d", "support", "int"),
    ("tickets_90d", "support", "int"),
    ("mean_satisfaction_90d", "support", "float"),
    ("bad_ratings_90d", "support", "int"),
    ("open_tickets", "support", "int"),
    ("mean_resolution_hours_90d", "support", "float"),
    ("failed_payments_30d", "billing", "int"),
    ("failed_payments_90d", "billing", "int"),
    ("unresolved_payment_failure", "billing", "int"),
    ("card_expiring_30d", "billing", "int"),
    ("downgrades_90d", "billing", "int"),
    ("upgrades_90d", "billing", "int"),
    ("refunds_90d", "billing", "int"),
    ("billing_cycle_days", "billing", "float"),
    ("days_since_last_payment", "billing", "float"),
    ("days_to_next_renewal", "billing", "float"),
    ("logins_this_period", "billing", "float"),
    ("milestones_achieved", "onboarding", "int"),
    ("critical_path_completion", "onboarding", "float"),
    *[(f"{m}_days_behind", "onboarding", "int") for m in MILESTONE_TYPES],
    ("season_sin", "season", "float"),
    ("season_cos", "season", "float"),
    ("cohort_logins_30d", "season", "float"),
    ("tenure_days", "account", "int"),
    ("subscription_tier", "account", "category"),
    ("monthly_revenue", "account", "float"),
    ("vendor_type", "account", "category"),
    ("hemisphere", "account", "category"),
    *[(factor, "health", "float") for factor in HEALTH_FACTORS],
    ("health_segment", "health", "category"),
    ("health_score", "health", "float"),
]
FEATURES: Final[dict[str, tuple[Family, Kind]]] = {n: (fam, k) for n, fam, k in _F}
FAMILIES: Final[tuple[Family, ...]] = get_args(Family)
CATEGORIES: Final[dict[str, tuple[str, ...]]] = {
    **{f"{f}_stage": ADOPTION_STAGES for f in CORE_FEATURES},
    "subscription_tier": TIERS,
    "vendor_type": VENDOR_TYPES,
    "hemisphere": ("northern", "southern"),
    "health_segment": SEGMENTS,
}
KEY_COLUMNS: Final = ("supplier_id", "event_timestamp")


# What churn_v3 adds: per-feature usage and the billing cycle's position.
USAGE_FEATURES: Final = tuple(
    n for n in FEATURES if any(n.startswith(f"{f}_uses_") for f in CORE_FEATURES)
)
RENEWAL_FEATURES: Final = (
    "billing_cycle_days",
    "days_since_last_payment",
    "days_to_next_renewal",
    "logins_this_period",
)


def family_columns(family: Family) -> list[str]:
    return [n for n, (fam, _) in FEATURES.items() if fam == family]
