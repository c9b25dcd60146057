"""Feast for real: build and register, point-in-time retrieval, materialise, read online (SQLite
and Redis), incremental builds, and training sets with labels."""

from __future__ import annotations

import uuid
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from feature_repo.build import stored_days
from feature_repo.definitions import CHURN_SERVICE, HEALTH_SERVICE, SERVICES, service_columns
from feature_repo.readers import OnlineFeatureReader, historical_features
from feature_repo.store import open_store
from feature_repo.table_parts import part_files
from features.as_of import export_at
from features.raw_reader import load_raw
from simulator import SimulationConfig, simulate
from tests.conftest import require_service
from training.dataset import entity_rows, snapshot_days
from wedsync_cs.feature_jobs import (
    build_features,
    materialize_features,
    store_config,
    training_set,
)
from wedsync_cs.settings import Settings

DAYS = 150


@pytest.fixture(scope="module")
def sim(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("fs") / "set"
    simulate(SimulationConfig(suppliers=300, days=DAYS, seed=4, truth_paths=4), out)
    return out


def _settings(home: Path, **extra) -> Settings:
    return Settings(home=home, feature_recent_days=10, **extra)


@pytest.fixture(scope="module")
def built(sim, tmp_path_factory) -> Settings:
    settings = _settings(tmp_path_factory.mktemp("home"))
    build_features(settings, sim / "raw")
    return settings


def _table(settings: Settings) -> pd.DataFrame:
    return pd.read_parquet(settings.feature_table_path)


def test_build_writes_the_table_and_the_generated_repo_config(built: Settings) -> None:
    table = _table(built)
    stamps = table["event_timestamp"].drop_duplicates().sort_values()
    assert set(stamps.iloc[:-10].dt.dayofweek) == {0}  # weekly rows stamped Mondays 00:00
    assert stamps.iloc[-1] == pd.Timestamp("2024-01-01", tz="UTC") + pd.Timedelta(days=DAYS)
    yaml_text = (built.feature_store_dir / "feature_store.yaml").read_text()
    assert "type: duckdb" in yaml_text and str(built.feature_store_dir) in yaml_text
    store = open_store(store_config(built))
    assert {s.name for s in store.list_feature_services()} == set(SERVICES)
    assert {CHURN_SERVICE, HEALTH_SERVICE} <= set(SERVICES)
    for name, spec in SERVICES.items():  # each version serves exactly its own columns
        service = store.get_feature_service(name)
        served = [f.name for v in service.feature_view_projections for f in v.features]
        assert sorted(served) == sorted(spec.columns), name


def test_opening_the_store_to_read_writes_nothing(built: Settings) -> None:
    def files() -> dict[Path, tuple[int, int]]:
        return {
            p: (p.stat().st_mtime_ns, p.stat().st_size)
            for p in built.feature_store_dir.rglob("*")
            if p.is_file()
        }

    before = files()
    store = open_store(store_config(built))
    assert CHURN_SERVICE in {s.name for s in store.list_feature_services()}
    assert files() == before


def test_historical_retrieval_is_point_in_time(built: Settings) -> None:
    table = _table(built)
    store = open_store(store_config(built))
    rows = table.sample(200, random_state=1)[["supplier_id", "event_timestamp"]]
    # an entity 3 days after a weekly row gets that row; 20 days after, nothing (stale: TTL)
    later = rows.assign(event_timestamp=rows["event_timestamp"] + pd.Timedelta(hours=5))
    got = historical_features(store, HEALTH_SERVICE, later)
    expected = rows.merge(table, on=["supplier_id", "event_timestamp"])
    np.testing.assert_allclose(got["health_score"], expected["health_score"], rtol=1e-6)
    assert list(got["supplier_id"]) == list(rows["supplier_id"])
    stale = historical_features(
        store,
        HEALTH_SERVICE,
        rows.assign(event_timestamp=rows["event_timestamp"] - pd.Timedelta(days=400)),
    )
    assert stale["health_score"].isna().all()


def _online_matches_latest(settings: Settings) -> None:
    materialize_features(settings)
    store = open_store(store_config(settings))
    table = _table(settings)
    latest = table.sort_values("event_timestamp").groupby("supplier_id").tail(1)
    latest = latest[latest["event_timestamp"] == table["event_timestamp"].max()]
    ids = latest["supplier_id"].head(25).tolist()
    online = store.get_online_features(
        features=store.get_feature_service(CHURN_SERVICE),
        entity_rows=[{"supplier_id": s} for s in [*ids, "nobody"]],
    ).to_df()
    # the service's reader answers the same values, whichever store
    answer = store.get_online_features(
        features=store.get_feature_service(CHURN_SERVICE),
        entity_rows=[{"supplier_id": s} for s in [*ids, "nobody"]],
    ).to_dict()
    plain = OnlineFeatureReader(store).values([*ids, "nobody"], [CHURN_SERVICE])
    for column in service_columns(CHURN_SERVICE):
        assert plain.values[column] == answer[column], column
    assert plain.found.tolist() == [True] * len(ids) + [False]
    assert online["logins_30d"].iloc[-1] is None or pd.isna(online["logins_30d"].iloc[-1])
    online = online.iloc[:-1].set_index("supplier_id")
    want = latest.set_index("supplier_id").loc[ids]
    for column in (
        "logins_30d",
        "days_since_last_login",
        "features_used_30d",
        "subscription_tier",
        "tenure_days",
    ):
        got = online[column].to_numpy()
        exp = want[column].astype(object if column == "subscription_tier" else float).to_numpy()
        if column == "subscription_tier":
            assert list(got) == list(exp)
        else:
            np.testing.assert_allclose(got.astype(float), exp, rtol=1e-6)


def test_online_features_sqlite(built: Settings) -> None:
    _online_matches_latest(built)


@pytest.mark.integration
def test_online_features_redis(sim: Path, tmp_path: Path) -> None:
    require_service("Redis", "127.0.0.1", 6379)
    import redis

    project = f"t{uuid.uuid4().hex[:12]}"
    settings = _settings(tmp_path, online_store="redis", feast_project=project)
    build_features(settings, sim / "raw")
    try:
        _online_matches_latest(settings)
        keys = redis.Redis(host="127.0.0.1", port=6379).keys("*")
        assert keys, "materialisation wrote nothing to Redis"
    finally:
        open_store(store_config(settings)).teardown()


def _write_export(frames: dict[str, pd.DataFrame], folder: Path) -> Path:
    folder.mkdir()
    for name, frame in frames.items():
        table = pa.Table.from_pandas(frame, preserve_index=False)
        pq.write_table(table, folder / f"{name}.parquet")
    return folder


def _files(folder: Path) -> dict[str, int]:
    return {p.name: p.stat().st_mtime_ns for p in folder.iterdir()}


def test_incremental_builds_equal_a_full_rebuild(sim: Path, tmp_path: Path) -> None:
    """A table built day by day (builds adding two days, a week's Sunday among them) holds
    exactly the rows of a full rebuild of the last export: integers equal, floats to the last
    bits (running sums may add in another order)."""
    tables = load_raw(sim / "raw")
    end = pd.Timestamp(date(2024, 1, 1) + timedelta(days=DAYS), tz="UTC")
    # the exports of the evenings of the 6th, 4th and 2nd day before the last, and the last
    cuts = [end - pd.Timedelta(days=k) for k in (6, 4, 2, 1)]
    exports = [
        _write_export(export_at(tables.frames, cut), tmp_path / f"raw_{i}")
        for i, cut in enumerate(cuts)
    ]
    inc = _settings(tmp_path / "inc")
    build = build_features(inc, exports[0])
    days_built = []
    for raw in [*exports[1:], sim / "raw"]:
        before, last_built = build.rows_total, max(stored_days(inc.feature_table_path))
        build = build_features(inc, raw, incremental=True)
        # the daily tables validated from the day after the last one built
        assert build.validated_after == last_built.isoformat()
        assert build.rows_total == before + build.rows_written
        # computed from the running totals of the build before, not the whole history
        assert build.state_cutoff is not None
        days_built.append(build.days_built)
    assert days_built == [2, 2, 1, 1]
    assert len(part_files(inc.feature_table_path)) == 5  # one part per build, none rewritten
    files = _files(inc.feature_table_path)
    again = build_features(inc, sim / "raw", incremental=True)  # nothing new: nothing written
    assert (again.days_built, again.rows_written, again.rows_total) == (0, 0, build.rows_total)
    assert _files(inc.feature_table_path) == files
    # the daily rows of the earlier exports' recent days stay: the rebuild makes them too
    full = _settings(tmp_path / "full")
    build_features(full, sim / "raw", extra_days=tuple(stored_days(inc.feature_table_path)))
    key = ["event_timestamp", "supplier_id"]
    a = _table(inc).sort_values(key).reset_index(drop=True)
    b = _table(full).sort_values(key).reset_index(drop=True)
    floats = [c for c in b.columns if b[c].dtype == "float64"]
    pd.testing.assert_frame_equal(a.drop(columns=floats), b.drop(columns=floats))
    pd.testing.assert_frame_equal(a[floats], b[floats], check_exact=False, rtol=1e-12, atol=0)


def test_training_set_labels_match_the_simulators_outcomes(sim: Path, built: Settings) -> None:
    tables = load_raw(sim / "raw").frames
    until = pd.Timestamp("2024-01-01", tz="UTC") + pd.Timedelta(days=DAYS)
    days = snapshot_days("weekly", date(2024, 1, 1), date(2024, 1, 1) + timedelta(DAYS - 1))
    entities = entity_rows(tables, days, 30, until)
    truth = pd.read_parquet(sim / "truth.parquet")
    merged = entities.merge(
        truth,
        left_on=["supplier_id", "event_timestamp"],
        right_on=["supplier_id", "as_of"],
        how="outer",
        indicator=True,
    )
    assert (merged["_merge"] == "both").all()  # the same active suppliers at the same instants
    assert (merged["label_x"] == merged["label_y"]).all()
    assert (entities["event_timestamp"] + pd.Timedelta(days=30) <= until).all()
    store = open_store(store_config(built))
    frame = historical_features(store, CHURN_SERVICE, entities)
    assert len(frame) == len(entities) and "label" in frame.columns
    assert frame[service_columns(CHURN_SERVICE)].notna().any().all()
    assert frame["logins_30d"].notna().mean() > 0.99


def test_snapshot_cadences() -> None:
    first, last = date(2024, 1, 3), date(2024, 3, 31)
    assert len(snapshot_days("daily", first, last)) == 89
    weekly = snapshot_days("weekly", first, last)
    assert weekly[0] == date(2024, 1, 7) and {d.weekday() for d in weekly} == {6}
    assert snapshot_days("monthly", first, last) == [
        date(2024, 1, 31),
        date(2024, 2, 29),
        date(2024, 3, 31),
    ]
    with pytest.raises(ValueError, match="unknown cadence"):
        snapshot_days("hourly", first, last)  # type: ignore[arg-type]


def test_monthly_training_set_gets_features_of_exactly_its_days(sim: Path, tmp_path) -> None:
    settings = _settings(tmp_path)
    frame = training_set(settings, sim / "raw", (CHURN_SERVICE,), "monthly", 30).frame
    stamps = sorted(frame["event_timestamp"].unique())
    assert [s.strftime("%m-%d") for s in stamps] == ["02-01", "03-01", "04-01"]
    table = _table(settings)
    exact = frame.merge(table, on=["supplier_id", "event_timestamp"], suffixes=("", "_row"))
    assert len(exact) == len(frame)  # a feature row at exactly each entity's instant
    np.testing.assert_allclose(exact["logins_30d"], exact["logins_30d_row"])
    assert set(frame["label"]) <= {0, 1} and frame["label"].sum() > 0


def _online_rows(db: Path) -> dict[str, list[tuple]]:
    """Every row of every table of a SQLite online store, in key order."""
    import sqlite3

    with sqlite3.connect(db) as conn:
        names = [r[0] for r in conn.execute("select name from sqlite_master where type='table'")]
        return {
            name: conn.execute(
                f'select * from "{name}" order by entity_key, feature_name'
            ).fetchall()
            for name in names
        }


def test_batched_sqlite_writes_equal_feasts_own(sim: Path, tmp_path: Path) -> None:
    """The online store's batched writes (feature_repo.online_sqlite) leave exactly the rows
    Feast's own SQLite store writes, on a first load and on a reload over them."""
    from feast import FeatureStore
    from feast.repo_config import RepoConfig

    from feature_repo.definitions import FEATURE_TTL, feature_views
    from feature_repo.store import apply_definitions, repo_config_dict

    settings = _settings(tmp_path / "home")
    build_features(settings, sim / "raw")
    end = materialize_features(settings)
    materialize_features(settings)  # the same rows again: updated in place, not added
    cfg = store_config(settings)
    ours = repo_config_dict(cfg)
    assert ours["online_store"]["type"] == "feature_repo.online_sqlite.BatchedSqliteOnlineStore"
    feasts = {**ours, "online_store": {"type": "sqlite", "path": str(tmp_path / "feast.db")}}
    feast_store = FeatureStore(config=RepoConfig(repo_path=str(cfg.root), **feasts))
    apply_definitions(feast_store, cfg)  # creates the tables of Feast's own store
    feast_store.materialize(start_date=end - FEATURE_TTL, end_date=end)
    got, expected = _online_rows(cfg.root / "online.db"), _online_rows(tmp_path / "feast.db")
    assert set(got) == set(expected) and len(expected) == len(feature_views(cfg.feature_table))
    for name, rows in expected.items():
        assert rows, f"Feast wrote no row to {name}"
        assert got[name] == rows, name


def test_batched_sqlite_reads_equal_feasts_own(built: Settings) -> None:
    """Every supplier's row of every view, an unknown id and a repeated one: the lean reads
    answer what Feast's own SQLite store answers (timestamps, values, order)."""
    from feast.infra.online_stores.sqlite import SqliteOnlineStore
    from feast.protos.feast.types.EntityKey_pb2 import EntityKey
    from feast.protos.feast.types.Value_pb2 import Value

    from feature_repo.online_sqlite import BatchedSqliteOnlineStore

    materialize_features(built)
    store = open_store(store_config(built))
    ids = [*sorted(_table(built)["supplier_id"].unique()), "nobody"]
    ids.append(ids[0])
    keys = [EntityKey(join_keys=["supplier_id"], entity_values=[Value(string_val=i)]) for i in ids]
    ours, feasts = BatchedSqliteOnlineStore(), SqliteOnlineStore()
    for view in store.list_feature_views():
        got = ours.online_read(store.config, view, keys)
        expected = feasts.online_read(store.config, view, keys)
        assert got == expected, view.name
        assert expected[-2] == (None, None) and expected[0][1]  # unknown; a known one
