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

from feature_repo.definitions import CHURN_SERVICE, HEALTH_SERVICE, SERVICES, service_columns
from feature_repo.readers import OnlineFeatureReader, historical_features
from feature_repo.store import open_store
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


def test_incremental_build_equals_full_rebuild(sim: Path, tmp_path: Path) -> None:
    tables = load_raw(sim / "raw")
    last = date(2024, 1, 1) + timedelta(days=DAYS - 1)
    day_before = export_at(tables.frames, pd.Timestamp(last, tz="UTC"))
    yesterday_raw = tmp_path / "raw_yesterday"
    yesterday_raw.mkdir()
    for name, frame in day_before.items():
        pq.write_table(
            pa.Table.from_pandas(frame, preserve_index=False), yesterday_raw / f"{name}.parquet"
        )
    inc = _settings(tmp_path / "inc")
    first = build_features(inc, yesterday_raw)
    second = build_features(inc, sim / "raw", incremental=True)
    assert second.days_built == 1 and second.rows_total == first.rows_total + second.rows_written
    before = inc.feature_table_path.stat().st_mtime_ns
    third = build_features(inc, sim / "raw", incremental=True)  # nothing new: nothing rewritten
    assert (third.days_built, third.rows_written) == (0, 0)
    assert third.rows_total == second.rows_total
    assert inc.feature_table_path.stat().st_mtime_ns == before
    full = _settings(tmp_path / "full")
    build_features(full, sim / "raw")
    key = ["event_timestamp", "supplier_id"]
    a = _table(inc).sort_values(key).reset_index(drop=True)
    b = _table(full).sort_values(key).reset_index(drop=True)
    pd.testing.assert_frame_equal(a, b)


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
