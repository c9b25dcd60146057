"""Drift monitoring on a real feature table (the served home's): no drift between two random
halves of one window, drift on a simulated pricing change in exactly the columns it touches,
and ``wedsync-cs monitor drift`` saving the report, logging to the champion's run and
exiting as its threshold says."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from monitoring.drift import PREDICTION, build_drift_report, drift_metrics
from tests.integration.conftest import ServedHome, run_cli
from wedsync_cs.settings import Settings

pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("served")]
COLUMNS = [
    "logins_30d",
    "active_days_30d",
    "tickets_90d",
    "health_score",
    "tenure_days",
    "subscription_tier",
    "vendor_type",
    "monthly_revenue",
]


@pytest.fixture(scope="module")
def window(served: ServedHome) -> pd.DataFrame:
    """The weekly feature rows of the served home's history (thousands of rows)."""
    table = pq.read_table(Settings(home=served.home).feature_table_path).to_pandas()
    stamps = pd.to_datetime(table["event_timestamp"], utc=True)
    rows = table[stamps.dt.dayofweek == 0]  # one row a week per supplier (Monday stamps)
    assert len(rows) > 4000
    return rows.reset_index(drop=True)


def _halves(rows: pd.DataFrame, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    order = np.random.default_rng(seed).permutation(len(rows))
    half = len(rows) // 2
    return rows.iloc[order[:half]].copy(), rows.iloc[order[half:]].copy()


def test_two_random_halves_of_one_window_do_not_drift(window) -> None:
    reference, current = _halves(window)
    metrics = drift_metrics(build_drift_report(reference, current, COLUMNS))
    assert metrics["drifted_count"] == 0 and metrics["drifted_share"] == 0
    assert set(metrics["columns"]) == set(COLUMNS) and metrics["prediction"] is None
    for column in metrics["columns"].values():
        assert column["method"] and column["threshold"] > 0 and not column["drifted"]


def test_a_pricing_change_drifts_the_columns_it_touches_and_no_other(window) -> None:
    """A new price list: a third of starter accounts moved to professional, and every
    account's monthly revenue up 30 %."""
    reference, current = _halves(window, seed=1)
    rng = np.random.default_rng(2)
    starter = (current["subscription_tier"].astype(object) == "starter").to_numpy()
    moved = starter & (rng.uniform(size=len(current)) < 1 / 3)
    tiers = current["subscription_tier"].astype(object).to_numpy()
    tiers[moved] = "professional"
    current["subscription_tier"] = tiers
    current["monthly_revenue"] = current["monthly_revenue"] * 1.3
    metrics = drift_metrics(build_drift_report(reference, current, COLUMNS))
    drifted = {c for c, v in metrics["columns"].items() if v["drifted"]}
    assert drifted == {"subscription_tier", "monthly_revenue"}
    assert metrics["drifted_share"] == pytest.approx(2 / len(COLUMNS))


def test_a_drifting_prediction_is_reported_apart(window) -> None:
    reference, current = _halves(window, seed=3)
    reference[PREDICTION] = np.random.default_rng(4).beta(1, 30, len(reference))
    current[PREDICTION] = np.random.default_rng(5).beta(3, 30, len(current))
    metrics = drift_metrics(build_drift_report(reference, current, [*COLUMNS, PREDICTION]))
    assert metrics["prediction"]["drifted"] and PREDICTION not in metrics["columns"]
    assert metrics["feature_drifted_share"] == 0


def test_bad_input_is_named(window) -> None:
    reference, current = _halves(window)
    with pytest.raises(KeyError, match="current rows lack the columns"):
        build_drift_report(reference, current.drop(columns=["tenure_days"]), COLUMNS)
    with pytest.raises(KeyError, match="no catalogue kind"):
        build_drift_report(reference.assign(x=1), current.assign(x=1), [*COLUMNS, "x"])
    with pytest.raises(ValueError, match="no rows"):
        build_drift_report(reference, current.iloc[:0], COLUMNS)


def test_the_command_saves_the_report_logs_to_the_champion_and_exits_by_threshold(
    served: ServedHome,
) -> None:
    from mlflow.tracking import MlflowClient

    from training.registry import load_champions

    env = served.env()
    result = run_cli(env, "monitor", "drift", "--max-rows", "20000")
    assert result.exit_code in (0, 1), result.output
    reports = sorted((served.home / "reports").glob("drift-*.json"))
    summary = json.loads(reports[-1].read_text())
    assert (result.exit_code == 1) == (summary["drifted_share"] > summary["max_drifted_share"])
    assert reports[-1].with_suffix(".html").stat().st_size > 100_000
    assert summary["reference_rows"] > 0 and summary["current_rows"] > 0
    assert summary["prediction"]["method"]
    settings = Settings(home=served.home)
    champion = load_champions(settings.tracking_uri, 1).churn_run_id
    client = MlflowClient(settings.tracking_uri)
    history = client.get_metric_history(champion, "drift.drifted_share")
    assert history and history[-1].value == pytest.approx(summary["drifted_share"])
    artifacts = [a.path for a in client.list_artifacts(champion, "monitoring")]
    assert any(a.endswith(".html") for a in artifacts)
    assert not any(a.endswith((".pkl", ".pickle")) for a in artifacts)
    bad = run_cli(env, "monitor", "drift", "--reference", "2025-02-01..2024-01-01")
    assert bad.exit_code == 2 and "ends before it starts" in bad.output


def test_outcomes_judge_stored_predictions_a_horizon_old_against_the_churn_that_followed(
    served: ServedHome, tmp_path
) -> None:
    """A day 60 days before the export's end is scored (a backfill) beside the newest; the
    command judges only the old day's predictions, and its AUC and Brier are those computed
    here from the stored rows and the export's cancellations."""
    from datetime import timedelta

    from sklearn.metrics import brier_score_loss, roc_auc_score
    from sqlalchemy import select

    from serving.db.migrate import engine_for
    from serving.db.models import ChurnPrediction

    url = f"sqlite:///{tmp_path / 'ops.db'}"
    env = served.env(CS_DATABASE_URL=url)
    assert run_cli(env, "db", "upgrade").exit_code == 0
    assert run_cli(env, "score-daily", "--raw", served.raw).exit_code == 0
    early = run_cli(env, "monitor", "outcomes")
    assert early.exit_code == 2 and "30 days old" in early.output
    engine = engine_for(url)
    with engine.connect() as connection:
        newest = connection.execute(select(ChurnPrediction.day).limit(1)).scalar_one()
    old = newest - timedelta(days=60)
    backfill = run_cli(env, "score-daily", "--raw", served.raw, "--as-of", old.isoformat())
    assert backfill.exit_code == 0, backfill.output
    result = run_cli(env, "monitor", "outcomes")
    assert result.exit_code in (0, 1), result.output
    summary = json.loads((served.home / "reports" / f"outcomes-{newest}.json").read_text())
    assert summary["days"] == [str(old), str(old)]
    # score-daily recorded the day as finished: read from the database once, then archived
    assert summary["archive"]["days_from_database"] == summary["archive"]["days_archived"] == 1
    assert "0 from the prediction archive, 1 from the database (1 archived now)" in result.output
    again = run_cli(env, "monitor", "outcomes")
    assert "1 from the prediction archive, 0 from the database" in again.output
    repeated = json.loads((served.home / "reports" / f"outcomes-{newest}.json").read_text())
    assert repeated["churn"] == summary["churn"] and repeated["health"] == summary["health"]
    with engine.connect() as connection:
        stored = pd.read_sql(
            select(ChurnPrediction.supplier_id, ChurnPrediction.churn_probability).where(
                ChurnPrediction.day == old
            ),
            connection,
        )
    engine.dispose()
    cancelled = pd.read_parquet(served.raw / "cancellations.parquet")
    at = pd.Timestamp(old + timedelta(days=1), tz="UTC")
    when = stored["supplier_id"].map(
        pd.Series(
            pd.to_datetime(cancelled["cancelled_at"], utc=True).to_numpy(),
            index=cancelled["supplier_id"],
        )
    )
    y = ((when > at) & (when <= at + pd.Timedelta(days=30))).astype(int)
    overall = summary["churn"]["overall"]
    assert overall["n"] == len(stored) and overall["positives"] == int(y.sum()) > 0
    assert overall["auc"] == pytest.approx(roc_auc_score(y, stored["churn_probability"]))
    assert overall["brier"] == pytest.approx(brier_score_loss(y, stored["churn_probability"]))
    assert set(summary["churn"]["by_tier"]) <= {"starter", "professional", "scale", "enterprise"}
    assert (result.exit_code == 1) == bool(summary["retrain_flags"])
    assert "churn model: " in result.output
