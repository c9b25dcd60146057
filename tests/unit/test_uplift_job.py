"""The uplift job's pure steps on frames worked out by hand: which executions are units, their
arm and 30-day outcome, the point-in-time features and their fixed coding, the time split, the
reasons given when there is too little data, the Qini curve kept for the report; and the
worklist's reading of the decision (every fallback to risk says why) and its ordering."""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from monitoring.uplift import qini_coefficient, qini_curve
from serving.worklist import (
    UPLIFT_DECISION_FILE,
    UPLIFT_DECISION_FORMAT,
    Ranking,
    ranked_by_saved_ltv,
    read_ranking,
    uplift_scores_name,
)
from wedsync_cs.uplift_job import (
    SCORES_SCHEMA,
    ArmMinimum,
    downsample_curve,
    encode_features,
    evaluate_type,
    time_split,
    uplift_units,
    with_features,
)

D = date(2024, 3, 1)  # a decision day: its end is 2024-03-02 00:00 UTC
END = pd.Timestamp("2024-03-02", tz="UTC")
HORIZON_END = END + pd.Timedelta(days=30)  # 2024-04-01 00:00 UTC
AS_OF = D + timedelta(days=30)  # the first day by which D's units are judged


def _executions(rows: list[tuple]) -> pd.DataFrame:
    return pd.DataFrame(
        rows, columns=["supplier_id", "intervention_type", "day", "control_group", "rule_id"]
    )


def _suppliers(cancelled: dict[str, pd.Timestamp | None]) -> pd.DataFrame:
    return pd.DataFrame(
        {"supplier_id": list(cancelled), "cancelled_at": pd.to_datetime(list(cancelled.values()))}
    )


def test_units_are_first_rule_executions_per_type_with_their_arm_and_outcome() -> None:
    executions = _executions(
        [
            ("a", "phone_call", D - timedelta(days=3), False, None),  # manual: not a unit
            ("a", "phone_call", D, False, "silent-call"),
            ("a", "phone_call", D + timedelta(days=7), False, "silent-call"),  # not the first
            ("a", "email_sequence", D + timedelta(days=1), False, "quiet-email"),
            ("b", "phone_call", D, True, "silent-call"),  # held out
            ("c", "phone_call", D, False, "silent-call"),
            ("d", "phone_call", D, True, "silent-call"),
            ("e", "phone_call", D, False, "silent-call"),
        ]
    )
    suppliers = _suppliers(
        {
            "a": None,
            "b": HORIZON_END,  # the horizon's last instant: churned
            "c": HORIZON_END + pd.Timedelta(seconds=1),  # just after: retained
            "d": END - pd.Timedelta(hours=1),  # already gone on the decision day: churned
            "e": None,
        }
    )
    units = uplift_units(executions, suppliers, AS_OF)
    calls = units[units["intervention_type"] == "phone_call"].set_index("supplier_id")
    assert list(calls.index) == ["a", "b", "c", "d", "e"]
    assert (calls["day"] == D).all() and calls["matured"].all()
    assert calls["treatment"].to_dict() == {"a": 1, "b": 0, "c": 1, "d": 0, "e": 1}
    assert calls["y"].astype(int).to_dict() == {"a": 0, "b": 1, "c": 0, "d": 1, "e": 0}
    email = units[units["intervention_type"] == "email_sequence"].iloc[0]
    assert email["day"] == D + timedelta(days=1)
    assert not email["matured"] and pd.isna(email["y"])  # its 30 days end a day after AS_OF


def test_a_unit_matures_when_its_thirty_days_have_passed_by_as_of() -> None:
    executions = _executions([("a", "phone_call", D, False, "silent-call")])
    suppliers = _suppliers({"a": None})
    assert uplift_units(executions, suppliers, AS_OF)["matured"].tolist() == [True]
    early = uplift_units(executions, suppliers, AS_OF - timedelta(days=1))
    assert early["matured"].tolist() == [False]
    assert uplift_units(executions.iloc[:0], suppliers, AS_OF).empty


def test_categories_are_coded_by_the_catalogues_fixed_levels() -> None:
    rows = pd.DataFrame(
        {
            "subscription_tier": ["enterprise", "starter", None, "platinum"],
            "vendor_type": ["venue", "venue", "photographer", "other"],
            "has_card": [True, False, True, False],
            "logins_30d": pd.array([3, None, 0, 12], dtype="Int64"),
        }
    )
    X = encode_features(rows, ["subscription_tier", "vendor_type", "has_card", "logins_30d"])
    # starter, professional, scale, enterprise: the order of the contract, on every batch
    np.testing.assert_array_equal(X["subscription_tier"], [3, 0, np.nan, np.nan])
    np.testing.assert_array_equal(X["vendor_type"], [2, 2, 0, 10])
    np.testing.assert_array_equal(X["has_card"], [1, 0, 1, 0])
    np.testing.assert_array_equal(X["logins_30d"], [3, np.nan, 0, 12])
    assert (X.dtypes == np.float64).all()
    # one row codes the same alone as in a batch
    alone = encode_features(rows.iloc[[0]], ["subscription_tier", "vendor_type"])
    assert alone.iloc[0].tolist() == [3.0, 2.0]
    with pytest.raises(ValueError, match="text without catalogue levels"):
        encode_features(pd.DataFrame({"notes": ["x"]}), ["notes"])
    with pytest.raises(KeyError, match="missing"):
        encode_features(rows, ["tenure_days"])


def test_features_are_the_decision_days_row_or_the_newest_within_a_week() -> None:
    units = pd.DataFrame(
        {
            "supplier_id": ["a", "b", "c"],
            "intervention_type": "phone_call",
            "day": [D, D, D],
            "treatment": [1, 0, 1],
            "y": [0, 1, 0],
        }
    )
    stamp = END  # the row of day D
    rows = pd.DataFrame(
        {
            "supplier_id": ["a", "a", "b", "b", "c"],
            "event_timestamp": [
                stamp,
                stamp + pd.Timedelta(days=1),  # the day after: never used
                stamp - pd.Timedelta(days=3),
                stamp + pd.Timedelta(days=1),
                stamp - pd.Timedelta(days=8),  # too old: c is left out
            ],
            "logins_30d": [10.0, 99.0, 7.0, 99.0, 5.0],
        }
    )
    joined = with_features(units, rows, ["logins_30d"]).set_index("supplier_id")
    assert joined["logins_30d"].to_dict() == {"a": 10.0, "b": 7.0}
    assert list(joined.columns) == ["intervention_type", "day", "treatment", "y", "logins_30d"]


def test_the_time_split_trains_on_the_earlier_seventy_percent_of_days() -> None:
    days = pd.Series([D + timedelta(days=i) for i in range(10) for _ in range(3)])
    assert time_split(days) == D + timedelta(days=6)  # days 0-6 train, 7-9 judge
    assert time_split(pd.Series([D, D + timedelta(days=1)])) == D
    assert time_split(pd.Series([D, D])) is None


def _units(n_treated: int, n_control: int, days: int = 10, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n = n_treated + n_control
    return pd.DataFrame(
        {
            "supplier_id": [f"s{i}" for i in range(n)],
            "day": [D + timedelta(days=int(i % days)) for i in range(n)],
            "treatment": [1] * n_treated + [0] * n_control,
            "y": rng.integers(0, 2, n),
            "x": rng.normal(size=n),
        }
    )


def test_too_few_units_fit_nothing_and_say_how_many_are_needed() -> None:
    frame = _units(400, 50)  # 35 held out in training (days 0-6 of 10)
    outcome = evaluate_type(frame, ["x"], "phone_call", n_pending=12)
    record = outcome.record
    assert outcome.model is None and outcome.judged.empty
    assert record["reason"] == (
        "not enough randomised executions yet: 35 held out, 50 needed in training; "
        "12 more within their 30 days"
    )
    assert record["n_train_held_out"] == 35 and record["n_test"] == len(frame) - 315
    assert record["beats_random"] is False and record["targeting"] is False
    assert record["qini_coefficient"] is None and record["curve"] is None
    one_day = evaluate_type(frame.assign(day=D), ["x"], "phone_call").record
    assert one_day["reason"].startswith("all 450 executions were decided on one day")
    empty = evaluate_type(frame.iloc[:0], ["x"], "email_sequence").record
    assert empty["reason"] == (
        "not enough randomised executions yet: 0 contacted, 200 needed; 0 held out, 50 needed"
    )
    judged_short = evaluate_type(
        frame, ["x"], "phone_call", minimum=ArmMinimum(control=10, test_control=40)
    ).record
    assert judged_short["reason"].startswith("too few later executions to judge a model")


def test_a_fitted_type_is_judged_on_later_days_only() -> None:
    frame = _units(600, 400, seed=1)
    outcome = evaluate_type(frame, ["x"], "phone_call", n_boot=50)
    record = outcome.record
    assert outcome.model is not None and record["qini_coefficient"] is not None
    assert set(outcome.judged["day"]) == {D + timedelta(days=i) for i in (7, 8, 9)}
    assert record["train_days"] == [str(D), str(D + timedelta(days=6))]
    assert record["n_train"] + record["n_test"] == len(frame)
    assert record["ci_low"] <= record["qini_coefficient"] <= record["ci_high"]
    assert record["targeting"] == record["beats_random"] == (record["ci_low"] > 0)
    assert record["qini_coefficient"] == pytest.approx(
        qini_coefficient(
            outcome.judged["uplift"], outcome.judged["y"], outcome.judged["treatment"]
        )
    )
    assert outcome.model.training_window_ == (str(D), str(D + timedelta(days=6)))


def test_the_report_curve_keeps_at_most_101_points_in_the_coefficients_units() -> None:
    rng = np.random.default_rng(3)
    n = 5000
    uplift, y, t = rng.normal(size=n), rng.integers(0, 2, n), rng.integers(0, 2, n)
    full = qini_curve(uplift, y, t)
    curve = downsample_curve(full)
    assert len(curve["fraction"]) == len(curve["model"]) == len(curve["random"]) == 101
    assert curve["fraction"][0] == 0 and curve["fraction"][-1] == 1
    contacted = full["treated"].iloc[-1]
    assert curve["model"][-1] == pytest.approx(full["prevented"].iloc[-1] / contacted, abs=1e-6)
    assert curve["random"][-1] == pytest.approx(curve["model"][-1], abs=1e-6)
    area = np.trapezoid(np.subtract(curve["model"], curve["random"]), curve["fraction"])
    assert area == pytest.approx(qini_coefficient(uplift, y, t), abs=2e-3)
    short = downsample_curve(full.iloc[:5])
    assert len(short["fraction"]) == 5


# -- the worklist's reading of the decision ----------------------------------------------------
def _decision(folder: Path, targeting: bool, reason: str = "Qini 0.040 above random") -> None:
    folder.mkdir(parents=True, exist_ok=True)
    document = {
        "format": UPLIFT_DECISION_FORMAT,
        "types": {"phone_call": {"targeting": targeting, "reason": reason}},
    }
    (folder / UPLIFT_DECISION_FILE).write_text(json.dumps(document))


def _scores(folder: Path, day: date, saved: dict[str, float]) -> None:
    frame = pd.DataFrame(
        {
            "supplier_id": [*saved, "z"],
            "day": day,
            "intervention_type": [*(["phone_call"] * len(saved)), "email_sequence"],
            "uplift": 0.1,
            "ltv": 1000.0,
            "expected_saved_ltv": [*saved.values(), 1e9],
        }
    )
    table = pa.Table.from_pandas(frame, SCORES_SCHEMA, preserve_index=False)
    pq.write_table(table, folder / uplift_scores_name(day))


def test_every_fallback_to_risk_says_why(tmp_path: Path) -> None:
    folder = tmp_path / "uplift"
    assert read_ranking(None, D).reason.endswith("not set up for this service")
    assert "no uplift decision yet" in read_ranking(folder, D).reason
    _decision(folder, targeting=False, reason="not enough randomised executions yet: 3 held out")
    off = read_ranking(folder, D)
    assert off.name == "risk" and off.reason == (
        "ranked by risk (churn probability x LTV): phone_call uplift targeting is off: "
        "not enough randomised executions yet: 3 held out"
    )
    _decision(folder, targeting=True)
    missing = read_ranking(folder, D)
    assert missing.name == "risk" and f"no uplift scores of {D}" in missing.reason
    _scores(folder, D - timedelta(days=1), {"a": 5.0})  # yesterday's: not today's ranking
    assert read_ranking(folder, D).name == "risk"
    (folder / UPLIFT_DECISION_FILE).write_text("{not json")
    assert "cannot be read" in read_ranking(folder, D).reason
    (folder / UPLIFT_DECISION_FILE).write_text(json.dumps({"format": "other/9"}))
    assert "cannot be read" in read_ranking(folder, D).reason


def test_an_on_decision_with_the_days_scores_ranks_by_the_calls_saved_ltv(tmp_path) -> None:
    folder = tmp_path / "uplift"
    _decision(folder, targeting=True)
    _scores(folder, D, {"a": 10.0, "b": 300.0, "c": -20.0, "d": float("nan")})
    ranking = read_ranking(folder, D)
    assert ranking.name == "uplift_x_ltv"
    assert ranking.reason == (
        "ranked by expected saved LTV (phone_call uplift x LTV): Qini 0.040 above random"
    )
    assert dict(ranking.saved_ltv) == {"a": 10.0, "b": 300.0, "c": -20.0}  # NaN: no score

    class Row:
        def __init__(self, supplier_id: str) -> None:
            self.supplier_id = supplier_id

    by_loss = [Row(s) for s in ("d", "c", "e", "a", "b")]  # expected-loss order
    ordered = ranked_by_saved_ltv(by_loss, ranking)
    assert [r.supplier_id for r in ordered] == ["b", "a", "c", "d", "e"]
    assert ranked_by_saved_ltv(by_loss, Ranking("risk", "")) == by_loss  # nothing scored


def test_old_scores_files_are_pruned_and_none_outlives_a_run_without_scores(tmp_path) -> None:
    from wedsync_cs.uplift_job import KEEP_SCORES, _prune_scores

    days = [D + timedelta(days=i) for i in range(10)]
    for day in days:
        (tmp_path / uplift_scores_name(day)).write_bytes(b"")
    (tmp_path / UPLIFT_DECISION_FILE).write_text("{}")
    _prune_scores(tmp_path, keep=tmp_path / uplift_scores_name(days[-1]))
    kept = sorted(p.name for p in tmp_path.glob("scores-*.parquet"))
    assert kept == [uplift_scores_name(d) for d in days[-KEEP_SCORES:]]
    _prune_scores(tmp_path, keep=None)
    assert not list(tmp_path.glob("scores-*.parquet"))
    assert (tmp_path / UPLIFT_DECISION_FILE).exists()


def test_the_arm_minimums_come_from_the_monitoring_file_and_a_bad_one_is_named(tmp_path) -> None:
    from wedsync_cs.uplift_job import ArmMinimum, load_arm_minimum

    assert load_arm_minimum() == ArmMinimum()  # the file states the documented defaults
    bad = tmp_path / "monitoring.yaml"
    bad.write_text("uplift:\n  treated: 200\n  control: -1\n  test_treated: 50\n  extra: 1\n")
    with pytest.raises(ValueError, match=r"unknown \['extra'\], wrong \['control'\], missing"):
        load_arm_minimum(bad)
    bad.write_text("drift: {}\n")
    with pytest.raises(ValueError, match="no uplift section"):
        load_arm_minimum(bad)
