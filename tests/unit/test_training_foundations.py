"""Experiment config, time splits and metrics: exact expectations on tiny inputs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from training.config import load_experiment
from training.metrics import (
    evaluate,
    expected_calibration_error,
    gap_closed,
    precision_at_k,
    top_share,
)
from training.split import holdout_split, time_folds

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("version", ["churn_v1", "churn_v2"])
def test_shipped_experiments_parse_and_are_frozen(version: str) -> None:
    cfg = load_experiment(ROOT / "experiments" / f"{version}.yaml")
    assert cfg.horizon_days == 30 and cfg.feature_service == version
    assert cfg.tuning.search_space["max_depth"].kind == "int"
    with pytest.raises(ValueError):
        cfg.horizon_days = 7  # type: ignore[misc]


def test_bad_experiment_names_the_field(tmp_path: Path) -> None:
    text = (
        (ROOT / "experiments" / "churn_v2.yaml")
        .read_text()
        .replace("holdout_share: 0.2", "holdout_share: 1.5")
    )
    bad = tmp_path / "bad.yaml"
    bad.write_text(text)
    with pytest.raises(ValueError, match="holdout_share"):
        load_experiment(bad)
    bad.write_text(
        text.replace("holdout_share: 1.5", "holdout_share: 0.2").replace(
            "max_depth: {low: 3, high: 8", "max_depth: {low: 9, high: 8"
        )
    )
    with pytest.raises(ValueError, match="must be below high"):
        load_experiment(bad)


def test_an_experiment_naming_an_unknown_feature_service_is_refused(tmp_path: Path) -> None:
    text = (ROOT / "experiments" / "churn_v2.yaml").read_text()
    bad = tmp_path / "bad.yaml"
    bad.write_text(text.replace("feature_service: churn_v2", "feature_service: churn_v9"))
    with pytest.raises(ValueError, match=r"(?s)bad.yaml is invalid.*no feature service 'churn_v9"):
        load_experiment(bad)


def _weekly(n_weeks: int, per_week: int = 3) -> pd.Series:
    dates = pd.date_range("2024-01-08", periods=n_weeks, freq="7D", tz="UTC")
    return pd.Series(np.repeat(dates, per_week))


def test_holdout_is_the_last_dates_after_a_horizon_gap() -> None:
    stamps = _weekly(20)
    split = holdout_split(stamps, 0.2, 30)
    assert split.holdout_start == pd.Timestamp("2024-04-29", tz="UTC")  # the 17th of 20 weeks
    assert split.holdout.sum() == 4 * 3
    last_train = stamps[split.train].max()
    assert last_train + pd.Timedelta(days=30) < split.holdout_start  # no label window overlaps
    assert not (split.train & split.holdout).any()
    assert stamps[~split.train & ~split.holdout].nunique() == 4  # the gap: 30 days of weeks


def test_folds_are_time_ordered_with_gaps() -> None:
    stamps = _weekly(40)
    folds = time_folds(stamps, 3, 30)
    assert len(folds) == 3
    for train, valid in folds:
        assert stamps[train].max() + pd.Timedelta(days=30) < stamps[valid].min()
    # the validation blocks share the later half of the 40 weeks: 7, 7 and 6 weeks
    assert [v.sum() for _, v in folds] == [21, 21, 18]
    first_valid = stamps[folds[0][1]].min()
    assert first_valid == stamps.drop_duplicates().iloc[20]
    # every fold trains on at least half the window less the horizon gap (4 weeks of 30 days)
    assert min(t.sum() for t, _ in folds) == (20 - 4) * 3
    late = time_folds(stamps, 2, 30, validate_from=0.75)  # the last 10 weeks, in two blocks
    assert [v.sum() for _, v in late] == [15, 15]
    with pytest.raises(ValueError, match="validate_from"):
        time_folds(stamps, 3, 30, validate_from=1.0)


def test_metrics_on_known_scores() -> None:
    y = np.array([0, 0, 0, 0, 1, 0, 1, 0, 1, 1])
    p = np.linspace(0.05, 0.95, 10)
    m = evaluate(y, p, top_k=2)
    assert m["auc"] == pytest.approx(roc_auc_score(y, p))
    assert m["precision_top_2"] == 1.0
    lift, recall = top_share(y, p, 0.2)
    assert (lift, recall) == (pytest.approx(2.5), pytest.approx(0.5))
    calibrated_p = np.repeat([0.2, 0.8], 50)
    calibrated_y = np.r_[np.ones(10), np.zeros(40), np.ones(40), np.zeros(10)]
    assert expected_calibration_error(calibrated_y, calibrated_p, bins=2) == pytest.approx(0)
    assert expected_calibration_error(np.zeros(10), np.full(10, 0.3)) == pytest.approx(0.3)


def test_top_of_list_metrics_rank_each_snapshot_date_apart() -> None:
    # two dates; the first has high scores everywhere, so a pooled top 2 would take only its rows
    day = np.array(["d1"] * 4 + ["d2"] * 4)
    y = np.array([0, 1, 0, 0, 1, 0, 0, 0])
    p = np.array([0.9, 0.8, 0.7, 0.6, 0.3, 0.2, 0.1, 0.05])
    assert precision_at_k(y, p, 2) == pytest.approx(0.5)  # pooled: rows 0 and 1
    # per date: {0, 1} and {4, 5}: two churners among four rows
    assert precision_at_k(y, p, 2, groups=day) == pytest.approx(0.5)
    assert precision_at_k(y, p, 1, groups=day) == pytest.approx(0.5)  # rows 0 and 4
    assert precision_at_k(y, p, 1) == pytest.approx(0.0)  # pooled: row 0 only
    # top quarter of each date: rows 0 and 4; lift = (1/2) / (2/8), recall = 1/2
    lift, recall = top_share(y, p, 0.25, groups=day)
    assert (lift, recall) == (pytest.approx(2.0), pytest.approx(0.5))
    # a date with fewer rows than k contributes all of them; order and ties by position
    assert precision_at_k(y[:5], p[:5], 3, groups=day[:5]) == pytest.approx(2 / 4)
    shuffled = np.random.default_rng(0).permutation(8)
    assert precision_at_k(y[shuffled], p[shuffled], 2, groups=day[shuffled]) == pytest.approx(0.5)
    m = evaluate(y, p, top_k=1, groups=day)
    assert m["precision_top_1"] == pytest.approx(0.5)


def test_gap_closed() -> None:
    assert gap_closed(0.85, 0.80, 0.90) == pytest.approx(0.5)
    assert gap_closed(0.015, 0.02, 0.01, higher_is_better=False) == pytest.approx(0.5)
