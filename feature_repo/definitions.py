"""Feast objects for the supplier feature table."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Final

from feast import Entity, FeatureService, FeatureView, Field, FileSource, ValueType
from feast.types import Float64, Int64, String

from feature_repo.table_parts import parts_glob
from features.catalog import (
    FAMILIES,
    FEATURES,
    RENEWAL_FEATURES,
    USAGE_FEATURES,
    Family,
    family_columns,
)

SOURCE_NAME: Final = "supplier_features"
# Rows are at most a week apart (the weekly cadence); older rows are stale.
FEATURE_TTL: Final = timedelta(days=8)
CHURN_FAMILIES: Final = tuple(f for f in FAMILIES if f != "health")
HEALTH_FAMILIES: Final[tuple[Family, ...]] = ("health",)


@dataclass(frozen=True)
class ServiceSpec:
    """A versioned feature service: the families it reads, less the features it leaves out.

    A version, once released, keeps its columns: a feature added to a family later is left out
    of the earlier versions by name (``tests/unit/test_monotone.py`` pins churn_v1's columns).
    """

    name: str
    families: tuple[Family, ...]
    description: str
    without: tuple[str, ...] = ()

    @property
    def columns(self) -> list[str]:
        """Feature names, in catalogue order."""
        return [
            c for c, (fam, _) in FEATURES.items() if fam in self.families and c not in self.without
        ]


# churn_v2 replaces the two 30-day login differences of v1, which a long quiet spell can raise
# (both windows empty), with recent-to-long-run login rate ratios and the shares of a window's
# logins in its most recent part, which no quiet spell raises.
_V1_ONLY: Final = ("logins_30d_change", "logins_30d_ratio_prev_30d")
_V2_ADDED: Final = (
    "login_ewm_ratio_7d_90d",
    "login_ewm_ratio_30d_90d",
    "logins_7d_share_of_30d",
    "logins_30d_share_of_60d",
    "logins_30d_share_of_90d",
)
# churn_v3 adds what differs between exports: per core feature its uses over 7/30/90 days and
# their trend (some features signal loyalty, others the opposite, and which depends on the
# source), and where the supplier stands in its billing cycle (a plan is decided at renewal).
_V3_ADDED: Final = (*USAGE_FEATURES, *RENEWAL_FEATURES)
SERVICES: Final[dict[str, ServiceSpec]] = {
    s.name: s
    for s in (
        ServiceSpec(
            "churn_v1",
            CHURN_FAMILIES,
            "Features of the XGBoost churn model, version 1.",
            (*_V2_ADDED, *_V3_ADDED),
        ),
        ServiceSpec(
            "churn_v2",
            CHURN_FAMILIES,
            "Features of the XGBoost churn model, version 2: login trend as ratios and shares.",
            (*_V1_ONLY, *_V3_ADDED),
        ),
        ServiceSpec(
            "churn_v3",
            CHURN_FAMILIES,
            "Features of the XGBoost churn model, version 3: v2 with per-feature usage and the "
            "billing cycle's position.",
            _V1_ONLY,
        ),
        ServiceSpec("health_v1", HEALTH_FAMILIES, "Health factors, segment and score, version 1."),
    )
}
CHURN_SERVICE: Final = "churn_v3"  # the current version: the default experiment's
HEALTH_SERVICE: Final = "health_v1"
_FEAST_TYPE = {"float": Float64, "int": Int64, "category": String}

supplier = Entity(
    name="supplier",
    join_keys=["supplier_id"],
    value_type=ValueType.STRING,
    description="A WedSync supplier account (photographer, venue, florist, ...).",
)


def feature_views(source_path: Path) -> list[FeatureView]:
    """One view per feature family over the offline feature table at ``source_path`` (a folder
    of Parquet parts, read through a glob of them)."""
    source = FileSource(
        name=SOURCE_NAME,
        path=parts_glob(Path(source_path)),
        timestamp_field="event_timestamp",
        description="Supplier features, one row per active supplier and grid day.",
    )
    return [
        FeatureView(
            name=f"supplier_{family}",
            entities=[supplier],
            ttl=FEATURE_TTL,
            online=True,
            source=source,
            tags={"family": family},
            schema=[
                Field(name=c, dtype=_FEAST_TYPE[FEATURES[c][1]]) for c in family_columns(family)
            ],
        )
        for family in FAMILIES
    ]


def feature_services(views: list[FeatureView]) -> list[FeatureService]:
    """Every versioned service, each a projection of the family views onto its columns."""
    by_family = {v.tags["family"]: v for v in views}
    services = []
    for spec in SERVICES.values():
        columns = set(spec.columns)
        services.append(
            FeatureService(
                name=spec.name,
                features=[
                    by_family[f][[c for c in family_columns(f) if c in columns]]
                    for f in spec.families
                ],
                description=spec.description,
            )
        )
    return services


def service_columns(service: str) -> list[str]:
    """Feature names a service returns, in catalogue order.

    Raises:
        KeyError: no such service (the message lists the defined ones).
    """
    if service not in SERVICES:
        raise KeyError(f"no feature service {service!r}; defined: {sorted(SERVICES)}")
    return SERVICES[service].columns
