"""Open the Feast store described by the settings; publish and materialise the feature table."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import yaml
from feast import FeatureStore
from feast.repo_config import RepoConfig

from feature_repo.definitions import feature_services, feature_views, supplier
from feature_repo.online_sqlite import STORE_TYPE as BATCHED_SQLITE


@dataclass(frozen=True)
class StoreConfig:
    """Where the store lives and which online store it uses (built from the settings)."""

    root: Path
    feature_table: Path
    project: str = "wedsync_cs"
    online_store: Literal["sqlite", "redis"] = "sqlite"
    redis_connection: str = "127.0.0.1:6379,db=0"


def repo_config_dict(cfg: StoreConfig) -> dict:
    """The feature_store.yaml content: DuckDB offline store, SQLite (Feast's, with batched
    writes: :mod:`feature_repo.online_sqlite`) or Redis online store."""
    root = cfg.root
    online = (
        {"type": BATCHED_SQLITE, "path": str(root / "online.db")}
        if cfg.online_store == "sqlite"
        else {"type": "redis", "connection_string": cfg.redis_connection}
    )
    return {
        "project": cfg.project,
        "registry": str(root / "registry.db"),
        "provider": "local",
        "offline_store": {"type": "duckdb"},
        "online_store": online,
        "entity_key_serialization_version": 3,
    }


def write_repo_config(cfg: StoreConfig) -> Path:
    """Write the generated ``feature_store.yaml`` at the store's root (for Feast's own CLI);
    the platform itself opens the store from the settings, not from this file."""
    cfg.root.mkdir(parents=True, exist_ok=True)
    path = cfg.root / "feature_store.yaml"
    path.write_text(
        "# Generated from the CS_* settings by wedsync-cs; edits are overwritten.\n"
        + yaml.safe_dump(repo_config_dict(cfg), sort_keys=False)
    )
    return path


def open_store(cfg: StoreConfig) -> FeatureStore:
    """The Feast store at ``cfg.root``, configured from ``cfg``; opening it writes nothing."""
    # ibis (Feast's DuckDB offline store) calls a DuckDB method DuckDB 2 deprecates; Feast's
    # import installs its own warning filters, so this one is set after it.
    warnings.filterwarnings("ignore", message=".*fetch_arrow_table", category=DeprecationWarning)
    config = repo_config_dict(cfg)
    return FeatureStore(
        config=RepoConfig(repo_path=str(cfg.root), **config), repo_path=str(cfg.root)
    )


def apply_definitions(store: FeatureStore, cfg: StoreConfig) -> None:
    """Publish the entity, views and services (and the generated ``feature_store.yaml``)."""
    write_repo_config(cfg)
    views = feature_views(cfg.feature_table)
    store.apply([supplier, *views, *feature_services(views)])
