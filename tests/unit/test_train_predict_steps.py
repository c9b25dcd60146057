"""The pure steps of the train and predict jobs on tiny inline frames."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from feature_repo.readers import feature_day
from serving.batch import EntitiesError, assemble, entity_status, validate_entities
from training.config import Thresholds, load_experiment
from training.explain import top_positive_factors
from training.risk import band_table, bands_ordered, churn_risk, health_risk
from training.train_job import with_overrides
from training.truth import join_truth
from wedsync_cs.model_jobs import redact
from wedsync_cs.settings import Settings

UTC = pa.timestamp("us", tz="UTC")


def _entities(**columns) -> pa.Table:
    base = {
        "supplier_id": pa.array(["s1", "s2"]),
        "as_of": pa.array([pd.Timestamp("2024-03-01", tz="UTC")] * 2, UTC),
    }
    base.update(columns)
    return pa.table({k: v for k, v in base.items() if v is not None})


def test_entities_are_checked_and_errors_name_the_problem() -> None:
    ok = validate_entities(_entities())
    assert list(ok["supplier_id"]) == ["s1", "s2"]
    assert str(ok["as_of"].dtype) == "datetime64[ns, UTC]"
    cases = {
        "lacks column(s) as_of": _entities(as_of=None),
        "supplier_id must be a string": _entities(supplier_id=pa.array([1, 2])),
        "as_of must be a timestamp": _entities(as_of=pa.array(["2024-03-01"] * 2)),
        "naive timestamp": _entities(as_of=pa.array([pd.Timestamp("2024-03-01")] * 2)),
        "1 null value(s) in supplier_id, at row(s) 1": _entities(
            supplier_id=pa.array(["s1", None])
        ),
        "null value(s) in as_of, at row(s) 0": _entities(as_of=pa.array([None, None], UTC)),
    }
    for message, table in cases.items():
        with pytest.raises(EntitiesError, match=message.replace("(", r"\(").replace(")", r"\)")):
            validate_entities(table)


def test_other_time_zones_are_the_same_instant_in_utc() -> None:
    # from a pandas column: pyarrow's conversion of single tz-aware Python objects can drop the
    # offset once other Arrow conversions ran in the process (seen with pyarrow 25)
    wall = pd.Series(pd.to_datetime(["2024-03-01 10:00"] * 2))
    paris = pa.array(wall.dt.tz_localize("Europe/Paris"))
    got = validate_entities(_entities(as_of=paris))
    assert got["as_of"].iloc[0] == pd.Timestamp("2024-03-01 09:00", tz="UTC")


def test_status_follows_the_contract_at_each_instant() -> None:
    t = pd.Timestamp
    suppliers = pd.DataFrame(
        {"supplier_id": ["a", "b"], "signup_at": [t("2024-01-01", tz="UTC")] * 2}
    )
    cancellations = pd.DataFrame(
        {"supplier_id": ["b"], "cancelled_at": [t("2024-02-01 12:00", tz="UTC")]}
    )
    entities = pd.DataFrame(
        {
            "supplier_id": ["a", "a", "zz", "b", "b", "b"],
            "as_of": pd.to_datetime(
                [
                    "2023-12-31 23:59",  # before signup
                    "2024-01-01 00:00",  # at signup: active
                    "2024-01-05 00:00",
                    "2024-02-01 11:59",  # just before the cancellation: active
                    "2024-02-01 12:00",  # cancelled at or before the instant
                    "2024-03-01 00:00",
                ],
                utc=True,
            ),
        }
    )
    status = entity_status(entities, suppliers, cancellations)
    assert list(status) == [
        "not_active",
        "active",
        "unknown_supplier",
        "active",
        "not_active",
        "not_active",
    ]


def test_an_instant_reads_the_previous_days_feature_row() -> None:
    instants = pd.Series(pd.to_datetime(["2024-03-05 00:00", "2024-03-05 23:59"], utc=True))
    assert [d.isoformat() for d in sorted(set(feature_day(instants)))] == ["2024-03-04"]


def test_assemble_keeps_order_and_marks_rows_without_features() -> None:
    entities = pd.DataFrame(
        {
            "supplier_id": ["c", "a", "b"],
            "as_of": pd.to_datetime(["2024-01-03", "2024-01-01", "2024-01-02"], utc=True),
        }
    )
    status = np.array(["active", "unknown_supplier", "active"])
    scored = pd.DataFrame({"churn_probability": [0.3], "churn_risk": ["low"]}, index=[2])
    out = assemble(entities, status, scored)
    assert list(out["supplier_id"]) == ["c", "a", "b"]
    assert list(out["status"]) == ["no_features", "unknown_supplier", "ok"]
    assert out["churn_probability"].isna().tolist() == [True, True, False]
    assert "top_factor_3" in out.columns


def test_top_factors_are_positive_contributions_only() -> None:
    contributions = pd.DataFrame(
        {"login": [0.5, -0.1], "billing": [0.9, -0.2], "support": [-0.3, 0.05]}
    )
    top = top_positive_factors(contributions)
    assert top.iloc[0].tolist() == ["billing", "login", None]
    assert top.iloc[1].tolist() == ["support", None, None]


def test_risk_levels_use_the_experiment_thresholds() -> None:
    th = Thresholds(healthy=80, at_risk=40)
    assert list(health_risk(np.array([80, 79.9, 40, 39, np.nan]), th)) == [
        "healthy",
        "at_risk",
        "at_risk",
        "critical",
        None,
    ]
    assert list(churn_risk(np.array([0.8, 0.6, 0.4, 0.39, np.nan]), th)) == [
        "critical",
        "high",
        "medium",
        "low",
        None,
    ]


def test_band_table_counts_rates_and_order() -> None:
    th = Thresholds()
    score = np.array([90, 80, 60, 55, 10, 20])
    y = np.array([0, 0, 0, 1, 1, 1])
    table = band_table(score, y, th)
    assert table["band"].tolist() == ["healthy", "at_risk", "critical"]
    assert table["rows"].tolist() == [2, 2, 2]
    assert table["churn_rate"].tolist() == [0.0, 0.5, 1.0]
    assert bands_ordered(table)
    assert not bands_ordered(band_table(score, y[::-1], th))


def test_truth_joins_on_the_same_instant_and_detects_another_horizon() -> None:
    monday = pd.Timestamp("2024-01-08", tz="UTC")
    frame = pd.DataFrame(
        {
            "supplier_id": ["a", "b", "a"],
            "event_timestamp": pd.Series([monday, monday, monday + pd.Timedelta(days=7)]).astype(
                "datetime64[ns, UTC]"
            ),
            "label": [0, 1, 0],
        }
    )
    truth = pd.DataFrame(
        {
            "supplier_id": ["a", "b"],
            "as_of": pd.Series([monday, monday]).astype("datetime64[us, UTC]"),
            "p_true": [0.1, 0.7],
            "label": [0, 1],
        }
    )
    joined = join_truth(frame, truth)
    np.testing.assert_array_equal(joined.p_true[:2], [0.1, 0.7])
    assert np.isnan(joined.p_true[2]) and joined.usable
    other = join_truth(frame, truth.assign(label=[1, 1]))
    assert other.label_mismatches == 1 and not other.usable


def test_command_line_budget_overrides_the_yaml(tmp_path) -> None:
    from pathlib import Path

    cfg = load_experiment(Path(__file__).resolve().parents[2] / "experiments" / "churn_v2.yaml")
    assert with_overrides(cfg) is cfg
    cheap = with_overrides(cfg, trials=2, time_budget=30)
    assert (cheap.tuning.trials, cheap.tuning.time_budget_seconds) == (2, 30)
    assert cheap.tuning.search_space == cfg.tuning.search_space
    with pytest.raises(ValueError, match="trials"):
        with_overrides(cfg, trials=0)


def test_tracking_uri_defaults_under_home_and_passwords_are_not_printed(tmp_path) -> None:
    settings = Settings(home=tmp_path)
    assert settings.tracking_uri == f"sqlite:///{tmp_path / 'mlflow' / 'mlflow.db'}"
    assert settings.mlflow_artifact_root == tmp_path / "mlflow" / "artifacts"
    pg = "postgresql+psycopg://cs:secret@db:5432/mlflow"
    assert Settings(home=tmp_path, mlflow_tracking_uri=pg).tracking_uri == pg
    assert redact(pg) == "postgresql+psycopg://cs:***@db:5432/mlflow"
    assert not (tmp_path / "mlflow").exists()
