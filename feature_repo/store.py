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


@dataclass(frozen=True)
class StoreConfig:
    """Where the store lives and which online store it uses (built from the settings)."""

    root: Path
    feature_table: Path
    project: str = "wedsync_cs"
    online_store: Literal["sqlite", "redis"] = "sqlite"
    redis_connection: str = "127.0.0.1:6379,db=0"


def repo_config_dict(cfg: StoreConfig) -> dict:
    """The feature_store.yaml content: DuckDB offline store, SQLite or Redis online store."""
    root = cfg.root
    online = (
        {"type": "sqlite", "path": str(root / "online.db")}
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


def open_store(cfg: StoreConfig) -> FeatureStore:
    """The Feast store at ``cfg.root``; writes the generated feature_store.yaml there."""
    # ibis (Feast's DuckDB offline store) calls a DuckDB method DuckDB 2 deprecates; Feast's
    # import installs its own warning filters, so this one is set after it.
    warnings.filterwarnings("ignore", message=".*fetch_arrow_table", category=DeprecationWarning)
    root = cfg.root
    root.mkdir(parents=True, exist_ok=True)
    config = repo_config_dict(cfg)
    (root / "feature_store.yaml").write_text(
        "# Generated from the CS_* settings by wedsync-cs; edits are overwritten.\n"
        + yaml.safe_dump(config, sort_keys=False)
    )
    return FeatureStore(config=RepoConfig(repo_path=str(root), **config), repo_path=str(root))


def apply_definitions(store: FeatureStore, cfg: StoreConfig) -> None:
    views = feature_views(cfg.feature_table)
    store.apply([supplier, *views, *feature_services(views)])
