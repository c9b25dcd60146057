"""The outcome monitor's bulk reader (ADBC) on SQLite and on the real PostgreSQL: rows written by
the daily job's own ``upsert`` come back exactly, joined with the health score's probability of
the same supplier and day, within the days asked for."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import func, select

from serving.db.migrate import engine_for, upgrade
from serving.db.models import ChurnPrediction, CustomerHealth, Supplier
from serving.db.prediction_history import read_prediction_history, stored_day_range
from serving.db.scores import upsert
from tests.integration.stored_rows import health_row, prediction_row, supplier_row

DAY = date(2025, 6, 1)


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'ops.db'}"
    return request.getfixturevalue("postgres_uri")


def test_bulk_reader_returns_the_stored_rows_with_the_health_probability(database_url) -> None:
    engine = engine_for(database_url)
    upgrade(engine)
    try:
        assert stored_day_range(engine) is None
        cancelled = datetime(2025, 6, 2, 9, 30, tzinfo=UTC)
        upsert(engine, Supplier, [supplier_row(s) for s in ("a", "b", "c")], keys=("supplier_id",))
        upsert(engine, Supplier, [supplier_row("d", cancelled)], keys=("supplier_id",))
        days = [DAY + timedelta(days=k) for k in range(4)]
        predictions, health = [], []
        for k, day in enumerate(days):
            for j, s in enumerate(("a", "b", "c", "d")):
                predictions.append(prediction_row(s, day, round(0.01 * (10 * k + j + 1), 4)))
                if s == "b" and k == 1:
                    continue  # no health row that day
                health.append(health_row(s, day, None if s == "c" else 0.5 + 0.01 * (10 * k + j)))
        upsert(engine, ChurnPrediction, predictions)
        upsert(engine, CustomerHealth, health)
        assert stored_day_range(engine) == (days[0], days[-1])

        history = read_prediction_history(engine, days[1], days[2])
    finally:
        engine.dispose()
    frame = history.frame.sort_values(["day", "supplier_id"]).reset_index(drop=True)
    assert isinstance(history.frame["supplier_id"].dtype, pd.CategoricalDtype)
    assert frame["supplier_id"].astype(str).tolist() == ["a", "b", "c", "d"] * 2
    assert frame["day"].tolist() == [pd.Timestamp(days[1])] * 4 + [pd.Timestamp(days[2])] * 4
    expected_churn = [0.01 * (10 * k + j + 1) for k in (1, 2) for j in range(4)]
    assert frame["churn_probability"].to_numpy() == pytest.approx(expected_churn, abs=1e-12)
    health_p = frame["health_churn_probability"].to_numpy()
    expected_health = [
        np.nan if (s == "c" or (s == "b" and k == 1)) else 0.5 + 0.01 * (10 * k + j)
        for k in (1, 2)
        for j, s in enumerate("abcd")
    ]
    np.testing.assert_allclose(health_p, expected_health, atol=1e-12)
    directory = history.directory.set_index("supplier_id")
    assert directory.loc["d", "cancelled_at"] == pd.Timestamp(cancelled)
    assert pd.isna(directory.loc["a", "cancelled_at"])


def test_bulk_reader_refuses_days_in_the_wrong_order(tmp_path) -> None:
    engine = engine_for(f"sqlite:///{tmp_path / 'ops.db'}")
    upgrade(engine)
    try:
        with pytest.raises(ValueError, match="after the last"):
            read_prediction_history(engine, DAY, DAY - timedelta(days=1))
    finally:
        engine.dispose()


def test_a_long_run_of_null_probabilities_first_reads_as_missing(tmp_path) -> None:
    """SQLite's Arrow driver types a column by its first rows: 3,000 null health probabilities
    before the first number still read as NaN, then the numbers."""
    engine = engine_for(f"sqlite:///{tmp_path / 'ops.db'}")
    upgrade(engine)
    ids = [f"s{k:05d}" for k in range(4_000)]
    try:
        upsert(engine, Supplier, [supplier_row(s) for s in ids], keys=("supplier_id",))
        upsert(engine, ChurnPrediction, [prediction_row(s, DAY, 0.1) for s in ids])
        rows = [health_row(s, DAY, None if k < 3_000 else 0.25) for k, s in enumerate(ids)]
        upsert(engine, CustomerHealth, rows)
        frame = read_prediction_history(engine, DAY, DAY).frame
    finally:
        engine.dispose()
    by_id = frame.set_index(frame["supplier_id"].astype(str))["health_churn_probability"]
    assert by_id[ids[:3_000]].isna().all()
    assert (by_id[ids[3_000:]] == 0.25).all()


def test_rows_this_process_rewrote_are_read_as_they_are_now(tmp_path) -> None:
    """The Arrow driver's own copy of SQLite, opening the file while this process's connections
    hold it, read pages they had rewritten as they were before (two copies of SQLite in one
    process); the reader closes the engine's connections first."""
    engine = engine_for(f"sqlite:///{tmp_path / 'ops.db'}")
    upgrade(engine)
    try:
        upsert(engine, Supplier, [supplier_row(s) for s in ("a", "b")], keys=("supplier_id",))
        with engine.connect() as connection:  # open while the driver reads and rows change
            upsert(engine, ChurnPrediction, [prediction_row(s, DAY, 0.1) for s in ("a", "b")])
            frame = read_prediction_history(engine, DAY, DAY).frame
            assert frame["churn_probability"].max() == 0.1
            upsert(engine, ChurnPrediction, [prediction_row("a", DAY, 0.7)])
            assert connection.execute(select(func.count()).select_from(Supplier)).scalar() == 2
        frame = read_prediction_history(engine, DAY, DAY).frame
    finally:
        engine.dispose()
    assert sorted(frame["churn_probability"]) == [0.1, 0.7]
