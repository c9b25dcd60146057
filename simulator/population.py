"""Who the suppliers are: static attributes drawn once per supplier, vectorised."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from features.contract import CORE_FEATURES, SUBSCRIPTION_TIERS, VENDOR_TYPES

TIER_PRICE = np.array([19.0, 49.0, 99.0, 249.0])  # starter, professional, scale, enterprise
TIER_SHARE = np.array([0.45, 0.33, 0.15, 0.07])
TIER_PRICE_SENSITIVITY = np.array([1.0, 0.75, 0.5, 0.3])
VENDOR_SHARE = np.array([0.24, 0.08, 0.14, 0.10, 0.07, 0.09, 0.07, 0.05, 0.07, 0.04, 0.05])
VENDOR_CLIENT_RATE = np.array([0.9, 0.6, 1.2, 1.3, 0.9, 0.5, 0.8, 1.1, 1.2, 0.8, 0.6])
COUNTRIES = ["GB", "US", "CA", "IE", "AU", "NZ", "ZA", "DE"]
COUNTRY_SHARE = np.array([0.33, 0.27, 0.06, 0.05, 0.14, 0.05, 0.06, 0.04])
# How likely each core feature is adopted early (client management and calendar come first).
FEATURE_POPULARITY = np.array([3.0, 1.6, 0.6, 0.5, 1.0, 1.2, 2.0, 0.9])
FIRST_NAMES = np.array(
    [
        "Amelia",
        "Oliver",
        "Isla",
        "Jack",
        "Ava",
        "Noah",
        "Mia",
        "Leo",
        "Grace",
        "Lucas",
        "Zara",
        "Ethan",
        "Chloe",
        "Liam",
        "Sofia",
        "Thabo",
        "Aroha",
        "Priya",
        "Sean",
        "Maya",
    ]
)
BUSINESS_WORDS = np.array(
    [
        "Golden",
        "Willow",
        "Ivory",
        "Harbour",
        "Meadow",
        "Velvet",
        "Juniper",
        "Coastal",
        "Evergreen",
        "Blush",
        "Summit",
        "Lantern",
        "Orchard",
        "Silver",
        "Wildflower",
        "Amber",
    ]
)
YEARLY_PRICE_MONTHS = 10.0  # a yearly plan costs ten monthly prices
assert len(VENDOR_SHARE) == len(VENDOR_TYPES) == len(VENDOR_CLIENT_RATE)
assert len(FEATURE_POPULARITY) == len(CORE_FEATURES) and len(TIER_PRICE) == len(SUBSCRIPTION_TIERS)


@dataclass(frozen=True)
class Population:
    """Static attributes of ``n`` suppliers (arrays of length n unless noted)."""

    signup_time: np.ndarray  # float64 days since the start of the data
    vendor: np.ndarray  # int8 index into VENDOR_TYPES
    country: np.ndarray  # int8 index into COUNTRIES
    tier0: np.ndarray  # int8 index into SUBSCRIPTION_TIERS at signup
    base_engagement: np.ndarray  # float32, the supplier's long-run engagement level
    friction: np.ndarray  # float32, how prone to support problems
    price_sensitivity: np.ndarray  # float32
    pay_risk: np.ndarray  # float32, chance a payment on a good card fails
    card_expiry_day: np.ndarray  # int32 day the card on file expires
    client_rate: np.ndarray  # float32 new clients per busy week
    feature_order: np.ndarray  # (n, 8) int8: the order in which features get adopted
    feature_affinity: np.ndarray  # (n, 8) float32: how much a supplier uses each feature
    cycle_days: np.ndarray  # int32 days between payments: 30 (monthly) or 365 (yearly plan)

    @property
    def n(self) -> int:
        return len(self.signup_time)

    @property
    def signup_day(self) -> np.ndarray:
        return np.floor(self.signup_time).astype(np.int32)

    @property
    def signup_week(self) -> np.ndarray:
        return (self.signup_day // 7).astype(np.int32)

    @property
    def feature_rank(self) -> np.ndarray:
        """(n, 8) int8: the place of each core feature in the supplier's adoption order (0 is
        adopted first), so that "feature f is adopted" reads ``feature_rank[:, f] < features``."""
        return np.argsort(self.feature_order, axis=1).astype(np.int8)

    @property
    def payment_months(self) -> np.ndarray:
        """Monthly prices charged per payment: 1 on a monthly plan, 10 on a yearly one (two months
        free, the usual discount for paying up front)."""
        return np.where(self.cycle_days >= 365, YEARLY_PRICE_MONTHS, 1.0)


def draw_population(n: int, days: int, rng: np.random.Generator) -> Population:
    """Draw ``n`` suppliers who sign up over the first ``days - 14`` days of the data, all on a
    monthly plan (:func:`with_yearly_plans` moves some to a yearly one)."""
    tier0 = rng.choice(len(TIER_PRICE), size=n, p=TIER_SHARE).astype(np.int8)
    signup_time = np.sort(rng.uniform(0.0, max(days - 14, 1), size=n))
    signup_day = np.floor(signup_time).astype(np.int32)
    gumbel = rng.gumbel(size=(n, len(FEATURE_POPULARITY)))
    vendor = rng.choice(len(VENDOR_SHARE), size=n, p=VENDOR_SHARE).astype(np.int8)
    return Population(
        signup_time=signup_time,
        vendor=vendor,
        country=rng.choice(len(COUNTRIES), size=n, p=COUNTRY_SHARE).astype(np.int8),
        tier0=tier0,
        base_engagement=(rng.normal(0.0, 0.9, n) + 0.12 * tier0).astype(np.float32),
        friction=rng.normal(0.0, 1.0, n).astype(np.float32),
        price_sensitivity=(TIER_PRICE_SENSITIVITY[tier0] * rng.lognormal(0.0, 0.15, n)).astype(
            np.float32
        ),
        pay_risk=(1 / (1 + np.exp(-rng.normal(-3.6, 0.8, n)))).astype(np.float32),
        card_expiry_day=(signup_day + rng.integers(45, 1100, n)).astype(np.int32),
        client_rate=(VENDOR_CLIENT_RATE[vendor] * rng.lognormal(0.0, 0.5, n)).astype(np.float32),
        feature_order=np.argsort(-(np.log(FEATURE_POPULARITY) + gumbel), axis=1).astype(np.int8),
        feature_affinity=rng.normal(0.0, 0.7, (n, len(FEATURE_POPULARITY))).astype(np.float32),
        cycle_days=np.full(n, 30, np.int32),
    )


def with_yearly_plans(pop: Population, share: float, rng: np.random.Generator) -> Population:
    """``pop`` with a share of suppliers on a yearly plan (billed every 365 days from signup).

    ``rng`` is a stream of its own, so that drawing the plans leaves every other draw unchanged.
    """
    yearly = rng.random(pop.n) < share
    return replace(pop, cycle_days=np.where(yearly, 365, 30).astype(np.int32))
