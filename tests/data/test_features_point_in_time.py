"""Point-in-time correctness of the feature table, as a property over random days."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from features.as_of import export_at
from features.catalog import FEATURES, KEY_COLUMNS
from features.feature_table import build_feature_table, feature_rows_for
from features.raw_reader import load_raw
from simulator import SimulationConfig, simulate

START = date(2024, 1, 1)
DAYS = 200
CANDIDATES = [START + timedelta(days=d) for d in range(45, DAYS, 3)]
CANDIDATES.append(START + timedelta(DAYS - 1))  # the end of the data


@pytest.fixture(scope="module")
def raw(tmp_path_factory) -> dict[str, pd.DataFrame]:
    out = tmp_path_factory.mktemp("pit") / "set"
    simulate(SimulationConfig(suppliers=400, days=DAYS, seed=21, truth_paths=2), out)
    return load_raw(out / "raw").frames


@pytest.fixture(scope="module")
def full(raw) -> pd.DataFrame:
    return build_feature_table(raw, CANDIDATES)


def _rows_at(frame: pd.DataFrame, day: date) -> pd.DataFrame:
    stamp = pd.Timestamp(day + timedelta(days=1), tz="UTC")
    rows = frame[frame["event_timestamp"] == stamp]
    return rows.sort_values("supplier_id").reset_index(drop=True)


@settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(day=st.sampled_from(CANDIDATES))
def test_features_from_full_data_equal_features_from_the_export_at_t(raw, full, day) -> None:
    t = pd.Timestamp(day + timedelta(days=1), tz="UTC")
    truncated = build_feature_table(export_at(raw, t), [day])
    expected = _rows_at(full, day)
    assert len(expected) > 30
    pd.testing.assert_frame_equal(_rows_at(truncated, day), expected, check_exact=False, rtol=1e-6)


def test_labels_never_feed_features(raw) -> None:
    """Moving future cancellations to other future times changes no feature at t."""
    day = CANDIDATES[len(CANDIDATES) // 2]
    t = pd.Timestamp(day + timedelta(days=1), tz="UTC")
    cancellations = raw["cancellations"].copy()
    future = (cancellations["cancelled_at"] > t).to_numpy(dtype=bool)
    assert future.sum() > 10
    rng = np.random.default_rng(0)
    moved = pd.Series(cancellations.loc[future, "cancelled_at"].to_numpy())
    cancellations.loc[future, "cancelled_at"] = pd.array(
        rng.permutation(moved.to_numpy()), dtype=cancellations["cancelled_at"].dtype
    )
    dropped = {**raw, "cancellations": cancellations[~future].reset_index(drop=True)}
    a = build_feature_table(raw, [day])
    b = build_feature_table({**raw, "cancellations": cancellations}, [day])
    c = build_feature_table(dropped, [day])
    pd.testing.assert_frame_equal(a, b)
    pd.testing.assert_frame_equal(a, c)


def test_feature_table_has_the_catalogue_columns_and_types(full) -> None:
    assert list(full.columns) == [*KEY_COLUMNS, *FEATURES]
    for name, (_, kind) in FEATURES.items():
        want = {"float": "float64", "int": "int64", "category": "category"}[kind]
        assert str(full[name].dtype) == want, name
    assert full["event_timestamp"].dt.tz is not None
    assert not full.duplicated(list(KEY_COLUMNS)).any()
    assert full["health_score"].between(0, 100).all()


def test_rows_for_some_suppliers_equal_the_full_table_of_their_days(raw, full) -> None:
    """``feature_rows_for`` computes a few (supplier, day) rows without building whole days;
    every value, the cohort ratios included, is the full table's."""
    rng = np.random.default_rng(5)
    picked = full.iloc[rng.choice(len(full), 300, replace=False)]
    pairs = pd.DataFrame(
        {
            "supplier_id": picked["supplier_id"].to_numpy(),
            "day": (picked["event_timestamp"] - pd.Timedelta(days=1)).dt.date.to_numpy(),
        }
    )
    gone = raw["cancellations"].sort_values("cancelled_at").iloc[0]
    not_active = pd.DataFrame(
        {"supplier_id": [gone.supplier_id, "sup_nobody"], "day": [CANDIDATES[-1]] * 2}
    )
    assert gone.cancelled_at.date() < CANDIDATES[-1]
    got = feature_rows_for(raw, pd.concat([pairs, not_active, pairs.head(20)]))  # repeats too
    expected = picked.sort_values(["event_timestamp", "supplier_id"]).reset_index(drop=True)
    assert len(expected) == 300 and expected["event_timestamp"].nunique() > 10
    assert expected["logins_30d_vs_cohort"].notna().all()
    pd.testing.assert_frame_equal(got, expected, check_exact=False, rtol=1e-12)


def test_rows_for_refuses_pairs_without_their_columns(raw) -> None:
    with pytest.raises(KeyError, match="day"):
        feature_rows_for(raw, pd.DataFrame({"supplier_id": ["s1"]}))
