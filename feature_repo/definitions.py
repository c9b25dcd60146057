"""Feast objects for the supplier feature table."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Final

from feast import Entity, FeatureService, FeatureView, Field, FileSource, ValueType
from feast.types import Float64, Int64, String

from features.catalog import FAMILIES, FEATURES, family_columns

CHURN_SERVICE: Final = "churn_v1"
HEALTH_SERVICE: Final = "health_v1"
SOURCE_NAME: Final = "supplier_features"
# Rows are at most a week apart (the weekly cadence); older rows are stale.
FEATURE_TTL: Final = timedelta(days=8)
CHURN_FAMILIES: Final = tuple(f for f in FAMILIES if f != "health")
HEALTH_FAMILIES: Final = ("health",)
_FEAST_TYPE = {"float": Float64, "int": Int64, "category": String}

supplier = Entity(
    name="supplier",
    join_keys=["supplier_id"],
    value_type=ValueType.STRING,
    description="A WedSync supplier account (photographer, venue, florist, ...).",
)


def feature_views(source_path: Path) -> list[FeatureView]:
    """One view per feature family over the offline feature table at ``source_path``."""
    source = FileSource(
        name=SOURCE_NAME,
        path=str(Path(source_path).resolve()),
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
    by_family = {v.tags["family"]: v for v in views}
    return [
        FeatureService(
            name=CHURN_SERVICE,
            features=[by_family[f] for f in CHURN_FAMILIES],
            description="Features of the XGBoost churn model, version 1.",
        ),
        FeatureService(
            name=HEALTH_SERVICE,
            features=[by_family[f] for f in HEALTH_FAMILIES],
            description="Health factors, segment and score, version 1.",
        ),
    ]


def service_columns(service: str) -> list[str]:
    """Feature names a service returns, in catalogue order."""
    families = {CHURN_SERVICE: CHURN_FAMILIES, HEALTH_SERVICE: HEALTH_FAMILIES}[service]
    return [c for c, (fam, _) in FEATURES.items() if fam in families]
