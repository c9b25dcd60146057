"""Feature-store jobs: the settings wired to the feature build, the store and the readers."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from feature_repo.build import (
    FeatureBuild,
    FeatureTableConfig,
    extends_last_build,
    materialize,
    stored_days,
)
from feature_repo.build import build_features as _build
from feature_repo.build import last_build as _last_build
from features.feature_table import Cadence
from features.raw_reader import RawTables
from training.dataset import SnapshotCadence, TrainingSet
from training.dataset import training_set as _training_set
from wedsync_cs.settings import Settings

if TYPE_CHECKING:  # Feast is slow to import: only the commands that need it import it
    from feature_repo.readers import PointInTimeReader
    from feature_repo.store import StoreConfig


def store_config(settings: Settings) -> StoreConfig:
    """The Feast store location and online-store choice of these settings."""
    from feature_repo.store import StoreConfig

    return StoreConfig(
        root=settings.feature_store_dir,
        feature_table=settings.feature_table_path,
        project=settings.feast_project,
        online_store=settings.online_store,
        redis_connection=settings.redis_connection,
    )


def table_config(settings: Settings) -> FeatureTableConfig:
    """The feature table, its store and the build's resources of these settings."""
    return FeatureTableConfig(
        table=settings.feature_table_path,
        store=store_config(settings),
        staging=settings.home_dir / "data" / "validated",
        threads=settings.threads,
        memory_limit=settings.feature_memory_limit,
        cadence=Cadence(settings.feature_history_every_days, settings.feature_recent_days),
    )


def build_features(
    settings: Settings,
    raw: Path,
    *,
    quarantine: Path | None = None,
    incremental: bool = False,
    extra_days: tuple[date, ...] = (),
    tables: RawTables | None = None,
) -> FeatureBuild:
    """:func:`feature_repo.build.build_features` under CS_HOME."""
    return _build(
        table_config(settings),
        raw,
        quarantine=quarantine,
        incremental=incremental,
        extra_days=extra_days,
        tables=tables,
    )


def last_build(settings: Settings) -> FeatureBuild:
    return _last_build(settings.feature_table_path)


def materialize_features(settings: Settings, as_of: datetime | None = None) -> datetime:
    """Load each supplier's latest feature row up to ``as_of`` (default: end of the data)."""
    return materialize(table_config(settings), as_of)


def training_set(
    settings: Settings,
    raw: Path,
    services: Sequence[str],
    cadence: SnapshotCadence,
    horizon_days: int,
    until: pd.Timestamp | None = None,
) -> TrainingSet:
    """:func:`training.dataset.training_set` under CS_HOME."""
    return _training_set(table_config(settings), raw, services, cadence, horizon_days, until)


def point_in_time_reader(settings: Settings, raw: Path, tables: RawTables) -> PointInTimeReader:
    """The point-in-time reader of the export ``raw``, using the offline store when its table
    was built from this folder."""
    from feature_repo.readers import PointInTimeReader
    from feature_repo.store import open_store

    if not extends_last_build(settings.feature_table_path, raw):
        return PointInTimeReader.of(tables.frames, threads=settings.threads)
    return PointInTimeReader.of(
        tables.frames,
        store=open_store(store_config(settings)),
        stored_days=stored_days(settings.feature_table_path),
        threads=settings.threads,
    )
