"""Benchmarks of the feature store: the build, one more day, historical retrieval, online
reads."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq


def build(workdir: str) -> dict:
    """``features build`` of the simulated folder: validation, DuckDB, write, Feast apply."""
    from wedsync_cs.feature_jobs import build_features
    from wedsync_cs.settings import Settings

    settings = Settings(home=Path(workdir) / "home")
    b = build_features(settings, Path(workdir) / "sim" / "raw")
    return {"rows": b.rows_total, "days": b.days_built, "inner_seconds": b.seconds}


def export_all_but_last_day(workdir: str) -> dict:
    """The simulated folder as it was a day earlier, written to ``workdir/yesterday``."""
    from features.as_of import export_at
    from features.feature_table import connect, data_span
    from features.raw_reader import load_raw

    tables = load_raw(Path(workdir) / "sim" / "raw")
    con = connect(tables.frames)
    _, last = data_span(con)
    con.close()
    yesterday = Path(workdir) / "yesterday"
    yesterday.mkdir(exist_ok=True)
    for name, frame in export_at(tables.frames, pd.Timestamp(last, tz="UTC")).items():
        pq.write_table(
            pa.Table.from_pandas(frame, preserve_index=False), yesterday / f"{name}.parquet"
        )
    return {"last_day_left_out": str(last)}


def full_build_of_yesterday(workdir: str) -> dict:
    """A full build of yesterday's folder (what the incremental build then extends)."""
    from wedsync_cs.feature_jobs import build_features
    from wedsync_cs.settings import Settings

    full = build_features(Settings(home=Path(workdir) / "home_inc"), Path(workdir) / "yesterday")
    return {"seconds": full.seconds, "rows_total": full.rows_total}


def incremental(workdir: str) -> dict:
    """The incremental build of today's folder over yesterday's table."""
    from wedsync_cs.feature_jobs import build_features
    from wedsync_cs.settings import Settings

    settings = Settings(home=Path(workdir) / "home_inc")
    began = time.perf_counter()
    inc = build_features(settings, Path(workdir) / "sim" / "raw", incremental=True)
    return {
        "incremental_seconds": inc.seconds,
        "incremental_wall_seconds": round(time.perf_counter() - began, 1),
        "days_built": inc.days_built,
        "rows_written": inc.rows_written,
        "rows_total": inc.rows_total,
    }


def historical(workdir: str, rows: int) -> dict:
    """Feast's point-in-time retrieval of ``churn_v3`` for random (supplier, instant) rows."""
    from feature_repo.readers import historical_features
    from feature_repo.store import open_store
    from wedsync_cs.feature_jobs import store_config
    from wedsync_cs.settings import Settings

    settings = Settings(home=Path(workdir) / "home")
    keys = pq.read_table(
        settings.feature_table_path, columns=["supplier_id", "event_timestamp"]
    ).to_pandas()
    rng = np.random.default_rng(0)
    entities = keys.iloc[rng.choice(len(keys), rows, replace=len(keys) < rows)]
    entities = entities.assign(
        event_timestamp=entities.event_timestamp
        + pd.to_timedelta(rng.integers(0, 6 * 24, len(entities)), unit="h")
    )
    store = open_store(store_config(settings))
    began = time.perf_counter()
    frame = historical_features(store, "churn_v3", entities)
    return {
        "rows": len(frame),
        "columns": frame.shape[1],
        "retrieval_seconds": round(time.perf_counter() - began, 1),
        "non_null_share": round(float(frame["logins_30d"].notna().mean()), 4),
    }


def online(workdir: str, store_kind: str, reads: int = 2000) -> dict:
    """Materialise every supplier into the online store, then read ``churn_v3`` one supplier
    at a time."""
    from feature_repo.store import apply_definitions, open_store
    from wedsync_cs.feature_jobs import materialize_features, store_config
    from wedsync_cs.settings import Settings

    settings = Settings(
        home=Path(workdir) / "home",
        online_store=store_kind,
        feast_project="bench_" + uuid.uuid4().hex[:8],
    )
    store = open_store(store_config(settings))
    apply_definitions(store, store_config(settings))
    began = time.perf_counter()
    materialize_features(settings)
    materialize_seconds = time.perf_counter() - began
    keys = pq.read_table(
        settings.feature_table_path, columns=["supplier_id", "event_timestamp"]
    ).to_pandas()
    ids = keys.loc[keys.event_timestamp == keys.event_timestamp.max(), "supplier_id"].tolist()
    service = store.get_feature_service("churn_v3")
    latencies = []
    for i in np.random.default_rng(1).choice(len(ids), reads):
        began = time.perf_counter()
        store.get_online_features(
            features=service, entity_rows=[{"supplier_id": ids[i]}]
        ).to_dict()
        latencies.append(time.perf_counter() - began)
    ms = np.array(latencies) * 1000
    if store_kind == "redis":
        store.teardown()
    return {
        "materialize_seconds": round(materialize_seconds, 1),
        "reads": reads,
        "p50_ms": round(float(np.percentile(ms, 50)), 2),
        "p99_ms": round(float(np.percentile(ms, 99)), 2),
    }
