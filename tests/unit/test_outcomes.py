"""Realised outcomes: label windows, metrics against hand computations, segments, periods and
the retrain flags, on frames of a few rows."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pytest
import yaml
from pydantic import ValidationError
from sklearn.metrics import average_precision_score, brier_score_loss, log_loss, roc_auc_score

from monitoring.outcomes import (
    DROPPED_ATTR,
    OutcomeThresholds,
    RankedScores,
    cancelled_before_prediction,
    combined_cells,
    load_outcome_thresholds,
    metrics_by,
    metrics_over_time,
    outcome_metrics,
    probability_order,
    realised_labels,
    retrain_flags,
    segment_codes,
    with_segments,
)
from training.metrics import EPS, expected_calibration_error

ROOT = Path(__file__).resolve().parents[2]
TOL = 1e-12
H = 30
DAY = date(2026, 3, 1)
# a prediction for DAY is made as of the end of DAY
T = datetime(2026, 3, 2, tzinfo=UTC)


def frame(p: list[float], y: list[int], **extra: list) -> pd.DataFrame:
    return pd.DataFrame({"score": p, "label": y, **extra})


def pairs_auc(p: list[float], y: list[int]) -> float:
    """AUC by counting pairs: a positive scored above a negative counts 1, a tie 1/2."""
    pos = [s for s, t in zip(p, y, strict=True) if t]
    neg = [s for s, t in zip(p, y, strict=True) if not t]
    wins = sum(1.0 if a > b else 0.5 if a == b else 0.0 for a in pos for b in neg)
    return wins / (len(pos) * len(neg))


# -- metrics ---------------------------------------------------------------------------------
# Not in score order; one of the tied 0.5s churned.
P8 = [0.7, 0.1, 0.5, 0.4, 0.8, 0.3, 0.5, 0.2]
Y8 = [1, 0, 1, 0, 1, 1, 0, 0]


def test_outcome_metrics_equal_a_hand_computation() -> None:
    m = outcome_metrics(frame(P8, Y8), "score")
    assert (m["n"], m["positives"], m["missing_scores"]) == (8, 4, 0)
    # pairs: 0.3 beats 2 negatives, 0.5 beats 3 and ties 1, 0.7 and 0.8 beat all 4
    assert m["auc"] == pytest.approx(13.5 / 16, abs=TOL)
    assert pairs_auc(P8, Y8) == pytest.approx(13.5 / 16, abs=TOL)
    # thresholds from the top: precision 1 at recall 1/4 and 1/2, 3/4 at 3/4 (the tied pair
    # enters together), 4/6 at recall 1
    assert m["pr_auc"] == pytest.approx(0.25 * (1 + 1 + 3 / 4 + 4 / 6), abs=TOL)
    squares = [0.09, 0.01, 0.25, 0.16, 0.04, 0.49, 0.25, 0.04]
    assert m["brier"] == pytest.approx(sum(squares) / 8, abs=TOL)
    logs = [math.log(s if t else 1 - s) for s, t in zip(P8, Y8, strict=True)]
    assert m["log_loss"] == pytest.approx(-sum(logs) / 8, abs=TOL)
    # 20 ECE bins over 8 rows: one row a bin, so ECE is the mean |label - score|, except that
    # the tied 0.5s (one churned) share their label: each bin holds half of each, 0.5 against 0.5
    assert m["ece"] == pytest.approx((0.3 + 0.1 + 0 + 0.4 + 0.2 + 0.7 + 0 + 0.2) / 8, abs=TOL)
    # fewer rows than deciles: one row a decile, lowest score first; the tie split in proportion
    expected = [(0.1, 0), (0.2, 0), (0.3, 1), (0.4, 0), (0.5, 0.5), (0.5, 0.5), (0.7, 1), (0.8, 1)]
    assert [(d["decile"], d["n"]) for d in m["calibration"]] == [(i, 1) for i in range(1, 9)]
    for row, (mean, rate) in zip(m["calibration"], expected, strict=True):
        assert row["mean_predicted"] == pytest.approx(mean, abs=TOL)
        assert row["observed_rate"] == rate


def test_calibration_by_decile_pools_equal_count_bins() -> None:
    p = [0.02 * i for i in range(1, 21)]
    y = [0, 0, 0, 0, 0, 1, 0, 0, 1, 0, 0, 1, 0, 1, 1, 0, 1, 1, 1, 1]
    rows = outcome_metrics(frame(p[::-1], y[::-1]), "score")["calibration"]
    # decile k holds scores 0.02 (2k - 1) and 0.02 (2k): mean 0.01 (4k - 1)
    rates = [0, 0, 0.5, 0, 0.5, 0.5, 0.5, 0.5, 1, 1]
    assert [r["decile"] for r in rows] == list(range(1, 11))
    assert all(r["n"] == 2 for r in rows)
    for k, (row, rate) in enumerate(zip(rows, rates, strict=True), start=1):
        assert row["mean_predicted"] == pytest.approx(0.01 * (4 * k - 1), abs=TOL)
        assert row["observed_rate"] == pytest.approx(rate, abs=TOL)
    assert outcome_metrics(frame(p, y), "score")["auc"] == pytest.approx(pairs_auc(p, y), abs=TOL)


def test_one_class_or_no_rows_give_none_not_an_error() -> None:
    m = outcome_metrics(frame([0.1, 0.3], [0, 0]), "score")
    assert m["auc"] is None and m["pr_auc"] is None
    assert m["brier"] == pytest.approx((0.01 + 0.09) / 2, abs=TOL)
    empty = outcome_metrics(frame([], []), "score")
    assert (empty["n"], empty["positives"], empty["auc"], empty["brier"]) == (0, 0, None, None)
    assert empty["calibration"] == []


def test_missing_scores_are_counted_not_measured() -> None:
    m = outcome_metrics(frame([0.2, None, 0.6], [0, 1, 1]), "score")
    assert (m["n"], m["positives"], m["missing_scores"]) == (2, 1, 1)
    assert m["auc"] == 1.0


def test_metrics_by_segment_with_a_single_class_segment() -> None:
    labelled = pd.DataFrame(
        {"supplier_id": ["a", "b", "c", "d", "e", "f"], "label": [1, 0, 0, 0, 1, 0]}
    ).assign(score=[0.9, 0.2, 0.3, 0.1, 0.6, 0.7])
    suppliers = pd.DataFrame(
        {
            "supplier_id": ["a", "b", "c", "d", "e"],
            "subscription_tier": ["starter", "starter", "enterprise", "enterprise", "starter"],
            "vendor_type": ["venue", "florist", "venue", "venue", "florist"],
            "country": ["AU", "GB", None, "NZ", "US"],
        }
    )
    segmented = with_segments(labelled, suppliers)
    hemispheres = ["southern", "northern", "northern", "southern", "northern"]
    assert list(segmented["hemisphere"][:5]) == hemispheres  # a missing country: northern
    assert segmented["hemisphere"].isna().tolist() == [False] * 5 + [True]
    tiers = metrics_by(segmented, "score", "subscription_tier")
    # the catalog's tier order; the supplier missing from the directory is "unknown"
    assert list(tiers) == ["starter", "enterprise", "unknown"]
    assert tiers["enterprise"]["auc"] is None and tiers["enterprise"]["pr_auc"] is None
    assert tiers["enterprise"]["brier"] == pytest.approx((0.09 + 0.01) / 2, abs=TOL)
    assert tiers["starter"]["auc"] == 1.0 and tiers["starter"]["n"] == 3
    assert metrics_by(segmented, "score", "hemisphere")["southern"]["positives"] == 1


def test_metrics_over_time_by_month_of_prediction_day() -> None:
    days = [date(2026, 1, 5), date(2026, 1, 31), date(2026, 3, 1), date(2026, 3, 9)]
    labelled = frame([0.2, 0.7, 0.4, 0.1], [0, 1, 1, 0], day=days)
    months = metrics_over_time(labelled, "score")
    assert list(months) == ["2026-01-01", "2026-03-01"]  # no rows in February: no entry
    assert [m["n"] for m in months.values()] == [2, 2]
    assert months["2026-01-01"]["auc"] == 1.0


# -- labels ----------------------------------------------------------------------------------
def predictions(suppliers: list[str], day: date = DAY) -> pd.DataFrame:
    return pd.DataFrame({"supplier_id": suppliers, "day": [day] * len(suppliers)}).assign(
        churn_probability=0.5
    )


def test_label_window_is_open_at_the_prediction_and_closed_at_the_horizon() -> None:
    end = T + timedelta(days=H)
    cancellations = pd.DataFrame(
        {
            "supplier_id": ["at_end", "after_end", "at_t", "just_after_t", "during_day"],
            "cancelled_at": [
                end.astimezone(ZoneInfo("Europe/London")),  # the same instant, as BST
                end + timedelta(seconds=1),
                T,
                T + timedelta(microseconds=1),
                T - timedelta(hours=3),
            ],
        }
    )
    rows = predictions(["at_end", "after_end", "at_t", "just_after_t", "during_day", "never"])
    # the last day whose window has passed by the end of as_of
    out = realised_labels(rows, cancellations, as_of=DAY + timedelta(days=H), horizon_days=H)
    assert dict(zip(out["supplier_id"], out["label"], strict=True)) == {
        "at_end": 1,
        "after_end": 0,
        "just_after_t": 1,
        "never": 0,
    }
    # cancelled at or before the prediction's instant: not active, dropped and counted
    assert out.attrs[DROPPED_ATTR] == 2
    dropped = cancelled_before_prediction(rows, cancellations)
    assert sorted(dropped["supplier_id"]) == ["at_t", "during_day"]
    assert str(out["cancelled_at"].dt.tz) == "UTC"
    assert out.loc[out["supplier_id"] == "at_end", "cancelled_at"].iloc[0] == end
    assert (out["churn_probability"] == 0.5).all()


def test_predictions_younger_than_one_horizon_are_excluded() -> None:
    # five days of two suppliers (the index repeats: rows are matched by position)
    rows = pd.concat([predictions(["a", "b"], DAY + timedelta(days=k)) for k in range(5)])
    none = pd.DataFrame({"supplier_id": [], "cancelled_at": []})
    as_of = DAY + timedelta(days=H + 2)
    out = realised_labels(rows, none, as_of=as_of, horizon_days=H)
    assert sorted(set(out["day"])) == [DAY + timedelta(days=k) for k in range(3)]
    assert len(out) == 6 and (out["label"] == 0).all() and out.attrs[DROPPED_ATTR] == 0
    # b cancels on the third day: churned for the first two, then no longer scored
    b_quits = pd.DataFrame({"supplier_id": ["b"], "cancelled_at": [T + timedelta(days=1.5)]})
    out = realised_labels(rows, b_quits, as_of=as_of, horizon_days=H)
    assert out["label"].tolist() == [0, 1, 0, 1, 0] and out.attrs[DROPPED_ATTR] == 1
    assert out["cancelled_at"].notna().tolist() == [False, True, False, True, False]
    one_day_short = realised_labels(rows, none, DAY + timedelta(days=H - 1), horizon_days=H)
    assert one_day_short.empty
    # a shorter horizon matures sooner
    assert len(realised_labels(rows, none, as_of, horizon_days=7)) == 10


def test_bad_input_is_named() -> None:
    good = pd.DataFrame({"supplier_id": ["a"], "cancelled_at": [T + timedelta(days=2)]})
    rows = predictions(["a"])
    as_of = DAY + timedelta(days=H)
    with pytest.raises(KeyError, match="cancelled_at"):
        realised_labels(rows, good.drop(columns="cancelled_at"), as_of)
    with pytest.raises(KeyError, match=r"predictions lacks column\(s\) \['day'\]"):
        realised_labels(rows.drop(columns="day"), good, as_of)
    naive = good.assign(cancelled_at=[datetime(2026, 3, 4)])
    with pytest.raises(ValueError, match="naive"):
        realised_labels(rows, naive, as_of)
    with pytest.raises(ValueError, match="calendar days"):
        realised_labels(rows.assign(day=[T]), good, as_of)
    with pytest.raises(ValueError, match="more than one row"):
        realised_labels(rows, pd.concat([good, good]), as_of)
    with pytest.raises(TypeError, match="calendar day"):
        realised_labels(rows, good, datetime(2026, 3, 31, tzinfo=UTC))
    labelled = realised_labels(rows, good, as_of)
    assert labelled["label"].tolist() == [1]
    with pytest.raises(KeyError, match="health_probability"):
        outcome_metrics(labelled, "health_probability")
    with pytest.raises(ValueError, match="probability"):
        outcome_metrics(labelled.assign(churn_probability=1.5), "churn_probability")


# -- retrain flags ---------------------------------------------------------------------------
HOLDOUT = {"auc": 0.80, "pr_auc": 0.40, "brier": 0.05, "log_loss": 0.2}


def realised(auc: float | None, pr_auc: float | None, brier: float, positives: int = 100):
    return {"positives": positives, "auc": auc, "pr_auc": pr_auc, "brier": brier}


def test_retrain_flags_fire_beyond_the_margin_only() -> None:
    margins = OutcomeThresholds()
    assert retrain_flags(realised(0.78, 0.31, 0.059), HOLDOUT, margins) == []
    # a drop of exactly the margin is within it
    assert retrain_flags(realised(0.77, 0.30, 0.06), HOLDOUT, margins) == []
    reasons = retrain_flags(realised(0.765, 0.29, 0.0611), HOLDOUT, margins)
    assert len(reasons) == 3
    assert reasons[0].startswith("AUC 0.765 is 0.035 below the champion's holdout 0.800")
    assert reasons[1].startswith("PR-AUC 0.290 is 28% below")
    assert reasons[2].startswith("Brier score 0.0611 is 0.0111 above")
    assert retrain_flags(realised(0.70, 0.40, 0.05), HOLDOUT, margins) == [
        "AUC 0.700 is 0.100 below the champion's holdout 0.800 (margin 0.030)"
    ]
    # one class: ranking is not compared; too few churns: nothing is
    assert retrain_flags(realised(None, None, 0.05), HOLDOUT, margins) == []
    assert retrain_flags(realised(0.5, 0.1, 0.2, positives=29), HOLDOUT, margins) == []
    with pytest.raises(KeyError, match="pr_auc"):
        retrain_flags(realised(0.8, 0.4, 0.05), {"auc": 0.8, "brier": 0.05}, margins)


def test_shipped_monitoring_config_parses_frozen_with_a_drift_section(tmp_path: Path) -> None:
    path = ROOT / "experiments" / "monitoring.yaml"
    margins = load_outcome_thresholds()
    assert margins == OutcomeThresholds()  # the file states the documented defaults
    with pytest.raises(ValidationError):
        margins.max_auc_drop = 0.5  # type: ignore[misc]
    assert yaml.safe_load(path.read_text())["drift"]["max_drifted_share"] == 0.3
    bad = tmp_path / "bad.yaml"
    bad.write_text(path.read_text().replace("max_pr_auc_relative_drop: 0.25", "max_pr_auc: 0.2"))
    with pytest.raises(ValueError, match=r"(?s)bad.yaml is invalid.*max_pr_auc"):
        load_outcome_thresholds(bad)
    bad.write_text("drift:\n  max_drifted_share: 0.3\n")
    with pytest.raises(ValueError, match="no outcomes section"):
        load_outcome_thresholds(bad)


# -- the one-sort metrics against scikit-learn ------------------------------------------------
def assert_same_figures(a: object, b: object) -> None:
    """Equal up to the last bits of float sums taken in another order."""
    if isinstance(a, dict) and isinstance(b, dict):
        assert a.keys() == b.keys()
        for key in a:
            assert_same_figures(a[key], b[key])
    elif isinstance(a, list) and isinstance(b, list):
        assert len(a) == len(b)
        for x, z in zip(a, b, strict=True):
            assert_same_figures(x, z)
    elif isinstance(a, float) and isinstance(b, float):
        assert a == pytest.approx(b, abs=TOL)
    else:
        assert a == b


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_grouped_figures_equal_scikit_learn_per_group(seed: int) -> None:
    """Many ties (scores on a coarse grid), scores at the clipping edges, missing scores and a
    group with one class: every group's AUC, PR-AUC, Brier and log loss equal scikit-learn's on
    that group's rows alone, and the figures do not depend on the rows' order."""
    rng = np.random.default_rng(seed)
    n = 3_000
    p = rng.integers(0, 41, n) / 40  # 0, 0.025, ..., 1: heavy ties, 0 and 1 clipped
    y = (rng.random(n) < 0.2 + 0.6 * p).astype(int)
    group = rng.choice(["a", "b", "c", "d"], n, p=[0.5, 0.3, 0.19, 0.01])
    y[group == "d"] = 0  # one class only
    score = np.where(rng.random(n) < 0.02, np.nan, p)
    labelled = pd.DataFrame({"label": y, "score": score, "g": group})
    by = metrics_by(labelled, "score", "g")
    shuffled = labelled.sample(frac=1, random_state=seed).reset_index(drop=True)
    assert_same_figures(metrics_by(shuffled, "score", "g"), by)
    for name, part in [("all", labelled), *labelled.groupby("g")]:
        m = outcome_metrics(labelled, "score") if name == "all" else by[name]
        rows = part.dropna(subset=["score"])
        c = np.clip(rows["score"].to_numpy(), EPS, 1 - EPS)
        t = rows["label"].to_numpy()
        assert (m["n"], m["positives"]) == (len(rows), int(t.sum()))
        assert m["missing_scores"] == int(part["score"].isna().sum())
        assert m["brier"] == pytest.approx(brier_score_loss(t, c), abs=TOL)
        assert m["log_loss"] == pytest.approx(log_loss(t, c, labels=[0, 1]), abs=TOL)
        if name == "d":
            assert m["auc"] is None and m["pr_auc"] is None
            continue
        assert m["auc"] == pytest.approx(roc_auc_score(t, c), abs=TOL)
        assert m["pr_auc"] == pytest.approx(average_precision_score(t, c), abs=TOL)
        assert sum(d["n"] for d in m["calibration"]) == len(rows)
        churned = sum(d["observed_rate"] * d["n"] for d in m["calibration"])
        assert churned == pytest.approx(t.sum(), abs=1e-9)


def test_ece_without_ties_is_the_training_ece() -> None:
    """Distinct scores: the realised ECE is ``training.metrics.expected_calibration_error``'s,
    the holdout's figure."""
    rng = np.random.default_rng(5)
    p = rng.random(1_001)
    y = (rng.random(1_001) < p).astype(int)
    m = outcome_metrics(frame(list(p), list(y)), "score")
    assert m["ece"] == pytest.approx(expected_calibration_error(y, p), abs=TOL)


def test_groupings_measured_through_cells_equal_each_grouping_alone() -> None:
    """``combined_cells`` and ``by_cells`` (the job's path: one gather for all groupings) give
    what ``metrics_by`` gives for each grouping on its own."""
    rng = np.random.default_rng(11)
    n = 2_000
    labelled = pd.DataFrame(
        {
            "label": (rng.random(n) < 0.15).astype(int),
            "score": np.where(rng.random(n) < 0.03, np.nan, rng.integers(0, 30, n) / 29),
            "tier": rng.choice(["starter", "scale", None], n),
            "region": rng.choice(["north", "south"], n),
        }
    )
    groupings = {by: segment_codes(labelled, by) for by in ("tier", "region")}
    cells, maps = combined_cells(groupings)
    measured = RankedScores(labelled, "score").by_cells(cells, maps)
    for by in ("tier", "region"):
        assert_same_figures(measured[by], metrics_by(labelled, "score", by))


@pytest.mark.parametrize("kind", ["float32", "near", "ties", "edges"])
def test_probability_order_is_a_stable_argsort(kind: str) -> None:
    """Scores from float32, scores closer than the bits the sort keys give up (the runs it sorts
    again), heavy ties and 0 and 1: the order is exactly ``argsort(kind="stable")``'s."""
    rng = np.random.default_rng(3)
    n = 50_000
    p = {
        "float32": rng.random(n).astype(np.float32).astype(float),
        "near": 0.5 + rng.integers(0, 50, n) * 1e-15,
        "ties": rng.integers(0, 7, n) / 6,
        "edges": np.r_[np.zeros(10), np.ones(10), rng.random(n - 20)],
    }[kind]
    np.testing.assert_array_equal(probability_order(p), np.argsort(p, kind="stable"))
