"""The outcome monitor's prediction archive on SQLite and on the real PostgreSQL: a finished day
is read from the database once and from its Parquet copy after; a day written again (a new
token in ``scored_days``), being written, or never finished is read from the database; whatever
the source, the rows are the database's. Migration 0007 records the days stored before it."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import select

from serving.db.migrate import engine_for, upgrade
from serving.db.models import ChurnPrediction, CustomerHealth, ScoredDay, Supplier
from serving.db.prediction_archive import archived_prediction_history
from serving.db.prediction_history import read_prediction_history
from serving.db.scored_days import begin_day, day_tokens, finish_day
from serving.db.scores import upsert
from tests.integration.stored_rows import health_row, prediction_row, supplier_row

DAY = date(2025, 6, 1)
DAYS = [DAY + timedelta(days=k) for k in range(4)]


def _rows(suppliers: list[str], day: date, shift: float = 0.0) -> tuple[list, list]:
    k = (day - DAY).days
    predictions = [
        prediction_row(s, day, round(0.01 * (10 * k + j + 1) + shift, 6))
        for j, s in enumerate(suppliers)
    ]
    health = [
        health_row(s, day, None if j == 1 else round(0.5 + 0.01 * (10 * k + j) + shift, 6))
        for j, s in enumerate(suppliers)
    ]
    return predictions, health


def _score(engine, suppliers: list[str], day: date, shift: float = 0.0) -> None:
    """Store a day as the daily job does: the ledger's row removed, the rows, the new token."""
    predictions, health = _rows(suppliers, day, shift)
    begin_day(engine, day)
    upsert(engine, CustomerHealth, health)
    upsert(engine, ChurnPrediction, predictions)
    finish_day(engine, day, len(health), len(predictions))


def _same(got: pd.DataFrame, expected: pd.DataFrame) -> None:
    def canonical(frame: pd.DataFrame) -> pd.DataFrame:
        frame = frame.assign(supplier_id=frame["supplier_id"].astype(str))
        return frame.sort_values(["day", "supplier_id"]).reset_index(drop=True)

    pd.testing.assert_frame_equal(canonical(got), canonical(expected))


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request, tmp_path):
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'ops.db'}"
    else:
        url = request.getfixturevalue("postgres_uri")
    engine = engine_for(url)
    upgrade(engine)
    upsert(engine, Supplier, [supplier_row(s) for s in "abcde"], keys=("supplier_id",))
    yield engine
    engine.dispose()


def test_a_finished_day_is_read_from_the_database_once_then_from_its_copy(
    engine, tmp_path: Path
) -> None:
    folder = tmp_path / "archive"
    for day in DAYS[:3]:
        _score(engine, ["a", "b", "c"], day)
    # the fourth day stored without the ledger (another loader): never copied
    predictions, health = _rows(["a", "b", "c", "d"], DAYS[3])
    upsert(engine, CustomerHealth, health)
    upsert(engine, ChurnPrediction, predictions)

    first, use = archived_prediction_history(engine, folder, DAYS[0], DAYS[3])
    assert (use.from_archive, use.from_database, use.archived) == (0, 4, 3)
    assert use.not_archived == (DAYS[3],)
    assert sorted(p.name for p in folder.glob("day=*")) == [
        f"day={d.isoformat()}.parquet" for d in DAYS[:3]
    ]
    truth = read_prediction_history(engine, DAYS[0], DAYS[3]).frame
    _same(first.frame, truth)
    assert first.frame["health_churn_probability"].isna().sum() == 4  # supplier b, each day

    second, use = archived_prediction_history(engine, folder, DAYS[0], DAYS[3])
    assert (use.from_archive, use.from_database, use.archived) == (3, 1, 0)
    _same(second.frame, truth)

    # a row changed behind the ledger's back is not seen: the copy stands for the day while
    # its token does (only the daily job writes these tables, through the ledger)
    upsert(engine, ChurnPrediction, _rows(["a"], DAYS[0], shift=0.5)[0])
    third, _ = archived_prediction_history(engine, folder, DAYS[0], DAYS[3])
    _same(third.frame, truth)

    # the daily job writes day 2 again, with a new supplier: read from the database, copied anew
    _score(engine, ["a", "b", "c", "e"], DAYS[1], shift=0.25)
    fourth, use = archived_prediction_history(engine, folder, DAYS[0], DAYS[3])
    assert (use.from_archive, use.from_database, use.archived) == (2, 2, 1)
    rescored = fourth.frame[fourth.frame["day"] == pd.Timestamp(DAYS[1])]
    assert sorted(rescored["supplier_id"].astype(str)) == ["a", "b", "c", "e"]
    assert rescored["churn_probability"].min() == pytest.approx(0.11 + 0.25)
    fifth, use = archived_prediction_history(engine, folder, DAYS[0], DAYS[3])
    assert use.from_archive == 3
    _same(fifth.frame, fourth.frame)
    assert "e" in set(fifth.frame["supplier_id"].astype(str))


def test_a_day_being_written_is_read_from_the_database_and_its_copy_removed(
    engine, tmp_path: Path
) -> None:
    folder = tmp_path / "archive"
    for day in DAYS[:2]:
        _score(engine, ["a", "b", "c"], day)
    archived_prediction_history(engine, folder, DAYS[0], DAYS[1])
    begin_day(engine, DAYS[1])  # a run has started writing the day again
    upsert(engine, ChurnPrediction, _rows(["a"], DAYS[1], shift=0.5)[0])
    history, use = archived_prediction_history(engine, folder, DAYS[0], DAYS[1])
    assert (use.from_archive, use.from_database, use.archived, use.removed) == (1, 1, 0, 1)
    assert not (folder / f"day={DAYS[1].isoformat()}.parquet").exists()
    _same(history.frame, read_prediction_history(engine, DAYS[0], DAYS[1]).frame)
    day_two = history.frame[history.frame["day"] == pd.Timestamp(DAYS[1])]
    assert day_two["churn_probability"].max() == pytest.approx(0.11 + 0.5)


def test_copies_of_another_database_or_unreadable_ones_are_not_trusted(
    engine, tmp_path: Path
) -> None:
    folder = tmp_path / "archive"
    for day in DAYS[:2]:
        _score(engine, ["a", "b"], day)
    archived_prediction_history(engine, folder, DAYS[0], DAYS[1])
    # another database holding the same days with other values: its tokens are its own
    other = engine_for(f"sqlite:///{tmp_path / 'other.db'}")
    upgrade(other)
    try:
        upsert(other, Supplier, [supplier_row(s) for s in "ab"], keys=("supplier_id",))
        for day in DAYS[:2]:
            _score(other, ["a", "b"], day, shift=0.3)
        history, use = archived_prediction_history(other, folder, DAYS[0], DAYS[1])
        assert (use.from_archive, use.from_database) == (0, 2)
        _same(history.frame, read_prediction_history(other, DAYS[0], DAYS[1]).frame)
    finally:
        other.dispose()
    # a truncated file is read again and replaced; a run's unfinished file is removed
    path = folder / f"day={DAYS[0].isoformat()}.parquet"
    path.write_bytes(path.read_bytes()[:20])
    (folder / f"day={DAYS[1].isoformat()}.parquet.partial").write_bytes(b"PAR1")
    history, use = archived_prediction_history(engine, folder, DAYS[0], DAYS[1])
    assert (use.from_archive, use.from_database, use.archived) == (0, 2, 2)
    _same(history.frame, read_prediction_history(engine, DAYS[0], DAYS[1]).frame)
    assert not list(folder.glob("*.partial"))


def test_copies_of_days_no_longer_stored_are_removed(engine, tmp_path: Path) -> None:
    folder = tmp_path / "archive"
    for day in DAYS[:3]:
        _score(engine, ["a", "b"], day)
    archived_prediction_history(engine, folder, DAYS[0], DAYS[2])
    history, use = archived_prediction_history(engine, folder, DAYS[1], DAYS[1])
    assert (use.from_archive, use.removed) == (1, 1)
    assert sorted(p.name for p in folder.glob("day=*")) == [
        f"day={d.isoformat()}.parquet" for d in DAYS[1:3]
    ]
    assert set(history.frame["day"]) == {pd.Timestamp(DAYS[1])}


def test_the_migration_records_the_days_stored_before_it(tmp_path: Path) -> None:
    engine = engine_for(f"sqlite:///{tmp_path / 'ops.db'}")
    try:
        upgrade(engine, "0006")
        upsert(engine, Supplier, [supplier_row(s) for s in "ab"], keys=("supplier_id",))
        for day in (DAYS[0], DAYS[2]):  # a gap between them
            predictions, health = _rows(["a", "b"], day)
            upsert(engine, CustomerHealth, health)
            upsert(engine, ChurnPrediction, predictions)
        upgrade(engine)
        tokens = day_tokens(engine, DAYS[0], DAYS[3])
        assert sorted(tokens) == [DAYS[0], DAYS[2]]
        assert len(set(tokens.values())) == 2
        with engine.connect() as connection:
            counts = connection.execute(select(ScoredDay.prediction_rows)).scalars().all()
        assert counts == [None, None]  # not counted by the migration
        _, use = archived_prediction_history(engine, tmp_path / "archive", DAYS[0], DAYS[2])
        assert (use.from_database, use.archived, use.not_archived) == (2, 2, ())
    finally:
        engine.dispose()
